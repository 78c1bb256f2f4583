"""`jaxopt-lab compare`: paired statistics equal scipy's on the same numbers; unpaired inputs exit 2."""

import csv
import json

import numpy as np
import pytest
from scipy import stats

from jaxopt_lab import cli, compare
from jaxopt_lab.sweep.records import write_runs_csv

LRS = [0.1, 0.01, 0.001]
SEEDS = list(range(6))


def _sweep(folder, optimizer, values, seeds=SEEDS, lrs=LRS, extra_key=None):
    """A results folder like `jaxopt-lab sweep` writes: runs.csv and config.json."""
    rows = []
    for lr in lrs:
        for s in seeds:
            rows.append({"optimizer.learning_rate": lr, "seed": s, "best_val_loss": values[(lr, s)],
                         "final_val_accuracy": 1.0 - values[(lr, s)] / 4, "diverged": False,
                         **({extra_key: 1} if extra_key else {})})
    folder.mkdir(parents=True)
    write_runs_csv(folder / "runs.csv", rows, ["optimizer.learning_rate", *([extra_key] if extra_key else []), "seed"])
    (folder / "config.json").write_text(json.dumps({"optimizer": {"name": optimizer}}))
    return folder


@pytest.fixture
def two_sweeps(tmp_path):
    rng = np.random.default_rng(3)
    base = {(lr, s): float(rng.uniform(0.3, 0.9)) for lr in LRS for s in SEEDS}
    other = {k: v + float(rng.normal(-0.05, 0.04)) for k, v in base.items()}
    other[(0.01, 2)] = base[(0.01, 2)]  # a tie
    return _sweep(tmp_path / "sgd", "sgd", base), _sweep(tmp_path / "adam", "adam", other)


def _read_runs(folder):
    with open(folder / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _read_compare(folder):
    with open(folder / "compare.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_same_statistics_as_scipy(two_sweeps, tmp_path, capsys):
    a, b = two_sweeps
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(a), str(b), "--by", "optimizer.name", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "A = sgd, B = adam" in printed
    got = _read_compare(out)
    assert (out / "compare.png").stat().st_size > 0
    ra, rb = _read_runs(a), _read_runs(b)
    total = {"wins": 0, "ties": 0, "losses": 0}
    assert len(got) == len(LRS)
    for row in got:
        lr = row["optimizer.learning_rate"]
        xa = {int(r["seed"]): float(r["best_val_loss"]) for r in ra if r["optimizer.learning_rate"] == lr}
        xb = {int(r["seed"]): float(r["best_val_loss"]) for r in rb if r["optimizer.learning_rate"] == lr}
        va = np.array([xa[s] for s in sorted(xa)])
        vb = np.array([xb[s] for s in sorted(xa)])
        d = va - vb
        w = stats.wilcoxon(va, vb)
        boot = stats.bootstrap((d,), np.mean, n_resamples=10_000, method="percentile",
                               rng=np.random.default_rng(0))
        assert float(row["mean_diff"]) == pytest.approx(d.mean(), rel=1e-15)
        assert float(row["p_value"]) == pytest.approx(w.pvalue, rel=1e-12)
        assert float(row["ci_low"]) == pytest.approx(boot.confidence_interval.low, rel=1e-12)
        assert float(row["ci_high"]) == pytest.approx(boot.confidence_interval.high, rel=1e-12)
        wins, ties, losses = int((d < 0).sum()), int((d == 0).sum()), int((d > 0).sum())
        assert (int(row["wins"]), int(row["ties"]), int(row["losses"])) == (wins, ties, losses)
        total["wins"] += wins
        total["ties"] += ties
        total["losses"] += losses
        assert row["group_a"] == "sgd" and row["group_b"] == "adam"
    assert total["ties"] == 1
    assert f"A wins {total['wins']}, ties 1, loses {total['losses']}" in printed


def test_accuracy_is_maximized_and_profile_matches_definition(two_sweeps):
    import pandas as pd

    from jaxopt_lab import results

    a, b = (results.load(p).runs for p in two_sweeps)
    comp = compare.compare_frames(a, b, ["optimizer.learning_rate"], "final_val_accuracy", ("sgd", "adam"))
    for row in comp.rows:
        sel = lambda df, lr=row["optimizer.learning_rate"]: df[df["optimizer.learning_rate"] == lr]  # noqa: E731
        d = sel(a)["final_val_accuracy"].to_numpy(float) - sel(b)["final_val_accuracy"].to_numpy(float)
        assert row["wins"] == int((d > 0).sum()) and row["losses"] == int((d < 0).sum())
    # Dolan-More profile by hand: score 1 - mean accuracy per configuration, ratio to the better one.
    sa = np.array([1 - r["mean_a"] for r in comp.rows])
    sb = np.array([1 - r["mean_b"] for r in comp.rows])
    best = np.minimum(sa, sb)
    for tau_i in (0, 10, 60):
        tau = comp.taus[tau_i]
        assert comp.profile["sgd"][tau_i] == pytest.approx(np.mean(sa / best <= tau))
        assert comp.profile["adam"][tau_i] == pytest.approx(np.mean(sb / best <= tau))
    assert isinstance(a, pd.DataFrame)


def test_two_groups_within_one_sweep(tmp_path):
    rows = []
    rng = np.random.default_rng(0)
    for name in ("sgd", "adam"):
        for lr in LRS:
            for s in SEEDS:
                rows.append({"optimizer.name": name, "optimizer.learning_rate": lr, "seed": s,
                             "best_val_loss": float(rng.uniform(0.2, 1.0))})
    (tmp_path / "one").mkdir()
    write_runs_csv(tmp_path / "one" / "runs.csv", rows, ["optimizer.name", "optimizer.learning_rate", "seed"])
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(tmp_path / "one"), "--by", "optimizer.name", "--out", str(out)]) == 0
    got = _read_compare(out)
    assert [r["group_a"] for r in got] == ["sgd"] * 3
    va = np.array([r["best_val_loss"] for r in rows[:6]])
    vb = np.array([r["best_val_loss"] for r in rows[18:24]])
    assert float(got[0]["p_value"]) == pytest.approx(stats.wilcoxon(va, vb).pvalue, rel=1e-12)


def _exit_and_message(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr().err


def test_unpaired_inputs_exit_2(two_sweeps, tmp_path, capsys):
    a, _ = two_sweeps
    vals = {(lr, s): 0.5 for lr in LRS for s in range(1, 7)}
    shifted = _sweep(tmp_path / "shifted", "adam", vals, seeds=range(1, 7))
    code, err = _exit_and_message(["compare", str(a), str(shifted), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "seeds [0, 1, 2, 3, 4, 5]" in err and "[1, 2, 3, 4, 5, 6]" in err
    fewer = _sweep(tmp_path / "fewer", "adam", {(lr, s): 0.5 for lr in LRS[:2] for s in SEEDS}, lrs=LRS[:2])
    code, err = _exit_and_message(["compare", str(a), str(fewer), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "optimizer.learning_rate=0.001" in err and "not in fewer" in err
    other = _sweep(tmp_path / "other", "adam", {(lr, s): 0.5 for lr in LRS for s in SEEDS}, extra_key="model.depth")
    code, err = _exit_and_message(["compare", str(a), str(other), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "different configurations" in err
    code, err = _exit_and_message(["compare", str(a), str(a), "--metric", "best_val_los"], capsys)
    assert code == 2 and "did you mean 'best_val_loss'" in err
    code, err = _exit_and_message(["compare", str(a), "--by", "optimizer.learning_rate"], capsys)
    assert code == 2 and "exactly two" in err
    code, err = _exit_and_message(["compare", str(a), str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "not a folder" in err
    assert not (tmp_path / "x").exists()


def test_identical_groups():
    st = compare.paired_stats([0.5, 0.4, 0.3], [0.5, 0.4, 0.3])
    assert (st["p_value"], st["ties"], st["mean_diff"], st["ci_low"]) == (1.0, 3, 0.0, 0.0)
