"""Benchmark protocols: each preset on a tiny problem, its numbers checked against its own sweeps' files."""

import csv
import json
import math

import numpy as np
import pytest

from jaxopt_lab import protocols
from jaxopt_lab.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.protocols import choi, profiles
from jaxopt_lab.sweep import config_sweep, records
from jaxopt_lab.sweep import space as S

BASE = Config(
    data=DataConfig(dataset="moons", n_samples=200, noise=0.2, random_state=1, val_fraction=0.25),
    model=ModelConfig(hidden=(8,)),
    train=TrainConfig(epochs=20, precision="float64"),
    optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
)


def _rows(path):
    return records.read_runs_csv(path)


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _argbest(rows, column, mode):
    ok = [r for r in rows if not r["diverged"] and r[column] is not None]
    key = (lambda r: -r[column]) if mode == "max" else (lambda r: r[column])
    return min(ok, key=key)  # min() keeps the first of ties, like the protocols


def _run(tmp_path_factory, name, options, cfg=BASE):
    out = tmp_path_factory.mktemp(name) / "out"
    protocols.run_protocol(cfg, out, protocol=name, options=options, progress=False)
    return out, json.loads((out / "protocol.json").read_text())


def _report_files(out, *names):
    for f in ("index.html", "summary.md", "protocol.json", *names):
        assert (out / f).is_file(), f
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "staging folder left behind"


# ----------------------------------------------------------------------------- deepobs


@pytest.fixture(scope="module")
def deepobs_run(tmp_path_factory):
    return _run(tmp_path_factory, "deepobs", {"optimizers": ["sgd", "adam"], "lr_points": 8,
                                              "lr_range": [1e-3, 10.0], "rerun_seeds": 3})


def test_deepobs_picks_the_best_learning_rate_and_reruns_it(deepobs_run):
    out, record = deepobs_run
    _report_files(out, "results.csv", "sensitivity.csv", "lr_sensitivity.png", "learning_curves_val_accuracy.png",
                  "learning_curves_train_loss.png")
    assert record["metric"] == "final_val_accuracy" and record["mode"] == "max"
    table = {r["optimizer"]: r for r in _csv(out / "results.csv")}
    for name in ("sgd", "adam"):
        tuning = _rows(out / "tuning" / name / "runs.csv")
        lrs = [r["optimizer.learning_rate"] for r in tuning]
        np.testing.assert_allclose(lrs, np.geomspace(1e-3, 10.0, 8), rtol=1e-12)
        assert {r["seed"] for r in tuning} == {0}
        best = _argbest(tuning, "final_val_accuracy", "max")
        assert record["best"][name]["learning_rate"] == best["optimizer.learning_rate"]
        assert float(table[name]["learning_rate"]) == best["optimizer.learning_rate"]
        rerun = _rows(out / "rerun" / name / "runs.csv")
        assert [r["seed"] for r in rerun] == [0, 1, 2]
        assert {r["optimizer.learning_rate"] for r in rerun} == {best["optimizer.learning_rate"]}
        vals = [r["final_val_accuracy"] for r in rerun if not r["diverged"]]
        assert float(table[name]["final_val_accuracy_mean"]) == pytest.approx(np.mean(vals), rel=1e-12)
        assert float(table[name]["final_val_accuracy_std"]) == pytest.approx(np.std(vals, ddof=1), rel=1e-9)
    # The rerun reuses the tuning sweep's compiled program (same structure, same chunk shape).
    assert all(s["compilations"] == 0 for s in record["sweeps"] if s["kind"] == "rerun")


def test_deepobs_rerun_equals_a_plain_sweep_of_the_best_config(deepobs_run):
    out, record = deepobs_run
    lr = record["best"]["adam"]["learning_rate"]
    cfg = config_sweep.apply_overrides(BASE, {"optimizer.name": "adam", "optimizer.learning_rate": lr})
    cfg = cfg.replace(optimizer=cfg.optimizer.__class__("adam", {"learning_rate": lr}), sweep={"seeds": [0, 1, 2]})
    plain = config_sweep.run_sweep(cfg, progress=False).rows
    rerun = _rows(out / "rerun" / "adam" / "runs.csv")
    for a, b in zip(plain, rerun, strict=True):
        for k in config_sweep.METRIC_COLUMNS:
            assert a[k] == pytest.approx(b[k], rel=1e-12, abs=0) if isinstance(a[k], float) else a[k] == b[k], k


# ----------------------------------------------------------------------------- crowded valley


def test_crowded_valley_oneshot_tuned_and_gain(tmp_path_factory):
    out, record = _run(tmp_path_factory, "crowded_valley",
                       {"optimizers": ["sgd", "adam"], "budget": 5, "rerun_seeds": 3})
    _report_files(out, "results.csv", "search_spaces.csv", "oneshot_vs_tuned.png")
    table = {r["optimizer"]: r for r in _csv(out / "results.csv")}
    # One-shot: the config's own values for its optimizer, the library defaults for another.
    assert record["results"]["sgd"]["oneshot_hyperparameters"] == {"learning_rate": 0.1, "momentum": 0.9}
    assert record["results"]["adam"]["oneshot_hyperparameters"] == {"learning_rate": 1e-3}
    for name in ("sgd", "adam"):
        tuning = _rows(out / "tuning" / name / "runs.csv")
        assert len(tuning) == 5 and all(1e-4 <= r["optimizer.learning_rate"] <= 1.0 for r in tuning)
        best = _argbest(tuning, "final_val_accuracy", "max")
        rerun = _rows(out / "rerun" / name / "runs.csv")
        assert {r["optimizer.learning_rate"] for r in rerun} == {best["optimizer.learning_rate"]}
        oneshot = _rows(out / "oneshot" / name / "runs.csv")
        m_one = np.mean([r["final_val_accuracy"] for r in oneshot if not r["diverged"]])
        m_tuned = np.mean([r["final_val_accuracy"] for r in rerun if not r["diverged"]])
        assert float(table[name]["oneshot_mean"]) == pytest.approx(m_one, rel=1e-12)
        assert float(table[name]["gain"]) == pytest.approx(m_tuned - m_one, rel=1e-9, abs=1e-12)
    for s in record["sweeps"]:  # one compiled program per optimizer serves all three sweeps
        assert s["compilations"] == 0 or s["kind"] == "oneshot", s["name"]


# ----------------------------------------------------------------------------- choi


def test_choi_tunes_every_hyperparameter_and_checks_the_hierarchy(tmp_path_factory):
    out, record = _run(tmp_path_factory, "choi",
                       {"optimizers": ["sgd", "momentum", "adam"], "trials": 6, "rerun_seeds": 3})
    _report_files(out, "results.csv", "search_spaces.csv", "hierarchy.csv", "tuned_comparison.png")
    adam = _rows(out / "tuning" / "adam" / "runs.csv")
    assert len(adam) == 6
    for r in adam:  # 1 - b1, 1 - b2 and eps drawn on log scales inside the default spaces
        assert 1e-3 * 0.999 <= 1 - r["optimizer.b1"] <= 1.0
        assert 1e-4 * 0.999 <= 1 - r["optimizer.b2"] <= 1e-1 * 1.001
        assert 1e-10 <= r["optimizer.eps"] <= 1.0
    assert len({r["optimizer.b1"] for r in adam}) > 1
    # Quasi-random by default: the trials are the scrambled Halton points of the space seed (0).
    dists = {f"optimizer.{k}": S.DISTRIBUTIONS[d](*a) for k, spec in choi.SPACES["adam"].items()
             for d, a in spec.items()}
    want = S.quasirandom(6, 0, dists)
    for key in dists:
        assert [r[key] for r in adam] == pytest.approx(want.values(key), rel=1e-12), key
    assert "optimizer.momentum" in _rows(out / "tuning" / "momentum" / "runs.csv")[0]
    spaces = _csv(out / "search_spaces.csv")
    assert {"optimizer": "adam", "hyperparameter": "1 - b1", "distribution": "loguniform", "low": "0.001",
            "high": "1.0", "values": ""} in spaces
    # The hierarchy verdicts recomputed by hand from the reruns.
    stats = {}
    for name in ("sgd", "momentum", "adam"):
        v = np.asarray([r["final_val_accuracy"] for r in _rows(out / "rerun" / name / "runs.csv")])
        stats[name] = (v.mean(), v.std(ddof=1), len(v))
    checks = _csv(out / "hierarchy.csv")
    assert [(c["less general"], c["more general"]) for c in checks] == [
        ("sgd", "momentum"), ("momentum", "adam"), ("sgd", "adam")]
    for c in checks:
        (ma, sa, na), (mb, sb, nb) = stats[c["less general"]], stats[c["more general"]]
        se = math.sqrt(sa**2 / na + sb**2 / nb)
        assert float(c["advantage of the more general"]) == pytest.approx(mb - ma, abs=1e-12)
        assert (c["holds"] == "true") == (mb - ma >= -2.0 * se)
    assert "inclusion hierarchy" in (out / "summary.md").read_text()


def test_choi_hierarchy_rule():
    r = {"sgd": {"mean": 0.9, "std": 0.01, "n": 4}, "adam": {"mean": 0.85, "std": 0.01, "n": 4}}
    (row,) = choi.hierarchy(r, "max", 2.0)
    assert row["standard error"] == pytest.approx(math.sqrt(2 * 0.01**2 / 4)) and not row["holds"]
    assert choi.hierarchy(r, "min", 2.0)[0]["holds"]  # as a loss, adam's lower value is the better one


# ----------------------------------------------------------------------------- algoperf and profiles


def test_profiles_hand_worked_example():
    inf = math.inf
    scores = {"A": {"p1": 2.0, "p2": 10.0, "p3": inf},
              "B": {"p1": 4.0, "p2": 5.0, "p3": inf},
              "C": {"p1": 1.0, "p2": inf, "p3": inf}}
    ratios = profiles.performance_ratios(scores)
    assert ratios["A"] == {"p1": 2.0, "p2": 2.0, "p3": inf}
    assert ratios["B"] == {"p1": 4.0, "p2": 1.0, "p3": inf}
    assert ratios["C"] == {"p1": 1.0, "p2": inf, "p3": inf}
    rho = profiles.performance_profile(scores, [1.0, 2.0, 3.9, 4.0, 1e9])
    np.testing.assert_allclose(rho["A"], [0, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(rho["B"], [1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(rho["C"], [1 / 3] * 5)
    # Area on [1, 4] / 3: A: (2 + 2) / 3 problems / 3; B: (0 + 3) / 9; C: 3 / 9.
    b = profiles.benchmark_score(scores, 4.0)
    assert b == pytest.approx({"A": 4 / 9, "B": 1 / 3, "C": 1 / 3})
    with pytest.raises(ValueError, match="NaN|>= 0"):
        profiles.performance_ratios({"A": {"p": math.nan}})
    with pytest.raises(ValueError, match="every problem"):
        profiles.performance_ratios({"A": {"p": 1.0}, "B": {"q": 1.0}})


def test_algoperf_median_of_best_trial_and_profiles(tmp_path_factory):
    problems = [
        {"name": "moons", "train": {"epochs": 25}, "target_metric": "val_accuracy", "target_value": 0.86},
        {"name": "circles", "data": {"dataset": "circles", "noise": 0.1}, "train": {"epochs": 25},
         "target_metric": "val_loss", "target_value": 0.45},
    ]
    out, record = _run(tmp_path_factory, "algoperf", {"optimizers": ["sgd", "adam"], "problems": problems,
                                                      "studies": 3, "trials": 3})
    _report_files(out, "scores.csv", "studies.csv", "benchmark_scores.csv", "performance_profiles.png")
    by_hand = {}
    for prob, metric, target, mode in (("moons", "val_accuracy", 0.86, "max"), ("circles", "val_loss", 0.45, "min")):
        for opt in ("sgd", "adam"):
            study_best = []
            for k in range(3):
                folder = out / "studies" / prob / opt / f"study{k}"
                rows = _rows(folder / "runs.csv")
                assert len(rows) == 3 and {r["seed"] for r in rows} == {k}
                hist = np.load(folder / "histories.npz")[metric]
                times = []
                for r, h in zip(rows, hist, strict=True):
                    hit = np.nonzero(h >= target if mode == "max" else h <= target)[0]
                    t = float(hit[0] + 1) if len(hit) else math.inf
                    assert r["epochs_to_target"] == t
                    times.append(t)
                study_best.append(min(times))
            by_hand.setdefault(opt, {})[prob] = float(np.median(study_best))
    for opt in by_hand:
        for prob, v in by_hand[opt].items():
            got = record["scores"][opt][prob]
            assert (got is None and v == math.inf) or got == v, (opt, prob)
    want = profiles.benchmark_score(by_hand, 4.0)
    assert record["benchmark_scores"] == pytest.approx(want)
    bench = {r["optimizer"]: float(r["benchmark_score"]) for r in _csv(out / "benchmark_scores.csv")}
    assert bench == pytest.approx(want)
    # study k of an optimizer draws with space seed k: its trials differ from study k+1's
    s0 = _rows(out / "studies" / "moons" / "adam" / "study0" / "runs.csv")
    s1 = _rows(out / "studies" / "moons" / "adam" / "study1" / "runs.csv")
    assert [r["optimizer.learning_rate"] for r in s0] != [r["optimizer.learning_rate"] for r in s1]
    want = S.quasirandom(3, 1, {"optimizer.learning_rate": S.loguniform(1e-4, 1.0)})  # quasi-random by default
    assert [r["optimizer.learning_rate"] for r in s1] == pytest.approx(want.values("optimizer.learning_rate"),
                                                                         rel=1e-12)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("protocol, options, sweep, match", [
    ("deepobz", {}, {}, r"--protocol = 'deepobz'.*did you mean 'deepobs'.*valid choices"),
    ("deepobs", {"rerun_seed": 3}, {}, r"sweep.protocol_options.rerun_seed.*did you mean 'rerun_seeds'"),
    ("deepobs", {"rerun_seeds": "3"}, {}, r"sweep.protocol_options.rerun_seeds = '3' must be an integer"),
    ("deepobs", {"lr_points": 1}, {}, r"sweep.protocol_options.lr_points = 1 is out of range"),
    ("deepobs", {"lr_range": [1.0, 0.1]}, {}, r"sweep.protocol_options.lr_range .* 0 < low < high"),
    ("deepobs", {"metric": "val_acc"}, {}, r"sweep.protocol_options.metric = 'val_acc'.*val_accuracy"),
    ("crowded_valley", {"optimizers": ["adamm"]}, {}, r"sweep.protocol_options.optimizers = 'adamm'.*'adam'"),
    ("crowded_valley", {"space": {"adam": {}}}, {}, r"sweep.protocol_options.space.adam: 'adam' is not one of"),
    ("choi", {"space": {"adam": {"b3": {"loguniform": [0.1, 0.2]}}}}, {},
     r"sweep.protocol_options.space.adam.b3 is not a numeric keyword of adam"),
    ("choi", {"space": {"adam": {"eps": {"loguniform": [0.0, 1.0]}}}}, {},
     r"sweep.protocol_options.space.adam.eps: loguniform low"),
    ("algoperf", {"problems": [{"name": "m", "target_metric": "val_acc", "target_value": 0.9}]}, {},
     r"sweep.protocol_options.problems\[0\].target_metric = 'val_acc'"),
    ("algoperf", {"problems": [{"name": "m", "modle": {}, "target_metric": "val_loss", "target_value": 0.9}]}, {},
     r"unknown key sweep.protocol_options.problems\[0\].modle.*did you mean 'model'"),
    ("algoperf", {"problems": [{"name": "m", "data": {"datset": "moons"}, "target_metric": "val_loss",
                                "target_value": 0.9}]}, {}, r"problems\[0\] \(m\): unknown key data.datset"),
    ("deepobs", {}, {"grid": {"optimizer": {"learning_rate": [0.1]}}},
     r"sweep.grid cannot be combined with protocol 'deepobs'"),
    ("deepobs", {}, {"protocol": "choi"}, r"--protocol 'deepobs' conflicts with sweep.protocol = 'choi'"),
])
def test_bad_options_name_the_key(tmp_path, protocol, options, sweep, match):
    cfg = BASE.replace(sweep=sweep)
    with pytest.raises(ConfigError, match=match):
        protocols.prepare(cfg, protocol, options)
    out = tmp_path / "never"
    with pytest.raises(ConfigError):
        protocols.run_protocol(cfg, out, protocol=protocol, options=options, progress=False)
    assert list(tmp_path.iterdir()) == []  # no results folder, no staging folder


def test_options_from_the_config_sweep_table():
    cfg = BASE.replace(sweep={"protocol": "deepobs", "protocol_options": {"rerun_seeds": 4}})
    module, prepared = protocols.prepare(cfg)
    assert module.NAME == "deepobs" and prepared.options["rerun_seeds"] == 4
    assert prepared.options["lr_points"] == 36 and prepared.options["lr_range"] == [1e-5, 100.0]
    assert prepared.options["optimizers"] == ["sgd"]
    with pytest.raises(ConfigError, match="sweep.protocol = 'nope'.*valid choices: .*algoperf"):
        protocols.prepare(BASE.replace(sweep={"protocol": "nope"}))


# ----------------------------------------------------------------------------- command line


TOML = """
[data]
dataset = "moons"
n_samples = 200
noise = 0.2
random_state = 1
val_fraction = 0.25
[model]
hidden = [8]
[train]
epochs = 15
precision = "float64"
[optimizer]
name = "sgd"
learning_rate = 0.1
[sweep]
protocol = "deepobs"
[sweep.protocol_options]
lr_points = 4
lr_range = [0.01, 1.0]
rerun_seeds = 2
"""


def test_cli_runs_a_protocol_and_rejects_a_bad_name(tmp_path, capsys):
    from jaxopt_lab import cli

    path = tmp_path / "p.toml"
    path.write_text(TOML)
    out = tmp_path / "res"
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 0
    record = json.loads((out / "protocol.json").read_text())
    assert record["protocol"] == "deepobs" and len(_rows(out / "tuning" / "sgd" / "runs.csv")) == 4
    assert (out / "index.html").is_file()
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert cli.main(["sweep", str(path), "--out", str(bad), "--protocol", "crowded"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "conflicts with sweep.protocol = 'deepobs'" in err
    path.write_text(TOML.replace('protocol = "deepobs"', 'protocol = "deepobss"'))
    assert cli.main(["sweep", str(path), "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "sweep.protocol = 'deepobss'" in err and "did you mean 'deepobs'" in err and "Traceback" not in err
    assert not bad.exists()
