"""The report of a config sweep: what ran, which configuration is best and how sure we are, what matters.

`sweep_report(folder, data=None)` writes `index.html` and `summary.md` into a
sweep's results folder, from a finished `ConfigSweepResult` or, without one,
from the folder's own files (`runs.csv`, `summary.json`, `histories.npz`).
Sections, in order:

- **What ran**: the config, groups, devices, compile and run time, diverged runs.
- **Best configurations**: mean and 95% interval over seeds (Student t), best
  first, and which of the top ones a Welch t-test (5%) cannot tell from the best.
- **Slices**: the metric against each swept key, each configuration's mean and
  interval, diverged runs marked.
- **Heatmaps** for every pair of swept keys (cells: mean over every run with
  those two values), the best cell outlined.
- **Parallel coordinates** when more than two keys are swept.
- **Importance**: fANOVA (Hutter et al., ICML 2014) through Optuna's
  `FanovaImportanceEvaluator` when Optuna is installed, else each key's
  main-effect share of the variance (correlation ratio, `correlation_ratio`).
- **Learning curves** of the top configurations: median and interquartile band
  over seeds, training and validation in separate panels (as the optimizer
  benchmarks draw them: Choi et al. 2019, Schmidt et al. 2021).
- **Best of k**: the expected best of k runs (Dodge et al. 2019) with the range
  the best of k random runs falls in 95% of the time.
- **All configurations**: `aggregate.csv`'s table, links to `runs.csv` and `aggregate.csv`.

Sweep kinds that add their own part (successive halving, refill lanes) register a
section builder with `register_section`; each builder gets the `SweepData` and the
folder and returns a `Section` or None when it does not apply.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.report_page import Section, write_report
from jaxopt_lab.sweep import records, search_curves
from jaxopt_lab.sweep.stats import mean_interval, welch_distinguishable

#: Candidate objectives, in order of preference: (column, "max" | "min").
OBJECTIVES = (("final_val_accuracy", "max"), ("best_val_loss", "min"),
              ("final_train_accuracy", "max"), ("final_train_loss", "min"))
#: Configurations shown in the best-configurations table and the learning curves.
TOP_TABLE, TOP_CURVES = 10, 3
#: A swept key with more distinct values than this is binned (equal-count bins) in heatmaps.
MAX_CELLS = 12
_BINS = 8


# ----------------------------------------------------------------------------- data


@dataclass
class SweepData:
    """What a sweep report needs, from a result in memory or from a results folder."""

    rows: list[dict[str, Any]]
    keys: list[str]
    histories: dict[str, np.ndarray]
    summary: dict[str, Any]
    config_text: str
    files: Path | None = None  # the folder holding runs.csv etc., when it is not the one the page is written to

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> SweepData:
        """From a results folder written by `config_sweep.write_results`. The config shown is summary.json's
        `config`, else the folder's `config.json` or `config.toml`, else the best run's config (said so)."""
        folder = Path(folder)
        rows = records.read_runs_csv(folder / "runs.csv")
        summary = records.read_summary_json(folder / "summary.json")
        histories: dict[str, np.ndarray] = {}
        if (folder / "histories.npz").exists():
            with np.load(folder / "histories.npz") as z:
                histories = {k: z[k] for k in z.files if k != "run"}
        config = summary.get("config")
        if not config and (folder / "config.json").is_file():
            config = json.loads((folder / "config.json").read_text())
        text = as_toml(config) if config else ""
        if not text and (folder / "config.toml").is_file():
            text = (folder / "config.toml").read_text()
        if not text and (summary.get("best") or {}).get("config"):
            text = "# the best run's config (this folder does not hold the sweep's own)\n" + as_toml(
                summary["best"]["config"])
        return cls(rows, list(summary.get("swept_keys", [])), histories, summary, text, folder)


def as_toml(d: Mapping[str, Any], prefix: str = "") -> str:
    """A nested mapping as TOML text (tables after plain keys, as TOML requires)."""
    plain = [(k, v) for k, v in d.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
    lines = [f"[{prefix}]"] if prefix and plain else []
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plain]
    out = "\n".join(lines)
    for k, v in tables:
        sub = as_toml(v, f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k))
        out += ("\n\n" if out else "") + sub
    return out


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def objective(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The metric the report ranks by and its direction: validation accuracy, else loss, else training."""
    for column, mode in OBJECTIVES:
        if any(r.get(column) is not None for r in rows):
            return column, mode
    raise ValueError("the rows hold none of the metrics " + ", ".join(c for c, _ in OBJECTIVES))


# ----------------------------------------------------------------------------- statistics


def best_of_k(values: Sequence[float], ks: Sequence[int], mode: str = "max") -> tuple[np.ndarray, ...]:
    """Expected best of k runs drawn with replacement from `values`, and its 2.5% and 97.5% quantiles.

    The expectation is `records.expected_max` / `expected_min` (Dodge et al. 2019). The best of k
    draws is at most the i-th smallest value v_(i) with probability (i/n)^k, so its q-quantile is the
    smallest v_(i) with (i/n)^k >= q -- exact, no resampling. For "min" the order is reversed.
    """
    v = np.sort(np.asarray(values, float))
    if mode == "min":
        v = v[::-1]
    ks = np.asarray(ks, int)
    expected = np.asarray(records.expected_max(v, ks) if mode == "max" else records.expected_min(v, ks))
    n = v.size
    cdf = (np.arange(1, n + 1) / n)[None, :] ** ks[:, None]  # P(best of k is at or before v_(i))

    def quantile(q: float) -> np.ndarray:
        return v[np.argmax(cdf >= q - 1e-12, axis=1)]

    return expected, quantile(0.025), quantile(0.975)


def correlation_ratio(x: np.ndarray, y: np.ndarray, bins: int) -> float:
    """eta^2 = between-bin variance / total variance of `y`, binning `x` into equal-count bins.

    The share of the variance of `y` that `x` alone explains (0: none, 1: all); Pearson's
    correlation ratio, which also catches non-monotone dependence.
    """
    order = np.argsort(x, kind="stable")
    groups = np.array_split(np.asarray(y, float)[order], bins)
    return _between_share(groups, np.asarray(y, float))


def _between_share(groups: Sequence[np.ndarray], y: np.ndarray) -> float:
    total = np.var(y)
    if total == 0:
        return 0.0
    between = sum(len(g) * (g.mean() - y.mean()) ** 2 for g in groups if len(g)) / len(y)
    return float(between / total)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numeric(values: Sequence[Any]) -> bool:
    return all(_is_number(v) for v in values)


def main_effect_shares(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metric: str) -> dict[str, float]:
    """Each key's main-effect share of the metric's variance: the correlation ratio, grouping runs by the
    key's value (or, past `MAX_CELLS` distinct numeric values, by equal-count bins)."""
    y = np.asarray([r[metric] for r in rows], float)
    out = {}
    for k in keys:
        vals = [r[k] for r in rows]
        distinct = sorted(set(vals), key=str)
        if len(distinct) > MAX_CELLS and _numeric(distinct):
            out[k] = correlation_ratio(np.asarray(vals, float), y, _BINS)
        else:
            out[k] = _between_share([y[[v == d for v in vals]] for d in distinct], y)
    return out


def importance(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metric: str,
               mode: str) -> tuple[str, dict[str, float]]:
    """(method, {key: importance}) over the finished runs: fANOVA through Optuna where installed (over the
    configurations' means), else `main_effect_shares` (over the runs)."""
    use = [r for r in rows if not r.get("diverged") and r.get(metric) is not None
           and math.isfinite(float(r[metric]))]
    keys = [k for k in keys if len({r[k] for r in use}) > 1]
    if not keys or len(use) < 4:
        return "none", {}
    if importlib.util.find_spec("optuna") is None:
        return "main-effect share of the variance (correlation ratio)", main_effect_shares(use, keys, metric)
    import optuna

    # one trial per configuration (its mean over seeds): the importance of a key for the expected
    # score, and a forest fitted to tens of points instead of thousands of runs
    means = [{**c.values, metric: float(c.scores.mean())} for c in config_stats(use, keys, metric)]
    if len({m[metric] for m in means}) < 2:
        return "none (every configuration scored the same)", {}
    if len(means) < 4:
        return "main-effect share of the variance (correlation ratio)", main_effect_shares(use, keys, metric)
    return "fANOVA (Optuna's FanovaImportanceEvaluator)", _fanova(optuna, means, keys, metric, mode)


def _fanova(optuna: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metric: str,
            mode: str) -> dict[str, float]:

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {}
    for k in keys:
        vals = [r[k] for r in rows]
        if _numeric(vals):
            lo, hi = float(min(vals)), float(max(vals))
            dists[k] = optuna.distributions.FloatDistribution(lo, hi, log=lo > 0 and hi / lo > 30)
        else:
            dists[k] = optuna.distributions.CategoricalDistribution(sorted({str(v) for v in vals}))
    trials = [optuna.trial.create_trial(
        params={k: (float(r[k]) if _numeric([r[k]]) else str(r[k])) for k in keys}, distributions=dists,
        value=float(r[metric])) for r in rows]
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.add_trials(trials)
        got = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), normalize=True)
    return {k: float(got.get(k, 0.0)) for k in keys}


@dataclass
class ConfigStats:
    """One configuration (values of the swept keys) over its seeds."""

    values: dict[str, Any]
    runs: list[int]
    scores: np.ndarray  # the metric of its finished (not diverged) runs
    n_diverged: int

    @property
    def interval(self) -> tuple[float, float, float]:
        return mean_interval(self.scores)

    def label(self, short: Mapping[str, str]) -> str:
        return ", ".join(f"{short[k]}={plots._tick(v)}" for k, v in self.values.items())

    def describe(self, metric: str) -> str:
        m, lo, hi = self.interval
        lines = [f"{k} = {plots._tick(v)}" for k, v in self.values.items()]
        ci = f" [{lo:.4g}, {hi:.4g}]" if math.isfinite(lo) else ""
        lines.append(f"{metric}: mean {m:.4g}{ci} over {self.scores.size} seed(s)")
        lines.append(f"diverged: {self.n_diverged} of {len(self.runs)}")
        return "\n".join(lines)


def config_stats(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metric: str) -> list[ConfigStats]:
    """The configurations in order of first appearance, each with its runs' scores."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        ok = [r for r in members if not r.get("diverged") and r.get(metric) is not None]
        out.append(ConfigStats(dict(zip(keys, key, strict=True)), [int(r["run"]) for r in members],
                               np.asarray([float(r[metric]) for r in ok], float),
                               sum(bool(r.get("diverged")) for r in members)))
    return out


def ranked(stats: Sequence[ConfigStats], mode: str) -> list[ConfigStats]:
    """Configurations with at least one finished run, best mean first."""
    usable = [s for s in stats if s.scores.size]
    return sorted(usable, key=lambda s: -s.interval[0] if mode == "max" else s.interval[0])


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each key's last dotted part where that is unambiguous (axis labels and legends stay short)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


# ----------------------------------------------------------------------------- sections


SectionBuilder = Callable[["SweepData", Path], "Section | None"]
_EXTRA_SECTIONS: list[SectionBuilder] = []


def register_section(builder: SectionBuilder) -> SectionBuilder:
    """Add a section to every sweep report (after the common ones); `builder(data, folder)` returns
    a `Section`, or None when its sweep kind does not apply. Usable as a decorator."""
    _EXTRA_SECTIONS.append(builder)
    return builder


def _what_ran(data: SweepData, metric: str) -> Section:
    s = data.summary
    n = len(data.rows)
    seeds = len({r.get("seed") for r in data.rows})
    groups = s.get("groups") or []
    text = (f"{n} runs ({len(config_stats(data.rows, data.keys, metric))} configurations x {seeds} seed(s)) "
            f"in {len(groups)} compiled group(s) on {s.get('devices', '?')} device(s), execution "
            f"{s.get('execution', '?')}: {s.get('compile_seconds', math.nan):.1f} s compiling, "
            f"{s.get('wall_seconds', math.nan):.1f} s in all ({s.get('runs_per_second', math.nan):.1f} runs/s). "
            f"{s.get('diverged', sum(bool(r.get('diverged')) for r in data.rows))} run(s) diverged. "
            f"Swept: {', '.join(data.keys) or '(nothing but seeds)'}. Configurations are ranked by {metric}.")
    labels = [str(g) for g in groups if g and str(g) not in ("{}", "")]  # one group of everything has no label
    if labels:
        text += "\n\n" + "\n".join(f"- group: {g}" for g in labels)
    return Section("What ran", text, code=data.config_text)


def _best_section(data: SweepData, ranked_stats: list[ConfigStats], metric: str, mode: str,
                  folder: Path) -> Section:
    top = ranked_stats[:TOP_TABLE]
    rows = []
    best = top[0] if top else None
    same = []
    for i, c in enumerate(top):
        m, lo, hi = c.interval
        dist = None if i == 0 else welch_distinguishable(best.scores, c.scores)
        if dist is False:
            same.append(c)
        rows.append({"rank": i + 1, **c.values, f"{metric} mean": m, "95% low": lo, "95% high": hi,
                     "seeds": int(c.scores.size), "diverged": c.n_diverged,
                     "vs best (Welch 5%)": "" if i == 0 else ("?" if dist is None else
                                                              ("differs" if dist else "not distinguishable"))})
    word = "highest" if mode == "max" else "lowest"
    if best is None:
        text = "Every run diverged or has no score: there is no best configuration."
    elif best.scores.size < 2:
        text = (f"Best by {word} {metric}: {best.label(short_names(data.keys))} ({best.interval[0]:.4g}). "
                "One seed per configuration gives no interval: rerun the top configurations over seeds "
                "to tell them apart.")
    else:
        m, lo, hi = best.interval
        text = (f"Best by {word} mean {metric} over seeds: {best.label(short_names(data.keys))}, "
                f"{m:.4g} (95% interval {lo:.4g} to {hi:.4g}, {best.scores.size} seeds).")
        if same:
            text += (f" {len(same)} of the next {len(top) - 1} configurations are not distinguishable from it "
                     "(Welch's t-test, 5%): " + "; ".join(c.label(short_names(data.keys)) for c in same)
                     + ". Choose among them by cost or robustness, not by the mean.")
        else:
            text += " Every other configuration shown differs from it (Welch's t-test, 5%)."
    return Section("Best configurations", text, tables=[(f"Top {len(top)} by mean {metric}", rows)],
                   links=_links(data.files or folder))


def _links(folder: Path) -> list[tuple[str, str]]:
    return [(name, name) for name in ("runs.csv", "aggregate.csv", "summary.json") if (folder / name).exists()]


def _slices(data: SweepData, stats: list[ConfigStats], metric: str, folder: Path) -> Path:
    keys = data.keys
    short = short_names(keys)
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plots.new_figure(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    hover = []
    for ax, k in zip(axes.ravel(), keys, strict=False):
        distinct = sorted({s.values[k] for s in stats}, key=lambda v: (not _is_number(v), v if _is_number(v)
                                                                        else str(v)))
        numeric = _numeric(distinct)
        logx = numeric and plots._spans_decades(np.asarray(distinct, float)) and min(distinct) > 0
        pos = {v: (float(v) if numeric else i) for i, v in enumerate(distinct)}
        members: dict[Any, list[ConfigStats]] = {}
        for s in stats:
            members.setdefault(s.values[k], []).append(s)
        diverged_x, diverged_n = [], 0
        width = (math.log10(max(distinct) / min(distinct)) if logx else
                 (float(max(distinct)) - float(min(distinct)) if numeric else len(distinct))) or 1.0
        points = []  # (x, mean, low, high): one errorbar call per panel, not one per configuration
        for v, group in members.items():
            for j, s in enumerate(group):
                # spread configurations that share this value sideways, so their bars do not overlap
                off = (j - (len(group) - 1) / 2) * min(0.012, 0.1 / max(len(group), 1)) * width
                x = pos[v] * 10**off if logx else pos[v] + off
                if s.scores.size:
                    m, lo, hi = s.interval
                    points.append((x, m, lo if math.isfinite(lo) else m, hi if math.isfinite(hi) else m))
                    hover.append(plots.Hover.point(ax, x, m, s.describe(metric)))
                if s.n_diverged:
                    diverged_x.append(x)
                    diverged_n += s.n_diverged
        if points:
            px, pm, plo, phi = (np.asarray(c, float) for c in zip(*points, strict=True))
            ax.errorbar(px, pm, yerr=[pm - plo, phi - pm], fmt="o", ms=3, color="C0", ecolor="C0", alpha=0.7,
                        elinewidth=0.8)
        if diverged_x:
            # along the bottom edge (x in data, y in axes units): a diverged run has no score to plot at
            ax.plot(diverged_x, [0.03] * len(diverged_x), "x", color="red", ms=6, transform=ax.get_xaxis_transform(),
                    label=f"diverged ({diverged_n} runs)")
            ax.legend(fontsize=7, loc="best")
        if logx:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(distinct)), [str(v) for v in distinct], rotation=30, ha="right")
        ax.set_xlabel(short[k])
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} by {short[k]}", fontsize=10)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.suptitle("Each configuration: mean and 95% interval over seeds", fontsize=10)
    return plots.save(fig, folder / "slices.png", hover)


def _axis_values(rows: Sequence[Mapping[str, Any]], k: str) -> tuple[list[Any], Callable[[Any], int], list[str]]:
    """The cells of key `k` in a heatmap: its values, or equal-count bins past `MAX_CELLS` values."""
    distinct = sorted({r[k] for r in rows}, key=lambda v: (not _is_number(v), v if _is_number(v) else str(v)))
    if len(distinct) <= MAX_CELLS or not _numeric(distinct):
        index = {v: i for i, v in enumerate(distinct)}
        return distinct, index.__getitem__, [plots._tick(v) for v in distinct]
    edges = np.quantile(np.asarray([r[k] for r in rows], float), np.linspace(0, 1, _BINS + 1))
    edges = np.unique(edges)

    def cell(v: Any) -> int:
        return int(np.clip(np.searchsorted(edges, float(v), side="right") - 1, 0, len(edges) - 2))

    labels = [f"{plots._tick(float(lo))}-{plots._tick(float(hi))}" for lo, hi in zip(edges, edges[1:], strict=False)]
    return labels, cell, labels


def _heatmaps(data: SweepData, metric: str, mode: str, folder: Path) -> list[Path]:
    short = short_names(data.keys)
    figures = []
    for a, b in itertools.combinations(data.keys, 2):
        xs, xcell, xlabels = _axis_values(data.rows, a)
        ys, ycell, ylabels = _axis_values(data.rows, b)
        scores: list[list[list[float]]] = [[[] for _ in xs] for _ in ys]
        diverged = np.zeros((len(ys), len(xs)), int)
        total = np.zeros((len(ys), len(xs)), int)
        for r in data.rows:
            i, j = ycell(r[b]), xcell(r[a])
            total[i, j] += 1
            if r.get("diverged"):
                diverged[i, j] += 1
            elif r.get(metric) is not None:
                scores[i][j].append(float(r[metric]))
        z = np.full((len(ys), len(xs)), np.nan)
        text = [["" for _ in xs] for _ in ys]
        for i in range(len(ys)):
            for j in range(len(xs)):
                m, lo, hi = mean_interval(scores[i][j])
                z[i, j] = m
                if total[i, j]:
                    ci = f" [{lo:.4g}, {hi:.4g}]" if math.isfinite(lo) else ""
                    text[i][j] = (f"{a} = {xlabels[j]}\n{b} = {ylabels[i]}\n{metric}: mean {m:.4g}{ci}\n"
                                  f"runs: {total[i, j]}, diverged: {diverged[i, j]}")
        best = None
        if np.isfinite(z).any():
            flat = np.nanargmax(z) if mode == "max" else np.nanargmin(z)
            best = tuple(int(t) for t in np.unravel_index(flat, z.shape))
        name = f"heatmap_{short[a]}_{short[b]}.png".replace("/", "_")
        figures.append(plots.heatmap(
            xlabels, ylabels, z, folder / name, xlabel=a, ylabel=b, zlabel=f"mean {metric}",
            title=f"Mean {metric} ({short[b]} vs {short[a]}); red: best, grey: all diverged",
            best=best, cell_text=text))
    return figures


def _parallel(data: SweepData, stats: list[ConfigStats], metric: str, mode: str, folder: Path) -> Path:
    short = short_names(data.keys)
    usable = ranked(stats, mode)
    axes_keys = list(data.keys)
    scaled = np.zeros((len(usable), len(axes_keys) + 1))
    tick_text = []
    for j, k in enumerate(axes_keys):
        vals = [s.values[k] for s in usable]
        if _numeric(vals):
            v = np.asarray(vals, float)
            if v.min() > 0 and plots._spans_decades(v):
                v = np.log10(v)
            lo, hi = v.min(), v.max()
            scaled[:, j] = (v - lo) / (hi - lo) if hi > lo else 0.5
            tick_text.append((plots._tick(min(vals)), plots._tick(max(vals))))
        else:
            cats = sorted({str(x) for x in vals})
            scaled[:, j] = [cats.index(str(x)) / max(len(cats) - 1, 1) for x in vals]
            tick_text.append((cats[0], cats[-1]))
    means = np.asarray([s.interval[0] for s in usable])
    lo, hi = means.min(), means.max()
    scaled[:, -1] = (means - lo) / (hi - lo) if hi > lo else 0.5
    tick_text.append((f"{lo:.3g}", f"{hi:.3g}"))
    fig, ax = plots.new_figure(figsize=(max(6.5, 1.6 * (len(axes_keys) + 1)), 4.2))
    cmap = plots.colormap("viridis")
    order = np.argsort(scaled[:, -1] if mode == "max" else -scaled[:, -1])  # best drawn last, on top
    x = np.arange(len(axes_keys) + 1)
    for i in order:
        quality = scaled[i, -1] if mode == "max" else 1 - scaled[i, -1]
        ax.plot(x, scaled[i], color=cmap(quality), alpha=0.6, lw=1)
    ax.plot(x, scaled[0], color="red", lw=2.5)
    hover = [plots.Hover.point(ax, x[-1], scaled[i, -1], s.describe(metric)) for i, s in enumerate(usable)]
    for j, (low, high) in enumerate(tick_text):
        ax.axvline(j, color="k", lw=0.8)
        ax.text(j, -0.06, low, ha="center", va="top", fontsize=7)
        ax.text(j, 1.06, high, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [short[k] for k in axes_keys] + [f"mean {metric}"], fontsize=8)
    ax.tick_params(axis="x", pad=14)
    ax.set_yticks([])
    ax.set_ylim(-0.2, 1.2)
    ax.set_title("Every configuration (colour: mean score; red: the best)", fontsize=10, pad=14)
    return plots.save(fig, folder / "parallel_coordinates.png", hover)


def _importance_section(data: SweepData, metric: str, mode: str, folder: Path) -> Section | None:
    method, imp = importance(data.rows, data.keys, metric, mode)
    if not imp:
        return None
    short = short_names(list(imp))
    order = sorted(imp, key=imp.get)
    fig, ax = plots.new_figure(figsize=(6.5, 0.45 * len(order) + 1.8))
    ax.barh([short[k] for k in order], [imp[k] for k in order], color="C0")
    ax.set_xlabel("importance (share, sums to 1)" if method.startswith("fANOVA") else "share of the variance")
    ax.set_xlim(0, 1)
    ax.set_title(f"Which hyperparameter matters for {metric}", fontsize=10)
    hover = [plots.Hover(ax, 0, i - 0.4, max(imp[k], 0.02), i + 0.4, f"{k}: {imp[k]:.3f}")
             for i, k in enumerate(order)]
    fig_path = plots.save(fig, folder / "importance.png", hover)
    top = max(imp, key=imp.get)
    over = ("the configurations' means over seeds" if method.startswith("fANOVA")
            else f"the {sum(1 for r in data.rows if not r.get('diverged'))} runs")
    text = f"Method: {method}, over {over} (diverged runs left out). {top} matters most ({imp[top]:.0%})."
    if method.startswith("main-effect"):
        text += (" A key's share is the variance of the metric between its values over the total variance "
                 "(interactions are not credited to either key); install Optuna (pip install 'jaxopt-lab[report]') "
                 "for fANOVA.")
    table = [{"key": k, "importance": imp[k]} for k in sorted(imp, key=imp.get, reverse=True)]
    return Section("Hyperparameter importance", text, [fig_path], [("Importance", table)])


def _learning_curves(data: SweepData, top: list[ConfigStats], folder: Path) -> Path | None:
    panels = [(k, t) for k, t in (("train_loss", "training loss"), ("val_loss", "validation loss"),
                                  ("train_accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"))
              if k in data.histories and np.isfinite(np.asarray(data.histories[k], float)).any()]
    if not panels or not top:
        return None
    short = short_names(data.keys)
    ncols = 2
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plots.new_figure(nrows, ncols, figsize=(11, 3.6 * nrows), squeeze=False)
    for ax, (k, title) in zip(axes.ravel(), panels, strict=False):
        every = []
        for i, c in enumerate(top):
            curves = np.asarray(data.histories[k], float)[c.runs]
            curves = np.where(np.isfinite(curves), curves, np.nan)
            if not np.isfinite(curves).any():
                continue
            med, q1, q3 = _quartiles(curves)
            ep = np.arange(1, curves.shape[1] + 1)
            ax.plot(ep, med, color=f"C{i}", label=f"#{i + 1} {c.label(short)} (n={len(c.runs)})")
            if curves.shape[0] > 1:
                ax.fill_between(ep, q1, q3, color=f"C{i}", alpha=0.2)
            every.append(curves.ravel())
        if "loss" in k and every and plots._spans_decades(np.concatenate(every)):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.set_title(title, fontsize=10)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle("Top configurations: median and interquartile band over seeds", fontsize=10)
    return plots.save(fig, folder / "learning_curves.png")


def _quartiles(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    quantile = np.nanquantile if np.isnan(curves).any() else np.quantile  # nanquantile is many times slower
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # epochs where every seed stopped: NaN, as it should be
        q1, med, q3 = quantile(curves, [0.25, 0.5, 0.75], axis=0)
    return med, q1, q3


def _best_of_k_section(data: SweepData, metric: str, mode: str, folder: Path) -> Section | None:
    vals = [float(r[metric]) for r in data.rows if not r.get("diverged") and r.get(metric) is not None]
    if len(vals) < 2:
        return None
    ks = np.unique(np.round(np.geomspace(1, len(vals), num=min(20, len(vals)))).astype(int))
    expected, lo, hi = best_of_k(vals, ks, mode)
    fig, ax = plots.new_figure(figsize=(6.5, 4))
    ax.plot(ks, expected, marker="o", ms=3, color="C0", label="expected best of k")
    ax.fill_between(ks, lo, hi, color="C0", alpha=0.2, label="95% of draws fall here")
    ax.set_xscale("log")
    ax.set_xlabel("runs k (budget)")
    ax.set_ylabel(f"best {metric} of k runs")
    ax.set_title("Expected best of k runs drawn from this sweep", fontsize=10)
    ax.legend(fontsize=8, loc="lower right" if mode == "max" else "upper right")
    hover = [plots.Hover.point(ax, k, e, f"k = {k}\nexpected best {e:.4g}\n95% range [{a:.4g}, {b:.4g}]")
             for k, e, a, b in zip(ks, expected, lo, hi, strict=True)]
    path = plots.save(fig, folder / "best_of_k.png", hover)
    at = {int(k): (e, a, b) for k, e, a, b in zip(ks, expected, lo, hi, strict=True)}
    pick = [k for k in (1, 10, 100) if k in at] or [int(ks[-1])]
    text = ("How good a search with a budget of k runs drawn at random from this sweep's finished runs "
            "would be (Dodge et al. 2019); the band is where the best of k falls 95% of the time. "
            + "; ".join(f"k = {k}: {at[k][0]:.4g} [{at[k][1]:.4g}, {at[k][2]:.4g}]" for k in pick) + ".")
    return Section("Best of k", text, [path])


def _all_configurations(data: SweepData, metric: str, folder: Path) -> Section:
    metrics = [m for m in ("final_val_accuracy", "best_val_loss", "final_train_loss", "final_train_accuracy",
                           "epochs_run") if any(r.get(m) is not None for r in data.rows)]
    agg = records.aggregate(data.rows, data.keys, metrics) if data.keys else []
    keep = [c for c in (agg[0] if agg else {}) if not c.endswith(("_min", "_max", "_n"))]
    table = [{c: row[c] for c in keep} for row in agg]
    text = ("Every configuration's statistics over its seeds, as in aggregate.csv (diverged runs are counted "
            "in n_diverged and left out of the statistics).")
    return Section("All configurations", text, folded_tables=[("Aggregate over seeds", table)],
                   links=_links(data.files or folder))


@register_section
def halving_section(data: SweepData, folder: Path) -> Section | None:
    """Which runs successive halving promoted, rung by rung, and the compute it saved."""
    h = data.summary.get("halving")
    if not h:
        return None
    rows, keys = data.rows, data.keys
    if h.get("method") == "hyperband":
        return _hyperband_section(h, len(rows))
    text = (f"Rungs at epochs {', '.join(map(str, h['rungs']))} (min_epochs {h['min_epochs']}, eta {h['eta']}): "
            f"{h['halted']} of {len(rows)} runs were halted at a rung. Epochs trained: {h['epochs_spent']} of "
            f"{h['epochs_without_halving']} without halving ({h['epochs_spent'] / h['epochs_without_halving']:.0%}). "
            "The runs promoted through every rung are listed below, best first.")
    loss_key = "best_val_loss" if any(r.get("best_val_loss") is not None for r in rows) else "final_train_loss"
    promoted_ids = set(h["promoted_to_last_rung"])
    finalists = sorted((r for r in rows if r["run"] in promoted_ids),
                       key=lambda r: (r.get(loss_key) is None, r.get(loss_key) or 0.0))
    promoted = [{k: r.get(k) for k in ("run", *keys, "seed", loss_key, "final_val_accuracy", "epochs_run")}
                for r in finalists]
    return Section("Successive halving", text, [], [("Rungs", h["per_rung"]),
                                                    ("Promoted through every rung", promoted)])


def _hyperband_section(h: dict, n_runs: int) -> Section:
    """Hyperband's brackets: their rungs, runs, promotions and epochs (`config_sweep.hyperband_summary`)."""
    text = (f"Hyperband, {len(h['brackets'])} bracket(s) (min_epochs {h['min_epochs']}, eta {h['eta']}): "
            f"{h['halted']} of {n_runs} runs were halted at a rung of their bracket. Epochs the results stand for: "
            f"{h['epochs_run']}; epochs computed (each stage retrains its runs): {h['epochs_spent']}; without "
            f"halving: {h['epochs_without_halving']}.")
    brackets = [{"bracket s": b["s"], "rungs": ", ".join(map(str, b["rungs"])) or "-", "runs": b["runs"],
                 "reached / passed": "; ".join(f"{r['epoch']}: {r['reached']} / {r['passed']}" for r in b["per_rung"])
                 or "-", "epochs run": b["epochs_run"], "epochs computed": b["epochs_computed"]}
                for b in h["brackets"]]
    return Section("Hyperband", text, [], [("Brackets", brackets)])


@register_section
def refill_section(data: SweepData, folder: Path) -> Section | None:
    """How many lanes a refilling sweep ran, and how many epochs it spent."""
    lanes = data.summary.get("lanes")
    if data.summary.get("execution") != "refill" or lanes is None:
        return None
    epochs = data.summary.get("epochs_total", sum(int(r.get("epochs_run") or 0) for r in data.rows))
    return Section("Refilling lanes", f"{lanes} lanes trained the {len(data.rows)} runs; a lane whose run stopped "
                   f"(early stopping, divergence or a halving rung) took the next run. {epochs} epochs in all.")


def is_comparison(data: SweepData) -> bool:
    """Whether the folder is a comparison of search methods (`method_comparison`): a row per search."""
    return bool(data.summary.get("compare_search"))


def _comparison_what_ran(data: SweepData) -> Section:
    c = data.summary["compare_search"]
    text = (f"{len(data.rows)} searches: {len(c['methods'])} methods ({', '.join(c['methods'])}) x "
            f"{len(c['search_seeds'])} search seeds, each with a budget of {c['budget_epochs']} epochs "
            f"({c['configs']} runs of {c['epochs']} epochs), {data.summary.get('wall_seconds', math.nan):.0f} s in "
            "all. A row of runs.csv is one search: seed is its search seed, best_val_loss the lowest validation "
            "loss any of its runs reached. Methods are ranked by it below.")
    return Section("What ran", text, code=data.config_text)


def sweep_sections(data: SweepData, folder: str | os.PathLike) -> list[Section]:
    """Every section of a sweep's report, in the order of the module doc; figures are written into `folder`.
    A comparison of search methods gets what ran, the methods ranked, and its own section."""
    folder = Path(folder)
    metric, mode = objective(data.rows)
    if is_comparison(data):
        order = ranked(config_stats(data.rows, data.keys, metric), mode)
        sections = [_comparison_what_ran(data), _best_section(data, order, metric, mode, folder)]
        return sections + [s for s in (b(data, folder) for b in _EXTRA_SECTIONS) if s is not None]
    full = [r for r in data.rows if not r.get("halted")]
    # with halving, runs halted at a rung trained for fewer epochs: rank the ones that went the full budget
    ranking_rows = full if full and len(full) < len(data.rows) else data.rows
    stats = config_stats(ranking_rows, data.keys, metric)
    order = ranked(stats, mode)
    sections = [_what_ran(data, metric), _best_section(data, order, metric, mode, folder)]
    if ranking_rows is not data.rows:
        sections[-1].text += (f" Ranked over the {len(ranking_rows)} runs that trained the full budget "
                              "(halted runs are in the halving section).")
    if data.keys:
        all_stats = config_stats(data.rows, data.keys, metric)
        sections.append(Section("Slices", "Each swept key against the metric; hover a point for its configuration.",
                                [_slices(data, all_stats, metric, folder)]))
        if len(data.keys) >= 2:
            sections.append(Section("Heatmaps", "Mean over every run with the two values (other keys and seeds "
                                    "pooled); hover a cell for its values.", _heatmaps(data, metric, mode, folder)))
        if len(data.keys) > 2:
            sections.append(Section("Parallel coordinates", "One line per configuration; hover its end for values.",
                                    [_parallel(data, all_stats, metric, mode, folder)]))
        imp = _importance_section(data, metric, mode, folder)
        if imp is not None:
            sections.append(imp)
    curves = _learning_curves(data, order[:TOP_CURVES], folder)
    if curves is not None:
        sections.append(Section("Learning curves", f"The top {min(TOP_CURVES, len(order))} configurations, "
                                "training and validation apart.", [curves]))
    bok = _best_of_k_section(data, metric, mode, folder)
    if bok is not None:
        sections.append(bok)
    if data.keys:
        sections.append(_all_configurations(data, metric, folder))
    for builder in _EXTRA_SECTIONS:
        extra = builder(data, folder)
        if extra is not None:
            sections.append(extra)
    return sections


@register_section
def compare_search_section(data: SweepData, folder: Path) -> Section | None:
    """A comparison of search methods (`method_comparison`): best validation loss so far against epochs
    spent, mean and 95% band over search seeds, and each method's result and costs."""
    if not is_comparison(data):
        return None
    c = data.summary["compare_search"]
    curves_path = (data.files or folder) / "curves.csv"
    figures = []
    if curves_path.is_file():
        curves = search_curves.read_curves_csv(curves_path)
        curves = {m: curves[m] for m in c["methods"] if m in curves}
        dataset = ((data.summary.get("config") or {}).get("data") or {}).get("dataset")
        title = "Search methods at equal compute" + (f", {dataset}" if dataset else "")
        figures.append(search_curves.figure(curves, int(c["epochs"]), int(c["budget_epochs"]),
                                            folder / "compare_search.png", title))
    table = []
    for m in c["methods"]:
        s = c["by_method"][m]
        per = s.get("seconds_per_proposal")
        table.append({"method": m, "best_val_loss mean": s["best_val_loss_mean"], "95% low": s["ci95_low"],
                      "95% high": s["ci95_high"], "searches": s["searches"], "configurations": s["configs"],
                      "epochs computed": s["epochs_computed_mean"], "diverged runs": s["diverged_runs_mean"],
                      "seconds per search": s["seconds_mean"], "of which proposing": s["proposal_seconds_mean"],
                      "seconds per proposal": "" if per is None else per})
    text = (f"Every search had {c['budget_epochs']} epochs. Random and quasi-random search: {c['configs']} "
            f"configurations; TPE, GP and CMA-ES: {c['rounds']} rounds of {c['batch']}; PBT: a population of "
            f"{c['configs']} exploiting every {c['pbt_interval']} epochs (quantile {c['quantile']}); halving and "
            f"Hyperband (rungs from {c['min_epochs']} epochs, eta {c['eta']}): as many random configurations as "
            "fit the budget counting the epochs their stages retrain. The curves follow each search's runs in "
            "proposal order; PBT's points are its exploit steps, halving's and Hyperband's their stages. "
            "Bands and intervals: 95%, Student t over search seeds. Seconds are wall time on this machine; "
            "'of which proposing' is the time the sampler took to propose (Optuna's ask).")
    return Section("Search methods at equal compute", text, figures, [("Per method (means over search seeds)",
                                                                       table)],
                   links=[(n, n) for n in ("curves.csv", "runs.csv", "summary.json") if (data.files or folder)
                          .joinpath(n).exists()])


def sweep_report(folder: str | os.PathLike, data: SweepData | None = None, *,
                 source: str | os.PathLike | None = None) -> Path:
    """Write the report of a config sweep into `folder`; returns the `index.html` path.

    `data` is the sweep's `SweepData` when it just ran (`config_sweep.report_data(result)`). Without
    it, the report is built from a finished sweep's files (`runs.csv`, `summary.json`,
    `histories.npz`, `config.json`) in `source` (default: `folder`); re-rendering into a staging
    folder passes the results folder as `source`.
    """
    if data is None:
        data = SweepData.from_folder(source if source is not None else folder)
    return write_report(folder, "Sweep report", sweep_sections(data, folder))
