"""`sweep --check-vectorization`: sampling, agreement, disagreement and drift, speed warnings, CLI."""

import json
import textwrap

import numpy as np
import pytest

from jaxopt_lab import config as config_mod
from jaxopt_lab.cli import main
from jaxopt_lab.sweep import vectorization
from jaxopt_lab.sweep.vectorization import MODES, check_vectorization, sample_positions

TOML = """
[data]
dataset = "moons"
n_samples = 200
noise = 0.2
random_state = 3
val_fraction = 0.25

[model]
hidden = [8]

[train]
epochs = 20
precision = "float64"

[optimizer]
name = "sgd"
learning_rate = 0.1

[sweep]
seeds = 6

[sweep.grid.optimizer]
name = ["sgd", "adam"]
learning_rate = [0.01, 0.1]
"""

SAMPLE = 4


@pytest.fixture(scope="module")
def toml_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "moons.toml"
    p.write_text(textwrap.dedent(TOML))
    return p


@pytest.fixture(scope="module")
def cfg(toml_path):
    return config_mod.load(toml_path)


@pytest.fixture(scope="module")
def report(cfg):
    return check_vectorization(cfg, sample=SAMPLE, repeats=0)


def _perturbed(mode, change):
    """`mode`, with `change(run_position, output)` applied to each run's output."""

    base = MODES[mode]  # looked up now: a test may then replace MODES[mode] by this

    def run(group, devices):
        outs, stats = base(group, devices)
        return [change(j, o) for j, o in enumerate(outs)], stats

    return run


def _scale_metric(name, factor, run=1, history_from=None):
    def change(j, out):
        if j != run:
            return out
        out = {"metrics": dict(out["metrics"]), "history": dict(out["history"])}
        out["metrics"][name] = out["metrics"][name] * factor
        if history_from is not None:
            h = np.array(out["history"]["train_loss"])
            h[history_from:] *= factor
            out["history"]["train_loss"] = h
        return out

    return change


def test_sample_positions_spread_and_deterministic():
    rng = lambda s: np.random.default_rng([s, 0])  # noqa: E731
    pos = sample_positions(100, 8, rng(0))
    assert len(pos) == 8 and len(set(pos.tolist())) == 8
    edges = np.linspace(0, 100, 9).round().astype(int)
    assert all(lo <= p < hi for p, lo, hi in zip(pos, edges[:-1], edges[1:], strict=True))  # one per stratum
    assert pos.tolist() == sample_positions(100, 8, rng(0)).tolist()
    assert any(sample_positions(100, 8, rng(s)).tolist() != pos.tolist() for s in range(1, 4))
    assert sample_positions(5, 8, rng(0)).tolist() == [0, 1, 2, 3, 4]


def test_report_covers_every_group_with_a_spread_sample(report):
    assert len(report.groups) == 2  # the grid over optimizer.name
    assert [g.label for g in report.groups] == [{"optimizer.name": "sgd"}, {"optimizer.name": "adam"}]
    for g in report.groups:
        assert g.size == 12 and len(g.runs) == SAMPLE
        assert set(g.modes) == set(MODES)
        # spread: the group's 12 runs in 4 strata of 3, one sampled from each
        plan_idx = sorted(g.runs)
        assert len(set(plan_idx)) == SAMPLE
        assert max(plan_idx) - min(plan_idx) >= 6
    d = report.to_dict()
    json.dumps(d)
    assert len(d["groups"]) == 2
    assert set(d["groups"][0]["modes"]) == {"loop", *MODES}


def test_vectorized_numbers_agree_with_the_loop(report):
    assert report.agree, report.disagreements()
    for g in report.groups:
        assert g.loop.devices == 1
        for m in g.modes.values():
            assert m.agree and not m.differences
            assert m.max_rel_diff <= vectorization.TOLERANCES["float64"][0]
    text = report.table()
    assert "vs loop" in text and "per device" in text and "recommendation:" in text


def test_a_perturbed_mode_is_a_disagreement(cfg):
    modes = {"vmap": _perturbed("vmap", _scale_metric("final_train_loss", 1.01)), "map": MODES["map"]}
    rep = check_vectorization(cfg, sample=SAMPLE, repeats=0, modes=modes)
    assert not rep.agree
    bad = rep.disagreements()
    assert {(d.mode, d.metric) for d in bad} == {("vmap", "final_train_loss")}
    assert len(bad) == 2  # run position 1 of each group
    assert bad[0].rel_diff == pytest.approx(0.01, rel=1e-6)
    line = bad[0].describe(rep.label_of(bad[0].group))
    assert f"run {bad[0].run}" in line and "final_train_loss" in line and "rel diff 0.01" in line
    assert rep.to_dict()["agree"] is False
    assert all(m.agree for g in rep.groups for name, m in g.modes.items() if name == "map")


def test_early_separation_is_a_disagreement_late_one_drift(cfg):
    early = {"vmap": _perturbed("vmap", _scale_metric("final_train_loss", 1.5, history_from=1))}
    rep = check_vectorization(cfg, sample=SAMPLE, repeats=0, modes=early)
    assert not rep.agree
    late = {"vmap": _perturbed("vmap", _scale_metric("final_train_loss", 1.5, history_from=12))}
    rep = check_vectorization(cfg, sample=SAMPLE, repeats=0, modes=late)
    assert rep.agree
    drift = [d for g in rep.groups for d in g.modes["vmap"].differences]
    assert {d.kind for d in drift} == {"drift"} and {d.epoch for d in drift} == {12}
    assert any("drift apart" in w for w in rep.warnings)


def test_a_slower_mode_warns_and_is_not_recommended(cfg):
    def slow(group, devices):
        outs, stats = MODES["vmap"](group, devices)
        stats.wall_seconds += 100.0  # as if its runs took 100 s more: no real timing in a test
        return outs, stats

    rep = check_vectorization(cfg, sample=SAMPLE, repeats=0, modes={"slowmode": slow, "map": MODES["map"]})
    assert rep.agree
    slow_w = [w for w in rep.warnings if "slowmode is slower" in w]
    assert len(slow_w) == 2 and "group 0 (optimizer.name=sgd)" in slow_w[0]
    for g in rep.groups:
        assert g.ratio("slowmode") < 0.01
        assert g.recommended == "map"
        assert g.fastest != "slowmode"


def test_cli_writes_vectorization_json(toml_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JAXOPT_LAB_CACHE_DIR", "")
    out = tmp_path / "out"
    rc = main(["sweep", str(toml_path), "--out", str(out), "--check-vectorization", "--sample", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads((out / "vectorization.json").read_text())
    assert data["agree"] is True and len(data["groups"]) == 2
    assert all(len(g["sampled_runs"]) == 2 for g in data["groups"])
    assert not (out / "runs.csv").exists()  # the check replaces the sweep
    assert "vs loop" in captured.out
    assert sorted(p.name for p in out.iterdir()) == [".jaxopt_lab.json", "vectorization.json"]  # no temp file


def test_cli_exit_1_on_disagreement(toml_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JAXOPT_LAB_CACHE_DIR", "")
    monkeypatch.setitem(MODES, "vmap", _perturbed("vmap", _scale_metric("final_val_loss", 2.0, run=0)))
    out = tmp_path / "out"
    rc = main(["sweep", str(toml_path), "--out", str(out), "--check-vectorization", "--sample", "2"])
    err = capsys.readouterr().err
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("jaxopt-lab:")]
    assert len(lines) == 1 and "final_val_loss" in lines[0] and "run " in lines[0] and "vmap" in lines[0]
    assert json.loads((out / "vectorization.json").read_text())["agree"] is False


@pytest.mark.parametrize("extra", [["--check-vectorization", "--sample", "0"],
                                   ["--check-vectorization", "--sample", "-3"], ["--sample", "4"]])
def test_cli_bad_sample_exits_2(toml_path, tmp_path, capsys, extra):
    out = tmp_path / "out"
    rc = main(["sweep", str(toml_path), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "--sample" in err
    assert not out.exists()
