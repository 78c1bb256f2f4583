"""The output-folder contract: what a command may write, replace and remove in its `--out` folder.

Every command that writes a results folder (`demo`, `train`, `sweep`, protocols) goes through
`publish`, so one set of rules holds everywhere (docs/guide.md, "Bad input and output folders"):

* The project only removes what it can prove it wrote. A published folder holds a manifest,
  ``.jaxopt_lab.json``, listing the entries of the results; only those (and the chunk files of
  a sweep's own ``checkpoints/`` folder, recognized by its ``sweep.json``) are ever replaced or
  removed. Anything else in the folder is the user's and is left alone.
* A result whose name collides with an entry the project did not write (a user's
  ``runs.csv``, or a *folder* named ``history.csv``) is refused with `OutputFolderError`
  (exit status 2 on the command line), before any work when the command names its outputs
  up front (`prepare`), and in any case before anything in the folder is touched.
* Publishing is all-or-nothing: the new results are built complete in a staging folder beside
  the output (``.OUT.partial-XXXX``) and swapped in with one atomic exchange of two directory
  entries (``renameat2(RENAME_EXCHANGE)`` on Linux), so a reader -- or a SIGKILL -- sees the
  old results or the new ones, never a mix. The user's entries are then moved from the old
  folder into the new one, one atomic rename each.
* Leftovers of an interrupted publish are cleaned by the next command on the same folder
  (`recover`): a staging folder not yet swapped is removed (it only holds new results), and an
  old folder already swapped out gives the user's entries back and loses only the old results.
* Files are written with mode 0644 (folders 0755), whatever the process umask makes of
  `tempfile`'s 0600.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MANIFEST",
    "OutputFolderError",
    "atomic_write_text",
    "atomic_write_bytes",
    "output_path",
    "owned_entries",
    "prepare",
    "publish",
    "recover",
    "remove_checkpoints",
]

MANIFEST = ".jaxopt_lab.json"
"""The manifest of a published folder: the entries the project wrote there."""

PARTIAL_MARK = ".jaxopt_lab.partial"
"""Marks a staging folder that has not been swapped in: everything in it is ours."""

CHECKPOINTS = "checkpoints"
CHECKPOINT_MANIFEST = "sweep.json"
_CHECKPOINT_FILE = re.compile(r"^(group\d+_chunk\d+\.ckpt|sweep\.json)(\.tmp.*)?$|^\.group\d+_chunk\d+\.ckpt\..*")
FILE_MODE, DIR_MODE = 0o644, 0o755

#: The entries `jaxopt-lab train` writes (checked for collisions before any work).
TRAIN_OUTPUTS = ("metrics.json", "history.csv", "model.ckpt", "loss.png")
#: The fixed entries a sweep writes (its report's figures are checked when it publishes).
SWEEP_OUTPUTS = (
    "runs.csv", "summary.json", "config.json", "histories.npz", "aggregate.csv", "index.html", "summary.md",
)


class OutputFolderError(ValueError):
    """The output folder cannot take the results without touching something the user owns (exit 2)."""


# ----------------------------------------------------------------------------- atomic files


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (a no-op where a directory cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform can open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsynced, then `os.replace`d.

    A reader sees the old file or the new one, never half of one; the file gets mode 0644.
    A *directory* at `path` is never replaced: that is refused with `OutputFolderError`.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise OutputFolderError(f"{str(path)!r} is a folder; a file of that name cannot be written there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of `text` in UTF-8 (newlines written as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------- what is ours


def csv_cell(value: Any, nan: str = "nan") -> str:
    """A value as a CSV cell: floats in full precision (``repr``: they read back exactly; NaN as `nan`:
    ``"nan"``, or ``""`` where NaN means "no value"), None empty, booleans ``true``/``false``, NumPy
    scalars as Python ones, anything else as ``str``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return nan if math.isnan(value) else repr(value)
    return str(value)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]], *,
              nan: str = "nan") -> Path:
    """A CSV file written atomically (`atomic_write_text`): `header`, then one line per row, each value
    through `csv_cell`; lines end in ``\\n``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(v, nan) for v in row] for row in rows)
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def write_dict_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *, nan: str = "nan") -> Path:
    """`write_csv` of row dicts: one column per key, in order of first appearance; a missing key is empty."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return write_csv(path, columns, ([r.get(c) for c in columns] for r in rows), nan=nan)


def output_path(out: str | os.PathLike) -> Path:
    """`out` as an absolute path naming a folder; ``""`` (which would mean the working directory) is refused."""
    if os.fspath(out).strip() == "":
        raise OutputFolderError("--out '' names no folder: give a folder name (use --out . for this folder)")
    # A symlink to a folder publishes into the folder it points to (swapping the link itself would
    # replace the link with a folder and move the user's files through it).
    p = Path(os.path.realpath(os.fspath(out)))
    if p.parent == p:
        raise OutputFolderError(f"--out {os.fspath(out)!r} is the file system root; give a folder inside it")
    return p


def _read_manifest(folder: Path) -> list[str] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        return None
    # A manifest names entries of its own folder only: nothing with a separator or '..'.
    return [e for e in entries if e and "/" not in e and e not in (".", "..", MANIFEST)]


def _is_our_checkpoints(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / CHECKPOINT_MANIFEST).is_file()


def owned_entries(folder: str | os.PathLike) -> set[str]:
    """The entries of `folder` the project can prove it wrote: its manifest's, the manifest itself and
    a sweep's ``checkpoints/`` folder (one holding ``sweep.json``)."""
    folder = Path(folder)
    owned = set(_read_manifest(folder) or [])
    if (folder / MANIFEST).is_file():
        owned.add(MANIFEST)
    if _is_our_checkpoints(folder / CHECKPOINTS):
        owned.add(CHECKPOINTS)
    owned.discard(PARTIAL_MARK)
    return {e for e in owned if os.path.lexists(folder / e)}


def _remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_checkpoints(ckpt: str | os.PathLike) -> bool:
    """Remove the files a sweep wrote into its checkpoint folder, and the folder when nothing else is left.

    Only ``sweep.json``, ``groupNNN_chunkNNNNN.ckpt`` and their temporary files are removed; anything
    else (a user's ``model_epoch100.pt``) stays. Returns whether the folder is gone.
    """
    ckpt = Path(ckpt)
    if not ckpt.is_dir() or ckpt.is_symlink():
        return not os.path.lexists(ckpt)
    for entry in ckpt.iterdir():
        if entry.is_file() and _CHECKPOINT_FILE.match(entry.name):
            entry.unlink()
    try:
        ckpt.rmdir()
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------- recovery


def _staging_folders(out: Path) -> list[Path]:
    prefix = f".{out.name}.partial-"
    try:
        return sorted(p for p in out.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()
                      and not p.is_symlink())
    except FileNotFoundError:
        return []


def recover(out: str | os.PathLike) -> list[str]:
    """Clean the leftovers of an interrupted publish of `out`; returns what was done, one line each.

    A staging folder that still holds its ``.jaxopt_lab.partial`` mark was never swapped in: it
    holds new results only and is removed. One without it is an old folder already swapped out
    (or, when `out` itself is missing, the old folder of an interrupted two-step rename): its own
    results (its manifest's entries) are dropped and every other entry goes back into `out`.
    """
    out = output_path(out)
    done = []
    if out.is_dir() and (out / PARTIAL_MARK).is_file():
        (out / PARTIAL_MARK).unlink()  # a crash right after the rename that published `out`
    for folder in _staging_folders(out):
        if (folder / PARTIAL_MARK).exists():
            if _owner_alive(folder / PARTIAL_MARK):
                continue  # another command is building results for this folder right now
            shutil.rmtree(folder, ignore_errors=True)
            done.append(f"removed the unfinished results {folder}")
            continue
        if not out.exists():
            os.rename(folder, out)
            done.append(f"restored {out} from {folder} (a publish was interrupted between its two renames)")
            continue
        _give_back(folder, out, drop=set(_read_manifest(folder) or []) | {MANIFEST})
        done.append(f"finished an interrupted publish of {out} ({folder})")
    return done


def _owner_alive(mark: Path) -> bool:
    """Whether the process that wrote a staging folder's mark (its pid, on this host) still runs."""
    try:
        pid_text, host = mark.read_text().split("\n")[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _give_back(old: Path, out: Path, drop: set[str]) -> None:
    """Move every entry of the swapped-out folder `old` into `out` except its results (`drop`), then
    remove `old` if nothing of the user's is left in it.

    The user's entries move first and the manifest goes last, so a crash part-way leaves a folder
    that `recover` still reads the same way.
    """
    entries = sorted(old.iterdir())
    for entry in entries:
        if entry.name in drop or entry.name == PARTIAL_MARK:
            continue
        # FileNotFoundError: a concurrent `recover` of the same folder moved it first.
        with contextlib.suppress(FileNotFoundError):
            if entry.name == CHECKPOINTS and _is_our_checkpoints(entry) and os.path.lexists(out / CHECKPOINTS):
                remove_checkpoints(entry)
            elif not os.path.lexists(out / entry.name):
                os.rename(entry, out / entry.name)
    for entry in entries:
        if entry.name in drop and entry.name != MANIFEST or entry.name == PARTIAL_MARK:
            with contextlib.suppress(FileNotFoundError):
                _remove_entry(entry)
    with contextlib.suppress(FileNotFoundError):
        (old / MANIFEST).unlink()
    with contextlib.suppress(OSError):
        old.rmdir()


# ----------------------------------------------------------------------------- collisions and publishing


def _collisions(out: Path, names: Iterable[str]) -> list[str]:
    if not out.is_dir():
        return []
    owned = owned_entries(out)
    return sorted(n for n in set(names) if os.path.lexists(out / n) and n not in owned)


def _collision_error(out: Path, clashes: list[str]) -> OutputFolderError:
    what = ", ".join(repr(c) + (" (a folder)" if (out / c).is_dir() else "") for c in clashes[:5])
    more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
    return OutputFolderError(
        f"--out {str(out)!r} already holds {what}{more}, not written by jaxopt_lab (no {MANIFEST} lists it): "
        "move it away or choose another --out; nothing was changed"
    )


def prepare(out: str | os.PathLike, names: Iterable[str] = ()) -> Path:
    """Check `out` before any work: recover an interrupted publish, refuse a file in the way of the
    folder and any of `names` (the results about to be written) that the user owns. Returns the path."""
    out = output_path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputFolderError(f"--out {str(out)!r} exists and is not a folder")
    recover(out)
    clashes = _collisions(out, names)
    if clashes:
        raise _collision_error(out, clashes)
    return out


def _set_modes(folder: Path) -> None:
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), DIR_MODE)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, FILE_MODE)
    os.chmod(folder, DIR_MODE)


_critical = {"depth": 0, "pending": False}


def in_critical_section() -> bool:
    """Whether a publish is between its swap and its last rename (an interrupt then waits for the end)."""
    return _critical["depth"] > 0


def defer_interrupt() -> None:
    """Note a Ctrl-C that arrived inside a critical section; it is delivered when the section ends."""
    _critical["pending"] = True


@contextlib.contextmanager
def _critical_section() -> Iterator[None]:
    _critical["depth"] += 1
    try:
        yield
    finally:
        _critical["depth"] -= 1
        if _critical["depth"] == 0 and _critical["pending"]:
            _critical["pending"] = False
            signal.raise_signal(signal.SIGINT)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directory entries `a` and `b` atomically; False where the platform cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), os.fspath(a))


@contextlib.contextmanager
def publish(out: str | os.PathLike, *, drop: Iterable[str] = (), replace: bool = True) -> Iterator[Path]:
    """A staging folder beside `out`; when the block completes, its contents become `out`'s results at once.

    The block writes the results into the yielded folder. On success: a result colliding with an
    entry of `out` that the project did not write is refused (`OutputFolderError`, `out` untouched);
    the manifest is written; the folder is swapped in atomically; the user's entries of the old
    folder move into the new one; the old results are removed. Entries of `drop` that the project
    owns (a finished sweep's ``checkpoints``) are removed too, and its other owned entries are kept.
    With ``replace=False`` the new entries are added to the earlier results instead of replacing
    them as a whole (``--check-vectorization`` adds ``vectorization.json`` beside a sweep's).
    An error or interrupt inside the block leaves `out` exactly as it was.
    """
    out = output_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    (stage / PARTIAL_MARK).write_text(f"{os.getpid()}\n{socket.gethostname()}\n")
    swapped = False
    try:
        yield stage
        names = sorted(e.name for e in stage.iterdir() if e.name not in (PARTIAL_MARK, MANIFEST))
        if os.path.lexists(out) and not out.is_dir():
            raise OutputFolderError(f"--out {str(out)!r} exists and is not a folder")
        clashes = _collisions(out, names)
        if clashes:
            raise _collision_error(out, clashes)
        kept = [] if replace or not out.is_dir() else sorted(owned_entries(out) - set(names) - {MANIFEST, CHECKPOINTS})
        for name in kept:  # hard links: the earlier results are in the new folder at the moment of the swap
            _link_copy(out / name, stage / name)
        entries = sorted({*names, *kept})
        atomic_write_text(stage / MANIFEST, json.dumps({"tool": "jaxopt_lab", "entries": entries}, indent=2) + "\n")
        _set_modes(stage)
        swapped = True  # from here on `stage` may name the old folder, which can hold the user's entries
        with _critical_section():
            _swap_in(stage, out, drop=set(drop))
    finally:
        if not swapped:
            shutil.rmtree(stage, ignore_errors=True)


def _link_copy(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _swap_in(stage: Path, out: Path, drop: set[str]) -> None:
    if not out.exists():
        # The mark goes with the rename's commit: a crash before it leaves a marked (removable) stage.
        os.rename(stage, out)
        (out / PARTIAL_MARK).unlink()
        fsync_dir(out.parent)
        return
    old_results = set(_read_manifest(out) or []) | {MANIFEST}
    owned = owned_entries(out)
    dropped = {d for d in drop if d in owned}
    if _exchange(stage, out):
        old = stage
    else:
        # Two renames: a crash between them leaves `out` missing, which `recover` undoes.
        old = stage.with_name(stage.name + "-old")
        os.rename(out, old)
        os.rename(stage, out)
    (out / PARTIAL_MARK).unlink()
    fsync_dir(out.parent)
    for name in dropped:
        if name == CHECKPOINTS:
            remove_checkpoints(old / name)
        else:
            _remove_entry(old / name)
    _give_back(old, out, drop=old_results)
