"""Saving and loading parameter and optimizer-state pytrees, safely.

The lectures' "saver and loader functions" (the initialization-and-quartic lecture): a training run should be
able to stop and resume from what it wrote, and reading a file should never be
able to run code or quietly hand back something other than what was written.

* **No code on load.** The file holds a JSON header and raw little-endian array
  bytes; loading parses JSON and calls `np.frombuffer`. No pickle anywhere.
* **Everything recorded.** The header lists every leaf with its key path (as
  `jax.tree_util.keystr` writes it), kind, dtype and shape, plus the tree's
  containers, so a file can be checked against the tree expected of it.
* **Integrity.** A SHA-256 digest of everything before it ends the file; a
  truncated file, a flipped byte or a file that is not a checkpoint raises
  `CheckpointCorruptError` before any of it is used.
* **Atomic writes.** `save` writes a temporary file in the same directory,
  flushes and fsyncs it, `os.replace`s it over the target and fsyncs the
  directory: after a crash the path holds either the old file or the new one,
  never a torn mix, and no temporary file is left behind by a failed write.

File layout (all integers little-endian)::

    b"JXLCKPT1" | header length (u64) | payload length (u64) | header (UTF-8 JSON)
    | payload (array bytes) | SHA-256 of all preceding bytes (32 bytes)

Supported trees: nested dicts (str or int keys), lists, tuples, NamedTuples
(optax states), other registered pytree nodes, with leaves that are jax arrays,
numpy arrays or scalars (bool, int, uint, float, complex, bfloat16 ...), Python
bool/int/float, and None.

Loading without `like` rebuilds dicts, lists and tuples; NamedTuples and other
pytree nodes come back as dicts from field (or key) to child, because
rebuilding a class named in a file would mean importing code chosen by the
file. Pass `like` (a tree of the expected structure, e.g. `opt.init(params)`
or `jax.eval_shape(opt.init, params)`) to get exactly its structure back,
NamedTuples included, after every key path, dtype and shape has been checked.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from jax.tree_util import DictKey, GetAttrKey, SequenceKey, keystr

from jaxopt_lab import _io

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointCorruptError",
    "CheckpointStructureError",
    "UnsupportedContentError",
    "save",
    "load",
    "load_metadata",
]

MAGIC = b"JXLCKPT1"
FORMAT = "jaxopt_lab.checkpoint"
VERSION = 1
_PREFIX = struct.Struct("<QQ")
_DIGEST_SIZE = hashlib.sha256().digest_size


class CheckpointError(ValueError):
    """Base class of every error this module raises about a checkpoint."""


class CheckpointNotFoundError(CheckpointError):
    """The checkpoint file does not exist."""


class CheckpointCorruptError(CheckpointError):
    """The file is truncated, altered, or not a checkpoint of this format."""


class CheckpointStructureError(CheckpointError):
    """The checkpoint does not match the structure, dtypes or shapes of `like`."""


class UnsupportedContentError(CheckpointError, TypeError):
    """A leaf or metadata value cannot be stored (e.g. a string leaf, a non-JSON metadata value)."""


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------


def _check_dtype(dtype: Any, path: str) -> None:
    if jnp.issubdtype(dtype, jax.dtypes.extended):
        raise UnsupportedContentError(
            f"leaf {path or '<root>'} has dtype {dtype}, which cannot be stored; "
            "save jax.random.key_data(key) for typed PRNG keys"
        )
    if dtype.kind in "biufc":
        return
    if dtype.kind == "V" and dtype.fields is None and isinstance(getattr(ml_dtypes, dtype.name, None), type):
        return  # bfloat16, float8_*, int4, ...
    raise UnsupportedContentError(
        f"leaf {path or '<root>'} has dtype {dtype}, which cannot be stored: "
        "supported dtypes are bool, integer, floating and complex ones"
    )


def _dtype_from_name(name: str, where: str) -> np.dtype:
    """The dtype a header names, looked up by name only (nothing is evaluated)."""
    try:
        dtype = np.dtype(name)
    except TypeError:
        scalar_type = getattr(ml_dtypes, name, None)
        if not isinstance(scalar_type, type):
            raise CheckpointCorruptError(f"{where}: unknown dtype {name!r}") from None
        dtype = np.dtype(scalar_type)
    if dtype.kind in "OSUMm" or dtype.fields is not None:
        raise CheckpointCorruptError(f"{where}: dtype {name!r} is not an array dtype this format writes")
    return dtype


# --------------------------------------------------------------------------------------------
# Encoding a tree
# --------------------------------------------------------------------------------------------


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


class _Encoder:
    """Walks a tree into a JSON-able structure, a list of leaf entries and the payload."""

    def __init__(self) -> None:
        self.leaves: list[dict[str, Any]] = []
        self.chunks: list[bytes] = []
        self.offset = 0

    def leaf(self, path: tuple, entry: dict[str, Any]) -> dict[str, Any]:
        entry["path"] = keystr(path)
        self.leaves.append(entry)
        return {"t": "leaf", "i": len(self.leaves) - 1}

    def array(self, path: tuple, value: Any, kind: str) -> dict[str, Any]:
        _check_dtype(value.dtype if kind == "jax" else np.asarray(value).dtype, keystr(path))
        arr = np.asarray(jax.device_get(value)) if kind == "jax" else np.asarray(value)
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")  # not np.ascontiguousarray: it turns 0-d arrays into 1-d ones
        if sys.byteorder == "big":
            arr = arr.byteswap()
        data = arr.tobytes()
        entry = {
            "kind": kind,
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
            "offset": self.offset,
            "nbytes": len(data),
        }
        self.chunks.append(data)
        self.offset += len(data)
        return self.leaf(path, entry)

    def encode(self, x: Any, path: tuple = ()) -> dict[str, Any]:
        if x is None:
            return self.leaf(path, {"kind": "none"})
        # numpy scalars first: np.float64 is also a Python float.
        if isinstance(x, np.generic):
            return self.array(path, x, "numpy_scalar")
        if isinstance(x, bool):
            return self.leaf(path, {"kind": "py_bool", "value": x})
        if isinstance(x, int):
            return self.leaf(path, {"kind": "py_int", "value": x})
        if isinstance(x, float):
            return self.leaf(path, {"kind": "py_float", "value": x.hex()})
        if isinstance(x, np.ndarray):
            return self.array(path, x, "numpy")
        if isinstance(x, jax.Array):
            return self.array(path, x, "jax")
        if isinstance(x, Mapping):
            keys, children = [], []
            for key, child in x.items():
                if isinstance(key, str):
                    keys.append(["str", key])
                elif isinstance(key, int) and not isinstance(key, bool):
                    keys.append(["int", key])
                else:
                    raise UnsupportedContentError(
                        f"dict key {key!r} of type {type(key).__name__} at {keystr(path) or '<root>'} "
                        "cannot be stored: keys must be str or int"
                    )
                children.append(self.encode(child, (*path, DictKey(key))))
            return {"t": "dict", "keys": keys, "c": children}
        if _is_namedtuple(x):
            fields = list(type(x)._fields)
            children = [self.encode(v, (*path, GetAttrKey(f))) for f, v in zip(fields, x, strict=True)]
            return {"t": "namedtuple", "name": type(x).__name__, "fields": fields, "c": children}
        if isinstance(x, (list, tuple)):
            children = [self.encode(v, (*path, SequenceKey(i))) for i, v in enumerate(x)]
            return {"t": "tuple" if isinstance(x, tuple) else "list", "c": children}
        if not jax.tree_util.treedef_is_leaf(jax.tree.structure(x)):
            # Some other registered pytree node (a dataclass, a Flax/Equinox module...).
            pairs, _ = jax.tree_util.tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
            keys, children = [], []
            for (key,), child in pairs:
                keys.append(_key_descriptor(key))
                children.append(self.encode(child, (*path, key)))
            return {"t": "node", "name": type(x).__name__, "keys": keys, "c": children}
        raise UnsupportedContentError(
            f"leaf {keystr(path) or '<root>'} of type {type(x).__name__} cannot be stored: "
            "leaves must be arrays, numpy or Python scalars (bool, int, float), or None"
        )


def _key_descriptor(key: Any) -> list[Any]:
    if isinstance(key, GetAttrKey):
        return ["attr", key.name]
    if isinstance(key, DictKey) and isinstance(key.key, (str, int)):
        return ["key", key.key]
    if isinstance(key, SequenceKey):
        return ["index", key.idx]
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return ["index", key.key]
    return ["key", str(key)]


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------

_JSON_HELP = "metadata may hold dicts with str keys, lists, tuples, str, int, float, bool and None"


def _clean_metadata(value: Any, where: str = "metadata") -> Any:
    """A JSON-ready copy of `value`; numpy scalars become Python scalars, tuples lists."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for key, child in value.items():
            if not isinstance(key, str):
                raise UnsupportedContentError(
                    f"{where} has key {key!r} of type {type(key).__name__}, which JSON cannot hold: " + _JSON_HELP
                )
            out[key] = _clean_metadata(child, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_clean_metadata(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise UnsupportedContentError(
        f"{where}={value!r} of type {type(value).__name__} is not a JSON value: " + _JSON_HELP
    )


# --------------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------------


def save(path: str | os.PathLike, tree: Any, metadata: Mapping[str, Any] | None = None) -> None:
    """Write `tree` (and JSON `metadata`) to `path`, atomically.

    Args:
      path: the file to write; its directory must exist. An existing file is
        replaced only once the new one is completely on disk.
      tree: a pytree of parameters, optimizer state, ... (see the module doc).
      metadata: a JSON-able dict (epoch, config, metrics...); numpy scalars are
        accepted and stored as Python numbers, tuples come back as lists.

    Raises:
      UnsupportedContentError: a leaf, dict key or metadata value that cannot be
        stored, naming its path.
    """
    if metadata is not None and not isinstance(metadata, Mapping):
        raise UnsupportedContentError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    clean_metadata = _clean_metadata(dict(metadata or {}))
    encoder = _Encoder()
    structure = encoder.encode(tree)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "byteorder": "little",
        "structure": structure,
        "leaves": encoder.leaves,
        "metadata": clean_metadata,
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    payload = b"".join(encoder.chunks)
    body = MAGIC + _PREFIX.pack(len(header_bytes), len(payload)) + header_bytes + payload
    blob = body + hashlib.sha256(body).digest()

    _io.atomic_write_bytes(path, blob)


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


_READ_BLOCK = 1 << 20
_MAX_DEPTH = 256
_LEAF_KINDS = ("none", "py_bool", "py_int", "py_float", "numpy", "numpy_scalar", "jax")
_CONTAINERS = ("leaf", "dict", "namedtuple", "node", "tuple", "list")


def _read_verified(path: str) -> tuple[dict[str, Any], memoryview]:
    """The parsed and checked header and the payload of a checkpoint whose size and digest check out.

    The magic and the announced sizes are checked against the file's size before anything else
    is read, so a large file that is not a checkpoint costs a few bytes, not its size in memory;
    the rest is read in blocks while its digest is computed.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after the size checks
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"checkpoint {path!r} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {path!r} is a directory, not a file") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        fixed = len(MAGIC) + _PREFIX.size
        prefix = f.read(fixed)
        if prefix[: len(MAGIC)] != MAGIC:
            raise CheckpointCorruptError(
                f"checkpoint {path!r} is not a {FORMAT} file, or its first bytes are corrupted "
                f"(expected magic {MAGIC!r}, found {bytes(prefix[: len(MAGIC)])!r})"
            )
        if size < fixed + _DIGEST_SIZE:
            raise CheckpointCorruptError(
                f"checkpoint {path!r} is truncated or not a checkpoint: {size} bytes, "
                f"fewer than the {fixed + _DIGEST_SIZE} of an empty one"
            )
        header_len, payload_len = _PREFIX.unpack_from(prefix, len(MAGIC))
        expected = fixed + header_len + payload_len + _DIGEST_SIZE
        if size != expected:
            what = "truncated" if size < expected else "longer than it should be"
            raise CheckpointCorruptError(
                f"checkpoint {path!r} is {what} or corrupted: its header announces {expected} bytes, "
                f"the file has {size}"
            )
        digest = hashlib.sha256(prefix)
        body = bytearray(header_len + payload_len)
        view = memoryview(body)
        got = 0
        while got < len(body):
            n = f.readinto(view[got : got + _READ_BLOCK])
            if not n:
                raise CheckpointCorruptError(f"checkpoint {path!r} was truncated while it was read")
            digest.update(view[got : got + n])
            got += n
        if digest.digest() != f.read(_DIGEST_SIZE):
            raise CheckpointCorruptError(
                f"checkpoint {path!r} is corrupted: its SHA-256 checksum does not match its contents"
            )
    try:
        header = json.loads(bytes(view[:header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise CheckpointCorruptError(f"checkpoint {path!r} has an unreadable header: {err}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointCorruptError(f"checkpoint {path!r} is not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise CheckpointCorruptError(
            f"checkpoint {path!r} has format version {header.get('version')!r}; "
            f"this version of jaxopt_lab reads version {VERSION}"
        )
    _check_header(header, payload_len, path)
    return header, view[header_len:]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_header(header: dict[str, Any], payload_len: int, path: str) -> None:
    """Every field `load` uses, of the type and range it needs: `CheckpointCorruptError` otherwise.

    A file whose digest checks out can still be crafted; nothing in it may reach an IndexError,
    a negative size or a recursion limit.
    """

    def bad(what: str) -> CheckpointCorruptError:
        return CheckpointCorruptError(f"checkpoint {path!r} has a malformed header: {what}")

    leaves = header.get("leaves")
    if not isinstance(leaves, list):
        raise bad("'leaves' is not a list")
    if not isinstance(header.get("metadata", {}), (dict, type(None))):
        raise bad("'metadata' is not a table")
    for i, e in enumerate(leaves):
        if not isinstance(e, dict) or e.get("kind") not in _LEAF_KINDS or not isinstance(e.get("path"), str):
            raise bad(f"leaf {i} is not an entry of a known kind with a path")
        kind = e["kind"]
        if kind == "py_bool" and not isinstance(e.get("value"), bool):
            raise bad(f"leaf {i}: a py_bool without a boolean value")
        if kind == "py_int" and not _is_int(e.get("value")):
            raise bad(f"leaf {i}: a py_int without an integer value")
        if kind == "py_float":
            try:
                float.fromhex(e.get("value"))
            except (TypeError, ValueError):
                raise bad(f"leaf {i}: a py_float without a hexadecimal value") from None
        if kind in ("numpy", "numpy_scalar", "jax"):
            shape, offset, nbytes = e.get("shape"), e.get("offset"), e.get("nbytes")
            if not isinstance(e.get("dtype"), str):
                raise bad(f"leaf {i}: no dtype name")
            _dtype_from_name(e["dtype"], f"checkpoint {path!r}, leaf {i}")
            if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
                raise bad(f"leaf {i}: shape {shape!r} is not a list of sizes >= 0")
            if not (_is_int(offset) and _is_int(nbytes) and 0 <= offset and 0 <= nbytes
                    and offset + nbytes <= payload_len):
                raise bad(f"leaf {i}: byte range offset={offset!r}, nbytes={nbytes!r} is not inside the payload")
    stack = [(header.get("structure"), 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise bad(f"the structure nests deeper than {_MAX_DEPTH} levels")
        if not isinstance(node, dict) or node.get("t") not in _CONTAINERS:
            raise bad(f"a structure node {str(node)[:60]!r} is not of a known container type")
        t = node["t"]
        if t == "leaf":
            if not _is_int(node.get("i")) or not 0 <= node["i"] < len(leaves):
                raise bad(f"leaf index {node.get('i')!r} is not in [0, {len(leaves)})")
            continue
        children = node.get("c")
        if not isinstance(children, list):
            raise bad(f"a {t} node without a list of children")
        if t in ("dict", "node"):
            keys = node.get("keys")
            if not isinstance(keys, list) or len(keys) != len(children) or not all(
                isinstance(k, list) and len(k) == 2 and isinstance(k[0], str) and isinstance(k[1], (str, int))
                and not isinstance(k[1], bool) for k in keys
            ):
                raise bad(f"a {t} node whose keys do not pair with its children")
            if t == "dict" and any(kt == "int" and not _is_int(k) for kt, k in keys):
                raise bad("an int dict key that is not an integer")
        if t == "namedtuple":
            fields = node.get("fields")
            if not isinstance(fields, list) or len(fields) != len(children) or not all(
                isinstance(f, str) for f in fields
            ):
                raise bad("a namedtuple node whose fields do not pair with its children")
        stack.extend((c, depth + 1) for c in children)


def _read_leaf(entry: dict[str, Any], payload: memoryview, path: str) -> Any:
    """The stored value of one leaf entry, as a numpy array / scalar / Python value."""
    kind = entry.get("kind")
    where = f"checkpoint {path!r}, leaf {entry.get('path') or '<root>'}"
    if kind == "none":
        return None
    if kind == "py_bool":
        return bool(entry["value"])
    if kind == "py_int":
        return int(entry["value"])
    if kind == "py_float":
        return float.fromhex(entry["value"])
    if kind not in ("numpy", "numpy_scalar", "jax"):
        raise CheckpointCorruptError(f"{where}: unknown leaf kind {kind!r}")
    dtype = _dtype_from_name(entry["dtype"], where)
    shape = tuple(int(n) for n in entry["shape"])
    offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
    if nbytes != math.prod(shape) * dtype.itemsize or offset < 0 or offset + nbytes > len(payload):
        raise CheckpointCorruptError(f"{where}: its byte range does not fit its shape or the file")
    arr = np.frombuffer(payload[offset : offset + nbytes], dtype=dtype).reshape(shape).copy()
    if sys.byteorder == "big":
        arr = arr.byteswap()
    return arr


def _as_jax(arr: np.ndarray) -> Any:
    # Without x64, jnp.asarray would silently narrow 64-bit values; keep them as numpy instead.
    if arr.dtype.itemsize == 8 and arr.dtype.kind in "iuf" and not jax.config.jax_enable_x64:
        return arr
    if arr.dtype.kind == "c" and arr.dtype.itemsize == 16 and not jax.config.jax_enable_x64:
        return arr
    return jnp.asarray(arr)


def _rebuild(node: dict[str, Any], values: list[Any]) -> Any:
    t = node["t"]
    if t == "leaf":
        return values[node["i"]]
    children = [_rebuild(c, values) for c in node["c"]]
    if t == "dict":
        return {(int(k) if kt == "int" else k): v for (kt, k), v in zip(node["keys"], children, strict=True)}
    if t == "namedtuple":
        return dict(zip(node["fields"], children, strict=True))
    if t == "node":
        return {k: v for (_, k), v in zip(node["keys"], children, strict=True)}
    if t == "tuple":
        return tuple(children)
    if t == "list":
        return children
    raise CheckpointCorruptError(f"unknown container type {t!r} in the checkpoint's structure")


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return f"Python {type(value).__name__}"
    return f"{np.dtype(value.dtype).name}{list(np.shape(value))}"


def _leaf_like(stored: Any, kind: str, like: Any, where: str) -> Any:
    """The stored leaf in the form of `like`'s leaf, after checking they agree."""
    if like is None or stored is None:
        if like is None and stored is None:
            return None
        raise CheckpointStructureError(f"{where}: checkpoint holds {_describe(stored)}, like holds {_describe(like)}")
    if isinstance(like, (bool, int, float)) and not isinstance(like, np.generic):
        if kind != "py_" + type(like).__name__:
            raise CheckpointStructureError(
                f"{where}: checkpoint holds {_describe(stored)}, like holds {_describe(like)}"
            )
        return stored
    if not hasattr(like, "dtype") or not hasattr(like, "shape"):
        raise CheckpointStructureError(
            f"{where}: like's leaf of type {type(like).__name__} is not an array, scalar or None"
        )
    if not isinstance(stored, np.ndarray):
        raise CheckpointStructureError(f"{where}: checkpoint holds {_describe(stored)}, like holds {_describe(like)}")
    like_dtype = np.dtype(like.dtype)
    if stored.dtype != like_dtype:
        raise CheckpointStructureError(
            f"{where}: dtype mismatch: checkpoint has {stored.dtype.name}, like has {like_dtype.name}"
        )
    if stored.shape != tuple(like.shape):
        raise CheckpointStructureError(
            f"{where}: shape mismatch: checkpoint has {stored.shape}, like has {tuple(like.shape)}"
        )
    if isinstance(like, np.generic):
        return stored[()]
    if isinstance(like, np.ndarray):
        return stored
    sharding = getattr(like, "sharding", None)
    if sharding is not None and getattr(sharding, "is_fully_addressable", False):
        return jax.device_put(stored, sharding)
    return jnp.asarray(stored)


def load(path: str | os.PathLike, like: Any = None) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint written by `save`: returns `(tree, metadata)`.

    Args:
      path: the checkpoint file.
      like: optional tree of the expected structure (arrays,
        `jax.ShapeDtypeStruct`s, Python scalars, None). With it the result has
        exactly its structure, NamedTuples included, and each leaf takes the
        form of `like`'s (jax array on `like`'s sharding, numpy array, Python
        scalar), after key paths, dtypes and shapes have been checked. Without
        it dicts, lists and tuples are rebuilt, NamedTuples and other pytree
        nodes come back as dicts, jax arrays as jax arrays (64-bit ones as numpy
        arrays when `jax_enable_x64` is off, so that no value is narrowed) and
        numpy values as numpy values.

    Raises:
      CheckpointNotFoundError: no file at `path`.
      CheckpointCorruptError: truncated, altered, or not a checkpoint.
      CheckpointStructureError: the file does not match `like`; the message
        names the first mismatching key path.
    """
    path = os.fspath(path)
    header, payload = _read_verified(path)
    entries = header["leaves"]
    try:
        values = [_read_leaf(entry, payload, path) for entry in entries]
    except (OverflowError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointCorruptError(f"checkpoint {path!r} has a malformed leaf: {err}") from None
    metadata = header.get("metadata") or {}

    if like is None:
        restored = [
            _as_jax(v) if e["kind"] == "jax" else (v[()] if e["kind"] == "numpy_scalar" else v)
            for v, e in zip(values, entries, strict=True)
        ]
        return _rebuild(header["structure"], restored), metadata

    like_pairs, treedef = jax.tree_util.tree_flatten_with_path(like, is_leaf=lambda x: x is None)
    like_paths = [keystr(p) for p, _ in like_pairs]
    stored_by_path = {e["path"]: (v, e["kind"]) for v, e in zip(values, entries, strict=True)}
    like_path_set = set(like_paths)
    for p in like_paths:
        if p not in stored_by_path:
            raise CheckpointStructureError(
                f"checkpoint {path!r} does not match like: like has a leaf at {p or '<root>'}, the checkpoint has none"
            )
    for e in entries:
        if e["path"] not in like_path_set:
            raise CheckpointStructureError(
                f"checkpoint {path!r} does not match like: the checkpoint has a leaf at "
                f"{e['path'] or '<root>'}, like has none"
            )
    leaves = []
    for p, (_, like_leaf) in zip(like_paths, like_pairs, strict=True):
        stored, kind = stored_by_path[p]
        leaves.append(_leaf_like(stored, kind, like_leaf, f"checkpoint {path!r}, leaf {p or '<root>'}"))
    return jax.tree_util.tree_unflatten(treedef, leaves), metadata


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint (verified like `load` does), without building its tree."""
    header, _ = _read_verified(os.fspath(path))
    return header.get("metadata") or {}
