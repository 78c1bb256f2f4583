"""Descending through a Crowded Valley (Schmidt, Schneider & Hennig, ICML 2021): defaults against tuning.

The paper benchmarks optimizers at several tuning budgets: "one-shot" (the optimizer's default
hyperparameters, no tuning at all) and random searches of 25 ("small budget") or 50 ("large
budget") configurations drawn from log-uniform spaces, each best configuration rerun over 10
seeds. Its question is how much tuning gains over the defaults, and whether a tuned optimizer
beats another's defaults. Learning rates are searched log-uniformly in [1e-4, 1] here; the
paper's per-optimizer spaces also cover some momenta / betas, which the `space` option adds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jaxopt_lab.config import Config, ConfigError
from jaxopt_lab.protocols.figures import errorbar_figure
from jaxopt_lab.protocols.optimizer_configs import search_config
from jaxopt_lab.protocols.options import (
    METRIC,
    PREFIX,
    SPACE_SEED,
    TUNING_SEED,
    Option,
    check_optimizers,
    check_per_optimizer,
    config_optimizer,
)
from jaxopt_lab.protocols.ranking import stats
from jaxopt_lab.protocols.search_spaces import check_space, point_table, space_rows
from jaxopt_lab.protocols.sweeps import Prepared, SweepRunner, search_and_rerun
from jaxopt_lab.protocols.tables import pm, point_text, write_csv
from jaxopt_lab.report_page import Section

NAME = "crowded_valley"
TITLE = "Crowded Valley: one-shot defaults against a small-budget random search"
CITATION = ("R. M. Schmidt, F. Schneider, P. Hennig. Descending through a Crowded Valley - Benchmarking Deep "
            "Learning Optimizers. ICML 2021 (arXiv:2007.01547)")
DESCRIPTION = (
    "Each optimizer runs twice over the rerun seeds: once with its default hyperparameters ('one-shot') and once "
    "with the best of a random search of `budget` configurations (one seed each). The gain of tuning is the "
    "difference of the two means, positive when tuning helped."
)

#: The default search space: the learning rate, log-uniform in [1e-4, 1] (the paper's range).
DEFAULT_SPACE = {"learning_rate": {"loguniform": [1e-4, 1.0]}}

OPTIONS = {
    "optimizers": Option("names", config_optimizer, "optimizers to compare (default: the config's)"),
    "budget": Option("int", 25, "random-search trials per optimizer (the paper's small budget: 25)",
                     low=1, high=100_000),
    "rerun_seeds": Option("int", 10, "seeds 0..n-1 for the one-shot run and the tuned rerun (paper: 10)",
                          low=1, high=100_000),
    "tuning_seed": TUNING_SEED,
    "space_seed": SPACE_SEED,
    "space": Option("table", {}, "per-optimizer search spaces replacing the default, e.g. "
                    "{ adam = { learning_rate = { loguniform = [1e-5, 1e-1] }, b1 = { one_minus_loguniform = "
                    "[1e-2, 0.5] } } }"),
    "defaults": Option("table", {}, "per-optimizer one-shot values, e.g. { adam = { learning_rate = 3e-4 } }"),
    "metric": METRIC,
}


def prepare(cfg: Config, opts: dict[str, Any]) -> Prepared:
    names = check_optimizers(opts["optimizers"])
    check_per_optimizer(f"{PREFIX}.space", opts["space"], names)
    check_per_optimizer(f"{PREFIX}.defaults", opts["defaults"], names)
    configs, spaces = {}, {}
    for name in names:
        spaces[name] = check_space(f"{PREFIX}.space.{name}", name, opts["space"].get(name, DEFAULT_SPACE))
        user = opts["defaults"].get(name, {})
        if not isinstance(user, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in user.values()):
            raise ConfigError(f"{PREFIX}.defaults.{name} = {user!r} must be a table of numbers")
        # The searched keywords are set explicitly (to their defaults) so that the one-shot run and
        # the search trace the same values and share one compiled program.
        configs[name] = search_config(cfg, name, spaces[name], user, kwargs_where=f"{PREFIX}.defaults.{name}")
    return Prepared(options=opts, configs=configs, spaces=spaces, shape_hint=opts["rerun_seeds"])


def run(p: Prepared, runner: SweepRunner, stage: Path) -> tuple[list[Section], dict[str, Any]]:
    opts = p.options
    seeds = range(opts["rerun_seeds"])
    oneshot, tuned = {}, {}
    for name, c in p.configs.items():
        oneshot[name] = runner.run(c, point_table({}, seeds), f"oneshot/{name}", kind="oneshot",
                                   optimizer=name, hyperparameters=dict(c.optimizer.kwargs))
        tuned[name] = search_and_rerun(
            runner, c, name, p.spaces[name], trials=opts["budget"], space_seed=opts["space_seed"],
            tuning_seed=opts["tuning_seed"], rerun_seeds=opts["rerun_seeds"], metric=opts["metric"])
    first = next(iter(tuned.values()))
    column, mode = first.column, first.mode

    table_rows, report_rows, results = [], [], {}
    for name in p.configs:
        s_one = stats(oneshot[name].rows, column)
        t = tuned[name]
        s_tuned = stats(t.rerun.rows, column) if t.rerun else {}
        gain = math.nan
        if s_tuned and s_one["n"] and s_tuned["n"]:
            gain = (s_tuned["mean"] - s_one["mean"]) * (1 if mode == "max" else -1)
        results[name] = {"oneshot": s_one, "tuned": s_tuned, "gain": gain, "best": t.point,
                         "best_config": t.best_config(),
                         "oneshot_hyperparameters": dict(p.configs[name].optimizer.kwargs)}
        table_rows.append({
            "optimizer": name, "oneshot_mean": s_one["mean"], "oneshot_std": s_one["std"],
            "oneshot_diverged": s_one["n_diverged"], "tuned_mean": s_tuned.get("mean"),
            "tuned_std": s_tuned.get("std"), "tuned_diverged": s_tuned.get("n_diverged"), "gain": gain,
            "best": point_text(t.point),
        })
        report_rows.append({"optimizer": name, f"one-shot {column}": pm(s_one),
                            f"tuned {column}": pm(s_tuned), "gain of tuning": gain,
                            "one-shot hyperparameters": point_text(
                                {f"optimizer.{k}": v for k, v in p.configs[name].optimizer.kwargs.items()}),
                            "tuned hyperparameters": point_text(t.point)})
    write_csv(stage / "results.csv", table_rows)
    write_csv(stage / "search_spaces.csv", space_rows(p.spaces))
    names = list(p.configs)
    fig = errorbar_figure(
        names, {"one-shot (defaults)": ([results[n]["oneshot"]["mean"] for n in names],
                                        [results[n]["oneshot"]["std"] for n in names]),
                f"tuned (budget {opts['budget']})": ([results[n]["tuned"].get("mean", math.nan) for n in names],
                                                     [results[n]["tuned"].get("std", math.nan) for n in names])},
        stage / "oneshot_vs_tuned.png", ylabel=column,
        title=f"{column}: mean ± std over {opts['rerun_seeds']} seeds")
    text = (
        f"One-shot: each optimizer's default hyperparameters (folders oneshot/). Tuned: the best of {opts['budget']} "
        f"random configurations (seed {opts['tuning_seed']}, folders tuning/), rerun over seeds 0.."
        f"{opts['rerun_seeds'] - 1} (folders rerun/). Gain of tuning = tuned mean - one-shot mean of {column}, "
        f"signed so that positive means tuning helped."
    )
    if first.note:
        text += f"\n\nNote: {first.note}."
    sections = [
        Section("One-shot against tuned", text, [fig], [("Results", report_rows)]),
        Section("Search spaces", "Random search distributions (1 - x: x drawn log-uniformly, then 1 - x).", [],
                [("Spaces", space_rows(p.spaces))]),
    ]
    return sections, {"metric": column, "mode": mode, "spaces": p.spaces, "results": results}
