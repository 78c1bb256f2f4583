"""Config sweeps: the promises of docs/design.md, grouping, key checks."""

import jax
import numpy as np
import pytest

from jaxopt_lab.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.sweep import config_sweep
from jaxopt_lab.train import make_train

BASE = Config(
    data=DataConfig(dataset="moons", n_samples=80, noise=0.2, random_state=1, val_fraction=0.25),
    model=ModelConfig(hidden=(6,)),
    train=TrainConfig(epochs=15, precision="float64"),
    optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.5}),
)


def _sweep(grid, seeds=2, **extra):
    return BASE.replace(sweep={"seeds": seeds, "grid": grid, **extra})


def test_run_i_equals_its_config_alone():
    cfg = _sweep({"optimizer": {"learning_rate": [0.05, 0.5], "momentum": [0.0, 0.9]}})
    res = config_sweep.run_sweep(cfg, progress=False)
    assert len(res.rows) == 8
    for i in (0, 3, 6):
        row = res.rows[i]
        alone_cfg = config_sweep.apply_overrides(
            BASE, {"optimizer.learning_rate": row["optimizer.learning_rate"],
                   "optimizer.momentum": row["optimizer.momentum"]}
        )
        m = jax.jit(make_train(alone_cfg))(jax.random.PRNGKey(row["seed"])).metrics
        for k in ("final_train_loss", "final_val_accuracy", "best_val_loss", "best_epoch"):
            assert row[k] == pytest.approx(float(m[k]), rel=1e-12, abs=0), k


def test_diverging_run_changes_nothing_else():
    calm = config_sweep.run_sweep(_sweep({"optimizer": {"learning_rate": [0.1]}}), progress=False)
    mixed = config_sweep.run_sweep(_sweep({"optimizer": {"learning_rate": [0.1, 1e30]}}), progress=False)
    assert [r["diverged"] for r in mixed.rows] == [False, False, True, True]
    for a, b in zip(calm.rows, mixed.rows[:2], strict=True):
        for k in config_sweep.METRIC_COLUMNS:
            assert a[k] == b[k], k
    assert all(np.isfinite(r["final_train_loss"]) for r in mixed.rows)


def test_same_config_same_results():
    cfg = _sweep({"optimizer": {"learning_rate": [0.1, 0.3]}})
    a = config_sweep.run_sweep(cfg, progress=False).rows
    b = config_sweep.run_sweep(cfg, progress=False).rows
    assert a == b


def test_categorical_keys_make_groups_and_numeric_ones_do_not():
    cfg = _sweep(
        {"optimizer": {"name": ["sgd", "adam"], "learning_rate": [0.01, 0.1]},
         "model": {"activation": ["relu", "tanh"]}},
        seeds=1,
    )
    plan = config_sweep.plan(cfg)
    assert len(plan.points) == 8 and len(plan.groups) == 4
    assert {tuple(sorted(g.label)) for g in plan.groups} == {("model.activation", "optimizer.name")}
    for g in plan.groups:
        assert "optimizer.learning_rate" in g.hparams
    # momentum is sgd's, adam does not take it: the group that cannot use it is named
    bad = _sweep({"optimizer": {"name": ["sgd", "adam"], "momentum": [0.0, 0.9]}}, seeds=1)
    with pytest.raises(ConfigError, match="momentum.*adam"):
        config_sweep.plan(bad)


def test_bad_sweep_keys_are_named_before_compiling():
    with pytest.raises(ConfigError, match="'model.dropot'.*did you mean 'model.dropout'"):
        config_sweep.plan(_sweep({"model": {"dropot": [0.1]}}))
    with pytest.raises(ConfigError, match="at least one value"):
        config_sweep.plan(_sweep({"optimizer": {"learning_rate": []}}))
    with pytest.raises(ConfigError, match="model.activation = 'rel'"):
        config_sweep.plan(_sweep({"model": {"activation": ["relu", "rel"]}}))
    with pytest.raises(ConfigError, match="loguniform"):
        config_sweep.plan(BASE.replace(sweep={"random": {
            "trials": 3, "seed": 0, "optimizer": {"learning_rate": {"loguniform": [0.0, 1.0]}}}}))


def test_structural_numeric_keys_are_grouped():
    cfg = _sweep({"train": {"epochs": [3, 5]}, "optimizer": {"learning_rate": [0.1, 0.2]}}, seeds=1)
    res = config_sweep.run_sweep(cfg, progress=False)
    assert len(res.plan.groups) == 2
    assert [r["epochs_run"] for r in res.rows] == [3, 3, 5, 5]


def test_random_search_section():
    cfg = BASE.replace(sweep={"seeds": 1, "random": {
        "trials": 5, "seed": 3, "optimizer": {"learning_rate": {"loguniform": [1e-3, 1.0]},
                                              "momentum": {"uniform": [0.0, 0.9]}}}})
    res = config_sweep.run_sweep(cfg, progress=False)
    lrs = [r["optimizer.learning_rate"] for r in res.rows]
    assert len(set(lrs)) == 5 and all(1e-3 <= v <= 1.0 for v in lrs)


def test_epochs_to_target_and_aggregate_table(tmp_path):
    import csv
    import math

    cfg = _sweep({"optimizer": {"learning_rate": [0.05, 0.5]}}, target_metric="val_accuracy", target_value=0.8)
    res = config_sweep.run_sweep(cfg, progress=False)
    for row, h in zip(res.rows, res.histories["val_accuracy"], strict=True):
        hit = np.nonzero(h >= 0.8)[0]
        assert row["epochs_to_target"] == (hit[0] + 1 if len(hit) else math.inf)
    config_sweep.write_results(tmp_path / "out", res, report=False)
    with open(tmp_path / "out" / "aggregate.csv") as f:
        agg = list(csv.DictReader(f))
    assert len(agg) == 2 and agg[0]["n"] == "2"
    mean = np.mean([r["final_val_loss"] for r in res.rows[:2]])
    assert float(agg[0]["final_val_loss_mean"]) == pytest.approx(mean, rel=1e-12)
    with pytest.raises(ConfigError, match="sweep.target_metric"):
        config_sweep.plan(_sweep({"optimizer": {"learning_rate": [0.1]}}, target_metric="val_acc", target_value=0.8))


def test_second_config_sweep_with_new_values_does_not_recompile():
    first = config_sweep.run_sweep(_sweep({"optimizer": {"learning_rate": [0.011, 0.012]}}), progress=False)
    changed = BASE.replace(
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.2, "momentum": 0.3}),
        sweep={"seeds": 2, "grid": {"optimizer": {"learning_rate": [0.021, 0.022]}}},
    )
    second = config_sweep.run_sweep(changed, progress=False)
    assert second.stats.compilations == 0
    assert first.rows[0]["final_train_loss"] != second.rows[0]["final_train_loss"]


def test_shuffle_seed_gives_every_run_the_same_batches():
    """Common random numbers: with train.shuffle_seed the mini-batch order no longer depends on the
    run's seed, so runs that differ only in seed, with the same initial weights, are identical."""
    def final_losses(shuffle_seed):
        cfg = BASE.replace(train=TrainConfig(epochs=4, batch_size=10, precision="float64", shuffle_seed=shuffle_seed))
        train = make_train(cfg, init_fn=lambda key: {"w": jax.numpy.full((2, 2), 0.1), "b": jax.numpy.zeros(2)},
                           apply_fn=lambda p, x: x @ p["w"] + p["b"])
        run = jax.jit(train)
        return [float(run(jax.random.PRNGKey(s)).metrics["final_train_loss"]) for s in (0, 1)]

    shared, own = final_losses(123), final_losses(None)
    assert shared[0] == shared[1]
    assert own[0] != own[1]


def test_the_guides_sweep_example_plans(tmp_path):
    """docs/guide.md's `[sweep]` example is a config the code accepts (it once mixed grid and random keys)."""
    from pathlib import Path

    from jaxopt_lab import config as config_mod

    guide = (Path(__file__).parent.parent / "docs" / "guide.md").read_text()
    block = guide[guide.index("### `[sweep]`"):]
    block = block[block.index("```toml") + len("```toml"):]
    block = block[:block.index("```")]
    path = tmp_path / "guide.toml"
    path.write_text('[data]\ndataset = "moons"\n' + block)
    sweep_plan = config_sweep.plan(config_mod.load(path))
    assert len(sweep_plan.points) == 2 * 64 * 32
    assert [g.label for g in sweep_plan.groups] == [{"optimizer.name": "sgd"}, {"optimizer.name": "adam"}]
