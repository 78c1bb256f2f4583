"""Experiment 3: the optimizers of the quartic and optimizers-and-overfitting lectures side by side, over seeds.

The initialization-and-quartic lecture trains a two-layer sigmoid network with binary cross-entropy by hand
with gradient descent, AdaGrad, RMSProp and Adam, then with stochastic (one
sample per step) and mini-batch gradient descent, and lists PyTorch's other
optimizers (Adadelta, AdamW, Adamax, NAdam) and three newer ones (AdaBound,
AMSGrad, Lookahead); the optimizers-and-overfitting lecture describes GD, SGD, mini-batch SGD, AdaGrad,
Adadelta, RMSProp and Adam. Here every one of them trains the same networks
from the same initial weights on the same mini-batch order (common random
numbers, so differences are the optimizers'), on two problems:

* the quartic lecture's network, 2 inputs -> 8 sigmoid units -> 1 sigmoid output with
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

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from jaxopt_lab import plots, registry
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size, reproduce_text, run_once
from jaxopt_lab.optim import wrappers
from jaxopt_lab.report_page import Section
from jaxopt_lab.train import make_train
from jaxopt_lab.train.switch import optimizer_switch, switch

SIZES = {
    # moons rows and epochs, digits epochs (all 1797 digits, 80% training rows), seeds, learning-rate grid
    # factors. Demo: 5 digits epochs of 1437 rows cost what 8 epochs of a 1000-row subset did, and the
    # whole data set is what a config names (`[data] dataset = "digits"`).
    "tiny": dict(moons=160, moons_epochs=4, digits_epochs=0, seeds=2, factors=(0.2, 1.0, 5.0)),
    "demo": dict(moons=300, moons_epochs=10, digits_epochs=5, seeds=3, factors=(0.2, 1.0, 5.0)),
    "full": dict(moons=1000, moons_epochs=60, digits_epochs=20, seeds=5,
                 factors=(0.04, 0.2, 1.0, 5.0, 25.0)),
}

MINI_BATCH = 32


class Method(NamedTuple):
    """One optimizer of the comparison.

    Attributes:
      label: its name in figures and tables.
      name: its `optimizer.name` in a config (`jaxopt_lab.registry`).
      kwargs: its fixed `[optimizer]` keywords besides the learning rate.
      batch_size: rows per update, 0 for full batch.
      family: "sgd" or "adaptive": the figure it is drawn in.
      lookahead: wrap it in Lookahead (5 fast steps, slow step 0.5): not a config name.
    """

    label: str
    name: str
    kwargs: dict[str, Any]
    batch_size: int
    family: str
    lookahead: bool = False


METHODS: tuple[Method, ...] = (
    Method("GD (full batch)", "sgd", {}, 0, "sgd"),
    Method("SGD (batch 1)", "sgd", {}, 1, "sgd"),
    Method("mini-batch SGD", "sgd", {}, MINI_BATCH, "sgd"),
    Method("Lookahead(SGD)", "sgd", {}, MINI_BATCH, "sgd", lookahead=True),
    Method("AdaGrad", "adagrad", {}, MINI_BATCH, "adaptive"),
    Method("RMSProp", "rmsprop", {}, MINI_BATCH, "adaptive"),
    Method("Adadelta", "adadelta", {}, MINI_BATCH, "adaptive"),
    Method("Adam", "adam", {}, MINI_BATCH, "adaptive"),
    Method("AdamW", "adamw", {"weight_decay": 1e-2}, MINI_BATCH, "adaptive"),
    Method("Nadam", "nadam", {}, MINI_BATCH, "adaptive"),
    Method("AMSGrad", "amsgrad", {}, MINI_BATCH, "adaptive"),
    Method("Adamax", "adamax", {}, MINI_BATCH, "adaptive"),
    Method("AdaBound", "adabound", {"final_lr": 0.1}, MINI_BATCH, "adaptive"),
    Method("Lookahead(Adam)", "adam", {}, MINI_BATCH, "adaptive", lookahead=True),
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
    data: DataConfig
    model: ModelConfig
    loss: str
    epochs: int


def _problems(size: str) -> list[Problem]:
    s = SIZES[size]
    moons = Problem(
        "moons", "2-8-1 sigmoid network, binary cross-entropy, moons",
        DataConfig(dataset="moons", n_samples=s["moons"], noise=0.15, random_state=0, val_fraction=0.25),
        ModelConfig(hidden=(8,), activation="sigmoid", init="glorot_uniform"),
        "binary_cross_entropy", s["moons_epochs"],
    )
    if not s["digits_epochs"]:
        return [moons]
    digits = Problem(
        "digits", "64-16-10 ReLU MLP, softmax cross-entropy, digits",
        DataConfig(dataset="digits", random_state=0, val_fraction=0.2, standardize=True),
        ModelConfig(hidden=(16,), activation="relu", init="he_normal"),
        "cross_entropy", s["digits_epochs"],
    )
    return [moons, digits]


def config(problem: Problem, method: Method, learning_rate: float | None = None) -> Config:
    """The `jaxopt-lab train` config of `method` on `problem` (a Lookahead method: its inner optimizer)."""
    rate = LEARNING_RATES[problem.name][method.label] if learning_rate is None else learning_rate
    return Config(
        data=problem.data, model=problem.model,
        train=TrainConfig(loss=problem.loss, epochs=problem.epochs, batch_size=method.batch_size),
        optimizer=OptimizerConfig(name=method.name, kwargs={"learning_rate": float(rate), **method.kwargs}),
    )


def _maker(method: Method):
    """`opt_hparams -> GradientTransformation` of `method`: the config's optimizer (built by
    `jaxopt_lab.registry`, as `jaxopt-lab train` builds it), wrapped in Lookahead if it says so."""
    def make(hp):
        opt = registry.build_optimizer(method.name, {**method.kwargs, "learning_rate": hp["learning_rate"]})
        return wrappers.lookahead(opt, 5, 0.5) if method.lookahead else opt

    return make


def _groups() -> dict[int, list[int]]:
    """Method indices by batch size: the methods of one batch size share one training loop."""
    out: dict[int, list[int]] = {}
    for i, m in enumerate(METHODS):
        out.setdefault(m.batch_size, []).append(i)
    return out


def _train_all(problem: Problem, seeds: int, factors: tuple[float, ...]
               ) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """Every method on `problem` over (learning-rate factor, seed): `out[label][name]` is
    `(factors, seeds, ...)` for the history columns and the final metrics.

    One compiled program: the batch sizes are branches of `jaxopt_lab.train.switch.switch` (whole
    runs), the optimizers of one batch size branches of one training loop
    (`switch.optimizer_switch`); each run executes only its own branch. The learning rate is a
    traced hyperparameter, and seed `s` is `jaxopt-lab train --seed s`.
    """
    groups = _groups()
    trainers = [
        make_train(config(problem, METHODS[idx[0]]), optimizer_fn=optimizer_switch([_maker(METHODS[i]) for i in idx]))
        for idx in groups.values()
    ]
    switched = switch(trainers, [str(b) for b in groups], result_fn=lambda r: (r.history, r.metrics))
    group_of = np.zeros(len(METHODS), np.int32)
    branch_of = np.zeros(len(METHODS), np.int32)
    for g, idx in enumerate(groups.values()):
        for k, i in enumerate(idx):
            group_of[i], branch_of[i] = g, k
    centres = jnp.asarray([LEARNING_RATES[problem.name][m.label] for m in METHODS], jnp.float32)
    n_m, n_f, n_s = len(METHODS), len(factors), seeds
    m_idx = np.repeat(np.arange(n_m), n_f * n_s)
    f_idx = np.tile(np.repeat(np.arange(n_f), n_s), n_m)
    s_idx = np.tile(np.arange(n_s), n_m * n_f)

    def program(m_idx, f_idx, s_idx, factors, data):
        def one(args):
            j, f, s = args
            hp = {"optimizer.learning_rate": centres[j] * factors[f], "optimizer.branch": jnp.asarray(branch_of)[j]}
            return switched(jnp.asarray(group_of)[j], jax.random.PRNGKey(s), hp, data)

        # Runs go one after another (`lax.map`): each executes only its own branches.
        return jax.lax.map(one, (m_idx, f_idx, s_idx))

    history, metrics = run_once(program, m_idx, f_idx, s_idx, jnp.asarray(factors, jnp.float32),
                                switched.data_arrays)
    out = {}
    for i, m in enumerate(METHODS):
        cols = {k: np.asarray(v)[m_idx == i].reshape(n_f, n_s, *np.shape(v)[1:]) for k, v in history.items()}
        cols.update({k: np.asarray(v)[m_idx == i].reshape(n_f, n_s) for k, v in metrics.items()})
        out[m.label] = cols
    return out, len(switched.trainers[0].data.x_train)


def _select(hist: dict[str, np.ndarray]) -> tuple[int, np.ndarray]:
    """Index of the grid's best learning rate (lowest median final training loss; NaN = diverged)."""
    final = np.asarray(hist["final_train_loss"])
    score = np.where(np.isfinite(final) & ~np.asarray(hist["diverged"], bool), final, np.inf)
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
    reproduce = {}
    for problem in _problems(size):
        hist, n_train = _train_all(problem, seeds, factors)
        rows, best, grid, edge = [], {}, [], []
        for m in METHODS:
            h = hist[m.label]
            i, med = _select(h)
            if len(factors) > 1 and i in (0, len(factors) - 1):
                edge.append(m.label)
            best[m.label] = {k: np.asarray(v)[i] for k, v in h.items()}
            grid.append(med)
            fl, va = best[m.label]["final_train_loss"], best[m.label]["final_val_accuracy"]
            rows.append({
                "optimizer": m.label,
                "batch": "full" if m.batch_size == 0 else m.batch_size,
                "learning rate (best of grid)": float(LEARNING_RATES[problem.name][m.label] * factors[i]),
                "final train loss (median)": float(np.median(fl)),
                "final train loss (IQR)": float(np.percentile(fl, 75) - np.percentile(fl, 25)),
                "final val accuracy (median)": float(np.median(va)),
                "grid rates that diverged": int(np.sum(np.asarray(h["diverged"], bool).any(1))),
            })
        for family, title in (("sgd", "gradient descent family"), ("adaptive", "adaptive methods")):
            curves = {m.label: best[m.label]["train_loss"] for m in METHODS if m.family == family}
            if family == "sgd":
                curves["Adam (reference)"] = best["Adam"]["train_loss"]
            figures.append(plots.curves_with_bands(
                curves, out / f"optimizers_{problem.name}_{family}.png",
                ylabel="training loss (mean over the epoch's batches)", xlabel="epoch (passes over the training rows)",
                title=f"{problem.name}: {title}, best rate each (median, IQR over {seeds} seeds)",
                logy=True,
            ))
        figures.append(_grid_figure(
            out / f"optimizers_{problem.name}_lr_grid.png", problem, factors, np.asarray(grid), seeds
        ))
        tables.append((f"{problem.title}: best learning rate of the grid, after {problem.epochs} epochs, "
                       f"{seeds} seeds", rows))
        findings.append(_finding(problem, rows, edge, n_train))
        adam = next(r for r in rows if r["optimizer"] == "Adam")
        reproduce[f"{problem.name}, Adam at its best rate"] = config(
            problem, next(m for m in METHODS if m.label == "Adam"), adam["learning rate (best of grid)"])
    text = (
        "The optimizers of the initialization-and-quartic lecture, plus those it lists from PyTorch and "
        "the newer AdaBound, AMSGrad and "
        "Lookahead, train the same networks from the same initial weights and mini-batch order per seed. "
        "GD takes one full-batch step per epoch, SGD one step per example, every other method mini-batches "
        f"of {MINI_BATCH}. Each method runs at {len(factors)} learning rates (its grid centre times "
        f"{', '.join(f'{f:g}' for f in factors)}) and is shown at the one with the lowest median final "
        "training loss: a ranking at one fixed rate would mostly rank the rates. Final losses and "
        "accuracies are the whole training and validation sets' after the last epoch (inference mode); "
        "a run whose loss, gradient or weights became non-finite stops there and counts as diverged.\n\n"
        + "\n".join(findings) + "\n\n" + reproduce_text(reproduce, seeds)
        + "\n\nThe other methods' configs differ in `[optimizer]` name, learning_rate and keywords "
        "(AdamW: weight_decay = 0.01; AdaBound: final_lr = 0.1) and in `train.batch_size` (table); the "
        "Lookahead methods are not a config name (they train through `make_train(optimizer_fn=...)`)."
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


def _finding(problem: Problem, rows: list[dict[str, Any]], edge: list[str], n_train: int) -> str:
    loss = {r["optimizer"]: r["final train loss (median)"] for r in rows}
    acc = {r["optimizer"]: r["final val accuracy (median)"] for r in rows}
    ranked = sorted(loss, key=lambda k: loss[k] if np.isfinite(loss[k]) else np.inf)
    gd, mb, sgd1 = loss["GD (full batch)"], loss["mini-batch SGD"], loss["SGD (batch 1)"]
    slow = "slower" if gd > mb else "not slower"
    return (
        f"- {problem.title} ({n_train} training rows, {problem.epochs} epochs): lowest median "
        f"final training loss {ranked[0]} ({loss[ranked[0]]:.4f}), then {ranked[1]} ({loss[ranked[1]]:.4f}) "
        f"and {ranked[2]} ({loss[ranked[2]]:.4f}); highest {ranked[-1]} ({loss[ranked[-1]]:.4f}). Per pass "
        f"over the data full-batch GD is {slow} than mini-batch SGD ({gd:.4f} against {mb:.4f}; one "
        f"example per step: {sgd1:.4f}). Adam ends at {loss['Adam']:.4f} (validation accuracy "
        f"{acc['Adam']:.3f}), AdaGrad at {loss['AdaGrad']:.4f}, RMSProp at {loss['RMSProp']:.4f}. "
        + (f"Best rate at the edge of the grid for: {', '.join(edge)} (a wider grid might help them)."
           if edge else "Every best rate is inside the grid.")
    )
