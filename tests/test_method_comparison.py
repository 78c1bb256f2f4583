"""Search methods at equal compute (`[sweep.compare_search]`): budgets, the searches it runs, its folder
and report, and bad input."""

import csv
import json
import math

import numpy as np
import pytest

from jaxopt_lab.cli import main
from jaxopt_lab.config import ConfigError, load
from jaxopt_lab.sweep import config_sweep, report, search_curves
from jaxopt_lab.sweep import method_comparison as mc

TOML = """
[data]
dataset = "moons"
n_samples = 60
noise = 0.25
random_state = 7
val_fraction = 0.25
[model]
hidden = [4]
[train]
epochs = 3
[optimizer]
name = "sgd"
learning_rate = 0.1
momentum = 0.5
[sweep.compare_search]
methods = ["random", "quasirandom"]
search_seeds = 2
budget_epochs = 12
[sweep.compare_search.optimizer]
learning_rate = { loguniform = [1e-3, 10.0] }
momentum = { one_minus_loguniform = [1e-2, 1.0] }
"""


def config(tmp_path, text=TOML):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load(path)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmp")
    cfg = config(folder)
    result = mc.run_comparison(cfg)
    out = folder / "out"
    mc.write_comparison(out, result)
    return cfg, result, out


def test_each_search_is_the_documented_sweep(ran):
    """A random search of the comparison is `[sweep.random]` with budget // epochs trials, that search seed and
    training seed 0: its best is the lowest best_val_loss of that sweep's runs, run on its own."""
    cfg, result, _ = ran
    assert [(r.method, r.seed) for r in result.records] == [("random", 0), ("random", 1), ("quasirandom", 0),
                                                            ("quasirandom", 1)]
    for method in ("random", "quasirandom"):
        for seed in (0, 1):
            sweep = {"seeds": [0], method: {"trials": 4, "seed": seed, "optimizer": dict(
                cfg.sweep["compare_search"]["optimizer"])}}
            alone = config_sweep.run_sweep(cfg.replace(sweep=sweep), progress=False)
            rec = next(r for r in result.records if (r.method, r.seed) == (method, seed))
            assert rec.best == min(r["best_val_loss"] for r in alone.rows if not r["diverged"])
            assert rec.configs == 4 and rec.epochs_computed == sum(r["epochs_run"] for r in alone.rows)
            # the best-so-far curve: one point per run, never rising, ending at the search's best and epochs
            bests = [b for _, b in rec.curve]
            assert len(rec.curve) == 4 and all(a >= b for a, b in zip(bests, bests[1:], strict=False))
            assert rec.curve[-1] == (rec.epochs_computed, rec.best)


def test_folder_summary_and_report(ran):
    from scipy import stats

    _, result, out = ran
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["seed"]) for r in rows] == [("random", "0"), ("random", "1"), ("quasirandom", "0"),
                                                        ("quasirandom", "1")]
    with open(out / "curves.csv") as f:
        curves = list(csv.DictReader(f))
    assert len(curves) == 4 * 4 and curves[3]["epochs_spent"] == rows[0]["epochs_computed"]
    summary = json.loads((out / "summary.json").read_text())["compare_search"]
    assert summary["budget_epochs"] == 12 and summary["configs"] == 4
    for m in ("random", "quasirandom"):
        per = [float(r["best_val_loss"]) for r in rows if r["method"] == m]
        lo, hi = stats.t.interval(0.95, len(per) - 1, loc=np.mean(per), scale=stats.sem(per))
        s = summary["by_method"][m]
        assert s["best_val_loss_mean"] == pytest.approx(np.mean(per), rel=1e-12)
        assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    page = (out / "index.html").read_text()
    assert "Search methods at equal compute" in page and "compare_search.png" in page
    assert (out / "compare_search.png").stat().st_size > 0
    assert "Heatmaps" not in page and "Best of k" not in page  # a row is a search, not a run


def test_report_rerenders_from_the_folder(ran, tmp_path):
    _, _, out = ran
    data = report.SweepData.from_folder(out)
    titles = [s.title for s in report.sweep_sections(data, tmp_path)]
    assert titles == ["What ran", "Best configurations", "Search methods at equal compute"]
    assert (tmp_path / "compare_search.png").stat().st_size > 0


def test_curve_grid_holds_the_best_so_far():
    curves = {0: [(3, 0.5), (6, 0.4), (9, 0.45)], 1: [(3, math.nan), (6, 0.7), (8, 0.2)]}
    grid, values = search_curves.curve_grid(curves, 3, 9)
    assert grid.tolist() == [3, 6, 8, 9]
    np.testing.assert_array_equal(values[0], [0.5, 0.4, 0.4, 0.4])
    np.testing.assert_array_equal(values[1], [np.nan, 0.7, 0.2, 0.2])


def test_halving_budgets_match_the_measured_counts(tmp_path):
    """At 27 epochs, 864 per search, rungs from 3 epochs and eta 3, halving fits 93 random configurations and
    Hyperband 56 (BENCHMARKS.md section 7), counting each stage's retraining (855 epochs each)."""
    opts = mc.CompareOptions(epochs=27, budget_epochs=864, min_epochs=3)
    assert mc.halving_configs(opts, "halving") == 93 and mc.halving_configs(opts, "hyperband") == 56
    assert mc.halving_cost(93, opts, 1) == 855 and mc.halving_cost(56, opts, 3) == 855
    assert mc.halving_cost(94, opts, 1) > 864 and mc.halving_cost(57, opts, 3) > 864


def test_halving_search_stays_within_its_budget(tmp_path):
    text = (TOML.replace('["random", "quasirandom"]', '["halving"]').replace("epochs = 3", "epochs = 4")
            .replace("budget_epochs = 12", "budget_epochs = 16\nmin_epochs = 1\neta = 2"))
    cfg = config(tmp_path, text)
    opts, sections, _ = mc.check_config(cfg)
    rec = mc.run_search(cfg, opts, sections, "halving", 0)
    assert rec.configs == mc.halving_configs(opts, "halving")
    assert rec.epochs_computed <= 16 and rec.curve[-1] == (rec.epochs_computed, rec.best)
    # a point per stage: rungs at 1 and 2 epochs below 4, then the survivors to the end
    bests = [b for _, b in rec.curve if b is not None]
    assert len(rec.curve) == 3 and all(a >= b for a, b in zip(bests, bests[1:], strict=False))
    assert [e for e, _ in rec.curve] == sorted(e for e, _ in rec.curve)


@pytest.mark.parametrize("edit, methods, message", [
    (('["random", "quasirandom"]', '["random", "tpee"]'), None,
     r"sweep.compare_search.methods: 'tpee' is not a valid choice \(did you mean 'tpe'\?\)"),
    (("budget_epochs = 12", "budget_epochs = 5"), None, r"sweep.compare_search.budget_epochs = 5 is too small"),
    (("budget_epochs = 12", "budget_epochs = 12\nrounds = 5"), '["tpe"]',
     r"sweep.compare_search.rounds = 5 is out of range"),
    (("search_seeds = 2", "search_seeds = 0"), None, r"sweep.compare_search.search_seeds = 0 is out of range"),
    (("search_seeds = 2", "search_seeds = [0, 0]"), None, r"sweep.compare_search.search_seeds lists 0 twice"),
    (("search_seeds = 2", "search_seed = 2"), None, r"unknown key sweep.compare_search.search_seed \(did you mean"),
    (("[sweep.compare_search]\n", "[sweep]\nseeds = 2\n[sweep.compare_search]\n"), None,
     r"sweep.seeds cannot go with sweep.compare_search"),
    (("[sweep.compare_search.optimizer]", "[sweep.compare_search.train]\nepochs = { randint = [2, 4] }\n"
      "[sweep.compare_search.optimizer]"), None, r"sweep.compare_search.train.epochs: the methods compared propose"),
    (("momentum = { one_minus_loguniform = [1e-2, 1.0] }", "momentum = { choice = [0.0, 0.9] }"), '["pbt"]',
     r"sweep.compare_search.optimizer.momentum: PBT perturbs continuous"),
    (("budget_epochs = 12", "budget_epochs = 12\nmin_epochs = 3"), '["halving"]',
     r"sweep.compare_search.min_epochs = 3 leaves no"),
    (("val_fraction = 0.25", "val_fraction = 0.0"), None, r"data.val_fraction = 0.0 leaves no validation split"),
])
def test_bad_input_names_the_key(tmp_path, edit, methods, message):
    text = TOML.replace(*edit)
    if methods is not None:
        text = text.replace('["random", "quasirandom"]', methods)
    with pytest.raises(ConfigError, match=message):
        mc.check_config(config(tmp_path, text))


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(TOML.replace('["random", "quasirandom"]', '["random", "hyperbnd"]'))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sweep.compare_search.methods" in err and "hyperband" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
    path.write_text(TOML)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--resume"]) == 2
    assert "--resume does not apply" in capsys.readouterr().err


def test_cli_report_rerenders_and_keeps_the_data(ran, tmp_path):
    """`jaxopt-lab report DIR` redraws the figure and page of a comparison; runs.csv, curves.csv and
    summary.json stay (the re-render publishes only what it redraws)."""
    import shutil

    _, _, out = ran
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "compare_search.png").unlink()
    (copy / "index.html").unlink()
    assert main(["report", str(copy)]) == 0
    for name in ("runs.csv", "curves.csv", "summary.json", "config.json"):
        assert (copy / name).read_bytes() == (out / name).read_bytes()
    assert (copy / "index.html").read_text() == (out / "index.html").read_text()


def test_the_shipped_comparisons_and_the_guides_example_check(tmp_path):
    """benchmarks/search_methods_*.toml and docs/guide.md's `[sweep.compare_search]` example are configs
    the code accepts, with the budgets BENCHMARKS.md section 7 states."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    moons, _, _ = mc.check_config(load(root / "benchmarks" / "search_methods_moons.toml"))
    assert (moons.budget, moons.configs, moons.batch, len(moons.search_seeds)) == (864, 32, 8, 10)
    digits, _, _ = mc.check_config(load(root / "benchmarks" / "search_methods_digits.toml"))
    assert (digits.budget, digits.configs, len(digits.search_seeds)) == (576, 32, 10)
    cnn, _, _ = mc.check_config(load(root / "benchmarks" / "search_methods_digits_cnn.toml"))
    assert (cnn.budget, cnn.configs) == (576, 32)
    guide = (root / "docs" / "guide.md").read_text()
    block = guide[guide.index("### Comparing search methods"):]
    block = block[block.index("```toml") + len("```toml"):]
    block = block[:block.index("```")]
    opts, _, dists = mc.check_config(config(tmp_path, '[data]\ndataset = "moons"\n[train]\nepochs = 27\n' + block))
    assert opts.methods == mc.DEFAULT_METHODS and set(dists) == {"optimizer.learning_rate", "optimizer.momentum"}


def test_cli_sweep_runs_the_comparison(ran, tmp_path, monkeypatch, capsys):
    """`jaxopt-lab sweep CONFIG` with a `[sweep.compare_search]` writes the same searches as the Python API."""
    monkeypatch.setenv("JAXOPT_LAB_CACHE_DIR", "")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(TOML)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg_path), "--out", str(out), "--no-report"]) == 0
    assert "4 searches" in capsys.readouterr().out
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    _, result, _ = ran
    assert [float(r["best_val_loss"]) for r in rows] == [r.best for r in result.records]
    assert (out / "curves.csv").read_text() == (ran[2] / "curves.csv").read_text()
    assert not (out / "index.html").exists()


def test_pbt_curve_points_are_exploit_steps_then_the_end():
    """PBT's curve: the best finite monitored loss up to each exploit step against population x epoch, then
    the members' best validation loss against the epochs they ran."""
    from types import SimpleNamespace

    res = SimpleNamespace(epochs=[2, 4], record={"score": np.array([[0.9, np.inf, 0.7], [0.8, np.nan, 0.75]])})
    rows = [{"best_val_loss": 0.65, "diverged": False, "epochs_run": 6},
            {"best_val_loss": None, "diverged": True, "epochs_run": 3},
            {"best_val_loss": 0.6, "diverged": False, "epochs_run": 6}]
    assert mc.pbt_curve(res, 3, rows) == [(6, 0.7), (12, 0.7), (15, 0.6)]
