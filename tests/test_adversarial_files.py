"""Adversarial files (issue 16, bugs 6, 7, 16, 18): wide or hostile CSVs and crafted checkpoints end in a
located `ValueError` subclass, quickly and in little memory."""

import hashlib
import json
import struct
import time
import tracemalloc

import numpy as np
import pytest

from jaxopt_lab import checkpoint
from jaxopt_lab.checkpoint import MAGIC, CheckpointCorruptError
from jaxopt_lab.data.csvfile import CSVFormatError, read_csv


def test_bug06_header_checks_are_linear_in_the_number_of_columns(tmp_path):
    n = 20_000  # quadratic checks took ~8 s here; linear ones take milliseconds
    names = [f"c{j}" for j in range(n)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join([*names, "y"]) + "\n" + ",".join(["1"] * n + ["0"]) + "\n" +
                    ",".join(["2"] * n + ["1"]) + "\n")
    t0 = time.perf_counter()
    data = read_csv(path, "y", feature_columns=names[::-1])
    assert time.perf_counter() - t0 < 2.0
    assert data.x.shape == (2, n) and data.feature_names[0] == f"c{n - 1}"
    path.write_text(",".join([*names, "c7", "y"]) + "\n1\n")
    t0 = time.perf_counter()
    with pytest.raises(CSVFormatError, match=f"column {n + 1}: the name 'c7' appears twice"):
        read_csv(path, "y")
    assert time.perf_counter() - t0 < 2.0


def test_bug16_a_field_over_the_csv_limit_is_located(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,y\n1,0\n" + "2" * 200_000 + ",1\n")
    with pytest.raises(CSVFormatError, match=r"big\.csv:3: field larger than field limit"):
        read_csv(path, "y")


def test_bug07_a_large_file_that_is_not_a_checkpoint_is_refused_from_its_first_bytes(tmp_path):
    path = tmp_path / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # sparse: 4 GiB of zeros that cost no disk
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(CheckpointCorruptError, match="expected magic"):
        checkpoint.load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 1.0 and peak < 1 << 20
    with open(path, "r+b") as f:  # the right magic, but sizes that do not match the file's
        f.write(MAGIC + struct.pack("<QQ", 10, 1 << 40))
    with pytest.raises(CheckpointCorruptError, match="announces"):
        checkpoint.load(path)


def _craft(path, header, payload=b""):
    """A file with a valid digest around any header (a dict, or JSON text): what a hostile writer can make."""
    head = header.encode() if isinstance(header, str) else json.dumps(header).encode()
    body = MAGIC + struct.pack("<QQ", len(head), len(payload)) + head + payload
    path.write_bytes(body + hashlib.sha256(body).digest())
    return path


def _header(structure, leaves, **extra):
    return {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "byteorder": "little",
            "structure": structure, "leaves": leaves, "metadata": {}, **extra}


_ARRAY = {"kind": "numpy", "dtype": "float32", "shape": [1], "offset": 0, "nbytes": 4, "path": "[0]"}


def _deep(levels):
    """A header whose structure nests `levels` lists deep, as JSON text (too deep for json.dumps)."""
    head = json.dumps(_header("STRUCTURE", [_ARRAY]))
    return head.replace('"STRUCTURE"', '{"t": "list", "c": [' * levels + '{"t": "leaf", "i": 0}' + "]}" * levels)


@pytest.mark.parametrize("header", [
    _header({"t": "leaf", "i": 0}, {"not": "a list"}),
    _header({"t": "leaf", "i": -1}, [_ARRAY]),
    _header({"t": "leaf", "i": 5}, [_ARRAY]),
    _header({"t": "leaf", "i": 0}, [{**_ARRAY, "shape": [-1], "nbytes": -4}]),
    _header({"t": "leaf", "i": 0}, [{**_ARRAY, "offset": -4}]),
    _header({"t": "leaf", "i": 0}, [{**_ARRAY, "shape": "1"}]),
    _header({"t": "leaf", "i": 0}, [{**_ARRAY, "dtype": "object"}]),
    _header({"t": "leaf", "i": 0}, [{"kind": "py_float", "value": 1.5, "path": ""}]),
    _header({"t": "leaf", "i": 0}, [{"kind": "py_int", "value": "7", "path": ""}]),
    _header({"t": "leaf", "i": 0}, [{"kind": "pickle", "path": ""}]),
    _header({"t": "dict", "keys": [["str", "a"]], "c": []}, [_ARRAY]),
    _header({"t": "dict", "keys": [["int", "x"]], "c": [{"t": "leaf", "i": 0}]}, [_ARRAY]),
    _header({"t": "namedtuple", "fields": None, "c": [{"t": "leaf", "i": 0}]}, [_ARRAY]),
    _header({"t": "list"}, [_ARRAY]),
    _header({"t": "set", "c": []}, [_ARRAY]),
    _header("leaf", [_ARRAY]),
    _deep(300),
    _deep(100_000),
    _header({"t": "leaf", "i": 0}, [_ARRAY], metadata=[1, 2]),
])
def test_bug18_every_malformed_header_is_a_corrupt_checkpoint(tmp_path, header):
    path = _craft(tmp_path / "x.ckpt", header, np.float32(1.0).tobytes())
    with pytest.raises(CheckpointCorruptError):
        checkpoint.load(path)
    with pytest.raises(CheckpointCorruptError):
        checkpoint.load_metadata(path)


def test_a_well_formed_crafted_file_still_loads(tmp_path):
    """The checks refuse only what is malformed: the same crafting with a sound header reads back."""
    header = _header({"t": "dict", "keys": [["str", "w"]], "c": [{"t": "leaf", "i": 0}]}, [_ARRAY])
    tree, meta = checkpoint.load(_craft(tmp_path / "ok.ckpt", header, np.float32(2.5).tobytes()))
    np.testing.assert_array_equal(tree["w"], np.asarray([2.5], np.float32))
    assert meta == {}
