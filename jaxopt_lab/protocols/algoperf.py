"""AlgoPerf (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms"): time to target.

AlgoPerf scores a training algorithm by how fast it reaches a fixed validation target on each of
several workloads. Under its external-tuning ruleset, each algorithm gets several independent
*studies*; a study is a (quasi-)random search of a fixed number of trials, and its score is its fastest
trial's time to the target. The algorithm's score on a workload is the median over studies
(infinite when the target is not reached), and the scores across workloads are summarized by
performance profiles (Dolan & Moré 2002) and their normalized area up to ratio 4, the benchmark
score (`profiles.benchmark_score`).

Here a workload is a config (the base config with per-problem overrides), time is counted in
epochs (every optimizer pays the same per epoch on these models, and epochs are deterministic
where wall-clock time on a shared CPU is not), and a trial's time to target comes from its
per-epoch history.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import config as config_mod
from jaxopt_lab.config import Config, ConfigError
from jaxopt_lab.protocols import profiles
from jaxopt_lab.protocols.optimizer_configs import search_config
from jaxopt_lab.protocols.options import PREFIX, Option, check_optimizers, check_per_optimizer, config_optimizer
from jaxopt_lab.protocols.search_spaces import check_space, random_table, space_rows, swept_point
from jaxopt_lab.protocols.sweeps import Prepared, SweepRunner
from jaxopt_lab.protocols.tables import point_text, write_csv
from jaxopt_lab.report_page import Section
from jaxopt_lab.sweep import config_sweep

NAME = "algoperf"
TITLE = "AlgoPerf: time to target, studies of quasi-random search, performance profiles"
CITATION = ("G. E. Dahl, F. Schneider, Z. Nado, N. Agarwal, C. S. Sastry, P. Hennig, S. Medapati, R. Eschenhagen, "
            "P. Kasimbeg, D. Suo, J. Bae, J. Gilmer, A. L. Peirson, B. Khan, R. Anil, M. Rabbat, S. Krishnan, "
            "D. Snider, E. Amid, K. Chen, C. J. Maddison, R. Vasudev, M. Badura, A. Garg, P. Mattson. "
            "Benchmarking Neural Network Training Algorithms. 2023 (arXiv:2306.07179)")
DESCRIPTION = (
    "Score of a trial: epochs until its validation metric first reaches the problem's target (inf if never). "
    "Score of a study: its best trial. Score of an optimizer on a problem: the median over studies. Performance "
    "profiles compare those scores across problems; the benchmark score is the area under a profile on [1, tau_max] "
    "divided by tau_max - 1 (AlgoPerf's definition, tau_max = 4)."
)

#: Built-in problems: small classification workloads that run in seconds, with targets a tuned
#: optimizer reaches well within the epoch budget.
DEFAULT_PROBLEMS = [
    {"name": "moons", "data": {"dataset": "moons", "n_samples": 400, "noise": 0.2, "val_fraction": 0.25},
     "model": {"hidden": [16]}, "train": {"loss": "cross_entropy", "epochs": 100, "batch_size": 0},
     "target_metric": "val_accuracy", "target_value": 0.9},
    {"name": "circles", "data": {"dataset": "circles", "n_samples": 400, "noise": 0.1, "val_fraction": 0.25},
     "model": {"hidden": [16]}, "train": {"loss": "cross_entropy", "epochs": 100, "batch_size": 0},
     "target_metric": "val_accuracy", "target_value": 0.9},
    {"name": "digits", "data": {"dataset": "digits", "standardize": True, "val_fraction": 0.2},
     "model": {"hidden": [32]}, "train": {"loss": "cross_entropy", "epochs": 30, "batch_size": 64},
     "target_metric": "val_accuracy", "target_value": 0.95},
]
PROBLEM_KEYS = ("name", "data", "model", "train", "target_metric", "target_value")

#: The default search space: the learning rate, log-uniform in [1e-4, 1].
DEFAULT_SPACE = {"learning_rate": {"loguniform": [1e-4, 1.0]}}

OPTIONS = {
    "optimizers": Option("names", config_optimizer, "optimizers to compare (default: the config's)"),
    "problems": Option("list", DEFAULT_PROBLEMS, "problems: tables with name, data/model/train overrides of the "
                       "base config, target_metric and target_value (default: moons, circles, digits)"),
    "studies": Option("int", 5, "independent studies per optimizer and problem (AlgoPerf: 5)", low=1, high=1000),
    "trials": Option("int", 20, "search trials per study (AlgoPerf's external tuning: 20 at first, "
                     "later 5)", low=1, high=100_000),
    "search": Option("str", "quasirandom", "how a study draws its trials: quasirandom (a scrambled Halton "
                     "sequence, AlgoPerf's baselines) or random", choices=("quasirandom", "random")),
    "space": Option("table", {}, "per-optimizer search spaces replacing the default "
                    "{ learning_rate = { loguniform = [1e-4, 1.0] } }"),
    "space_seed": Option("int", 0, "study k draws its trials with seed space_seed + k and trains with seed k",
                         low=0),
    "tau_max": Option("float", 4.0, "upper end of the profile's ratio axis and of the score's integral "
                      "(AlgoPerf: 4)", low=1.0 + 1e-9),
}


@dataclasses.dataclass
class Problem:
    name: str
    configs: dict[str, Config]
    target_metric: str
    target_value: float
    overrides: dict[str, Any]


def _problem(cfg: Config, i: int, raw: dict[str, Any], names: list[str], spaces: dict[str, Any],
             seen: set[str]) -> Problem:
    where = f"{PREFIX}.problems[{i}]"
    for key in raw:
        if key not in PROBLEM_KEYS:
            raise ConfigError(f"unknown key {where}.{key}{config_mod.closest(key, PROBLEM_KEYS)}; valid keys: "
                              + ", ".join(PROBLEM_KEYS))
    name = raw.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"{where}.name = {name!r} must be a non-empty name without '/'")
    if name in seen:
        raise ConfigError(f"{where}.name = {name!r} is used by two problems")
    seen.add(name)
    metric = raw.get("target_metric")
    if metric not in config_sweep.TARGET_METRICS:
        raise config_mod.choices_error(f"{where}.target_metric", metric, config_sweep.TARGET_METRICS)
    value = raw.get("target_value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}.target_value = {value!r} must be a finite number")
    overrides = {}
    for section in ("data", "model", "train"):
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}.{section} = {table!r} must be a table of [{section}] keys")
        overrides.update({f"{section}.{k}": v for k, v in table.items()})
    try:
        pcfg = config_mod.apply_overrides(cfg, overrides)
        config_mod.validate(pcfg)
    except ConfigError as e:
        raise ConfigError(f"{where} ({name}): {e}") from None
    if metric.startswith("val_") and pcfg.data.val_fraction == 0:
        raise ConfigError(f"{where}.target_metric = {metric!r} needs a validation split (data.val_fraction > 0)")
    configs = {}
    for opt in names:
        configs[opt] = search_config(pcfg, opt, spaces[opt])
    return Problem(name, configs, metric, float(value), overrides)


def prepare(cfg: Config, opts: dict[str, Any]) -> Prepared:
    names = check_optimizers(opts["optimizers"])
    check_per_optimizer(f"{PREFIX}.space", opts["space"], names)
    spaces = {n: check_space(f"{PREFIX}.space.{n}", n, opts["space"].get(n, DEFAULT_SPACE))
              for n in names}
    seen: set[str] = set()
    problems = [_problem(cfg, i, raw, names, spaces, seen) for i, raw in enumerate(opts["problems"])]
    return Prepared(options=opts, problems=problems, spaces=spaces, shape_hint=opts["trials"])


def run(p: Prepared, runner: SweepRunner, stage: Path) -> tuple[list[Section], dict[str, Any]]:
    opts = p.options
    names = list(p.spaces)
    scores: dict[str, dict[str, float]] = {n: {} for n in names}
    study_rows, detail = [], {}
    for prob in p.problems:
        for opt in names:
            study_scores = []
            for k in range(opts["studies"]):
                table = {"seeds": [k], opts["search"]: random_table(p.spaces[opt], opts["trials"],
                                                                    opts["space_seed"] + k),
                         "target_metric": prob.target_metric, "target_value": prob.target_value}
                res = runner.run(prob.configs[opt], table, f"studies/{prob.name}/{opt}/study{k}", kind="study",
                                 optimizer=opt, problem=prob.name, study=k)
                times = [r["epochs_to_target"] for r in res.rows]
                best_i = int(np.argmin(times))
                study_scores.append(float(times[best_i]))
                study_rows.append({"problem": prob.name, "optimizer": opt, "study": k,
                                   "score_epochs": float(times[best_i]), "best_trial": res.rows[best_i]["run"],
                                   "reached": int(np.isfinite(times).sum()), "trials": len(times),
                                   "best": point_text(swept_point(res.rows[best_i], res.plan.swept_keys))})
            scores[opt][prob.name] = float(np.median(study_scores))
            detail[f"{prob.name}/{opt}"] = study_scores
    ratios = profiles.performance_ratios(scores)
    bscore = profiles.benchmark_score(scores, opts["tau_max"])
    write_csv(stage / "studies.csv", study_rows)
    score_rows = []
    for prob in p.problems:
        op = ">=" if config_sweep.TARGET_METRICS[prob.target_metric] == "max" else "<="
        score_rows.append({"problem": prob.name, "target": f"{prob.target_metric} {op} {prob.target_value:g}",
                           **{f"{n} (epochs)": scores[n][prob.name] for n in names},
                           **{f"{n} ratio": ratios[n][prob.name] for n in names}})
    write_csv(stage / "scores.csv", score_rows)
    bench_rows = [{"optimizer": n, "benchmark_score": bscore[n],
                   "problems_reached": sum(math.isfinite(scores[n][q.name]) for q in p.problems)} for n in names]
    write_csv(stage / "benchmark_scores.csv", bench_rows)
    fig = profiles.profile_figure(scores, stage / "performance_profiles.png", tau_max=opts["tau_max"],
                                  title=f"Performance profiles ({len(p.problems)} problems, median of "
                                        f"{opts['studies']} studies)")
    text = (
        f"{opts['studies']} studies per optimizer and problem, each a {opts['search'].replace('quasi', 'quasi-')} "
        f"search of {opts['trials']} trials "
        f"(study k: space seed {opts['space_seed']} + k, training seed k; folders studies/). Scores are epochs to "
        f"the target, inf when never reached; ratio = score / best score on the problem. Benchmark score = "
        f"area under the profile on [1, {opts['tau_max']:g}] / {opts['tau_max'] - 1:g}: 1 = fastest on every "
        "problem, 0 = never within the factor."
    )
    sections = [
        Section("Scores and performance profiles", text, [fig],
                [("Median over studies of the best trial's epochs to target", score_rows),
                 ("Benchmark scores", bench_rows)]),
        Section("Studies", "Each study's best trial.", [], [("Studies", study_rows)]),
        Section("Search spaces", "", [], [("Spaces", space_rows(p.spaces))]),
    ]
    summary = {
        "scores": scores, "ratios": ratios, "benchmark_scores": bscore, "study_scores": detail,
        "problems": [{"name": q.name, "overrides": q.overrides, "target_metric": q.target_metric,
                      "target_value": q.target_value} for q in p.problems],
        "spaces": p.spaces, "note": "null scores are infinite: the target was never reached",
    }
    return sections, summary
