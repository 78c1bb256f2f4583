"""Checkpoints: round trips, integrity checks, structure checks and atomic writes."""

import collections
import dataclasses
import hashlib
import json
import os
import struct

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import checkpoint as C
from jaxopt_lab.optim import wrappers as W

PARAMS = {
    "dense": {"w": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), "b": jnp.zeros(3, jnp.float32)},
    "out": [jnp.ones((3, 1), jnp.float64), jnp.array([1.5], jnp.float64)],
}


def mixed_tree():
    return {
        "f32": np.linspace(0, 1, 5, dtype=np.float32),
        "f64": jnp.asarray(np.pi * np.ones((2, 2))),
        "i32": jnp.arange(4, dtype=jnp.int32),
        "u8": np.array([0, 255], np.uint8),
        "bool": jnp.array([True, False]),
        "bf16": jnp.array([1.5, -2.0], jnp.bfloat16),
        "c64": np.array([1 + 2j], np.complex64),
        "empty": np.zeros((0, 3), np.float32),
        "scalars": (1, 2.5, True, None, np.float32(0.25), np.int64(-7), float("nan"), 10**30),
        "int_keys": {7: [None, {"deep": jnp.array(3, jnp.int32)}], 2: np.ones(1)},
    }


def assert_same_leaves(a, b):
    """Same structure, same leaf types, same dtypes and values (NaN equal to NaN)."""
    la, ta = jax.tree.flatten(a, is_leaf=lambda x: x is None)
    lb, tb = jax.tree.flatten(b, is_leaf=lambda x: x is None)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y), (type(x), type(y))
        if x is None:
            continue
        if isinstance(x, (bool, int, float)):
            assert x == y or (x != x and y != y)
            continue
        assert np.dtype(x.dtype) == np.dtype(y.dtype) and np.shape(x) == np.shape(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def test_round_trip_without_like_keeps_dicts_lists_tuples_dtypes_and_leaf_types(tmp_path):
    tree = mixed_tree()
    C.save(tmp_path / "ck", tree, {"epoch": 3, "config": {"lr": 0.1, "name": "sgd"}, "hist": [1.0, 0.5]})
    loaded, metadata = C.load(tmp_path / "ck")
    assert_same_leaves(loaded, tree)
    assert list(loaded) == list(tree)  # insertion order of dict keys kept
    assert metadata == {"epoch": 3, "config": {"lr": 0.1, "name": "sgd"}, "hist": [1.0, 0.5]}
    assert C.load_metadata(tmp_path / "ck") == metadata


def test_round_trip_of_optax_state_with_like_restores_namedtuples(tmp_path):
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3), W.reduce_on_plateau())
    update = jax.jit(opt.update)
    state = opt.init(PARAMS)
    grads = jax.tree.map(lambda x: 0.1 * jnp.ones_like(x), PARAMS)
    for _ in range(3):
        _, state = update(grads, state, PARAMS, value=1.0)
    C.save(tmp_path / "opt.ckpt", {"params": PARAMS, "opt_state": state}, {"step": 3})

    like = {"params": PARAMS, "opt_state": opt.init(PARAMS)}
    loaded, metadata = C.load(tmp_path / "opt.ckpt", like=like)
    assert_same_leaves(loaded, {"params": PARAMS, "opt_state": state})
    assert isinstance(loaded["opt_state"][1][0], optax.ScaleByAdamState)
    assert isinstance(loaded["opt_state"][2], W.ReduceLROnPlateauState)
    assert metadata == {"step": 3}
    # Training resumes exactly where it stopped.
    u1, _ = update(grads, state, PARAMS, value=1.0)
    u2, _ = update(grads, loaded["opt_state"], loaded["params"], value=1.0)
    chex.assert_trees_all_equal(u1, u2)


def test_without_like_namedtuples_come_back_as_dicts(tmp_path):
    state = optax.adam(0.1).init(PARAMS)
    C.save(tmp_path / "s", state)
    loaded, _ = C.load(tmp_path / "s")
    assert isinstance(loaded, tuple) and isinstance(loaded[0], dict)
    assert set(loaded[0]) == {"count", "mu", "nu"}
    assert loaded[1] == {}  # EmptyState
    chex.assert_trees_all_equal(loaded[0]["mu"], state[0].mu)


def test_like_may_be_abstract_shapes(tmp_path):
    opt = W.lookahead(optax.sgd(0.1, momentum=0.9), 3, 0.5)
    state = opt.init(PARAMS)
    C.save(tmp_path / "la", state)
    loaded, _ = C.load(tmp_path / "la", like=jax.eval_shape(opt.init, PARAMS))
    assert isinstance(loaded, W.LookaheadState)
    assert isinstance(loaded.slow["dense"]["w"], jax.Array)
    chex.assert_trees_all_equal(loaded, state)


def test_like_gives_leaves_in_likes_form(tmp_path):
    tree = {"a": np.arange(3.0), "b": jnp.ones(2), "c": 4, "d": np.float32(2.0)}
    C.save(tmp_path / "t", tree)
    like = {"a": jnp.zeros(3), "b": np.zeros(2), "c": 0, "d": np.float32(0)}
    loaded, _ = C.load(tmp_path / "t", like=like)
    assert isinstance(loaded["a"], jax.Array) and isinstance(loaded["b"], np.ndarray)
    assert loaded["c"] == 4 and type(loaded["c"]) is int
    assert type(loaded["d"]) is np.float32


def test_paths_are_jax_key_paths(tmp_path):
    """The header's paths are what jax.tree_util.keystr writes for the same leaves."""
    tree = {"p": PARAMS, "s": optax.adam(0.1).init(PARAMS), "n": None, "o": collections.OrderedDict(z=1, a=2)}
    C.save(tmp_path / "k", tree)
    raw = (tmp_path / "k").read_bytes()
    header_len, _ = struct.unpack_from("<QQ", raw, 8)
    header = json.loads(raw[24 : 24 + header_len])
    ours = sorted(entry["path"] for entry in header["leaves"])
    theirs = sorted(
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    )
    assert ours == theirs


def test_overwrite_replaces_the_file(tmp_path):
    C.save(tmp_path / "c", {"x": jnp.ones(2)})
    C.save(tmp_path / "c", {"x": jnp.zeros(3)}, {"v": 2})
    loaded, metadata = C.load(tmp_path / "c")
    np.testing.assert_array_equal(loaded["x"], np.zeros(3))
    assert metadata == {"v": 2}
    assert os.listdir(tmp_path) == ["c"]


# --------------------------------------------------------------------------------------------
# Damaged and missing files
# --------------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.ckpt"
    C.save(path, mixed_tree(), {"epoch": 1})
    return path


def test_missing_file(tmp_path):
    with pytest.raises(C.CheckpointNotFoundError, match="does not exist") as info:
        C.load(tmp_path / "nope.ckpt")
    assert "nope.ckpt" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("where", ["magic", "prefix", "header", "payload", "digest"])
def test_a_flipped_byte_is_detected(saved, where):
    raw = bytearray(saved.read_bytes())
    header_len, payload_len = struct.unpack_from("<QQ", raw, 8)
    index = {
        "magic": 3,
        "prefix": 9,
        "header": 24 + header_len // 2,
        "payload": 24 + header_len + payload_len // 2,
        "digest": len(raw) - 5,
    }[where]
    raw[index] ^= 0x10
    saved.write_bytes(bytes(raw))
    with pytest.raises(C.CheckpointCorruptError, match="model.ckpt"):
        C.load(saved)
    with pytest.raises(C.CheckpointCorruptError):
        C.load_metadata(saved)


@pytest.mark.parametrize("keep", [0, 10, 30, -1, -40])
def test_truncated_file_is_detected(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep])
    with pytest.raises(C.CheckpointCorruptError, match=r"truncated") as info:
        C.load(saved)
    assert str(saved) in str(info.value)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.ones(3))
    with pytest.raises(C.CheckpointCorruptError, match="not a jaxopt_lab.checkpoint file"):
        C.load(path)


def test_header_cannot_smuggle_unknown_dtypes(tmp_path):
    """A well-formed file (valid checksum) naming an odd dtype is refused, never evaluated."""
    path = tmp_path / "evil"
    C.save(path, {"x": np.ones(2)})
    raw = path.read_bytes()
    header_len, payload_len = struct.unpack_from("<QQ", raw, 8)
    header = json.loads(raw[24 : 24 + header_len])
    header["leaves"][0]["dtype"] = "object"
    new_header = json.dumps(header).encode()
    body = raw[:8] + struct.pack("<QQ", len(new_header), payload_len) + new_header + raw[24 + header_len : -32]
    path.write_bytes(body + hashlib.sha256(body).digest())
    with pytest.raises(C.CheckpointCorruptError, match="dtype 'object'"):
        C.load(path)


# --------------------------------------------------------------------------------------------
# Structure mismatches
# --------------------------------------------------------------------------------------------


def test_missing_leaf_is_named(tmp_path):
    C.save(tmp_path / "p", PARAMS)
    like = {**PARAMS, "extra": jnp.ones(2)}
    with pytest.raises(C.CheckpointStructureError, match=r"like has a leaf at \['extra'\]"):
        C.load(tmp_path / "p", like=like)


def test_extra_leaf_is_named(tmp_path):
    C.save(tmp_path / "p", PARAMS)
    like = {"dense": PARAMS["dense"], "out": PARAMS["out"][:1]}
    with pytest.raises(C.CheckpointStructureError, match=r"checkpoint has a leaf at \['out'\]\[1\]"):
        C.load(tmp_path / "p", like=like)


def test_shape_and_dtype_mismatches_are_named(tmp_path):
    C.save(tmp_path / "p", PARAMS)
    like = jax.tree.map(lambda x: x, PARAMS)
    like["dense"]["w"] = jnp.zeros((3, 2), jnp.float32)
    with pytest.raises(
        C.CheckpointStructureError, match=r"\['dense'\]\['w'\]: shape mismatch: checkpoint has \(2, 3\)"
    ):
        C.load(tmp_path / "p", like=like)
    like["dense"]["w"] = jnp.zeros((2, 3), jnp.float16)
    with pytest.raises(
        C.CheckpointStructureError,
        match=r"\['dense'\]\['w'\]: dtype mismatch: checkpoint has float32, like has float16",
    ):
        C.load(tmp_path / "p", like=like)


def test_a_different_optimizers_state_is_refused(tmp_path):
    C.save(tmp_path / "s", optax.sgd(0.1, momentum=0.9).init(PARAMS))
    with pytest.raises(C.CheckpointStructureError, match="does not match like"):
        C.load(tmp_path / "s", like=optax.adam(0.1).init(PARAMS))


def test_none_against_an_array_is_refused(tmp_path):
    C.save(tmp_path / "n", {"a": None})
    with pytest.raises(C.CheckpointStructureError, match=r"\['a'\]: checkpoint holds None"):
        C.load(tmp_path / "n", like={"a": jnp.ones(1)})


# --------------------------------------------------------------------------------------------
# Unsupported content
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tree, fragment",
    [
        ({"name": "adam"}, r"leaf \['name'\] of type str"),
        ({"a": [np.array(["x"])]}, r"leaf \['a'\]\[0\] has dtype <U1"),
        ({"k": jax.random.key(0)}, "jax.random.key_data"),
        ({(1, 2): jnp.ones(1)}, r"dict key \(1, 2\)"),
    ],
)
def test_unsupported_leaves_are_refused_with_their_path(tmp_path, tree, fragment):
    with pytest.raises(C.UnsupportedContentError, match=fragment):
        C.save(tmp_path / "u", tree)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "metadata, fragment",
    [
        ({"arr": np.ones(2)}, r"metadata\['arr'\]=array"),
        ({"nested": {"f": print}}, r"metadata\['nested'\]\['f'\]=<built-in function print>"),
        ({"bad": {1: "int key"}}, r"metadata\['bad'\] has key 1"),
        ([1, 2], "metadata must be a dict"),
    ],
)
def test_non_json_metadata_is_refused(tmp_path, metadata, fragment):
    with pytest.raises(C.UnsupportedContentError, match=fragment):
        C.save(tmp_path / "m", {"x": jnp.ones(1)}, metadata)


def test_numpy_scalars_in_metadata_become_python_numbers(tmp_path):
    C.save(tmp_path / "m", {}, {"loss": np.float32(0.5), "epoch": np.int64(4), "ok": np.bool_(True), "t": (1, 2)})
    assert C.load(tmp_path / "m")[1] == {"loss": 0.5, "epoch": 4, "ok": True, "t": [1, 2]}


# --------------------------------------------------------------------------------------------
# Atomicity
# --------------------------------------------------------------------------------------------


def test_a_crash_before_the_rename_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    C.save(path, PARAMS, {"version": "old"})
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("simulated crash during os.replace")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        C.save(path, {"other": jnp.zeros(100)}, {"version": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert C.load(path, like=PARAMS)[1] == {"version": "old"}


def test_a_crash_while_writing_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"

    def crash(fd):
        raise OSError("simulated disk failure")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated disk failure"):
        C.save(path, PARAMS)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_the_write_is_flushed_synced_and_renamed_in_place(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda s, d: (calls.append(("replace", os.path.dirname(s))), real_replace(s, d))[1]
    )
    C.save(tmp_path / "f", PARAMS)
    assert calls == ["fsync", ("replace", str(tmp_path)), "fsync"]  # file, rename in the same directory, directory


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Layer:
    weight: jax.Array
    bias: jax.Array


def test_registered_pytree_nodes(tmp_path):
    tree = {"layers": [Layer(jnp.ones((2, 2)), jnp.zeros(2)), Layer(jnp.eye(2), jnp.ones(2))]}
    C.save(tmp_path / "d", tree)
    plain, _ = C.load(tmp_path / "d")
    assert set(plain["layers"][1]) == {"weight", "bias"}
    np.testing.assert_array_equal(plain["layers"][1]["weight"], np.eye(2))
    restored, _ = C.load(tmp_path / "d", like=tree)
    assert isinstance(restored["layers"][0], Layer)
    chex.assert_trees_all_equal(restored, tree)
