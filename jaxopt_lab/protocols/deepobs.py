"""DeepOBS (Schneider, Balles & Hennig, ICLR 2019): tune the learning rate alone, rerun the best over seeds.

The DeepOBS baselines fix every hyperparameter but the learning rate at its default, search the
learning rate on a grid of 36 log-spaced values in [1e-5, 1e2] with one seed, pick the value with
the best final validation performance (accuracy where the problem has one, else loss), and rerun
it with 10 seeds; they report learning curves with mean ± std over those seeds, the sensitivity of
the final performance to the learning rate, and a table of final performance per optimizer.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab.config import Config, ConfigError, apply_overrides, to_dict
from jaxopt_lab.protocols.figures import history_curves, mean_std_curves
from jaxopt_lab.protocols.optimizer_configs import optimizer_config
from jaxopt_lab.protocols.options import (
    METRIC,
    METRICS,
    PREFIX,
    TUNING_SEED,
    Option,
    check_optimizers,
    config_optimizer,
)
from jaxopt_lab.protocols.ranking import resolve_metric, stats
from jaxopt_lab.protocols.search_spaces import point_table, swept_point
from jaxopt_lab.protocols.sweeps import Prepared, SweepRunner
from jaxopt_lab.protocols.tables import pm, write_csv
from jaxopt_lab.report_page import Section
from jaxopt_lab.sweep import config_sweep
from jaxopt_lab.sweep.records import best_run

NAME = "deepobs"
TITLE = "DeepOBS: learning rate tuned on a log grid, best rerun over seeds"
CITATION = ("F. Schneider, L. Balles, P. Hennig. DeepOBS: A Deep Learning Optimizer Benchmark Suite. "
            "ICLR 2019 (arXiv:1903.05499)")
DESCRIPTION = (
    "Every hyperparameter but the learning rate keeps its config value; the learning rate is searched on a "
    "log-spaced grid with one seed, the best value by the ranking metric is rerun over several seeds, and the "
    "reruns give the reported mean ± std."
)

OPTIONS = {
    "optimizers": Option("names", config_optimizer, "optimizers to compare (default: the config's)"),
    "lr_range": Option("range", [1e-5, 1e2], "learning-rate grid bounds (DeepOBS: 1e-5..1e2)"),
    "lr_points": Option("int", 36, "log-spaced learning rates in the grid (DeepOBS: 36)", low=2, high=10_000),
    "tuning_seed": TUNING_SEED,
    "rerun_seeds": Option("int", 10, "seeds 0..n-1 the best learning rate is rerun with (DeepOBS: 10)",
                          low=1, high=100_000),
    "metric": METRIC,
}


def prepare(cfg: Config, opts: dict[str, Any]) -> Prepared:
    names = check_optimizers(opts["optimizers"])
    configs = {}
    for name in names:
        c = optimizer_config(cfg, name, inherit=False)
        if "learning_rate" not in c.optimizer.kwargs:
            raise ConfigError(f"{PREFIX}.optimizers: {name} has no learning_rate to tune")
        configs[name] = c
    lo, hi = opts["lr_range"]
    lrs = [float(v) for v in np.geomspace(lo, hi, opts["lr_points"])]
    return Prepared(options=opts, configs=configs, learning_rates=lrs, shape_hint=opts["rerun_seeds"])


@dataclasses.dataclass
class _Outcome:
    """The sweeps' results: the grid per optimizer, the metric they are ranked by, the reruns."""

    tuning: dict[str, config_sweep.ConfigSweepResult]
    column: str
    mode: str
    note: str
    reruns: dict[str, config_sweep.ConfigSweepResult]
    best: dict[str, dict[str, Any] | None]


def _tune_and_rerun(p: Prepared, runner: SweepRunner) -> _Outcome:
    """The learning-rate grid of every optimizer (one seed), then each best learning rate over the seeds."""
    opts = p.options
    tuning: dict[str, config_sweep.ConfigSweepResult] = {}
    for name, c in p.configs.items():
        table = {"seeds": [opts["tuning_seed"]], "grid": {"optimizer": {"learning_rate": p.learning_rates}}}
        tuning[name] = runner.run(c, table, f"tuning/{name}", kind="tuning", optimizer=name)
    # One metric for every optimizer, resolved over all grids: their rows are ranked alike.
    column, mode, note = resolve_metric(opts["metric"], [r for t in tuning.values() for r in t.rows])

    reruns: dict[str, config_sweep.ConfigSweepResult] = {}
    best: dict[str, dict[str, Any] | None] = {}
    for name, c in p.configs.items():
        res = tuning[name]
        row = best_run(res.rows, column, mode)
        if row is None:
            best[name] = None
            continue
        point = swept_point(row, res.plan.swept_keys)
        reruns[name] = runner.run(c, point_table(point, range(opts["rerun_seeds"])), f"rerun/{name}",
                                  kind="rerun", optimizer=name, best=point)
        best[name] = {
            "learning_rate": point["optimizer.learning_rate"], "tuning_run": row["run"], "tuning_value": row[column],
            "config": to_dict(apply_overrides(c, point)),
        }
    return _Outcome(tuning, column, mode, note, reruns, best)


def _results_table(p: Prepared, o: _Outcome) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(results.csv rows, the report's rows, stats per optimizer and metric) of the reruns."""
    column = o.column
    metrics = [m for m in (column, *(f"final_{k}" for k in METRICS))
               if any(r.get(m) is not None for res in o.reruns.values() for r in res.rows)]
    metrics = list(dict.fromkeys(metrics))
    table_rows, report_rows, results = [], [], {}
    for name in p.configs:
        b = o.best[name]
        rr = o.reruns.get(name)
        st = {m: stats(rr.rows, m) for m in metrics} if rr else {}
        results[name] = st
        csv_row: dict[str, Any] = {"optimizer": name, "learning_rate": b and b["learning_rate"],
                                   f"tuning_{column}": b and b["tuning_value"],
                                   "seeds": p.options["rerun_seeds"] if rr else 0,
                                   "n_diverged": st[column]["n_diverged"] if st else None}
        rep_row = dict(csv_row)
        for m in metrics:
            s = st.get(m, {})
            csv_row[f"{m}_mean"], csv_row[f"{m}_std"] = s.get("mean"), s.get("std")
            rep_row[m] = pm(s)
        table_rows.append(csv_row)
        report_rows.append(rep_row)
    return table_rows, report_rows, results


def _sensitivity(p: Prepared, o: _Outcome) -> tuple[list[dict], dict[str, tuple[list[float], list[float]]]]:
    """(sensitivity.csv rows, figure series) of the tuning metric over the grid; diverged runs are gaps."""
    sens_rows = []
    series = {}
    for name, res in o.tuning.items():
        ys = [math.nan if r["diverged"] or r.get(o.column) is None else r[o.column] for r in res.rows]
        series[name] = (p.learning_rates, ys)
        for lr, r, y in zip(p.learning_rates, res.rows, ys, strict=True):
            sens_rows.append({"optimizer": name, "learning_rate": lr, o.column: y, "diverged": r["diverged"]})
    return sens_rows, series


def _figures(p: Prepared, o: _Outcome, series: dict[str, Any], stage: Path) -> list[Path]:
    """The learning-rate sensitivity, then the reruns' learning curves (mean ± std over seeds)."""
    from jaxopt_lab import plots  # matplotlib: only when a figure is drawn (protocols.figures)

    opts = p.options
    figures = [plots.line_figure(series, stage / "lr_sensitivity.png", xlabel="learning rate", ylabel=o.column,
                                 logx=True, marker="o",
                                 title=f"Learning-rate sensitivity ({o.column}, seed {opts['tuning_seed']})")]
    for key in ("val_accuracy", "val_loss", "train_loss", "train_accuracy"):
        curves = {n: c for n, r in o.reruns.items() if (c := history_curves(r, key)) is not None}
        if curves:
            positive = all(np.nanmin(np.where(np.isfinite(c), c, np.nan)) > 0 for c in curves.values())
            figures.append(mean_std_curves(
                curves, stage / f"learning_curves_{key}.png", ylabel=key, logy=key.endswith("loss") and positive,
                title=f"{key}: mean ± std over {opts['rerun_seeds']} seeds at the best learning rate"))
    return figures


def _text(p: Prepared, o: _Outcome) -> str:
    opts = p.options
    failed = [n for n, b in o.best.items() if b is None]
    text = (
        f"Each optimizer's learning rate was searched on {len(p.learning_rates)} log-spaced values in "
        f"[{p.learning_rates[0]:g}, {p.learning_rates[-1]:g}] with seed {opts['tuning_seed']} (folders tuning/); "
        f"the best by {o.column} ({'higher' if o.mode == 'max' else 'lower'} is better) was rerun with seeds "
        f"0..{opts['rerun_seeds'] - 1} (folders rerun/). Cells are mean ± std over the reruns' non-diverged seeds."
    )
    if o.note:
        text += f"\n\nNote: {o.note}."
    if failed:
        text += f"\n\nEvery tuning run diverged or had no {o.column} for: {', '.join(failed)} (no rerun)."
    return text


def run(p: Prepared, runner: SweepRunner, stage: Path) -> tuple[list[Section], dict[str, Any]]:
    o = _tune_and_rerun(p, runner)
    table_rows, report_rows, results = _results_table(p, o)
    write_csv(stage / "results.csv", table_rows)
    sens_rows, series = _sensitivity(p, o)
    write_csv(stage / "sensitivity.csv", sens_rows)
    figures = _figures(p, o, series, stage)
    sections = [Section("Results", _text(p, o), figures, [("Best learning rate and rerun results", report_rows)])]
    summary = {"metric": o.column, "mode": o.mode, "learning_rates": p.learning_rates, "best": o.best,
               "results": results}
    return sections, summary
