"""Hyperband (`[sweep.halving] brackets`): the brackets of Li et al., synchronous halving ranked across chunks."""

import math

import jax
import numpy as np
import pytest

from jaxopt_lab.config import ConfigError, from_dict
from jaxopt_lab.sweep import adaptive, config_sweep

BASE = {
    "data": {"dataset": "moons", "n_samples": 60, "noise": 0.25, "random_state": 7, "val_fraction": 0.25},
    "model": {"hidden": [4]},
    "train": {"epochs": 4, "precision": "float64"},
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
}
SPACE = {"trials": 7, "seed": 1, "optimizer": {"learning_rate": {"loguniform": [1e-3, 100.0]}}}


def _cfg(**sweep):
    return from_dict({**BASE, "sweep": {"seeds": 1, "quasirandom": SPACE,
                                        "halving": {"min_epochs": 1, "eta": 2, "brackets": 3}, **sweep}})


def test_brackets_follow_hyperband():
    # Li et al. (2018), Table 1: R = 81, eta = 3 gives brackets s = 4..0 starting n = 81, 34, 15, 8, 5
    # configurations at 1, 3, 9, 27, 81 epochs.
    h = adaptive.Halving(min_epochs=1, eta=3, brackets=5)
    assert h.bracket_rungs(81) == [(1, 3, 9, 27), (3, 9, 27), (9, 27), (27,), ()]
    sizes = h.bracket_sizes(81 + 34 + 15 + 8 + 5, 81)
    assert sum(sizes) == 143
    assert all(abs(a - b) <= 1 for a, b in zip(sizes, [81, 34, 15, 8, 5], strict=True)), sizes
    assert adaptive.Halving(min_epochs=1, eta=3, brackets=2).bracket_rungs(81) == [(1, 3, 9, 27), (3, 9, 27)]
    with pytest.raises(ValueError, match="brackets = 6 is out of range for 81 epochs"):
        adaptive.Halving(min_epochs=1, eta=3, brackets=6).bracket_rungs(81)


@pytest.fixture(scope="module")
def x64():
    jax.config.update("jax_enable_x64", True)


def test_decisions_are_the_rule_and_do_not_depend_on_chunk_size(x64, tmp_path):
    whole = config_sweep.run_sweep(_cfg(), progress=False)
    chunked = config_sweep.run_sweep(_cfg(chunk_size=2), progress=False)
    assert whole.rows == chunked.rows  # ranked across every chunk: the chunking changes nothing
    assert whole.stats.compilations == 1  # every stage of every bracket: one program
    rows, val = whole.rows, whole.histories["val_loss"]
    # 7 configs in proportion to eta**s / (s + 1) = 4/3 : 1 : 1, at least one each: 3 : 2 : 2.
    assert [r["bracket"] for r in rows] == [2, 2, 2, 1, 1, 0, 0]
    # Recompute each bracket's promotions from the per-epoch validation losses (the first r epochs of
    # a run are the same however long it trains): the best ceil(n / eta) of those reaching a rung pass.
    for s, rungs in ((2, (1, 2)), (1, (2,)), (0, ())):
        alive = [i for i, r in enumerate(rows) if r["bracket"] == s]
        for k, epoch in enumerate(rungs):
            reached = [i for i in alive if rows[i]["epochs_run"] >= epoch and not
                       (rows[i]["epochs_run"] == epoch and not rows[i]["halted"] and rows[i]["rungs_passed"] == k)]
            loss = {i: (val[i, epoch - 1] if np.isfinite(val[i, epoch - 1]) else math.inf) for i in reached}
            keep = sorted(reached, key=lambda i: (loss[i], i))[:math.ceil(len(reached) / 2)]
            for i in reached:
                assert (rows[i]["rungs_passed"] > k) == (i in keep), (s, k, i)
                if i not in keep:
                    assert rows[i]["halted"] and rows[i]["epochs_run"] == epoch
            alive = keep
        for i in alive:
            assert not rows[i]["halted"]
    summary = config_sweep.summary_of(whole)["halving"]
    assert summary["method"] == "hyperband" and [b["s"] for b in summary["brackets"]] == [2, 1, 0]
    assert summary["epochs_run"] == sum(r["epochs_run"] for r in rows) < 7 * 4
    assert summary["epochs_spent"] == sum(r["epochs_computed"] for r in rows) >= summary["epochs_run"]
    config_sweep.write_results(tmp_path / "out", whole)  # the report has a Hyperband section
    assert "Hyperband, 3 bracket(s)" in (tmp_path / "out" / "index.html").read_text()


def test_resume_after_an_interruption_equals_the_uninterrupted_run(x64, tmp_path):
    import shutil

    full = config_sweep.run_sweep(_cfg(), progress=False, checkpoint_dir=tmp_path / "full")
    saved = sorted((tmp_path / "full").glob("hyperband_*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    assert len(saved) == 6  # bracket 2: rungs 1, 2 and the end; bracket 1: rung 2 and the end; bracket 0: the end
    with pytest.raises(ConfigError, match="earlier Hyperband sweep"):
        config_sweep.run_sweep(_cfg(), progress=False, checkpoint_dir=tmp_path / "full")
    # Killed after two stages: only their saves are on disk.
    (tmp_path / "cut").mkdir()
    for f in saved[:2]:
        shutil.copy(f, tmp_path / "cut" / f.name)
    assert len(list((tmp_path / "cut").iterdir())) == 2
    resumed = config_sweep.run_sweep(_cfg(), progress=False, checkpoint_dir=tmp_path / "cut", resume=True)
    assert resumed.rows == full.rows
    np.testing.assert_array_equal(resumed.histories["val_loss"], full.histories["val_loss"])


def test_python_api_makes_the_same_decisions(x64):
    cfg = _cfg()
    from jaxopt_lab import sweep
    from jaxopt_lab.sweep import space as S
    from jaxopt_lab.train import make_train

    space = S.quasirandom(7, 1, {"optimizer.learning_rate": S.loguniform(1e-3, 100.0)})
    res = sweep.run(make_train(cfg), space, halving=adaptive.Halving(min_epochs=1, eta=2, brackets=3),
                    progress=False)
    want = config_sweep.run_sweep(cfg, progress=False).rows
    assert list(res.lane_info.halted) == [r["halted"] for r in want]
    assert list(res.lane_info.rungs_passed) == [r["rungs_passed"] for r in want]
    np.testing.assert_allclose(res.outputs.metrics["best_val_loss"], [r["best_val_loss"] for r in want], rtol=1e-10)


@pytest.mark.parametrize("halving, kwargs, message", [
    ({"min_epochs": 1, "eta": 2, "brackets": 0}, {}, r"halving.brackets = 0 is out of range"),
    ({"min_epochs": 1, "eta": 2, "brackets": 4}, {}, r"halving.brackets = 4 is out of range for 4 epochs"),
    ({"min_epochs": 1, "eta": 2, "brackets": 2}, {"execution": "refill"}, r"use execution 'auto', 'map' or 'vmap'"),
])
def test_bad_input_names_the_key(x64, halving, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        config_sweep.run_sweep(_cfg(halving=halving), progress=False, **kwargs)
