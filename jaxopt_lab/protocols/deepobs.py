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

from jaxopt_lab.config import Config, ConfigError
from jaxopt_lab.protocols import common
from jaxopt_lab.protocols.common import Option
from jaxopt_lab.report import Section
from jaxopt_lab.sweep import config_sweep
from jaxopt_lab.sweep import results as results_mod

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
    "optimizers": Option("names", common.config_optimizer, "optimizers to compare (default: the config's)"),
    "lr_range": Option("range", [1e-5, 1e2], "learning-rate grid bounds (DeepOBS: 1e-5..1e2)"),
    "lr_points": Option("int", 36, "log-spaced learning rates in the grid (DeepOBS: 36)", low=2, high=10_000),
    "tuning_seed": common.TUNING_SEED,
    "rerun_seeds": Option("int", 10, "seeds 0..n-1 the best learning rate is rerun with (DeepOBS: 10)",
                          low=1, high=100_000),
    "metric": common.METRIC,
}


@dataclasses.dataclass
class Prepared:
    options: dict[str, Any]
    configs: dict[str, Config]
    learning_rates: list[float]
    shape_hint: int


def prepare(cfg: Config, opts: dict[str, Any]) -> Prepared:
    names = common.check_optimizers(opts["optimizers"])
    configs = {}
    for name in names:
        c = common.optimizer_config(cfg, name, inherit=False)
        if "learning_rate" not in c.optimizer.kwargs:
            raise ConfigError(f"{common.PREFIX}.optimizers: {name} has no learning_rate to tune")
        configs[name] = c
    lo, hi = opts["lr_range"]
    lrs = [float(v) for v in np.geomspace(lo, hi, opts["lr_points"])]
    return Prepared(options=opts, configs=configs, learning_rates=lrs, shape_hint=opts["rerun_seeds"])


def run(p: Prepared, runner: common.SweepRunner, stage: Path) -> tuple[list[Section], dict[str, Any]]:
    opts = p.options
    tuning: dict[str, config_sweep.ConfigSweepResult] = {}
    for name, c in p.configs.items():
        table = {"seeds": [opts["tuning_seed"]], "grid": {"optimizer": {"learning_rate": p.learning_rates}}}
        tuning[name] = runner.run(c, table, f"tuning/{name}", kind="tuning", optimizer=name)
    column, mode, note = common.resolve_metric(opts["metric"], [r for t in tuning.values() for r in t.rows])

    reruns: dict[str, config_sweep.ConfigSweepResult] = {}
    best: dict[str, Any] = {}
    for name, c in p.configs.items():
        res = tuning[name]
        row = results_mod.best_run(res.rows, column, mode)
        if row is None:
            best[name] = None
            continue
        point = common.swept_point(row, res.plan.swept_keys)
        reruns[name] = runner.run(c, common.point_table(point, range(opts["rerun_seeds"])), f"rerun/{name}",
                                  kind="rerun", optimizer=name, best=point)
        best[name] = {
            "learning_rate": point["optimizer.learning_rate"], "tuning_run": row["run"], "tuning_value": row[column],
            "config": config_sweep.to_dict(config_sweep.apply_overrides(c, point)),
        }

    metrics = [m for m in (column, *(f"final_{k}" for k in common.METRICS))
               if any(r.get(m) is not None for res in reruns.values() for r in res.rows)]
    metrics = list(dict.fromkeys(metrics))
    table_rows, report_rows, results = [], [], {}
    for name in p.configs:
        b = best[name]
        rr = reruns.get(name)
        st = {m: common.stats(rr.rows, m) for m in metrics} if rr else {}
        results[name] = st
        csv_row: dict[str, Any] = {"optimizer": name, "learning_rate": b and b["learning_rate"],
                                   f"tuning_{column}": b and b["tuning_value"],
                                   "seeds": opts["rerun_seeds"] if rr else 0,
                                   "n_diverged": st[column]["n_diverged"] if st else None}
        rep_row = dict(csv_row)
        for m in metrics:
            s = st.get(m, {})
            csv_row[f"{m}_mean"], csv_row[f"{m}_std"] = s.get("mean"), s.get("std")
            rep_row[m] = common.pm(s)
        table_rows.append(csv_row)
        report_rows.append(rep_row)
    common.write_csv(stage / "results.csv", table_rows)

    # Sensitivity: the tuning metric of every grid point; diverged runs are gaps.
    sens_rows = []
    series = {}
    for name, res in tuning.items():
        ys = [math.nan if r["diverged"] or r.get(column) is None else r[column] for r in res.rows]
        series[name] = (p.learning_rates, ys)
        for lr, r, y in zip(p.learning_rates, res.rows, ys, strict=True):
            sens_rows.append({"optimizer": name, "learning_rate": lr, column: y, "diverged": r["diverged"]})
    common.write_csv(stage / "sensitivity.csv", sens_rows)
    from jaxopt_lab import plots

    figures = [plots.line_figure(series, stage / "lr_sensitivity.png", xlabel="learning rate", ylabel=column,
                                 logx=True, marker="o",
                                 title=f"Learning-rate sensitivity ({column}, seed {opts['tuning_seed']})")]
    for key in ("val_accuracy", "val_loss", "train_loss", "train_accuracy"):
        curves = {n: c for n, r in reruns.items() if (c := common.history_curves(r, key)) is not None}
        if curves:
            positive = all(np.nanmin(np.where(np.isfinite(c), c, np.nan)) > 0 for c in curves.values())
            figures.append(common.mean_std_curves(
                curves, stage / f"learning_curves_{key}.png", ylabel=key, logy=key.endswith("loss") and positive,
                title=f"{key}: mean ± std over {opts['rerun_seeds']} seeds at the best learning rate"))

    failed = [n for n, b in best.items() if b is None]
    text = (
        f"Each optimizer's learning rate was searched on {len(p.learning_rates)} log-spaced values in "
        f"[{p.learning_rates[0]:g}, {p.learning_rates[-1]:g}] with seed {opts['tuning_seed']} (folders tuning/); "
        f"the best by {column} ({'higher' if mode == 'max' else 'lower'} is better) was rerun with seeds "
        f"0..{opts['rerun_seeds'] - 1} (folders rerun/). Cells are mean ± std over the reruns' non-diverged seeds."
    )
    if note:
        text += f"\n\nNote: {note}."
    if failed:
        text += f"\n\nEvery tuning run diverged or had no {column} for: {', '.join(failed)} (no rerun)."
    sections = [
        Section("Results", text, figures[:1] + figures[1:], [("Best learning rate and rerun results", report_rows)]),
    ]
    summary = {"metric": column, "mode": mode, "learning_rates": p.learning_rates, "best": best,
               "results": results}
    return sections, summary
