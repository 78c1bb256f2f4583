"""Paired comparison of two groups of runs: two sweeps, or two values of one key within a sweep.

    jaxopt-lab compare OUT_A OUT_B --metric best_val_loss
    jaxopt-lab compare OUT --by optimizer.name          # two optimizers swept in one sweep

Pairing. Runs are matched by *configuration* -- the values of every swept key except the
one that tells the groups apart (`--by`) and ``seed`` -- and then by ``seed``: run ``(c, s)``
of group A is paired with run ``(c, s)`` of group B. With common random numbers (the same
seed gives the same initialization, data order and dropout masks, docs/guide.md), the paired
difference removes the seed-to-seed variation both groups share, so far fewer seeds are
needed than for comparing two independent means. Groups that do not pair -- different swept
keys, a configuration missing from one side, different seeds -- are refused (`Unpaired`).

Per configuration, over its paired seeds ``d_i = a_i - b_i`` (A minus B, in the metric's
units):

- ``mean_diff``, and a 95% bootstrap interval of the mean (``scipy.stats.bootstrap``,
  percentile method, `resamples` resamples, generator seeded with `seed`: the same numbers
  give the same interval every time);
- the Wilcoxon signed-rank test of ``d`` (``scipy.stats.wilcoxon``, two-sided; with every
  ``d_i = 0`` the groups are identical and ``p = 1``);
- ``wins``/``ties``/``losses`` of A: seeds on which A is better / equal / worse (lower is
  better for losses, higher for accuracies).

Across configurations, a performance profile (Dolan & More 2002,
`jaxopt_lab.protocols.profiles`) treats each configuration as a problem and each group as a
solver, scored by the mean over seeds (losses as they are, accuracies as ``1 - accuracy``).

Runs whose metric is missing or not finite are left out with their partner, and counted in
``dropped``. A diverged run takes part with the metric it recorded (its values are frozen at
the last finite epoch), so a diverging setting counts against its group.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import plots
from jaxopt_lab._checks import ConfigError, closest
from jaxopt_lab.protocols import profiles
from jaxopt_lab.protocols.tables import write_csv
from jaxopt_lab.report_page import text_cell
from jaxopt_lab.sweep.records import staged_folder

__all__ = ["Unpaired", "Comparison", "paired_stats", "compare_frames", "split_by", "format_table", "write"]

#: Default number of bootstrap resamples.
RESAMPLES = 10_000


class Unpaired(ValueError):
    """The two groups cannot be paired: the message says which configuration or seed is unmatched."""


def higher_is_better(metric: str) -> bool:
    """Accuracies are maximized, everything else (losses, epochs) minimized."""
    return "accuracy" in metric


def paired_stats(a: Sequence[float], b: Sequence[float], *, maximize: bool = False, seed: int = 0,
                 resamples: int = RESAMPLES) -> dict[str, Any]:
    """Statistics of the paired differences ``a - b`` (see the module docstring).

    Args:
      a: group A's metric on each paired seed.
      b: group B's metric on the same seeds, in the same order.
      maximize: whether higher values are better (decides wins and losses).
      seed: seed of the bootstrap's random generator.
      resamples: bootstrap resamples.

    Returns:
      ``n``, ``mean_a``, ``mean_b``, ``mean_diff``, ``ci_low``, ``ci_high`` (95% bootstrap
      interval of the mean difference; NaN with fewer than 2 pairs), ``wilcoxon_stat`` and
      ``p_value`` (NaN with no pair), ``wins``, ``ties``, ``losses`` (of A).

    Examples:
      >>> st = paired_stats([0.30, 0.25, 0.41, 0.38], [0.35, 0.30, 0.40, 0.45])
      >>> st["wins"], st["ties"], st["losses"]
      (3, 0, 1)
      >>> round(st["mean_diff"], 6)
      -0.04
      >>> bool(st["ci_low"] <= st["mean_diff"] <= st["ci_high"])
      True
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = a - b
    n = int(d.size)
    better = d > 0 if maximize else d < 0
    out: dict[str, Any] = {
        "n": n,
        "mean_a": float(a.mean()) if n else math.nan,
        "mean_b": float(b.mean()) if n else math.nan,
        "mean_diff": float(d.mean()) if n else math.nan,
        "ci_low": math.nan, "ci_high": math.nan, "wilcoxon_stat": math.nan, "p_value": math.nan,
        "wins": int(better.sum()), "ties": int((d == 0).sum()), "losses": int((~better & (d != 0)).sum()),
    }
    if n >= 2 and np.ptp(d) > 0:
        boot = stats.bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=resamples, method="percentile",
                               rng=np.random.default_rng(seed))
        out["ci_low"], out["ci_high"] = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    elif n >= 1:
        # Every difference equal: every resample has the same mean.
        out["ci_low"] = out["ci_high"] = float(d[0]) if n >= 2 else math.nan
    if n and not (d == 0).all():
        w = stats.wilcoxon(a, b, alternative="two-sided")
        out["wilcoxon_stat"], out["p_value"] = float(w.statistic), float(w.pvalue)
    elif n:
        out["wilcoxon_stat"], out["p_value"] = 0.0, 1.0
    return out


@dataclass
class Comparison:
    """What `compare_frames` found.

    Attributes:
      labels: the names of groups A and B.
      metric: the compared column of ``runs.csv``.
      keys: the configuration keys the runs are matched by.
      rows: one dict per configuration: its key values, then `paired_stats`' fields and ``dropped``.
      profile: per group, ``rho(tau)`` at `taus` (empty when a score is negative).
      taus: the performance-profile abscissae.
      total: wins/ties/losses summed over configurations.
    """

    labels: tuple[str, str]
    metric: str
    keys: list[str]
    rows: list[dict[str, Any]]
    profile: dict[str, np.ndarray] = field(default_factory=dict)
    taus: np.ndarray = field(default_factory=lambda: np.linspace(1.0, 4.0, 61))
    total: dict[str, int] = field(default_factory=dict)


def _plain(v: Any) -> Any:
    """A DataFrame cell as a Python value (NA -> None) usable as a dict key."""
    import pandas as pd

    if v is pd.NA or v is None:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _metric_values(df: Any, metric: str) -> np.ndarray:
    col = df[metric]
    return np.asarray(col.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _index(df: Any, keys: Sequence[str], metric: str, side: str) -> dict[tuple, dict[int, float]]:
    """{configuration: {seed: metric}}, refusing a repeated (configuration, seed)."""
    values = _metric_values(df, metric)
    out: dict[tuple, dict[int, float]] = {}
    for i in range(len(df)):
        conf = tuple(_plain(df[k].iloc[i]) for k in keys)
        seed = int(df["seed"].iloc[i])
        seeds = out.setdefault(conf, {})
        if seed in seeds:
            raise Unpaired(f"{side}: configuration {_describe(keys, conf)} has seed {seed} twice, so runs cannot "
                           "be paired by seed")
        seeds[seed] = float(values[i])
    return out


def _describe(keys: Sequence[str], conf: tuple) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in zip(keys, conf, strict=True)) + "}" if keys else "(the only one)"


def _check_metric(metric: str, frames: Sequence[Any]) -> None:
    for df in frames:
        numeric = [c for c in df.columns if str(df[c].dtype) in ("Float64", "Int64") and c not in ("run", "seed")]
        if metric not in numeric:
            raise ConfigError(f"--metric {metric!r} is not a numeric column of runs.csv{closest(metric, numeric)}; "
                              f"valid choices: {', '.join(numeric)}")


def compare_frames(a: Any, b: Any, keys: Sequence[str], metric: str, labels: tuple[str, str] = ("A", "B"), *,
                   seed: int = 0, resamples: int = RESAMPLES) -> Comparison:
    """Pair the runs of DataFrames `a` and `b` by `keys` and ``seed`` and compare `metric`.

    Args:
      a: group A's runs table (`jaxopt_lab.results.load(...).runs`, or any with ``seed`` and `keys`).
      b: group B's runs table.
      keys: the configuration keys to match by.
      metric: the numeric column to compare.
      labels: names of the two groups.
      seed: bootstrap seed.
      resamples: bootstrap resamples.

    Returns:
      A `Comparison`.

    Raises:
      Unpaired: a configuration of one group is missing from the other, or has other seeds.
    """

    _check_metric(metric, (a, b))
    ia, ib = _index(a, keys, metric, labels[0]), _index(b, keys, metric, labels[1])
    for conf in ia:
        if conf not in ib:
            raise Unpaired(f"configuration {_describe(keys, conf)} is in {labels[0]} but not in {labels[1]}")
    for conf in ib:
        if conf not in ia:
            raise Unpaired(f"configuration {_describe(keys, conf)} is in {labels[1]} but not in {labels[0]}")
    maximize = higher_is_better(metric)
    rows = []
    for conf, seeds_a in ia.items():
        seeds_b = ib[conf]
        if set(seeds_a) != set(seeds_b):
            raise Unpaired(f"configuration {_describe(keys, conf)} has seeds {sorted(seeds_a)} in {labels[0]} but "
                           f"{sorted(seeds_b)} in {labels[1]}: paired statistics need the same seeds")
        order = sorted(seeds_a)
        pa = np.asarray([seeds_a[s] for s in order])
        pb = np.asarray([seeds_b[s] for s in order])
        ok = np.isfinite(pa) & np.isfinite(pb)
        st = paired_stats(pa[ok], pb[ok], maximize=maximize, seed=seed, resamples=resamples)
        rows.append({**dict(zip(keys, conf, strict=True)), **st, "dropped": int((~ok).sum())})
    total = {k: sum(r[k] for r in rows) for k in ("wins", "ties", "losses")}
    comp = Comparison(labels=labels, metric=metric, keys=list(keys), rows=rows, total=total)
    scores = {}
    for label, side in zip(labels, ("mean_a", "mean_b"), strict=True):
        per = {}
        for i, r in enumerate(rows):
            v = r[side]
            score = (1.0 - v) if maximize else v
            per[f"c{i}"] = math.inf if math.isnan(score) else score
        scores[label] = per
    if rows and all(v >= 0 for per in scores.values() for v in per.values()):
        comp.profile = profiles.performance_profile(scores, comp.taus)
    return comp


def split_by(df: Any, key: str) -> tuple[tuple[str, str], Any, Any]:
    """The two groups of one sweep's runs that differ in `key`: ((label_a, label_b), runs_a, runs_b).

    Raises:
      Unpaired: `key` does not take exactly two values.
    """
    values = list(dict.fromkeys(_plain(v) for v in df[key]))
    if len(values) != 2:
        raise Unpaired(f"--by {key!r} takes {len(values)} value(s) in this sweep ({', '.join(map(str, values))}); "
                       "comparing within one sweep needs exactly two")
    col = df[key].astype(object)
    a, b = (df[col.map(_plain) == v].reset_index(drop=True) for v in values)
    return (str(values[0]), str(values[1])), a, b


def _columns(comp: Comparison) -> list[str]:
    return [*comp.keys, "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "p_value", "wins", "ties",
            "losses", "dropped"]


def format_table(comp: Comparison) -> str:
    """The comparison as a text table (A minus B), with the totals and the profile's score."""
    cols = _columns(comp)
    table = [[text_cell(r.get(c)) for c in cols] for r in comp.rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(cols)]
    a, b = comp.labels
    lines = [f"{comp.metric}: A = {a}, B = {b}; differences are A - B "
             f"({'higher' if higher_is_better(comp.metric) else 'lower'} is better); 95% bootstrap interval; "
             "Wilcoxon signed-rank p",
             "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    t = comp.total
    lines.append(f"A wins {t['wins']}, ties {t['ties']}, loses {t['losses']} of {sum(t.values())} paired runs")
    return "\n".join(lines)


def write(out: str | os.PathLike, comp: Comparison) -> list[Path]:
    """Write ``compare.csv`` (one row per configuration) and ``compare.png`` into `out` atomically."""

    a, b = comp.labels
    with staged_folder(out) as tmp:
        rows = [{"group_a": a, "group_b": b, "metric": comp.metric, **{c: r.get(c) for c in _columns(comp)}}
                for r in comp.rows]
        write_csv(tmp / "compare.csv", rows)
        labelled = len(comp.rows) <= 40  # beyond that, tick labels would overlap: rows are in compare.csv's order
        height = min(14.0, max(3.5, 0.35 * len(comp.rows) + 1.5))
        fig, (ax_d, ax_p) = plots.new_figure(1, 2, figsize=(11, height))
        y = np.arange(len(comp.rows))
        mean = np.asarray([r["mean_diff"] for r in comp.rows], dtype=float)
        lo = np.asarray([r["ci_low"] for r in comp.rows], dtype=float)
        hi = np.asarray([r["ci_high"] for r in comp.rows], dtype=float)
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        ax_d.errorbar(mean, y, xerr=err, fmt="o", capsize=3)
        ax_d.axvline(0.0, color="0.5", lw=1)
        if labelled:
            ax_d.set_yticks(y, [", ".join(f"{k}={text_cell(r[k])}" for k in comp.keys) or "all" for r in comp.rows],
                            fontsize=7)
        else:
            ax_d.set_ylabel("configuration (row of compare.csv)")
        ax_d.set_xlabel(f"{comp.metric}: {a} - {b} (mean, 95% bootstrap interval)")
        ax_d.set_title("Paired differences per configuration")
        if comp.profile:
            for i, (label, rho) in enumerate(comp.profile.items()):
                ax_p.step(comp.taus, rho, where="post", color=f"C{i}", label=label)
            ax_p.set_ylim(-0.02, 1.02)
            ax_p.legend(fontsize=8)
        else:
            ax_p.text(0.5, 0.5, "no profile: negative scores", ha="center", transform=ax_p.transAxes)
        score = "1 - " + comp.metric if higher_is_better(comp.metric) else comp.metric
        ax_p.set_xlabel(f"tau: ratio to the better group's mean {score}")
        ax_p.set_ylabel("fraction of configurations")
        ax_p.set_title("Performance profile")
        plots.save(fig, tmp / "compare.png")
    return [Path(out) / "compare.csv", Path(out) / "compare.png"]


def config_value(config: Mapping[str, Any] | None, key: str) -> Any:
    """The value of dotted `key` (``optimizer.name``) in a TOML-shaped config dict; None if absent."""
    node: Any = config or {}
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
