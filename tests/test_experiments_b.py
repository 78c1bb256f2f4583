"""Experiments 3, 6, 7, 8 and 10 at tiny size, and the machinery they share.

Each experiment runs once per module (fixtures) into a temporary folder; the
tests check the files, that the text quotes the numbers in the tables, and at
least one scientific property per experiment. Independent references: optax's
own optimizers for the training loop, `mlp.init`/`mlp.apply` for the
initialization experiment's shortcuts, a plain Python loop for the split
experiment's masked fits.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import diagnostics, losses
from jaxopt_lab.cli import main
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.data import generators
from jaxopt_lab.experiments import (
    init_comparison,
    normalization_comparison,
    optimizer_comparison,
    regularization_comparison,
    run_once,
    split_comparison,
)
from jaxopt_lab.nn import mlp
from jaxopt_lab.optim import aliases
from jaxopt_lab.train import make_train
from jaxopt_lab.train.switch import optimizer_switch, switch, switch_config

PNG = b"\x89PNG\r\n\x1a\n"


def _check_files(section, out: Path) -> None:
    assert section.figures
    for fig in section.figures:
        fig = Path(fig)
        assert fig.parent == out
        assert fig.read_bytes()[:8] == PNG
        assert fig.stat().st_size > 5_000  # a drawn figure, not an empty canvas
    assert section.tables and all(rows for _, rows in section.tables)
    assert section.text.strip()


def _rows(section, i: int = 0) -> list[dict]:
    return section.tables[i][1]


@pytest.fixture(scope="module")
def optimizers_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizers")
    return out, optimizer_comparison.run(out, size="tiny")


@pytest.fixture(scope="module")
def regularization_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("regularization")
    return out, regularization_comparison.run(out, size="tiny")


@pytest.fixture(scope="module")
def initialization_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("initialization")
    return out, init_comparison.run(out, size="tiny")


@pytest.fixture(scope="module")
def normalization_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("normalization")
    return out, normalization_comparison.run(out, size="tiny")


@pytest.fixture(scope="module")
def splits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("splits")
    return out, split_comparison.run(out, size="tiny")


# ----------------------------------------------------------------------------- the shared loop


def _moons_config(epochs: int, batch_size: int = 0, name: str = "sgd") -> Config:
    return Config(
        data=DataConfig(dataset="moons", n_samples=40, noise=0.2, random_state=0, val_fraction=0.25),
        model=ModelConfig(hidden=(6,)),
        train=TrainConfig(epochs=epochs, batch_size=batch_size),
        optimizer=OptimizerConfig(name=name, kwargs={"learning_rate": 0.1}),
    )


def test_optimizer_switch_follows_optax():
    """Full-batch training through the engine with `optimizer_switch` equals a plain loop with optax's Adam."""
    makers = [lambda hp: aliases.sgd(hp["learning_rate"]), lambda hp: aliases.adam(hp["learning_rate"]),
              lambda hp: aliases.rmsprop(hp["learning_rate"])]
    trainer = make_train(_moons_config(25), optimizer_fn=optimizer_switch(makers))
    key = jax.random.PRNGKey(1)

    def train(index):
        r = trainer(key, {"optimizer.learning_rate": 0.01, "optimizer.branch": index})
        return r.params, r.history

    params, hist = run_once(lambda idx: jax.lax.map(train, idx), jnp.arange(3))

    x, y = trainer.data_arrays["x_train"], trainer.data_arrays["y_train"]

    def loss(p):
        return losses.softmax_cross_entropy(mlp.apply(p, x)[0], y)

    ref_opt = optax.adam(0.01)

    @jax.jit
    def ref_step(p, state):
        value, g = jax.value_and_grad(loss)(p)
        u, state = ref_opt.update(g, state, p)
        return optax.apply_updates(p, u), state, value

    p = trainer.init_state(key).params
    state = ref_opt.init(p)
    ref_losses = []
    for _ in range(25):
        p, state, value = ref_step(p, state)
        ref_losses.append(value)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[1], params), p, rtol=1e-4, atol=1e-5)
    # Full batch: the epoch's training loss is the loss before its update.
    np.testing.assert_allclose(hist["train_loss"][1], np.asarray(ref_losses), rtol=1e-4)
    # The other branches really are other optimizers.
    assert not np.allclose(hist["train_loss"][0], hist["train_loss"][1])
    assert not np.allclose(hist["train_loss"][2], hist["train_loss"][1])


def test_switch_runs_each_trainer_as_alone():
    """`switch` over trainers of other optimizers and batch sizes: branch i under `lax.map` gives
    what trainer i gives on its own."""
    configs = [_moons_config(6, 0, "sgd"), _moons_config(6, 8, "adam"), _moons_config(6, 1, "rmsprop")]
    switched = switch_config(configs[0], "optimizer.name", ["sgd", "adam", "rmsprop"],
                             result_fn=lambda r: r.metrics)
    assert switched.labels == ("sgd", "adam", "rmsprop")
    switched = switch([make_train(c) for c in configs], ["gd", "adam 8", "rmsprop 1"],
                      result_fn=lambda r: r.metrics)
    key = jax.random.PRNGKey(3)
    got = run_once(lambda idx, data: jax.lax.map(lambda i: switched(i, key, None, data), idx), jnp.arange(3),
                   switched.data_arrays)
    for i, c in enumerate(configs):
        alone = jax.device_get(jax.jit(make_train(c))(key).metrics)
        np.testing.assert_allclose(got["final_val_loss"][i], alone["final_val_loss"], rtol=1e-5)
        np.testing.assert_allclose(got["final_train_loss"][i], alone["final_train_loss"], rtol=1e-5)
    assert len(set(np.round(got["final_train_loss"], 5))) == 3
    # init_params: a run from the model's own initial weights is the run itself; from others, another run.
    trainer = switched.trainers[1]
    p0 = trainer.init_state(key).params
    same, other = run_once(lambda p, data: (switched(1, key, None, data, init_params=p),
                                            switched(1, key, None, data, init_params=jax.tree.map(lambda a: 2 * a, p))),
                           p0, switched.data_arrays)
    np.testing.assert_allclose(same["final_train_loss"], got["final_train_loss"][1], rtol=1e-5)
    assert not np.isclose(other["final_train_loss"], got["final_train_loss"][1], rtol=1e-3)


# ----------------------------------------------------------------------------- 3. optimizers


def test_optimizers_files_and_numbers(optimizers_run):
    out, section = optimizers_run
    _check_files(section, out)
    rows = _rows(section)
    assert [r["optimizer"] for r in rows] == [m.label for m in optimizer_comparison.METHODS]
    adam = next(r for r in rows if r["optimizer"] == "Adam")
    assert f"{adam['final train loss (median)']:.4f}" in section.text
    assert f"{adam['final val accuracy (median)']:.3f}" in section.text


def test_optimizers_science(optimizers_run):
    _, section = optimizers_run
    loss = {r["optimizer"]: r["final train loss (median)"] for r in _rows(section)}
    # The initialization-and-quartic lecture: per pass over the data, one full-batch step per epoch is slow;
    # one step per example (SGD) and every mini-batch method have gone further after the same epochs.
    assert loss["SGD (batch 1)"] < loss["GD (full batch)"]
    assert loss["Adam"] < loss["GD (full batch)"]
    # Every method trained: below the loss of an untrained classifier (ln 2).
    assert all(v < np.log(2) for v in loss.values())


def _printed_configs(section) -> list[str]:
    return re.findall(r"```toml\n(.*?)\n```", section.text, flags=re.S)


def test_optimizers_numbers_reproduce_with_jaxopt_lab_train(optimizers_run, tmp_path, capsys):
    """The config the report prints, run by `jaxopt-lab train --seed S` for every seed, gives the
    table's median final training loss and validation accuracy of Adam."""
    _, section = optimizers_run
    (toml,) = _printed_configs(section)
    path = tmp_path / "adam.toml"
    path.write_text(toml + "\n")
    adam = next(r for r in _rows(section) if r["optimizer"] == "Adam")
    assert f"learning_rate = {adam['learning rate (best of grid)']!r}" in toml
    metrics = []
    for seed in range(optimizer_comparison.SIZES["tiny"]["seeds"]):
        assert main(["train", str(path), "--seed", str(seed), "--out", str(tmp_path / f"run{seed}")]) == 0
        metrics.append(json.loads((tmp_path / f"run{seed}" / "metrics.json").read_text()))
    capsys.readouterr()
    np.testing.assert_allclose(np.median([m["final_train_loss"] for m in metrics]),
                               adam["final train loss (median)"], rtol=1e-4)
    np.testing.assert_allclose(np.median([m["final_val_accuracy"] for m in metrics]),
                               adam["final val accuracy (median)"], rtol=1e-6)


# ----------------------------------------------------------------------------- 6. regularization


def test_regularization_files_and_numbers(regularization_run):
    out, section = regularization_run
    _check_files(section, out)
    base = _rows(section)[0]
    assert base["method"] == "none"
    assert f"{base['final val loss']:.3f}" in section.text


def test_regularization_science(regularization_run):
    _, section = regularization_run
    rows = {r["method"]: r for r in _rows(section)}
    early = next(r for name, r in rows.items() if name.startswith("early stopping"))
    size = regularization_comparison.SIZES["tiny"]
    # The unregularized net overfits: training loss far below validation loss, which rose after its best.
    assert rows["none"]["final train loss"] < 0.1 < rows["none"]["gap (val - train)"]
    assert rows["none"]["final val loss"] > rows["none"]["best val loss (any epoch)"]
    # Early stopping stops early and keeps the best weights: a smaller gap.
    assert early["epochs run"] < size["epochs"]
    assert early["gap (val - train)"] < rows["none"]["gap (val - train)"]
    sweep = _rows(section, 1)
    l2 = [r for r in sweep if r["method"].startswith("L2")]
    aw = [r for r in sweep if r["method"].startswith("decoupled")]
    # Both shrink the weights as lam grows; AdamW keeps shrinking them where L2 + Adam has saturated.
    assert l2[-1]["weight norm"] < l2[0]["weight norm"]
    assert aw[-1]["weight norm"] < aw[0]["weight norm"]
    assert aw[-2]["weight norm"] / aw[-1]["weight norm"] > 1.5 * l2[-2]["weight norm"] / l2[-1]["weight norm"]


# ----------------------------------------------------------------------------- 7. initialization


@pytest.mark.parametrize("name", ["glorot_normal", "he_normal", "lecun_normal", "zeros", "constant:0.1"])
def test_initialization_rescaling_matches_mlp_init(name):
    sizes = [2, 16, 16, 16, 2]
    key = jax.random.PRNGKey(3)
    factors, const = init_comparison.init_factors(name, sizes)
    got = init_comparison.rescale(mlp.init(key, sizes, init="lecun_normal"), factors, const)
    chex.assert_trees_all_close(got, mlp.init(key, sizes, init=name), rtol=1e-5, atol=1e-7)


def test_initialization_files_and_numbers(initialization_run):
    out, section = initialization_run
    _check_files(section, out)
    clip_rows = _rows(section, 2)
    assert f"{clip_rows[0]['gradient norm at init (global)']:.3g}" in section.text


def test_initialization_grad_norms_match_mlp_apply(initialization_run):
    """The experiment's switched forward pass gives the gradients `mlp.apply` gives."""
    _, section = initialization_run
    s = init_comparison.SIZES["tiny"]
    x, y = init_comparison._data(s["n"])
    sizes = [2, *([s["width"]] * s["depth"]), 2]
    # Seed 0's weights, drawn with the engine's initialization key of `jaxopt-lab train --seed 0`.
    params = mlp.init(jax.random.fold_in(jax.random.PRNGKey(0), 0), sizes, init="he_normal")
    grads = jax.jit(jax.grad(lambda p: losses.softmax_cross_entropy(
        mlp.apply(p, jnp.asarray(x, jnp.float32), activation="relu")[0], jnp.asarray(y))))(params)
    norms = diagnostics.layer_grad_norms(grads)
    row = next(r for r in _rows(section) if r["activation"] == "relu" and r["init"].startswith("he"))
    np.testing.assert_allclose(row["grad norm, first layer"], float(norms["dense_0"]), rtol=1e-4)
    np.testing.assert_allclose(row["grad norm, last layer"], float(norms[f"dense_{len(sizes) - 2}"]), rtol=1e-4)


def test_initialization_science(initialization_run):
    _, section = initialization_run
    grid = _rows(section)
    # The initialization-and-quartic lecture's vanishing gradient: deep sigmoid nets, whatever the initializer.
    assert all(r["verdict at init"] == "vanishing" for r in grid if r["activation"] == "sigmoid")
    assert all(r["verdict at init"] == "healthy" for r in grid if r["activation"] == "tanh")
    # Symmetry: equal starting weights stay exactly equal; random ones differ.
    zeros, const, glorot = _rows(section, 1)
    assert zeros["max unit difference after training"] == 0.0
    assert const["max unit difference after training"] == 0.0
    assert glorot["max unit difference after training"] > 0.1
    # Exploding gradients: without clipping every run diverges, with clipping none does.
    no_clip, clipped = _rows(section, 2)
    assert no_clip["diverged runs"] == no_clip["runs"]
    assert clipped["diverged runs"] == 0
    assert clipped["final train loss (median of finite)"] < clipped["train loss after epoch 1 (median of finite)"]


# ----------------------------------------------------------------------------- 8. normalization


def test_normalization_files_and_numbers(normalization_run):
    out, section = normalization_run
    _check_files(section, out)
    rows = _rows(section)
    assert len(rows) == len(normalization_comparison.NORMS) * len(normalization_comparison.SIZES["tiny"]["batch_sizes"])
    for r in rows:
        assert 0.0 <= r["final val accuracy (median)"] <= 1.0
        assert f"{r['final val accuracy (median)']:.3f}" in section.text


def test_normalization_science(normalization_run):
    _, section = normalization_run
    acc = {(r["normalization"], r["batch size"]): r["final val accuracy (median)"] for r in _rows(section)}
    batch_sizes = normalization_comparison.SIZES["tiny"]["batch_sizes"]
    small, large = min(batch_sizes), max(batch_sizes)
    # Batch norm against layer norm is worse at a small batch than at a large one (the hyperparameter lecture).
    assert acc[("batch", small)] - acc[("layer", small)] < acc[("batch", large)] - acc[("layer", large)]
    assert acc[("batch", small)] < acc[("layer", small)]


# ----------------------------------------------------------------------------- 10. splits


def test_splits_schemes_partition_rows():
    n = 23
    schemes = split_comparison._schemes(n, np.zeros(n), single=3, repeats=2)
    for name, estimates in schemes.items():
        for folds in estimates:
            val = np.concatenate([v for _, v in folds])
            for tr, v in folds:
                assert not set(tr) & set(v)
                assert len(tr) + len(v) == n
            if name != next(iter(schemes)):  # k-fold and leave-one-out validate every row once
                np.testing.assert_array_equal(np.sort(val), np.arange(n))
    assert len(schemes["leave-one-out"][0]) == n


def test_splits_masked_fit_equals_training_on_the_subset():
    """A fit on a row mask of all n rows is a fit on those rows alone (independent loop with optax)."""
    x, y = generators.make_moons(n_samples=20, noise=0.3, random_state=2)
    mask = np.zeros((1, 20), bool)
    rows = np.arange(0, 20, 3)
    mask[0, rows] = True
    params, _, _ = split_comparison._fit_all(x, y, mask, 30, x[:5], y[:5])
    xs, ys = jnp.asarray(x[rows], jnp.float32), jnp.asarray(y[rows], jnp.int32)
    p = split_comparison.trainer(x, y, 30).init_state(jax.random.PRNGKey(split_comparison.SEED)).params
    opt = optax.adam(split_comparison.LEARNING_RATE)

    @jax.jit
    def step(p, state):
        g = jax.grad(lambda q: losses.softmax_cross_entropy(mlp.apply(q, xs)[0], ys))(p)
        u, state = opt.update(g, state, p)
        return optax.apply_updates(p, u), state

    state = opt.init(p)
    for _ in range(30):
        p, state = step(p, state)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[0], params), p, rtol=1e-4, atol=1e-5)


def test_splits_files_and_science(splits_run):
    out, section = splits_run
    _check_files(section, out)
    rows = {r["scheme"].split(" (")[0]: r for r in _rows(section)}
    n = split_comparison.SIZES["tiny"]["n"]
    loo = rows["leave-one-out"]
    assert loo["estimates"] == 1 and loo["fits per estimate"] == n and loo["std over repeats"] == 0.0
    assert rows["5-fold"]["fits per estimate"] == 5 and rows["10-fold"]["fits per estimate"] == 10
    # One split's estimate depends on the split far more than a 10-fold average does.
    assert rows["single split"]["std over repeats"] > rows["10-fold"]["std over repeats"]
    assert f"{rows['single split']['std over repeats']:.3f}" in section.text
    assert f"{loo['mean estimate']:.3f}" in section.text
