"""Experiment 9 (the hyperparameter lecture): grid search against random search at equal budgets.

The hyperparameter lecture: "Grid search (enumerate through all configurations) --> very
expensive; Random search (we can limit to 20 random models) --> more common:
create a space based on limits, randomly run models, and pick the one with the
best validation." Bergstra & Bengio (JMLR 2012) explain why random search
wins when only a few hyperparameters matter: a k x k grid tries only k values
of each hyperparameter, so k^2 runs explore the important one at k points,
while k^2 random trials explore it at k^2 distinct points.

The problem: heavy-ball SGD (momentum 0.9) on a noisy moons MLP with two
hyperparameters searched on log scales, the learning rate (which matters) and
the L2 penalty (which, in this range, barely does). Every run uses the same
seed (the same initial weights), so the validation accuracy is a fixed
function of the two hyperparameters and the searches differ only in where
they look. Grids of 2x2 ... kxk (cell-centred on the log axes) and one pool of
random trials (log-uniform; its first t trials are exactly the t-trial search)
run as one sweep through `jaxopt_lab.sweep.run`, one compiled program. The
expected best of k random trials (Dodge et al., 2019, `records.expected_max`)
gives random search's curve without the luck of one draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxopt_lab import plots, sweep
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size
from jaxopt_lab.report_page import Section
from jaxopt_lab.sweep import records
from jaxopt_lab.sweep.report import correlation_ratio  # also this module's public name
from jaxopt_lab.train import make_train

LR = "optimizer.learning_rate"
L2 = "train.l2"
RANGES = {LR: (1e-4, 10.0), L2: (1e-6, 1e-3)}
SEED = 1
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"grids": (2, 3), "trials": 9, "epochs": 10},
    "demo": {"grids": (2, 3, 4, 5, 6), "trials": 64, "epochs": 30},
    "full": {"grids": (2, 3, 4, 5, 6, 8, 10), "trials": 256, "epochs": 30},
}


def grid_values(low: float, high: float, n: int) -> list[float]:
    """`n` cell centres of [low, high] on a log scale (no point sits on an edge of the range)."""
    return [float(v) for v in np.exp(np.log(low) + (np.arange(n) + 0.5) / n * (np.log(high) - np.log(low)))]


def config(epochs: int) -> Config:
    return Config(
        data=DataConfig(dataset="circles", n_samples=1000, noise=0.1, random_state=1, val_fraction=0.3),
        model=ModelConfig(hidden=(20,), activation="relu", init="he_normal"),
        train=TrainConfig(epochs=epochs, l2=1e-4),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    )


def search_space(sz: dict[str, Any]):
    """The grids of `sz["grids"]` (n x n each, in that order), then `sz["trials"]` random trials, all at `SEED`."""
    grids = [sweep.grid({LR: grid_values(*RANGES[LR], n), L2: grid_values(*RANGES[L2], n)})
             for n in sz["grids"]]
    rand = sweep.random(sz["trials"], seed=SEED, dists={LR: sweep.loguniform(*RANGES[LR]),
                                                        L2: sweep.loguniform(*RANGES[L2])})
    return sweep.concat(*grids, rand) * sweep.seeds([SEED])


class Searches(NamedTuple):
    """Every run's score and hyperparameters, split into what each search found."""

    score: np.ndarray  # final validation accuracy, 0 for a diverged run
    lr: np.ndarray
    l2: np.ndarray
    starts: np.ndarray  # run index where each grid starts; starts[-1]: where the random trials start
    grid_best: dict[int, float]  # best score of the n x n grid, by budget n * n
    prefix_best: np.ndarray  # best of this draw's first k random trials, k = 1, 2, ...
    expected: np.ndarray  # expected best of k random trials over all draws of k
    bins: int  # equal-count bins of the correlation ratios
    eta_lr: float  # share of the random trials' score variance the learning rate explains
    eta_l2: float

    @property
    def random(self) -> slice:
        return slice(int(self.starts[-1]), None)


def _searches(res, sz: dict[str, Any]) -> Searches:
    acc = np.asarray(res.outputs["final_val_accuracy"], float)
    diverged = np.asarray(res.outputs["diverged"], bool)
    # A diverged run is a failed trial: it counts against the budget and scores chance level at best.
    score = np.where(diverged | ~np.isfinite(acc), 0.0, acc)
    lr = np.asarray([p[LR] for p in res.points])
    l2 = np.asarray([p[L2] for p in res.points])
    starts = np.cumsum([0] + [n * n for n in sz["grids"]])
    grid_best = {n * n: float(score[starts[i]:starts[i + 1]].max()) for i, n in enumerate(sz["grids"])}
    r_score = score[starts[-1]:]
    expected = np.asarray(records.expected_max(r_score, np.arange(1, sz["trials"] + 1)))
    bins = max(2, min(8, len(r_score) // 8))
    eta_lr = correlation_ratio(np.log(lr[starts[-1]:]), r_score, bins)
    eta_l2 = correlation_ratio(np.log(l2[starts[-1]:]), r_score, bins)
    return Searches(score, lr, l2, starts, grid_best, np.maximum.accumulate(r_score), expected, bins, eta_lr, eta_l2)


def _space_figure(path: Path, se: Searches, n_show: int) -> Path:
    """Where the random trials and the largest grid look, and the score against each hyperparameter alone."""
    r_score, r_lr, r_l2 = se.score[se.random], se.lr[se.random], se.l2[se.random]
    fig, (ax_p, ax_lr, ax_l2) = plots.new_figure(1, 3, figsize=(15, 4.4))
    g_idx = np.arange(se.starts[-2], se.starts[-1])
    sc = ax_p.scatter(r_lr, r_l2, c=r_score, cmap="viridis", s=28, label=f"{len(r_score)} random trials")
    ax_p.scatter(se.lr[g_idx], se.l2[g_idx], marker="s", s=60, facecolors="none", edgecolors="k",
                 label=f"{n_show}x{n_show} grid ({n_show} distinct learning rates)")
    ax_p.set_xscale("log")
    ax_p.set_yscale("log")
    ax_p.set_xlabel("learning rate (log scale)")
    ax_p.set_ylabel("L2 penalty (log scale)")
    ax_p.set_title("The search space")
    ax_p.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.15))
    fig.colorbar(sc, ax=ax_p).set_label("final validation accuracy")
    for ax, x, name, eta in ((ax_lr, r_lr, "learning rate", se.eta_lr), (ax_l2, r_l2, "L2 penalty", se.eta_l2)):
        ax.scatter(x, r_score, s=18, color="C0", label="random trials")
        ax.set_xscale("log")
        ax.set_xlabel(f"{name} (log scale)")
        ax.set_ylabel("final validation accuracy")
        ax.set_title(f"{name[0].upper() + name[1:]} alone explains {eta:.0%} of the variance")
    ax_lr.scatter(se.lr[g_idx], se.score[g_idx], marker="s", s=40, facecolors="none", edgecolors="k",
                  label=f"{n_show}x{n_show} grid")
    ax_lr.legend(fontsize=8)
    return plots.save(fig, path)


def _budget_figure(path: Path, se: Searches) -> Path:
    """Best score found against the budget: random search (expected and this draw) and each grid."""
    budgets = np.arange(1, len(se.expected) + 1)
    best_all = float(se.score.max())
    fig, ax = plots.new_figure(figsize=(7.5, 4.5))
    ax.plot(budgets, se.expected, color="C0", label="random search: expected best of k trials (all draws)")
    ax.step(budgets, se.prefix_best, where="post", color="C0", ls="--", alpha=0.7,
            label="random search: this draw's first k trials")
    gk = sorted(se.grid_best)
    ax.plot(gk, [se.grid_best[k] for k in gk], "s-", color="C3", label="grid search (k = n x n)")
    ax.axhline(best_all, color="k", ls=":", lw=0.8, label=f"best of all {len(se.score)} runs ({best_all:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("budget k (training runs, log scale)")
    ax.set_ylabel("best final validation accuracy found")
    ax.set_title("Grid vs random search at equal budgets")
    ax.legend(fontsize=8, loc="lower right")
    return plots.save(fig, path)


def _budget_rows(se: Searches) -> list[dict[str, Any]]:
    rows = []
    for k in sorted(se.grid_best):
        rows.append({
            "budget k": k, "grid best": se.grid_best[k],
            "random best (first k trials)": float(se.prefix_best[k - 1]) if k <= len(se.prefix_best) else None,
            "random expected best of k": float(se.expected[k - 1]) if k <= len(se.expected) else None,
            "distinct learning rates tried (grid / random)": f"{int(round(k ** 0.5))} / {k}",
        })
    return rows


def _findings_text(res, se: Searches, rows: list[dict[str, Any]], sz: dict[str, Any]) -> str:
    n_random = len(se.prefix_best)
    best_all = float(se.score.max())
    diverged = np.asarray(res.outputs["diverged"], bool)
    gk = sorted(se.grid_best)
    wins = sum(1 for r in rows if r["random expected best of k"] is not None
               and r["random expected best of k"] > r["grid best"])
    compared = sum(1 for r in rows if r["random expected best of k"] is not None)
    k20 = min(20, len(se.expected))
    monotone_grid = all(se.grid_best[a] <= se.grid_best[b] for a, b in zip(gk, gk[1:], strict=False))
    null = (se.bins - 1) / (n_random - 1)
    text = (
        f"{len(se.score)} runs ({', '.join(f'{n}x{n}' for n in sz['grids'])} grids and {n_random} random "
        f"trials over the learning rate in [{RANGES[LR][0]:g}, {RANGES[LR][1]:g}] and the L2 penalty in "
        f"[{RANGES[L2][0]:g}, {RANGES[L2][1]:g}], log scales; heavy-ball SGD, {sz['epochs']} full-batch epochs on "
        f"circles, seed {SEED}) ran as one sweep in {res.stats.wall_seconds:.1f} s "
        f"({res.stats.compile_seconds:.1f} s compiling); {int(diverged.sum())} diverged (scored 0). Over the "
        f"random trials the learning rate alone explains {se.eta_lr:.0%} of the variance of the final validation "
        f"accuracy and the L2 penalty {se.eta_l2:.0%} (correlation ratio over {se.bins} equal-count bins; a "
        f"hyperparameter with no effect at all would score about {null:.0%} by chance)."
    )
    return text + (
        "\n\nBest validation accuracy per budget, grid vs random (expected best of k): "
        + "; ".join(f"k = {r['budget k']}: {r['grid best']:.3f} vs {r['random expected best of k']:.3f}"
                    for r in rows if r["random expected best of k"] is not None)
        + f". The expected best of k random trials is higher than the grid's best in {wins} of {compared} "
        f"budgets; it can only grow with k, while the grid's best "
        + ("does not (a grid's luck is where its few learning rates fall)" if not monotone_grid else "grows too")
        + f". The lecture's 20 random models are expected to reach {se.expected[k20 - 1]:.3f}"
        f" (best of all runs: {best_all:.3f}); this draw's first {k20} trials reached {se.prefix_best[k20 - 1]:.3f}."
    )


def run(out: Path, size: str = "demo") -> Section:
    """Grid vs random search at equal budgets; the expected-best-of-k curve; which hyperparameter matters."""
    check_size(size, SIZES)
    out = Path(out)
    sz = SIZES[size]
    trainer = make_train(config(sz["epochs"]))

    def train_fn(key, hp):
        return trainer(key, hp).metrics

    res = sweep.run(train_fn, search_space(sz), progress=False)
    se = _searches(res, sz)
    fig_space = _space_figure(out / "search_space.png", se, sz["grids"][-1])
    fig_budget = _budget_figure(out / "search_budget.png", se)
    rows = _budget_rows(se)
    return Section(
        title="9. Lecture: hyperparameter search — grid vs random",
        text=_findings_text(res, se, rows, sz),
        figures=[fig_space, fig_budget],
        tables=[("Best final validation accuracy found per budget", rows)],
    )
