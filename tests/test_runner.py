"""The sweep runner: per-run equality, grouping, chunking, no recompilation, resume."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import sweep
from jaxopt_lab.sweep import runner


def quadratic_train(key, hp):
    """A small but real training run: SGD with momentum on a random least-squares problem."""
    a = jax.random.normal(key, (6, 3))
    b = jnp.ones(6)
    w = jnp.zeros(3)
    v = jnp.zeros(3)

    def step(carry, _):
        w, v = carry
        g = a.T @ (a @ w - b) / 6
        v = hp["momentum"] * v + g
        w = w - hp["lr"] * v
        return (w, v), jnp.sum((a @ w - b) ** 2)

    (w, v), losses = jax.lax.scan(step, (w, v), None, length=20)
    return {"metrics": {"final_loss": losses[-1]}, "curve": losses}


SPACE = sweep.grid({"lr": [0.01, 0.05, 0.1], "momentum": [0.0, 0.9]}) * sweep.seeds(3)


def test_each_run_equals_its_config_alone():
    res = sweep.run(quadratic_train, SPACE, progress=False)
    assert res.outputs["curve"].shape == (18, 20)
    alone = jax.jit(quadratic_train)
    for i, p in enumerate(SPACE.points()):
        out = alone(jax.random.PRNGKey(p["seed"]), {"lr": p["lr"], "momentum": p["momentum"]})
        np.testing.assert_array_equal(res.outputs["curve"][i], out["curve"])
    rows = res.table()
    assert [r["run"] for r in rows] == list(range(18))
    assert rows[5]["lr"] == SPACE.points()[5]["lr"] and "final_loss" in rows[5]


@pytest.mark.parametrize("execution", ["map", "vmap"])
def test_chunking_and_execution_modes_agree(execution):
    whole = sweep.run(quadratic_train, SPACE, progress=False, execution="map")
    chunked = sweep.run(quadratic_train, SPACE, progress=False, chunk_size=4, execution=execution)
    assert chunked.stats.chunks == 5
    np.testing.assert_allclose(chunked.outputs["curve"], whole.outputs["curve"], rtol=1e-12)


def test_second_sweep_with_new_values_does_not_recompile():
    space_a = sweep.grid({"lr": [0.01, 0.02], "momentum": [0.5, 0.6]})
    space_b = sweep.grid({"lr": [0.03, 0.04], "momentum": [0.7, 0.8]})
    sweep.clear_caches()  # earlier tests may have compiled this program already
    first = sweep.run(quadratic_train, space_a, progress=False)
    second = sweep.run(quadratic_train, space_b, progress=False)
    assert (first.stats.compilations, second.stats.compilations) == (1, 0)
    assert not np.array_equal(first.outputs["curve"], second.outputs["curve"])


def test_categorical_values_split_groups_and_arrive_as_python_values():
    seen = []

    def train(key, hp):
        seen.append(hp["kind"])
        scale = {"double": 2.0, "triple": 3.0}[hp["kind"]]
        return {"y": scale * hp["x"] + jax.random.uniform(key)}

    space = sweep.grid({"kind": ["double", "triple"], "x": [1.0, 2.0]})
    res = sweep.run(train, space, progress=False)
    assert set(seen) == {"double", "triple"}
    assert res.stats.compilations == 2
    u = float(jax.random.uniform(jax.random.PRNGKey(0)))
    np.testing.assert_allclose(res.outputs["y"], [2 + u, 4 + u, 3 + u, 6 + u], rtol=1e-6)


def test_resume_after_crash_equals_uninterrupted(tmp_path, monkeypatch):
    full = sweep.run(quadratic_train, SPACE, progress=False, chunk_size=4)
    calls = {"n": 0}
    real_save = runner._scatter

    def crash_after_two(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated crash")
        return real_save(*args, **kw)

    monkeypatch.setattr(runner, "_scatter", crash_after_two)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sweep.run(quadratic_train, SPACE, progress=False, chunk_size=4, out=tmp_path)
    monkeypatch.setattr(runner, "_scatter", real_save)
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert len(saved) == 3  # the third chunk was saved before the crash hit
    with pytest.raises(ValueError, match="--resume"):
        sweep.run(quadratic_train, SPACE, progress=False, chunk_size=4, out=tmp_path)
    resumed = sweep.run(quadratic_train, SPACE, progress=False, chunk_size=4, out=tmp_path, resume=True)
    assert resumed.stats.chunks_resumed == 3 and resumed.stats.chunks == 2
    chex.assert_trees_all_equal(resumed.outputs, full.outputs)


def test_resume_refuses_a_different_sweep(tmp_path):
    sweep.run(quadratic_train, SPACE, progress=False, chunk_size=4, out=tmp_path)
    other = sweep.grid({"lr": [0.2], "momentum": [0.0]})
    with pytest.raises(ValueError, match="different sweep"):
        sweep.run(quadratic_train, other, progress=False, out=tmp_path, resume=True)


def test_chunk_plan_is_balanced_and_bounded():
    assert runner.chunk_plan(1024, 2, 256) == (256, 4)
    size, n = runner.chunk_plan(1000, 2, 256)
    assert n == 4 and size * n >= 1000 and size % 2 == 0 and size * n - 1000 < 2 * n
    # from a memory budget: 1 MiB per run and a 64 MiB budget -> 64 runs per chunk
    assert runner.chunk_plan(1000, 1, None, bytes_per_run=1 << 20, budget=64 << 20)[0] <= 64


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="execution"):
        sweep.run(quadratic_train, SPACE, execution="fast", progress=False)
    with pytest.raises(ValueError, match="chunk_size"):
        sweep.run(quadratic_train, SPACE, chunk_size=0, progress=False)
    with pytest.raises(ValueError, match="empty"):
        sweep.run(quadratic_train, [], progress=False)


def test_resume_keeps_namedtuple_outputs(tmp_path):
    """A trainer's outputs are a NamedTuple (TrainResult); resumed chunks must come back as one."""
    import os

    from jaxopt_lab.config import from_dict
    from jaxopt_lab.train import TrainResult, make_train

    trainer = make_train(from_dict({"data": {"dataset": "moons", "n_samples": 120}, "model": {"hidden": [4]},
                                    "train": {"epochs": 4}}))
    space = sweep.grid({"optimizer.learning_rate": [0.01, 0.1, 0.3, 1.0]})
    whole = sweep.run(trainer, space, out=tmp_path, chunk_size=2, progress=False)
    os.remove(sorted((tmp_path / "checkpoints").glob("group*_chunk00001*"))[0])
    resumed = sweep.run(trainer, space, out=tmp_path, chunk_size=2, progress=False, resume=True)
    assert isinstance(resumed.outputs, TrainResult) and resumed.stats.chunks_resumed == 1
    chex.assert_trees_all_equal(resumed.outputs.metrics, whole.outputs.metrics)
