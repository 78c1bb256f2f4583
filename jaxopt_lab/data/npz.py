"""Load a data set saved with NumPy: one `.npz` archive, or a pair of `.npy` files.

Two ways to point at the arrays (config keys of `[data]` with `dataset = "npz"`):

* ``path = "data.npz"``: an archive from `np.savez`/`np.savez_compressed`; the
  features are the array named `x_key` (default ``"x"``), the labels `y_key`
  (default ``"y"``).
* ``path = "x.npy"`` and ``y_path = "y.npy"``: two files from `np.save`, the
  features in `path`, the labels in `y_path` (`x_key`/`y_key` are then unused).

The format is read from the file's first bytes, not its name. The features are
`(n, d)` rows, or an image stack `(n, H, W)` / `(n, H, W, C)` that is flattened
row-major to `(n, H*W*C)` (so `model.image_shape = [H, W, C]` undoes it). They
must be finite numbers (bool, integer or float). Labels are one per row: class
labels (integers, whole-number floats or strings) are mapped to `0..k-1` in
sorted order, like the CSV loader's; regression targets are finite floats.

Files are opened with `allow_pickle=False`: a pickle, or an archive holding
object arrays, is refused, never run. Every problem is one line naming the
file, the array (and the config key that names it) and what is wrong, raised
as a `ConfigError` (the command line prints it and exits with status 2).
"""

from __future__ import annotations

import os
import zipfile
from typing import NamedTuple

import numpy as np

from jaxopt_lab._checks import ConfigError, choices_error, closest

__all__ = ["NpzData", "NpzFormatError", "NpzFileNotFoundError", "read_npz", "TASKS"]

TASKS = ("classification", "regression")
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


class NpzFormatError(ConfigError):
    """The file exists but its arrays cannot be used; the message names file, array and reason."""


class NpzFileNotFoundError(FileNotFoundError, ConfigError):
    """The file does not exist. A `FileNotFoundError` that is also a `ConfigError` (bad input)."""


class NpzData(NamedTuple):
    """What `read_npz` found.

    Attributes:
      x: `float64` features `(n, d)` (an image stack flattened row-major).
      y: `int64` classes `0..k-1` (classification) or `float64` targets, shape `(n,)`.
      classes: the original labels, sorted (`classes[y[i]]` is row i's label); empty for regression.
      image_shape: the per-row shape of `x` as stored, e.g. `(8, 8)` for an image stack, `(d,)` for rows.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list
    image_shape: tuple[int, ...]


def _check_file(where: str, config_key: str) -> bytes:
    """The first bytes of an existing regular file, or the one-line error saying why not."""
    if not os.path.exists(where):
        raise NpzFileNotFoundError(f"{where}: no such file ({config_key})")
    if os.path.isdir(where):
        raise NpzFormatError(f"{where}: is a directory, not an .npz or .npy file ({config_key})")
    with open(where, "rb") as handle:
        head = handle.read(len(_NPY_MAGIC))
    if not head.startswith(_ZIP_MAGIC) and head != _NPY_MAGIC:
        raise NpzFormatError(
            f"{where}: not an .npz or .npy file ({config_key}): it starts with {head!r}, not a zip archive "
            "(np.savez) or an .npy header (np.save); pickles are never loaded"
        )
    return head


def _load_npy(where: str, what: str) -> np.ndarray:
    try:
        return np.load(where, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise NpzFormatError(f"{where}: {what}: holds Python objects (dtype object), which are never "
                                 "unpickled: save plain numeric arrays") from None
        raise NpzFormatError(f"{where}: {what}: numpy cannot read it: {error}") from None
    except (OSError, EOFError) as error:
        raise NpzFormatError(f"{where}: {what}: numpy cannot read it: {error}") from None


def _load_from_archive(where: str, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        archive = np.load(where, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise NpzFormatError(f"{where}: not a readable .npz archive (data.path): {error}") from None
    with archive:
        names = list(archive.files)
        arrays = []
        for key, config_key in ((x_key, "data.x_key"), (y_key, "data.y_key")):
            if key not in names:
                raise NpzFormatError(
                    f"{where}: no array named {key!r} ({config_key}){closest(key, names)}: "
                    f"the arrays are {names}"
                )
            what = f"array {key!r} ({config_key})"
            try:
                arrays.append(archive[key])
            except ValueError as error:
                if "allow_pickle" in str(error):
                    raise NpzFormatError(f"{where}: {what}: holds Python objects (dtype object), which are never "
                                         "unpickled: save plain numeric arrays") from None
                raise NpzFormatError(f"{where}: {what}: numpy cannot read it: {error}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                raise NpzFormatError(f"{where}: {what}: numpy cannot read it: {error}") from None
    return arrays[0], arrays[1]


def _features(where: str, what: str, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    if x.dtype.kind not in "biuf":
        raise NpzFormatError(
            f"{where}: {what}: dtype {x.dtype} is not numeric: features must be bool, integer or float"
        )
    if x.ndim not in (2, 3, 4):
        raise NpzFormatError(
            f"{where}: {what}: shape {x.shape} has {x.ndim} dimension(s): features need (n, features) or an "
            "image stack (n, height, width[, channels])"
        )
    if x.shape[0] == 0:
        raise NpzFormatError(f"{where}: {what}: shape {x.shape} has no rows")
    if x.size == 0:
        raise NpzFormatError(f"{where}: {what}: shape {x.shape} has no features")
    flat = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    bad = ~np.isfinite(flat)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise NpzFormatError(
            f"{where}: {what}: {int(bad.sum())} value(s) are NaN or inf (the first in row {row}); "
            "missing values are not supported"
        )
    return flat, tuple(int(s) for s in x.shape[1:])


def _labels(where: str, what: str, y: np.ndarray, n: int, x_what: str, task: str) -> tuple[np.ndarray, list]:
    if y.ndim != 1:
        raise NpzFormatError(f"{where}: {what}: shape {y.shape}: labels need one value per row, shape (n,)")
    if len(y) != n:
        raise NpzFormatError(f"{where}: {what} has {len(y)} rows but {x_what} has {n}: one label per row needed")
    numeric = y.dtype.kind in "biuf"
    if task == "regression":
        if not numeric:
            raise NpzFormatError(f"{where}: {what}: dtype {y.dtype} is not numeric: regression targets are numbers")
        target = np.asarray(y, dtype=np.float64)
        bad = ~np.isfinite(target)
        if bad.any():
            raise NpzFormatError(
                f"{where}: {what}: {int(bad.sum())} target(s) are NaN or inf (the first in row {int(np.argmax(bad))})"
            )
        return target, []
    if not numeric and y.dtype.kind not in "US":
        raise NpzFormatError(
            f"{where}: {what}: dtype {y.dtype}: class labels must be integers, whole numbers or strings"
        )
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            row = int(np.argmax(bad))
            raise NpzFormatError(
                f"{where}: {what}: the class label {y[row].item()!r} in row {row} is not a whole number; "
                "use data.task = 'regression' for real-valued targets"
            )
    classes, index = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise NpzFormatError(
            f"{where}: {what} holds a single class ({classes[0].item()!r}) in all {n} rows: classification needs at "
            "least 2 classes"
        )
    return index.astype(np.int64).reshape(-1), classes.tolist()


def read_npz(
    path: str | os.PathLike,
    *,
    x_key: str = "x",
    y_key: str = "y",
    y_path: str | os.PathLike | None = None,
    task: str = "classification",
) -> NpzData:
    """Read features and labels from an `.npz` archive, or from two `.npy` files.

    Args:
      path: an `.npz` archive holding `x_key` and `y_key`, or an `.npy` file of
        the features when `y_path` is given.
      x_key: the features' name in the archive.
      y_key: the labels' name in the archive.
      y_path: an `.npy` file of the labels (then `path` must be an `.npy` file too).
      task: "classification" (labels mapped to `0..k-1`, at least 2 classes) or
        "regression" (finite float targets).

    Raises:
      NpzFileNotFoundError: a file does not exist (also a `FileNotFoundError`).
      NpzFormatError: (a `ConfigError`) not an npz/npy file, a missing array
        (the message lists those present), pickled objects, a wrong number of
        dimensions, a row-count mismatch, a non-numeric dtype, NaN or inf, a
        single class.
    """
    if task not in TASKS:
        raise choices_error("data.task", task, TASKS)
    where = os.fspath(path)
    head = _check_file(where, "data.path")
    if y_path is None:
        if head == _NPY_MAGIC:
            raise NpzFormatError(
                f"{where}: a single .npy array (data.path): give the labels' .npy file as data.y_path, or save "
                "both arrays in one .npz"
            )
        x, y = _load_from_archive(where, x_key, y_key)
        x_where, y_where = where, where
        x_what, y_what = f"array {x_key!r} (data.x_key)", f"array {y_key!r} (data.y_key)"
    else:
        y_where = os.fspath(y_path)
        if head != _NPY_MAGIC:
            raise NpzFormatError(
                f"{where}: an .npz archive (data.path) together with data.y_path: data.y_path is for a pair of "
                ".npy files; name the labels' array in the archive with data.y_key instead"
            )
        if _check_file(y_where, "data.y_path") != _NPY_MAGIC:
            raise NpzFormatError(f"{y_where}: an .npz archive (data.y_path): data.y_path must be an .npy file")
        x = _load_npy(where, "features (data.path)")
        y = _load_npy(y_where, "labels (data.y_path)")
        x_where = where
        x_what, y_what = "features (data.path)", "labels (data.y_path)"
    flat, image_shape = _features(x_where, x_what, x)
    x_named = x_what if x_where == y_where else f"{x_where} (data.path)"
    labels, classes = _labels(y_where, y_what, y, len(flat), x_named, task)
    return NpzData(flat, labels, classes, image_shape)
