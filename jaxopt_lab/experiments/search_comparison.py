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
expected best of k random trials (Dodge et al., 2019, `results.expected_max`)
gives random search's curve without the luck of one draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import plots, sweep
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size
from jaxopt_lab.report import Section
from jaxopt_lab.sweep import results
from jaxopt_lab.sweep.report import correlation_ratio  # noqa: F401 - also this module's public name
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


def run(out: Path, size: str = "demo") -> Section:
    """Grid vs random search at equal budgets; the expected-best-of-k curve; which hyperparameter matters."""
    check_size(size, SIZES)
    out = Path(out)
    sz = SIZES[size]
    grids = [sweep.grid({LR: grid_values(*RANGES[LR], n), L2: grid_values(*RANGES[L2], n)})
             for n in sz["grids"]]
    rand = sweep.random(sz["trials"], seed=SEED, dists={LR: sweep.loguniform(*RANGES[LR]),
                                                        L2: sweep.loguniform(*RANGES[L2])})
    space = sweep.concat(*grids, rand) * sweep.seeds([SEED])
    trainer = make_train(config(sz["epochs"]))

    def train_fn(key, hp):
        return trainer(key, hp).metrics

    res = sweep.run(train_fn, space, progress=False)
    acc = np.asarray(res.outputs["final_val_accuracy"], float)
    diverged = np.asarray(res.outputs["diverged"], bool)
    # A diverged run is a failed trial: it counts against the budget and scores chance level at best.
    score = np.where(diverged | ~np.isfinite(acc), 0.0, acc)
    pts = res.points
    lr = np.asarray([p[LR] for p in pts])
    l2 = np.asarray([p[L2] for p in pts])

    starts = np.cumsum([0] + [n * n for n in sz["grids"]])
    grid_best = {n * n: float(score[starts[i]:starts[i + 1]].max()) for i, n in enumerate(sz["grids"])}
    r0 = starts[-1]
    r_score, r_lr, r_l2 = score[r0:], lr[r0:], l2[r0:]
    budgets = np.arange(1, sz["trials"] + 1)
    prefix_best = np.maximum.accumulate(r_score)
    expected = np.asarray(results.expected_max(r_score, budgets))
    best_all = float(score.max())

    bins = max(2, min(8, len(r_score) // 8))
    eta_lr = correlation_ratio(np.log(r_lr), r_score, bins)
    eta_l2 = correlation_ratio(np.log(r_l2), r_score, bins)

    # ---- figure 1: where each search looks, and what the two hyperparameters do
    fig, (ax_p, ax_lr, ax_l2) = plots.new_figure(1, 3, figsize=(15, 4.4))
    n_show = sz["grids"][-1]
    g_lo, g_hi = starts[-2], starts[-1]
    sc = ax_p.scatter(r_lr, r_l2, c=r_score, cmap="viridis", s=28, label=f"{len(r_score)} random trials")
    ax_p.scatter(lr[g_lo:g_hi], l2[g_lo:g_hi], marker="s", s=60, facecolors="none", edgecolors="k",
                 label=f"{n_show}x{n_show} grid ({n_show} distinct learning rates)")
    ax_p.set_xscale("log")
    ax_p.set_yscale("log")
    ax_p.set_xlabel("learning rate (log scale)")
    ax_p.set_ylabel("L2 penalty (log scale)")
    ax_p.set_title("The search space")
    ax_p.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.15))
    fig.colorbar(sc, ax=ax_p).set_label("final validation accuracy")
    for ax, x, name, eta in ((ax_lr, r_lr, "learning rate", eta_lr), (ax_l2, r_l2, "L2 penalty", eta_l2)):
        ax.scatter(x, r_score, s=18, color="C0", label="random trials")
        ax.set_xscale("log")
        ax.set_xlabel(f"{name} (log scale)")
        ax.set_ylabel("final validation accuracy")
        ax.set_title(f"{name[0].upper() + name[1:]} alone explains {eta:.0%} of the variance")
    g_idx = np.arange(g_lo, g_hi)
    ax_lr.scatter(lr[g_idx], score[g_idx], marker="s", s=40, facecolors="none", edgecolors="k",
                  label=f"{n_show}x{n_show} grid")
    ax_lr.legend(fontsize=8)
    fig_space = plots.save(fig, out / "search_space.png")

    # ---- figure 2: best found per budget
    fig, ax = plots.new_figure(figsize=(7.5, 4.5))
    ax.plot(budgets, expected, color="C0", label="random search: expected best of k trials (all draws)")
    ax.step(budgets, prefix_best, where="post", color="C0", ls="--", alpha=0.7,
            label="random search: this draw's first k trials")
    gk = sorted(grid_best)
    ax.plot(gk, [grid_best[k] for k in gk], "s-", color="C3", label="grid search (k = n x n)")
    ax.axhline(best_all, color="k", ls=":", lw=0.8, label=f"best of all {len(score)} runs ({best_all:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("budget k (training runs, log scale)")
    ax.set_ylabel("best final validation accuracy found")
    ax.set_title("Grid vs random search at equal budgets")
    ax.legend(fontsize=8, loc="lower right")
    fig_budget = plots.save(fig, out / "search_budget.png")

    rows = []
    for k in gk:
        rows.append({
            "budget k": k, "grid best": grid_best[k],
            "random best (first k trials)": float(prefix_best[k - 1]) if k <= len(prefix_best) else None,
            "random expected best of k": float(expected[k - 1]) if k <= len(expected) else None,
            "distinct learning rates tried (grid / random)": f"{int(round(k ** 0.5))} / {k}",
        })
    wins = sum(1 for r in rows if r["random expected best of k"] is not None
               and r["random expected best of k"] > r["grid best"])
    compared = sum(1 for r in rows if r["random expected best of k"] is not None)
    k20 = min(20, len(expected))
    monotone_grid = all(grid_best[a] <= grid_best[b] for a, b in zip(gk, gk[1:], strict=False))
    null = (bins - 1) / (len(r_score) - 1)
    text = (
        f"{len(score)} runs ({', '.join(f'{n}x{n}' for n in sz['grids'])} grids and {len(r_score)} random "
        f"trials over the learning rate in [{RANGES[LR][0]:g}, {RANGES[LR][1]:g}] and the L2 penalty in "
        f"[{RANGES[L2][0]:g}, {RANGES[L2][1]:g}], log scales; heavy-ball SGD, {sz['epochs']} full-batch epochs on "
        f"circles, seed {SEED}) ran as one sweep in {res.stats.wall_seconds:.1f} s "
        f"({res.stats.compile_seconds:.1f} s compiling); {int(diverged.sum())} diverged (scored 0). Over the "
        f"random trials the learning rate alone explains {eta_lr:.0%} of the variance of the final validation "
        f"accuracy and the L2 penalty {eta_l2:.0%} (correlation ratio over {bins} equal-count bins; a "
        f"hyperparameter with no effect at all would score about {null:.0%} by chance)."
    )
    text += (
        "\n\nBest validation accuracy per budget, grid vs random (expected best of k): "
        + "; ".join(f"k = {r['budget k']}: {r['grid best']:.3f} vs {r['random expected best of k']:.3f}"
                    for r in rows if r["random expected best of k"] is not None)
        + f". The expected best of k random trials is higher than the grid's best in {wins} of {compared} "
        f"budgets; it can only grow with k, while the grid's best "
        + ("does not (a grid's luck is where its few learning rates fall)" if not monotone_grid else "grows too")
        + f". The lecture's 20 random models are expected to reach {expected[k20 - 1]:.3f}"
        f" (best of all runs: {best_all:.3f}); this draw's first {k20} trials reached {prefix_best[k20 - 1]:.3f}."
    )
    return Section(
        title="9. Lecture: hyperparameter search — grid vs random",
        text=text,
        figures=[fig_space, fig_budget],
        tables=[("Best final validation accuracy found per budget", rows)],
    )
