"""The model protocol and its adapters, trained through the engine against the real libraries.

Each adapter is checked three ways: a run inside a vectorized sweep equals the same
model trained alone (float64, 1e-9), the model state (batch statistics) evolves in
training and is what inference uses, and the adapter's forward pass equals the
library's own call.
"""

import math
import re

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxopt_lab import models, sweep
from jaxopt_lab.config import Config, DataConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.train import make_train


def _images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 1))
    y = (x[:, :3].sum(axis=(1, 2, 3)) > x[:, 3:].sum(axis=(1, 2, 3))).astype(np.int32)
    return x.reshape(n, -1), y


def _config(epochs=4, batch_size=16, **train):
    return Config(
        data=DataConfig(val_fraction=0.25, test_fraction=0.0, standardize=False),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, precision="float64", **train),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    )


class LinenCNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = x.reshape(x.shape[0], 6, 6, 1)
        x = nn.Conv(4, (3, 3), strides=(2, 2))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        return nn.Dense(2)(x)


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(36, 8, rngs=rngs, param_dtype=jnp.float64)
        self.bn = nnx.BatchNorm(8, momentum=0.8, rngs=rngs, param_dtype=jnp.float64)
        self.l2 = nnx.Linear(8, 2, rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x):
        return self.l2(nnx.relu(self.bn(self.l1(x))))


def _eqx_mlp(key):
    return eqx.nn.MLP(36, 2, 8, 2, key=key, dtype=jnp.float64)


class EqxNet(eqx.Module):
    l1: eqx.nn.Linear
    bn: eqx.nn.BatchNorm
    l2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(36, 8, key=k1, dtype=jnp.float64)
        self.bn = eqx.nn.BatchNorm(8, axis_name="batch", momentum=0.8, mode="ema", dtype=jnp.float64)
        self.l2 = eqx.nn.Linear(8, 2, key=k2, dtype=jnp.float64)

    def __call__(self, x, state, key=None):
        h, state = self.bn(self.l1(x), state)
        return self.l2(jax.nn.relu(h)), state


def _eqx_bn(key):
    return eqx.nn.make_with_state(EqxNet)(key)


def _model(kind):
    x, _ = _images()
    if kind == "linen":
        return models.from_flax(LinenCNN(), jnp.asarray(x[:2]))
    if kind == "nnx":
        return models.from_nnx(NnxMLP)
    if kind == "equinox":
        return models.from_equinox(_eqx_mlp)
    return models.from_equinox(_eqx_bn)


KINDS = ["linen", "nnx", "equinox", "equinox_state"]


@pytest.mark.parametrize("kind", KINDS)
def test_sweep_run_equals_each_run_alone(kind):
    trainer = make_train(_config(), model=_model(kind), data=_images())
    space = sweep.grid({"optimizer.learning_rate": [0.02, 0.1]}) * sweep.seeds(2)
    result = sweep.run(trainer, space, execution="vmap")
    losses = np.asarray(result.outputs.metrics["final_val_loss"])
    run_alone = jax.jit(trainer)
    for i, p in enumerate(result.points):
        alone = run_alone(jax.random.PRNGKey(p["seed"]), {"optimizer.learning_rate": p["optimizer.learning_rate"]})
        np.testing.assert_allclose(losses[i], float(alone.metrics["final_val_loss"]), rtol=1e-9)
    assert np.all(np.isfinite(losses))
    assert losses[0] != losses[1]  # seeds give different initial weights


@pytest.mark.parametrize("kind", ["linen", "nnx", "equinox_state"])
def test_batch_statistics_evolve_and_are_used_in_inference(kind):
    trainer = make_train(_config(epochs=3), model=_model(kind), data=_images())
    key = jax.random.PRNGKey(0)
    state0 = trainer.init_state(key, {})
    result = jax.jit(trainer)(key, {})
    stats0 = [np.asarray(a) for a in jax.tree.leaves(state0.model_state) if jnp.issubdtype(a.dtype, jnp.floating)]
    stats1 = [np.asarray(a) for a in jax.tree.leaves(result.model_state) if jnp.issubdtype(a.dtype, jnp.floating)]
    assert stats0 and any(not np.allclose(a, b) for a, b in zip(stats0, stats1, strict=True))
    # Inference reads the running statistics: the final loss equals the model applied with them
    # by hand, and differs from the model applied with the initial ones.
    xv, yv = trainer.data_arrays["x_val"], trainer.data_arrays["y_val"]

    def val_loss(model_state):
        out, _ = trainer.model.apply(result.params, model_state, xv, train=False, key=None, hp={})
        return float(trainer.loss_fn(out, yv, None))

    assert val_loss(result.model_state) == pytest.approx(float(result.metrics["final_val_loss"]), rel=1e-12)
    assert val_loss(state0.model_state) != pytest.approx(val_loss(result.model_state), rel=1e-6)


def test_adapters_compute_what_the_library_computes():
    x, _ = _images()
    xb = jnp.asarray(x[:5])
    key = jax.random.PRNGKey(3)
    # Flax linen: the adapter's inference output is module.apply with the same variables.
    m = models.from_flax(LinenCNN(), xb)
    params, state = m.init(key, {})
    out, _ = m.apply(params, state, xb, train=False, key=None, hp={})
    ref = LinenCNN().apply({"params": params, **state}, xb, train=False)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    # NNX: the adapter's output is the merged module's own call in eval mode.
    m = models.from_nnx(NnxMLP)
    params, state = m.init(key, {})
    out, _ = m.apply(params, state, xb, train=False, key=None, hp={})
    module = NnxMLP(nnx.Rngs(key))
    module.eval()
    np.testing.assert_allclose(out, module(xb), rtol=1e-12)
    # Equinox: the adapter's output is the module vmapped over the batch.
    m = models.from_equinox(_eqx_mlp)
    params, state = m.init(key, {})
    out, _ = m.apply(params, state, xb, train=False, key=None, hp={})
    np.testing.assert_allclose(out, jax.vmap(_eqx_mlp(key))(xb), rtol=1e-12)


def test_weight_decay_applies_to_matrices_only():
    m = models.from_equinox(_eqx_mlp)
    params, _ = m.init(jax.random.PRNGKey(0), {})
    mask = m.decay_mask(params)
    flags = [(np.ndim(p), f) for p, f in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True)]
    assert all(f == (nd >= 2) for nd, f in flags) and any(f for _, f in flags)


def test_plain_functions_with_state():
    def init(key):
        return {"w": jax.random.normal(key, (36, 2), jnp.float64)}, {"calls": jnp.zeros((), jnp.float64)}

    def apply(params, state, x, train=False):
        return x @ params["w"], {"calls": state["calls"] + (1.0 if train else 0.0)}

    trainer = make_train(_config(epochs=2), model=models.from_functions(init, apply, stateful=True), data=_images())
    result = jax.jit(trainer)(jax.random.PRNGKey(0), {})
    # 72 training rows in batches of 16: 5 updates an epoch, 2 epochs.
    assert float(result.model_state["calls"]) == 10.0


def test_data_enters_the_program_as_an_argument():
    trainer = make_train(_config(), model=_model("equinox"), data=_images())
    key = jax.random.PRNGKey(0)
    lowered = jax.jit(trainer).lower(key, {}, trainer.data_arrays)
    # No constant of the training set's size is baked into the program.
    text = lowered.as_text()
    n_train = trainer.data_arrays["x_train"].size
    assert f"tensor<{trainer.data_arrays['x_train'].shape[0]}x36xf64>" in text  # it is a parameter
    sizes = [math.prod(int(d) for d in shape.split("x") if d) for shape in
             re.findall(r"constant dense<[^>]*> : tensor<((?:\d+x)*)", text)]
    assert max(sizes, default=0) < n_train // 4
    # Same program, other data of the same shapes: the result follows the data.
    other = jax.tree.map(lambda a: a[::-1] if a.ndim else a, trainer.data_arrays)
    compiled = lowered.compile()
    a = compiled(key, {}, trainer.data_arrays).metrics["final_val_loss"]
    b = compiled(key, {}, other).metrics["final_val_loss"]
    assert float(a) != float(b)
    np.testing.assert_allclose(float(a), float(jax.jit(trainer)(key, {}).metrics["final_val_loss"]), rtol=1e-12)
