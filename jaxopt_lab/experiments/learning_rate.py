"""Experiment 4 (the moons and optimizers-and-overfitting lectures): the learning rate's regimes, and momentum.

The moons lecture: "too large causes divergence; too small slows progress".
The optimizers-and-overfitting lecture:
"small learning rate converges [slowly]; large learning rate: unstable and
diverges ... try different learning rates". This experiment trains the moons
MLP (2-20-2 ReLU, He-normal init, full batch, softmax cross-entropy) with
heavy-ball SGD over a log-spaced grid of learning rates, several momenta and
several seeds -- one config sweep (`jaxopt_lab.sweep.config_sweep`), so every
run shares one compiled program -- and reads off

* the momentum-free slice: final training loss against the learning rate
  (median and interquartile band over seeds), the fraction of runs that
  diverged (a non-finite or > 1e6 loss), and the loss curves of a few rates;
* the learning-rate x momentum heatmap of final validation accuracy. Heavy
  ball with momentum mu takes steps of about lr / (1 - mu) once its velocity
  has built up (Polyak, 1964; Goodfellow et al., *Deep Learning*, 8.3.2), so the
  good region should slide to smaller rates as mu grows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib as mpl
import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size
from jaxopt_lab.report_page import Section
from jaxopt_lab.sweep import config_sweep, records

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"rates": np.geomspace(1e-3, 1e3, 7), "momenta": (0.0, 0.9), "seeds": 2, "epochs": 40},
    "demo": {"rates": np.geomspace(1e-4, 1e3, 15), "momenta": (0.0, 0.5, 0.9, 0.99), "seeds": 4, "epochs": 100},
    "full": {"rates": np.geomspace(1e-4, 1e3, 29), "momenta": (0.0, 0.5, 0.8, 0.9, 0.95, 0.99), "seeds": 16,
             "epochs": 300},
}
LR = "optimizer.learning_rate"
MU = "optimizer.momentum"


def sweep_config(size: str) -> Config:
    """The experiment as a config with a `[sweep]` section (what `jaxopt-lab sweep` would run)."""
    sz = SIZES[size]
    return Config(
        data=DataConfig(dataset="moons", n_samples=500, noise=0.25, random_state=7, val_fraction=0.2),
        model=ModelConfig(hidden=(20,), activation="relu", init="he_normal"),
        train=TrainConfig(epochs=sz["epochs"], batch_size=0),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.0}),
        sweep={
            "seeds": sz["seeds"],
            "grid": {"optimizer": {"learning_rate": [float(v) for v in sz["rates"]],
                                   "momentum": [float(m) for m in sz["momenta"]]}},
        },
    )


def _fmt_lr(v: float) -> str:
    return f"{v:.3g}"


def accuracy_heatmap(xs: list[str], ys: list[str], z: np.ndarray, path: Path, *, xlabel: str, ylabel: str,
                     zlabel: str, title: str) -> Path:
    """Cells coloured by `z[i, j]` at (xs[j], ys[i]); NaN cells (every seed diverged) grey and marked "div".

    Text is dark on light cells and light on dark ones, so every value stays readable.
    """
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#9e9e9e")
    fig, ax = plots.new_figure(figsize=(max(6.0, 0.62 * len(xs) + 2.5), max(3.2, 0.55 * len(ys) + 2.0)))
    finite = z[np.isfinite(z)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(z), origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(xs)), xs, rotation=45, ha="right")
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax).set_label(zlabel)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[i, j]
            if not np.isfinite(v):
                ax.text(j, i, "div", ha="center", va="center", fontsize=7, color="black")
                continue
            light = (v - vmin) / max(vmax - vmin, 1e-12) > 0.6
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if light else "white")
    return plots.save(fig, path)


class RateSlice(NamedTuple):
    """The momentum-free runs, per learning rate (index j of `rates`)."""

    plain: list[dict[str, Any]]  # the aggregate row of each rate
    med: np.ndarray  # median final training loss over seeds
    q25: list[float]  # its quartiles over the seeds that did not diverge
    q75: list[float]
    div_frac: np.ndarray  # fraction of seeds that diverged
    best_i: int  # the rate of the lowest median loss
    first_div: float | None  # the smallest rate with a diverged seed
    all_div: float | None  # the smallest rate at which every seed diverged
    target: float  # the loss that counts as "there": twice the best median
    reach: dict[float, float]  # median epochs to `target` per rate (inf: never)
    runs: dict[float, list[int]]  # the indices of each rate's runs in the sweep


def _momentum_free_slice(rows: list[dict], hist: dict[str, np.ndarray], rates: list[float], cell: dict) -> RateSlice:
    plain = [cell[(0.0, lr)] for lr in rates]
    med = np.asarray([a["final_train_loss_median"] for a in plain])
    q25, q75 = [], []
    for lr in rates:
        vals = [r["final_train_loss"] for r in rows
                if r[MU] == 0.0 and r[LR] == lr and not r["diverged"] and r["final_train_loss"] is not None]
        q25.append(np.percentile(vals, 25) if vals else np.nan)
        q75.append(np.percentile(vals, 75) if vals else np.nan)
    div_frac = np.asarray([a["n_diverged"] / a["n"] for a in plain])
    finite = np.isfinite(med)
    best_i = int(np.nanargmin(np.where(finite, med, np.nan)))
    first_div = next((lr for lr, d in zip(rates, div_frac, strict=True) if d > 0), None)
    all_div = next((lr for lr, d in zip(rates, div_frac, strict=True) if d == 1.0), None)
    # "Slow": epochs the momentum-free runs need to bring the training loss to twice the best final loss.
    target = 2.0 * float(med[best_i])
    runs = {lr: [i for i, r in enumerate(rows) if r[MU] == 0.0 and r[LR] == lr] for lr in rates}
    reach = {lr: float(np.median(records.steps_to_target(hist["train_loss"][runs[lr]], target, mode="min")))
             for lr in rates}
    return RateSlice(plain, med, q25, q75, div_frac, best_i, first_div, all_div, target, reach, runs)


def _loss_by_rate_figure(path: Path, rates: list[float], sl: RateSlice, seeds: int, epochs: int) -> Path:
    """Median final loss (band: quartiles) and the diverged fraction against the learning rate."""
    best_lr = rates[sl.best_i]
    fig, ax = plots.new_figure(figsize=(8, 4.6))
    ax.plot(rates, sl.med, "o-", color="C0", label=f"median final training loss (momentum 0, {seeds} seeds)")
    ax.fill_between(rates, sl.q25, sl.q75, color="C0", alpha=0.25, label="interquartile range over seeds")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=np.nanmin(sl.q25) / 3)  # room for the legend below the curve
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(f"training cross-entropy after {epochs} epochs (log scale)")
    ax.axvline(best_lr, color="C2", ls="--", lw=1, label=f"best rate {_fmt_lr(best_lr)}")
    ax2 = ax.twinx()
    ax2.bar(rates, sl.div_frac, width=np.asarray(rates) * 0.35, color="C3", alpha=0.45, label="fraction diverged")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("fraction of seeds that diverged", color="C3")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower left")
    ax.set_title("Too small is slow, too large diverges (SGD without momentum, moons MLP)")
    return plots.save(fig, path)


def _loss_curves_figure(path: Path, rates: list[float], sl: RateSlice, hist: dict[str, np.ndarray]) -> Path:
    """Training loss over epochs of a few rates: the smallest, around the best, the first that diverges."""
    best_i = sl.best_i
    picks = sorted({rates[0], rates[max(best_i - 4, 0)], rates[best_i], *(r for r in (sl.first_div,) if r is not None),
                    rates[min(best_i + 2, len(rates) - 1)]})
    curves = {f"lr {_fmt_lr(lr)}": hist["train_loss"][sl.runs[lr]] for lr in picks}
    return plots.curves_with_bands(
        curves, path, ylabel="training cross-entropy (log scale)", xlabel="epoch",
        title="Training loss by learning rate (momentum 0; curves end where runs diverge)", logy=True,
    )


def _accuracy_grid(rates: list[float], momenta: list[float], cell: dict) -> np.ndarray:
    """Mean final validation accuracy per (momentum, rate); NaN where every seed diverged."""
    z = np.full((len(momenta), len(rates)), np.nan)
    for i, mu in enumerate(momenta):
        for j, lr in enumerate(rates):
            a = cell[(mu, lr)]
            z[i, j] = a["final_val_accuracy_mean"] if a["n_diverged"] < a["n"] else np.nan
    return z


def _best_rate_per_momentum(z: np.ndarray, rates: list[float], momenta: list[float], cell: dict) -> list[dict]:
    """Per momentum, the rate of the best accuracy (the largest such rate on a tie)."""
    best_rows = []
    for i, mu in enumerate(momenta):
        ok = [(z[i, j], -j) for j in range(len(rates)) if np.isfinite(z[i, j])]
        if not ok:
            continue
        acc, neg_j = max(ok)
        lr = rates[-neg_j]
        best_rows.append({
            "momentum": mu, "best learning rate": lr, "effective step lr/(1-mu)": lr / (1 - mu),
            "mean validation accuracy": float(acc),
            "rates with a diverged seed": sum(1 for r2 in rates if cell[(mu, r2)]["n_diverged"] > 0),
        })
    return best_rows


def _findings_text(res, rates: list[float], momenta: list[float], sl: RateSlice, best_rows: list[dict],
                   seeds: int, epochs: int) -> str:
    med, best_i, reach = sl.med, sl.best_i, sl.reach
    best_lr, best_loss = rates[best_i], float(med[best_i])
    first_div, all_div = sl.first_div, sl.all_div
    top = max(best_rows, key=lambda r: r["mean validation accuracy"])
    reach_txt = ", ".join(
        f"{_fmt_lr(lr)}: {'never' if math.isinf(reach[lr]) else f'{reach[lr]:.0f}'}"
        for lr in rates[: best_i + 1]
    )
    above = [j for j in range(best_i + 1, len(rates)) if np.isfinite(med[j])]
    rise = (f", and rises again above it, to {med[above[-1]]:.3f} at {_fmt_lr(rates[above[-1]])}"
            if above and med[above[-1]] > best_loss else "")
    ratio = best_rows[0]["best learning rate"] / best_rows[-1]["best learning rate"] if len(best_rows) > 1 else 1.0
    return (
        f"{len(res.rows)} runs ({len(rates)} learning rates from {_fmt_lr(rates[0])} to {_fmt_lr(rates[-1])} x "
        f"{len(momenta)} momenta x {seeds} seeds, {epochs} full-batch epochs each) ran as one "
        f"config sweep in {res.stats.wall_seconds:.1f} s ({res.stats.compile_seconds:.1f} s of it compiling).\n\n"
        f"Without momentum, the median final training loss is {med[0]:.3f} at the smallest rate "
        f"({_fmt_lr(rates[0])}), falls to {best_loss:.3f} at the best rate {_fmt_lr(best_lr)}{rise}. "
        f"Too small is slow: the median number of epochs to bring the loss down to {sl.target:.3f} (twice the best "
        f"final loss) is, per rate, {reach_txt}. Too large diverges: "
        + (f"the first rate with a diverged seed is {_fmt_lr(first_div)}"
           + (f" and every seed diverges from {_fmt_lr(all_div)} on" if all_div is not None else "")
           if first_div is not None else "no rate of this grid diverged")
        + f" (diverged fraction per rate: {', '.join(f'{d:.0%}' for d in sl.div_frac)}).\n\n"
        "Best rate per momentum (by mean final validation accuracy): "
        + "; ".join(f"mu = {r['momentum']:g}: lr {_fmt_lr(r['best learning rate'])}, lr/(1-mu) = "
                    f"{_fmt_lr(r['effective step lr/(1-mu)'])}, accuracy {r['mean validation accuracy']:.3f}"
                    for r in best_rows)
        + (f". The best rate at mu = {best_rows[-1]['momentum']:g} is {ratio:.3g} times "
           f"{'smaller' if ratio >= 1 else 'larger'} than without momentum" if len(best_rows) > 1 else "")
        + f"; the best cell overall is lr {_fmt_lr(top['best learning rate'])} with momentum {top['momentum']:g} "
        f"({top['mean validation accuracy']:.3f})."
    )


def run(out: Path, size: str = "demo") -> Section:
    """Sweep learning rate x momentum x seeds; plot the regimes and the heatmap; state what was measured."""
    check_size(size, SIZES)
    out = Path(out)
    cfg = sweep_config(size)
    seeds, epochs = cfg.sweep["seeds"], cfg.train.epochs
    res = config_sweep.run_sweep(cfg, progress=False)
    rates = sorted({r[LR] for r in res.rows})
    momenta = sorted({r[MU] for r in res.rows})
    agg = records.aggregate(res.rows, [MU, LR], ["final_train_loss", "final_val_accuracy"])
    cell = {(a[MU], a[LR]): a for a in agg}
    sl = _momentum_free_slice(res.rows, res.histories, rates, cell)
    z = _accuracy_grid(rates, momenta, cell)
    best_rows = _best_rate_per_momentum(z, rates, momenta, cell)
    figures = [
        _loss_by_rate_figure(out / "lr_sweep.png", rates, sl, seeds, epochs),
        _loss_curves_figure(out / "lr_curves.png", rates, sl, res.histories),
        accuracy_heatmap(
            [_fmt_lr(v) for v in rates], [f"{m:g}" for m in momenta], z, out / "lr_momentum_heatmap.png",
            xlabel="learning rate", ylabel="momentum", zlabel="mean final validation accuracy",
            title=f"Final validation accuracy (mean of {seeds} seeds; div: every seed diverged)",
        ),
    ]
    return Section(
        title="4. Lecture: the learning rate — too small, good, too large",
        text=_findings_text(res, rates, momenta, sl, best_rows, seeds, epochs),
        figures=figures,
        tables=[
            ("Momentum 0: final training loss and divergence per learning rate", [
                {"learning rate": lr, "median final train loss": float(sl.med[j]),
                 "median final val accuracy": sl.plain[j]["final_val_accuracy_median"],
                 "diverged": f"{sl.plain[j]['n_diverged']}/{sl.plain[j]['n']}",
                 f"median epochs to loss {sl.target:.3f}": sl.reach[lr]}
                for j, lr in enumerate(rates)
            ]),
            ("Best learning rate per momentum (mean final validation accuracy)", best_rows),
        ],
    )
