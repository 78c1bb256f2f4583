"""Experiment 3: the optimizers of seeds 004 and 002 side by side, over seeds.

Seed 004 trains a two-layer sigmoid network with binary cross-entropy by hand
with gradient descent, AdaGrad, RMSProp and Adam, then with stochastic (one
sample per step) and mini-batch gradient descent, and lists PyTorch's other
optimizers (Adadelta, AdamW, Adamax, NAdam) and three newer ones (AdaBound,
AMSGrad, Lookahead); seed 002 describes GD, SGD, mini-batch SGD, AdaGrad,
Adadelta, RMSProp and Adam. Here every one of them trains the same networks
from the same initial weights on the same mini-batch order (common random
numbers, so differences are the optimizers'), on two problems:

* seed 004's network, 2 inputs -> 8 sigmoid units -> 1 sigmoid output with
  binary cross-entropy, on a two-class data set (moons);
* a small ReLU MLP (64 -> 16 -> 10, softmax cross-entropy) on the 8x8 digits.

Batch regimes: "GD" is full batch (one update per epoch), "SGD" one example per
update, every other optimizer mini-batches of 32. AdamW uses PyTorch's default
weight decay (0.01); Lookahead takes 5 fast steps per slow step of size 0.5.
Curves are per epoch (one pass over the training rows), so they compare
optimizers at equal data cost.
Each method runs over a small learning-rate grid around its own centre
(`LEARNING_RATES`) and is reported at its best rate: compared at one shared
rate, optimizers mostly differ by how well that rate suits them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from jaxopt_lab import losses, plots
from jaxopt_lab.data import digits as digits_mod
from jaxopt_lab.data import generators, preprocessing, splits
from jaxopt_lab.experiments import check_size
from jaxopt_lab.experiments._training_loop import fit, run_once, switch_optimizer
from jaxopt_lab.nn import mlp
from jaxopt_lab.optim import aliases, wrappers
from jaxopt_lab.report import Section

SIZES = {
    # moons rows and epochs, digits rows (None: all 1797) and epochs, seeds, learning-rate grid factors
    "tiny": dict(moons=160, moons_epochs=4, digits=None, digits_epochs=0, seeds=2, factors=(0.2, 1.0, 5.0)),
    "demo": dict(moons=300, moons_epochs=10, digits=1000, digits_epochs=8, seeds=3, factors=(0.2, 1.0, 5.0)),
    "full": dict(moons=1000, moons_epochs=60, digits=None, digits_epochs=20, seeds=5,
                 factors=(0.04, 0.2, 1.0, 5.0, 25.0)),
}

MINI_BATCH = 32


class Method(NamedTuple):
    """One optimizer of the comparison.

    Attributes:
      label: its name in figures and tables.
      make: `learning_rate -> GradientTransformation` (the rate may be traced).
      batch_size: rows per update, 0 for full batch.
      family: "sgd" or "adaptive": the figure it is drawn in.
    """

    label: str
    make: Callable[[Any], Any]
    batch_size: int
    family: str


METHODS: tuple[Method, ...] = (
    Method("GD (full batch)", lambda lr: aliases.sgd(lr), 0, "sgd"),
    Method("SGD (batch 1)", lambda lr: aliases.sgd(lr), 1, "sgd"),
    Method("mini-batch SGD", lambda lr: aliases.sgd(lr), MINI_BATCH, "sgd"),
    Method("Lookahead(SGD)", lambda lr: wrappers.lookahead(aliases.sgd(lr), 5, 0.5), MINI_BATCH, "sgd"),
    Method("AdaGrad", lambda lr: aliases.adagrad(lr), MINI_BATCH, "adaptive"),
    Method("RMSProp", lambda lr: aliases.rmsprop(lr), MINI_BATCH, "adaptive"),
    Method("Adadelta", lambda lr: aliases.adadelta(lr), MINI_BATCH, "adaptive"),
    Method("Adam", lambda lr: aliases.adam(lr), MINI_BATCH, "adaptive"),
    Method("AdamW", lambda lr: aliases.adamw(lr, weight_decay=1e-2), MINI_BATCH, "adaptive"),
    Method("Nadam", lambda lr: aliases.nadam(lr), MINI_BATCH, "adaptive"),
    Method("AMSGrad", lambda lr: aliases.amsgrad(lr), MINI_BATCH, "adaptive"),
    Method("Adamax", lambda lr: aliases.adamax(lr), MINI_BATCH, "adaptive"),
    Method("AdaBound", lambda lr: aliases.adabound(lr, final_lr=0.1), MINI_BATCH, "adaptive"),
    Method("Lookahead(Adam)", lambda lr: wrappers.lookahead(aliases.adam(lr), 5, 0.5), MINI_BATCH, "adaptive"),
)

#: Centre of each method's learning-rate grid (the grid is centre x SIZES[size]["factors"]):
#: the best rate of a pilot run at demo size over five rates spaced 5x apart (0.04x to 25x of
#: the usual defaults). The text flags a best rate at an edge of the grid.
LEARNING_RATES: dict[str, dict[str, float]] = {
    "moons": {
        "GD (full batch)": 3.0, "SGD (batch 1)": 0.5, "mini-batch SGD": 0.6, "Lookahead(SGD)": 0.6,
        "AdaGrad": 0.2, "RMSProp": 0.02, "Adadelta": 15.0, "Adam": 0.5, "AdamW": 0.5, "Nadam": 0.5,
        "AMSGrad": 0.5, "Adamax": 0.5, "AdaBound": 0.5, "Lookahead(Adam)": 0.5,
    },
    "digits": {
        "GD (full batch)": 1.0, "SGD (batch 1)": 0.03, "mini-batch SGD": 0.3, "Lookahead(SGD)": 1.0,
        "AdaGrad": 0.3, "RMSProp": 0.01, "Adadelta": 15.0, "Adam": 0.05, "AdamW": 0.05, "Nadam": 0.05,
        "AMSGrad": 0.05, "Adamax": 0.25, "AdaBound": 0.05, "Lookahead(Adam)": 0.05,
    },
}


class Problem(NamedTuple):
    name: str
    title: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    sizes: list[int]
    activation: str
    init: str
    binary: bool
    epochs: int


def _problems(size: str) -> list[Problem]:
    s = SIZES[size]
    x, y = generators.make_moons(n_samples=s["moons"], noise=0.15, random_state=0)
    tr, va, _ = splits.train_val_test_split(len(x), val_fraction=0.25, seed=0, stratify=y)
    moons = Problem(
        "moons", "2-8-1 sigmoid network, binary cross-entropy, moons", x[tr], y[tr], x[va], y[va],
        [2, 8, 1], "sigmoid", "glorot_uniform", True, s["moons_epochs"],
    )
    if not s["digits_epochs"]:
        return [moons]
    xd, yd = digits_mod.load_digits()
    if s["digits"] is not None:
        xd, yd = xd[: s["digits"]], yd[: s["digits"]]
    tr, va, _ = splits.train_val_test_split(len(xd), val_fraction=0.2, seed=0, stratify=yd)
    scaler = preprocessing.Standardizer.fit(xd[tr])
    xd = np.asarray(scaler.transform(xd))
    digits = Problem(
        "digits", "64-16-10 ReLU MLP, softmax cross-entropy, digits", xd[tr], yd[tr], xd[va], yd[va],
        [64, 16, 10], "relu", "he_normal", False, s["digits_epochs"],
    )
    return [moons, digits]


def _train_all(problem: Problem, seeds: int, factors: tuple[float, ...]) -> dict[str, dict[str, np.ndarray]]:
    """Every method on `problem` over (learning-rate factor, seed): `history[label][name]` is
    `(factors, seeds, epochs)`. One compiled program for everything."""
    x_tr = jnp.asarray(problem.x_train, jnp.float32)
    y_tr = jnp.asarray(problem.y_train, jnp.int32)
    x_va = jnp.asarray(problem.x_val, jnp.float32)
    y_va = jnp.asarray(problem.y_val, jnp.int32)
    n = int(x_tr.shape[0])

    def objective(logits, y, where=None):
        if problem.binary:
            return losses.binary_cross_entropy(logits[:, 0], y, where=where)
        return losses.softmax_cross_entropy(logits, y, where=where)

    def forward(params, x):
        return mlp.apply(params, x, activation=problem.activation)[0]

    def batch_loss(params, ms, idx, mask, key):
        return objective(forward(params, x_tr[idx]), y_tr[idx], mask), ms

    def evaluate(params, ms):
        out_va = forward(params, x_va)
        return {
            "train_loss": objective(forward(params, x_tr), y_tr),
            "val_loss": objective(out_va, y_va),
            "val_accuracy": losses.accuracy(out_va[:, 0] if problem.binary else out_va, y_va),
        }

    def train_group(keys, factors, methods):
        """The methods of one batch size over (learning-rate factor, seed).

        Several methods share one compiled loop through `switch_optimizer`; the
        learning rate is traced, so the grid costs run time, not compilations.
        """
        centres = jnp.asarray([LEARNING_RATES[problem.name][m.label] for m in methods], jnp.float32)
        batch_size = min(methods[0].batch_size, n)

        def one(key, opt):
            init_key, order_key = jax.random.split(key)
            params = mlp.init(init_key, problem.sizes, init=problem.init, activation=problem.activation)
            _, _, hist = fit(
                batch_loss, opt, params, order_key, n=n, batch_size=batch_size, epochs=problem.epochs,
                evaluate=evaluate,
            )
            return hist

        # Runs go one after another (`lax.map`), not batched (`vmap`): on a CPU this is as fast for
        # models this small, and tracing stays cheap (vmap re-batches every loop body it meets).
        n_f, n_s = factors.shape[0], keys.shape[0]
        j_idx = jnp.repeat(jnp.arange(len(methods)), n_f * n_s)
        f_idx = jnp.tile(jnp.repeat(jnp.arange(n_f), n_s), len(methods))
        s_idx = jnp.tile(jnp.arange(n_s), len(methods) * n_f)

        def run(args):
            j, f, k = args
            lr = centres[j] * factors[f]
            if len(methods) == 1:
                return one(keys[k], methods[0].make(lr))
            return one(keys[k], switch_optimizer(j, [m.make(lr) for m in methods]))

        flat = jax.lax.map(run, (j_idx, f_idx, s_idx))
        shaped = jax.tree.map(lambda a: a.reshape(len(methods), n_f, n_s, *a.shape[1:]), flat)
        return {m.label: jax.tree.map(lambda a, i=i: a[i], shaped) for i, m in enumerate(methods)}

    def run_all(keys, factors):
        out = {}
        for batch_size in dict.fromkeys(m.batch_size for m in METHODS):
            out.update(train_group(keys, factors, [m for m in METHODS if m.batch_size == batch_size]))
        return out

    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    return run_once(run_all, keys, jnp.asarray(factors, jnp.float32))


def _select(hist: dict[str, np.ndarray]) -> tuple[int, np.ndarray]:
    """Index of the grid's best learning rate (lowest median final training loss; NaN = diverged)."""
    final = np.asarray(hist["train_loss"])[:, :, -1]
    score = np.where(np.isfinite(final), final, np.inf)
    med = np.median(score, axis=1)
    return int(np.argmin(med)), med


def run(out: Path, size: str = "demo") -> Section:
    """Train every method on each problem over a learning-rate grid and seeds; write figures."""
    check_size(size, SIZES)
    out = Path(out)
    cfg = SIZES[size]
    seeds, factors = cfg["seeds"], cfg["factors"]
    figures: list[Path] = []
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    findings: list[str] = []
    for problem in _problems(size):
        hist = _train_all(problem, seeds, factors)
        rows, best, grid, edge = [], {}, [], []
        for m in METHODS:
            h = hist[m.label]
            i, med = _select(h)
            if len(factors) > 1 and i in (0, len(factors) - 1):
                edge.append(m.label)
            best[m.label] = {k: np.asarray(v)[i] for k, v in h.items()}
            grid.append(med)
            fl, va = best[m.label]["train_loss"][:, -1], best[m.label]["val_accuracy"][:, -1]
            rows.append({
                "optimizer": m.label,
                "batch": "full" if m.batch_size == 0 else m.batch_size,
                "learning rate (best of grid)": float(LEARNING_RATES[problem.name][m.label] * factors[i]),
                "final train loss (median)": float(np.median(fl)),
                "final train loss (IQR)": float(np.percentile(fl, 75) - np.percentile(fl, 25)),
                "final val accuracy (median)": float(np.median(va)),
                "grid rates that diverged": int(np.sum(~np.isfinite(np.asarray(h["train_loss"])[:, :, -1]).any(1))),
            })
        for family, title in (("sgd", "gradient descent family"), ("adaptive", "adaptive methods")):
            curves = {m.label: best[m.label]["train_loss"] for m in METHODS if m.family == family}
            if family == "sgd":
                curves["Adam (reference)"] = best["Adam"]["train_loss"]
            figures.append(plots.curves_with_bands(
                curves, out / f"optimizers_{problem.name}_{family}.png",
                ylabel="training loss (whole training set)", xlabel="epoch (passes over the training rows)",
                title=f"{problem.name}: {title}, best rate each (median, IQR over {seeds} seeds)",
                logy=True,
            ))
        figures.append(_grid_figure(
            out / f"optimizers_{problem.name}_lr_grid.png", problem, factors, np.asarray(grid), seeds
        ))
        tables.append((f"{problem.title}: best learning rate of the grid, after {problem.epochs} epochs, "
                       f"{seeds} seeds", rows))
        findings.append(_finding(problem, rows, edge))
    text = (
        "The optimizers of the initialization-and-quartic lecture, plus those it lists from PyTorch and "
        "the newer AdaBound, AMSGrad and "
        "Lookahead, train the same networks from the same initial weights and mini-batch order per seed. "
        "GD takes one full-batch step per epoch, SGD one step per example, every other method mini-batches "
        f"of {MINI_BATCH}. Each method runs at {len(factors)} learning rates (its grid centre times "
        f"{', '.join(f'{f:g}' for f in factors)}) and is shown at the one with the lowest median final "
        "training loss: a ranking at one fixed rate would mostly rank the rates.\n\n" + "\n".join(findings)
    )
    return Section("3. Lecture: optimizers — from gradient descent to Adam, compared over seeds", text, figures, tables)


def _grid_figure(path: Path, problem: Problem, factors: tuple[float, ...], med: np.ndarray, seeds: int) -> Path:
    """Median final training loss per (method, learning rate), log colour scale, diverged runs grey."""
    fig, ax = plots.new_figure(figsize=(1.9 * len(factors) + 3.2, 0.42 * len(METHODS) + 1.6))
    finite = med[np.isfinite(med)]
    lo = np.log10(max(finite.min(), 1e-6)) if finite.size else -3.0
    # Cap the colour scale near the loss of an untrained model so one blow-up does not wash it out.
    hi = np.log10(min(finite.max(), 10.0)) if finite.size else 1.0
    z = np.ma.masked_invalid(np.log10(np.where(np.isfinite(med), np.maximum(med, 1e-6), np.nan)))
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="0.75")
    im = ax.imshow(z, aspect="auto", cmap=cmap, vmin=lo, vmax=max(hi, lo + 1e-3))
    for i, m in enumerate(METHODS):
        for j, f in enumerate(factors):
            lr = LEARNING_RATES[problem.name][m.label] * f
            val = med[i, j]
            txt = f"lr {lr:.3g}\n" + (f"{val:.3g}" if np.isfinite(val) else "diverged")
            frac = (np.log10(max(val, 1e-6)) - lo) / max(hi - lo, 1e-3) if np.isfinite(val) else 0.0
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if frac > 0.6 else "black")
    ax.set_xticks(range(len(factors)), [f"centre x {f:g}" for f in factors])
    ax.set_yticks(range(len(METHODS)), [m.label for m in METHODS])
    ax.set_xlabel("learning rate (grid around each method's centre)")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("log10 median final training loss")
    ax.set_title(f"{problem.name}: final training loss vs learning rate\n(median of {seeds} seeds; grey: diverged)",
                 fontsize=10)
    return plots.save(fig, path)


def _finding(problem: Problem, rows: list[dict[str, Any]], edge: list[str]) -> str:
    loss = {r["optimizer"]: r["final train loss (median)"] for r in rows}
    acc = {r["optimizer"]: r["final val accuracy (median)"] for r in rows}
    ranked = sorted(loss, key=lambda k: loss[k] if np.isfinite(loss[k]) else np.inf)
    gd, mb, sgd1 = loss["GD (full batch)"], loss["mini-batch SGD"], loss["SGD (batch 1)"]
    slow = "slower" if gd > mb else "not slower"
    return (
        f"- {problem.title} ({len(problem.x_train)} training rows, {problem.epochs} epochs): lowest median "
        f"final training loss {ranked[0]} ({loss[ranked[0]]:.4f}), then {ranked[1]} ({loss[ranked[1]]:.4f}) "
        f"and {ranked[2]} ({loss[ranked[2]]:.4f}); highest {ranked[-1]} ({loss[ranked[-1]]:.4f}). Per pass "
        f"over the data full-batch GD is {slow} than mini-batch SGD ({gd:.4f} against {mb:.4f}; one "
        f"example per step: {sgd1:.4f}). Adam ends at {loss['Adam']:.4f} (validation accuracy "
        f"{acc['Adam']:.3f}), AdaGrad at {loss['AdaGrad']:.4f}, RMSProp at {loss['RMSProp']:.4f}. "
        + (f"Best rate at the edge of the grid for: {', '.join(edge)} (a wider grid might help them)."
           if edge else "Every best rate is inside the grid.")
    )
