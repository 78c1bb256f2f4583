"""Choi et al. (2019), "On Empirical Comparisons of Optimizers for Deep Learning": tune everything.

The paper's point: optimizer comparisons are sensitive to the tuning protocol, and when *every*
hyperparameter is tuned (epsilon included, momenta and betas on the scale of ``1 - x``), the
more general optimizer never loses to one it can emulate. Its inclusion hierarchy
(SGD ⊆ Momentum ⊆ RMSProp, SGD ⊆ Momentum ⊆ Adam, SGD ⊆ Nesterov ⊆ NAdam: Adam with a large
epsilon behaves like momentum SGD, for instance) then predicts the ranking, and the experiments
confirm it. This preset runs a quasi-random search (the paper's method; random search on request)
over each optimizer's full space, reruns the best configuration over seeds and checks the
hierarchy within noise.
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
)
from jaxopt_lab.protocols.ranking import stats
from jaxopt_lab.protocols.search_spaces import check_space, space_rows
from jaxopt_lab.protocols.sweeps import Prepared, SweepRunner, search_and_rerun
from jaxopt_lab.protocols.tables import pm, point_text, write_csv
from jaxopt_lab.report_page import Section

NAME = "choi"
TITLE = "Choi et al.: every hyperparameter tuned, and the inclusion hierarchy"
CITATION = ("D. Choi, C. J. Shallue, Z. Nado, J. Lee, C. J. Maddison, G. E. Dahl. On Empirical Comparisons "
            "of Optimizers for Deep Learning. 2019 (arXiv:1910.05446)")
DESCRIPTION = (
    "Every hyperparameter of each optimizer, epsilon included, is searched quasi-randomly over the spaces below "
    "(momenta and betas as 1 - x on a log scale, as in the paper); the best configuration is rerun over seeds."
)

_LR = {"loguniform": [1e-4, 1.0]}
_ONE_MINUS_MOMENTUM = {"one_minus_loguniform": [1e-3, 1.0]}
_ADAM = {
    "learning_rate": {"loguniform": [1e-5, 1.0]},
    "b1": {"one_minus_loguniform": [1e-3, 1.0]},
    "b2": {"one_minus_loguniform": [1e-4, 1e-1]},
    "eps": {"loguniform": [1e-10, 1.0]},
}

#: Default search spaces. The paper's spaces are per workload (its appendix D); these follow their
#: shape at this project's scale: log-uniform learning rates, ``1 - momentum`` and ``1 - beta``
#: log-uniform, epsilon log-uniform over ten decades.
SPACES: dict[str, dict[str, dict[str, list]]] = {
    "sgd": {"learning_rate": {"loguniform": [1e-4, 10.0]}},
    "momentum": {"learning_rate": {"loguniform": [1e-4, 10.0]}, "momentum": _ONE_MINUS_MOMENTUM},
    "nesterov": {"learning_rate": {"loguniform": [1e-4, 10.0]}, "momentum": _ONE_MINUS_MOMENTUM},
    "rmsprop": {"learning_rate": {"loguniform": [1e-5, 1.0]}, "decay": {"one_minus_loguniform": [1e-4, 1e-1]},
                "momentum": _ONE_MINUS_MOMENTUM, "eps": {"loguniform": [1e-10, 1.0]}},
    "adam": _ADAM, "nadam": _ADAM, "adamw": _ADAM, "amsgrad": _ADAM, "radam": _ADAM, "adamax": _ADAM,
    "adagrad": {"learning_rate": _LR, "initial_accumulator_value": {"loguniform": [1e-3, 1.0]},
                "eps": {"loguniform": [1e-10, 1.0]}},
}

#: (less general, more general) pairs of the paper's inclusion hierarchy, with the transitive ones.
INCLUSIONS = (
    ("sgd", "momentum"), ("sgd", "nesterov"), ("momentum", "rmsprop"), ("momentum", "adam"), ("nesterov", "nadam"),
    ("sgd", "rmsprop"), ("sgd", "adam"), ("sgd", "nadam"),
)

OPTIONS = {
    "optimizers": Option("names", ["sgd", "momentum", "adam"], "optimizers to compare (default: one chain of "
                         "the hierarchy, sgd ⊆ momentum ⊆ adam)"),
    "trials": Option("int", 50, "search trials per optimizer", low=1, high=100_000),
    "search": Option("str", "quasirandom", "how the trials are drawn: quasirandom (a scrambled Halton sequence, "
                     "as in the paper) or random", choices=("quasirandom", "random")),
    "rerun_seeds": Option("int", 10, "seeds 0..n-1 the best configuration is rerun with", low=2, high=100_000),
    "tuning_seed": TUNING_SEED,
    "space_seed": SPACE_SEED,
    "space": Option("table", {}, "per-optimizer spaces merged over the defaults key by key, e.g. "
                    "{ adam = { eps = { loguniform = [1e-8, 1e-2] } } }; needed for optimizers without a default"),
    "tolerance": Option("float", 2.0, "the hierarchy holds when the more general optimizer is worse by less than "
                        "this many standard errors of the difference", low=0.0),
    "metric": METRIC,
}


def prepare(cfg: Config, opts: dict[str, Any]) -> Prepared:
    names = check_optimizers(opts["optimizers"])
    check_per_optimizer(f"{PREFIX}.space", opts["space"], names)
    configs, spaces = {}, {}
    for name in names:
        where = f"{PREFIX}.space.{name}"
        user = opts["space"].get(name, {})
        if not isinstance(user, dict):
            raise ConfigError(f"{where} = {user!r} must be a table of keyword = {{ distribution = [args] }}")
        merged = {**SPACES.get(name, {}), **user}
        if not merged:
            raise ConfigError(
                f"{where} is required: {name} has no default search space (defaults exist for "
                f"{', '.join(SPACES)})"
            )
        spaces[name] = check_space(where, name, merged)
        configs[name] = search_config(cfg, name, spaces[name])
    return Prepared(options=opts, configs=configs, spaces=spaces, shape_hint=opts["rerun_seeds"])


def hierarchy(results: dict[str, dict[str, Any]], mode: str, tolerance: float) -> list[dict[str, Any]]:
    """Each inclusion pair among the compared optimizers: does the more general one do at least as well?

    "Within noise": the difference of means (signed so that positive favours the more general
    optimizer) must be above ``-tolerance`` standard errors of the difference,
    ``sqrt(std_a^2/n_a + std_b^2/n_b)``.
    """
    rows = []
    for sub, sup in INCLUSIONS:
        a, b = results.get(sub), results.get(sup)
        if not a or not b or not a.get("n") or not b.get("n"):
            continue
        diff = (b["mean"] - a["mean"]) * (1 if mode == "max" else -1)
        var = sum((s["std"] ** 2 / s["n"]) if not math.isnan(s["std"]) else 0.0 for s in (a, b))
        se = math.sqrt(var)
        holds = diff >= -tolerance * se
        rows.append({"less general": sub, "more general": sup, "advantage of the more general": diff,
                     "standard error": se, "holds": bool(holds)})
    return rows


def run(p: Prepared, runner: SweepRunner, stage: Path) -> tuple[list[Section], dict[str, Any]]:
    opts = p.options
    tuned = {
        name: search_and_rerun(runner, c, name, p.spaces[name], trials=opts["trials"],
                               space_seed=opts["space_seed"], tuning_seed=opts["tuning_seed"],
                               rerun_seeds=opts["rerun_seeds"], metric=opts["metric"], search=opts["search"])
        for name, c in p.configs.items()
    }
    first = next(iter(tuned.values()))
    column, mode = first.column, first.mode
    results, table_rows, report_rows = {}, [], []
    for name, t in tuned.items():
        s = stats(t.rerun.rows, column) if t.rerun else {}
        results[name] = s
        table_rows.append({"optimizer": name, f"{column}_mean": s.get("mean"), f"{column}_std": s.get("std"),
                           "seeds": s.get("n"), "n_diverged": s.get("n_diverged"),
                           f"tuning_{column}": t.best_row[column] if t.best_row else None,
                           "best": point_text(t.point)})
        report_rows.append({"optimizer": name, column: pm(s),
                            "best hyperparameters": point_text(t.point)})
    write_csv(stage / "results.csv", table_rows)
    spaces = space_rows(p.spaces)
    write_csv(stage / "search_spaces.csv", spaces)
    checks = hierarchy(results, mode, opts["tolerance"])
    write_csv(stage / "hierarchy.csv", checks or [{"note": "no inclusion pair among the optimizers"}])
    names = list(tuned)
    fig = errorbar_figure(
        names, {f"tuned ({opts['trials']} trials)": ([results[n].get("mean", math.nan) for n in names],
                                                     [results[n].get("std", math.nan) for n in names])},
        stage / "tuned_comparison.png", ylabel=column,
        title=f"{column} of each tuned optimizer: mean ± std over {opts['rerun_seeds']} seeds")
    if not checks:
        verdict = "No two of the compared optimizers form an inclusion pair; nothing to check."
    elif all(c["holds"] for c in checks):
        verdict = (f"The inclusion hierarchy held within noise (tolerance {opts['tolerance']:g} standard errors) for "
                   f"every pair: " + "; ".join(f"{c['less general']} ⊆ {c['more general']}" for c in checks) + ".")
    else:
        bad = [f"{c['less general']} ⊆ {c['more general']}" for c in checks if not c["holds"]]
        verdict = (f"The inclusion hierarchy did NOT hold within noise for: {', '.join(bad)}; with a small budget "
                   f"the search may not have found the more general optimizer's good region (the paper's "
                   f"remedy: a larger budget or a better-centred space).")
    how = "Quasi-random (scrambled Halton)" if opts["search"] == "quasirandom" else "Random"
    text = (f"{how} search of {opts['trials']} configurations per optimizer (seed {opts['tuning_seed']}, folders "
            f"tuning/), best by {column} rerun over seeds 0..{opts['rerun_seeds'] - 1} (folders rerun/).")
    if first.note:
        text += f"\n\nNote: {first.note}."
    sections = [
        Section("Tuned optimizers", text, [fig], [("Results", report_rows)]),
        Section("Inclusion hierarchy", verdict, [], [("Pairs", checks)] if checks else []),
        Section("Search spaces", "Searched distributions (1 - x: x drawn log-uniformly, then 1 - x).", [],
                [("Spaces", spaces)]),
    ]
    best = {n: {"point": t.point, "config": t.best_config()} for n, t in tuned.items()}
    return sections, {"metric": column, "mode": mode, "spaces": p.spaces, "results": results, "best": best,
                      "hierarchy": checks}
