"""The built-in CNN: forward pass and gradients against PyTorch with the same weights, shapes, config wiring."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab.config import ConfigError, ModelConfig, from_dict, validate
from jaxopt_lab.nn import cnn

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_ACT = {"relu": torch.relu, "tanh": torch.tanh}


def _random_params(seed, input_shape, **kw):
    """Params of `cnn.init`'s layout (its shapes, via eval_shape) drawn with NumPy, biases nonzero.

    NumPy, not `cnn.init`: compiling JAX's random number generator costs seconds on a
    small machine, and these tests are about the network, not its initializer.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda: cnn.init(jax.random.key(0), input_shape, dtype=jnp.float64, **kw))
    return jax.tree.map(
        lambda a: rng.normal(size=a.shape) / math.sqrt(math.prod(a.shape[:-1]) if a.ndim > 1 else 10.0), shapes
    )


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    # TensorFlow's SAME, written out: out = ceil(size / s), the smaller half of the padding first.
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def torch_forward(params, x_nhwc, strides, activation, pool):
    """The same network in PyTorch (NCHW, OIHW kernels, explicit asymmetric padding)."""
    t = {name: {leaf: torch.tensor(np.asarray(v), requires_grad=True) for leaf, v in layer.items()}
         for name, layer in params.items()}
    act = TORCH_ACT[activation]
    h = torch.tensor(np.asarray(x_nhwc)).permute(0, 3, 1, 2)
    i = 0
    while f"conv_{i}" in t:
        w, b, s = t[f"conv_{i}"]["w"], t[f"conv_{i}"]["b"], strides[i]
        k = w.shape[0]
        top, bottom = _same_pad(h.shape[2], k, s)
        left, right = _same_pad(h.shape[3], k, s)
        h = F.pad(h, (left, right, top, bottom))
        h = act(F.conv2d(h, w.permute(3, 2, 0, 1), b, stride=s))
        i += 1
    h = h.mean(dim=(2, 3)) if pool == "avg" else h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
    n_dense = sum(name.startswith("dense_") for name in t)
    for j in range(n_dense):
        h = h @ t[f"dense_{j}"]["w"] + t[f"dense_{j}"]["b"]
        if j < n_dense - 1:
            h = act(h)
    return h, t


CASES = [
    # input shape, channels, kernels, strides, dense, activation, pool
    ((8, 8), [4, 6], [3, 3], [1, 2], [], "relu", "avg"),
    ((7, 9, 2), [4, 3, 5], [5, 3, 2], [2, 1, 3], [7], "tanh", "flatten"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_and_gradients_match_torch_and_finite_differences(case):
    input_shape, channels, kernels, strides, dense, activation, pool = CASES[case]
    shape = (*input_shape, 1) if len(input_shape) == 2 else input_shape
    params = _random_params(
        case, input_shape, channels=channels, kernels=kernels, strides=strides, dense=dense,
        out_dim=3, activation=activation, pool=pool, init="he_normal",
    )
    x = np.random.default_rng(case).normal(size=(5, *shape))
    y = np.array([0, 2, 1, 1, 0])
    rng = np.random.default_rng(10 + case)
    direction = jax.tree.map(lambda a: rng.normal(size=a.shape), params)
    eps = 1e-6

    def loss(p):
        # Flat rows, reshaped by apply; torch gets the images: the reshape is checked too.
        logits = cnn.apply(p, x.reshape(5, -1), strides=strides, activation=activation, input_shape=input_shape,
                           pool=pool)
        return -jnp.sum(jax.nn.log_softmax(logits)[jnp.arange(5), y]), logits

    @jax.jit  # one compile for everything: the suite runs on small, busy machines
    def measured(p):
        (_, logits), grads = jax.value_and_grad(loss, has_aux=True)(p)
        up, down = (loss(jax.tree.map(lambda a, d, sign=sign: a + sign * eps * d, p, direction))[0] for sign in (1, -1))
        return logits, grads, (up - down) / (2 * eps)

    logits, grads, numeric = measured(params)
    ref, t = torch_forward(params, x, strides, activation, pool)
    np.testing.assert_allclose(logits, ref.detach().numpy(), rtol=1e-12, atol=1e-12)

    F.cross_entropy(ref, torch.tensor(y), reduction="sum").backward()
    for name, layer in grads.items():
        for leaf, g in layer.items():
            np.testing.assert_allclose(g, t[name][leaf].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{name}.{leaf}")
    pairs = zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True)
    np.testing.assert_allclose(sum(float(jnp.vdot(g, d)) for g, d in pairs), numeric, rtol=1e-6)


def test_shapes_and_same_padding():
    def shapes(input_shape, **kw):
        params = jax.eval_shape(lambda: cnn.init(jax.random.key(0), input_shape, out_dim=10, **kw))
        return {f"{name}.{leaf}": v.shape for name, layer in params.items() for leaf, v in layer.items()}, params

    avg, params = shapes((8, 8, 1), channels=[8, 16], kernels=[3, 3], strides=[1, 2], pool="avg")
    assert avg == {"conv_0.w": (3, 3, 1, 8), "conv_0.b": (8,), "conv_1.w": (3, 3, 8, 16), "conv_1.b": (16,),
                   "dense_0.w": (16, 10), "dense_0.b": (10,)}
    assert params["conv_0"]["w"].dtype == jnp.float32
    flat, _ = shapes((8, 8, 1), channels=[8, 16], kernels=[3, 3], strides=[1, 2], dense=[32])  # flatten: default
    assert flat["dense_0.w"] == (4 * 4 * 16, 32) and flat["dense_1.w"] == (32, 10)
    assert cnn.feature_shape((7, 9), [2, 3], [4, 5]) == (2, 2, 5)  # ceil(7/2)=4 -> 2; ceil(9/2)=5 -> 2
    out = jax.eval_shape(lambda p, x: cnn.apply(p, x, strides=[1, 2], pool="avg"), params, jnp.zeros((3, 8, 8, 1)))
    assert out.shape == (3, 10)


def test_dropout_only_in_training():
    params = _random_params(0, (8, 8), channels=[4], kernels=[3], strides=[1], dense=[32], out_dim=3)
    x = np.random.default_rng(1).normal(size=(5, 64))
    kw = dict(strides=[1], input_shape=(8, 8))

    @jax.jit
    def outputs(p):
        return (cnn.apply(p, x, **kw), cnn.apply(p, x, **kw, dropout=0.5),
                cnn.apply(p, x, **kw, dropout=0.5, train=True, key=jax.random.key(2)))

    plain, inference, train = outputs(params)
    np.testing.assert_array_equal(inference, plain)
    assert not np.allclose(train, plain)
    with pytest.raises(ValueError, match="dropout in training needs a PRNG key"):
        cnn.apply(params, x, **kw, dropout=0.5, train=True)


def test_bad_inputs_name_the_argument():
    params = jax.eval_shape(lambda: cnn.init(jax.random.key(0), (8, 8), channels=[4], kernels=[3], strides=[1],
                                             out_dim=3))
    with pytest.raises(ValueError, match=r"flat rows need input_shape"):
        cnn.apply(params, jnp.zeros((2, 64)), strides=[1])
    with pytest.raises(ValueError, match=r"x has 63 features per row but input_shape=\(8, 8, 1\) holds 64"):
        cnn.apply(params, jnp.zeros((2, 63)), strides=[1], input_shape=(8, 8))
    with pytest.raises(ValueError, match=r"pool='max' is not a valid choice; valid choices: avg, flatten"):
        cnn.apply(params, jnp.zeros((2, 8, 8, 1)), strides=[1], pool="max")
    with pytest.raises(ValueError, match=r"need one entry per conv layer"):
        cnn.init(jax.random.key(0), (8, 8), channels=[4, 8], kernels=[3], strides=[1], out_dim=3)


def test_functions_from_config_traced_init_scale_under_vmap():
    cfg = from_dict({"model": {"kind": "cnn", "channels": [64, 8], "kernels": [3, 3], "strides": [1, 2],
                               "image_shape": [8, 8, 1], "hidden": [], "init": "auto", "activation": "tanh"}})
    validate(cfg)
    init_fn, apply_fn = cnn.functions_from_config(cfg.model, 64, 10, jnp.float64)
    x = np.random.default_rng(1).normal(size=(4, 64))

    @jax.jit
    def measured(scales):
        batched = jax.vmap(lambda s: init_fn(jax.random.key(0), s))(scales)
        one = init_fn(jax.random.key(0), 2.0)
        # auto for tanh is glorot_uniform
        ref = cnn.init(jax.random.key(0), (8, 8, 1), channels=[64, 8], kernels=[3, 3], strides=[1, 2], out_dim=10,
                       init="glorot_uniform", dtype=jnp.float64)
        return batched, one, ref, jax.vmap(lambda p: apply_fn(p, x))(batched), apply_fn(one, x)

    batched, one, ref, out, out_one = measured(jnp.array([0.5, 1.0, 2.0]))
    np.testing.assert_allclose(batched["conv_1"]["w"][2], one["conv_1"]["w"], rtol=1e-12)
    np.testing.assert_allclose(one["conv_0"]["w"], 2.0 * ref["conv_0"]["w"], rtol=1e-12)
    # Glorot's std sqrt(2 / (fan_in + fan_out)), the fans counting the 3x3 receptive field.
    assert float(jnp.std(ref["conv_1"]["w"])) == pytest.approx(math.sqrt(2 / (9 * 64 + 9 * 8)), rel=0.05)
    assert out.shape == (3, 4, 10)
    np.testing.assert_allclose(out[2], out_one, rtol=1e-12)
    with pytest.raises(ConfigError, match=r"model.image_shape = \[8, 8, 1\] holds 64 values but the data have 30"):
        cnn.functions_from_config(cfg.model, 30, 2)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"kind": "rnn"}, r"model.kind = 'rnn' is not a valid choice"),
        ({"kind": "cnn"}, r"model.image_shape = \[\]: model.kind = 'cnn' needs \[height, width\]"),
        ({"kind": "cnn", "image_shape": [8, 8, 1], "kernels": [3]}, r"one entry per conv layer"),
        ({"kind": "cnn", "image_shape": [8, 8, 1], "strides": [1, 0]}, r"model.strides = 0 is out of range"),
        ({"kind": "cnn", "image_shape": [8, 8, 1], "pool": "max"}, r"model.pool = 'max' is not a valid choice"),
        ({"kind": "cnn", "image_shape": [8, 8, 1], "norm": "batch"}, r"model.norm = 'batch': model.kind = 'cnn'"),
        ({"kind": "cnn", "image_shape": [8, 0]}, r"model.image_shape = 0 is out of range"),
    ],
)
def test_config_checks(model, message):
    with pytest.raises(ConfigError, match=message):
        validate(from_dict({"model": model}))


def test_mlp_default_is_unchanged():
    assert ModelConfig().kind == "mlp"
    validate(from_dict({"model": {"hidden": [8]}}))


def test_cnn_config_round_trips_through_the_sweep_mapping():
    # Sweeps rebuild configs from `to_dict` (overrides, summary.json's best config): tuples must come back.
    from jaxopt_lab.config import apply_overrides, to_dict

    cfg = from_dict({"model": {"kind": "cnn", "image_shape": [8, 8, 1], "channels": [4]}})
    assert from_dict(to_dict(cfg)) == cfg
    assert apply_overrides(cfg, {"model.strides": [2]}).model.strides == (2,)


def test_from_config_is_an_engine_model():
    models = pytest.importorskip("jaxopt_lab.models", reason="the engine's model protocol (jaxopt_lab.models)")
    cfg = from_dict({"model": {"kind": "cnn", "channels": [2], "kernels": [3], "strides": [2], "image_shape": [4, 4],
                               "hidden": []}})
    model = cnn.from_config(cfg.model, 16, 3, jnp.float64)
    assert isinstance(model, models.Model) and model.name == "cnn"
    hp = {"model.init_scale": 0.5}
    params, state = jax.eval_shape(lambda k: model.init(k, hp), jax.random.key(0))
    assert state == {} and params["conv_0"]["w"].shape == (3, 3, 1, 2) and params["dense_0"]["w"].shape == (8, 3)
    assert model.decay_mask(params) == {"conv_0": {"w": True, "b": False}, "dense_0": {"w": True, "b": False}}
    out, new_state = jax.eval_shape(
        lambda p, x: model.apply(p, {}, x, train=False, key=None, hp=hp), params, jnp.zeros((5, 16))
    )
    assert out.shape == (5, 3) and new_state == {}
