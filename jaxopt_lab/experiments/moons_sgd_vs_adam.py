"""Experiment 1 (the moons lecture): plain SGD against Adam on make_moons, reproduced, then over inits.

The lecture trains two 2-20-2 ReLU networks on ``make_moons(500, noise=0.25,
random_state=7)``, full batch, 400 epochs, softmax cross-entropy; the weights
are ``normal(scale=0.3)`` draws of ``np.random.default_rng(7)`` (the SGD net
first, then Adam's), biases zero; SGD uses a rate of 0.3, Adam 0.05 with
beta1 = 0.9, beta2 = 0.999, eps = 1e-8 (Kingma & Ba, 2015). It prints the
training accuracy after 100, 200, 300 and 400 updates: 0.890 / 0.946, 0.892 /
0.950, 0.898 / 0.950, 0.896 / 0.950 and the final 0.896 / 0.95.

Here the same runs go through `jaxopt_lab.train` in float64 and must give those
numbers exactly. The engine's full-batch history holds, at index e, the
accuracy measured before update e+1, i.e. after e updates, so index 100 is the
lecture's epoch 100 and the final metrics are its epoch 400.

The lecture's comparison draws a different initialization for each optimizer,
so one run of each cannot tell the optimizer's effect from the draw's. The
extension trains both optimizers from the same further draws of the same
stream (paired initializations) and reports the spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.config import Config, DataConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size
from jaxopt_lab.experiments.curve_bands import median_band
from jaxopt_lab.report_page import Section
from jaxopt_lab.sweep import records
from jaxopt_lab.train import make_train

#: Accuracies printed by the lecture at epochs 100, 200, 300, 400 and at the end.
PRINTED = {
    "sgd": (0.890, 0.892, 0.898, 0.896, 0.896),
    "adam": (0.946, 0.950, 0.950, 0.950, 0.95),
}
CHECKPOINTS = (100, 200, 300, 400)
EPOCHS = 400
OPTIMIZERS = {
    "sgd": OptimizerConfig("sgd", {"learning_rate": 0.3}),
    "adam": OptimizerConfig("adam", {"learning_rate": 0.05, "b1": 0.9, "b2": 0.999, "eps": 1e-8}),
}
LABELS = {"sgd": "SGD (lr 0.3)", "adam": "Adam (lr 0.05)"}
#: Random initializations of the extension, per size.
SIZES = {"tiny": 4, "demo": 16, "full": 64}


def draw_weights(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """One 2-20-2 network drawn as the lecture does: W ~ normal(0, 0.3^2), b = 0."""
    return {
        "dense_0": {"w": rng.normal(scale=0.3, size=(2, 20)), "b": np.zeros(20)},
        "dense_1": {"w": rng.normal(scale=0.3, size=(20, 2)), "b": np.zeros(2)},
    }


def initializations(n_random: int) -> dict[str, Any]:
    """The lecture's two nets (SGD's, then Adam's) and `n_random` further draws of the same stream."""
    rng = np.random.default_rng(7)
    lecture = {"sgd": draw_weights(rng), "adam": draw_weights(rng)}
    extra = [draw_weights(rng) for _ in range(n_random)]
    return {"lecture": lecture, "random": extra}


def relu_net(params: Any, x: jax.Array) -> jax.Array:
    """The lecture's forward pass: relu(x W1 + b1) W2 + b2 (logits)."""
    h = jax.nn.relu(x @ params["dense_0"]["w"] + params["dense_0"]["b"])
    return h @ params["dense_1"]["w"] + params["dense_1"]["b"]


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def train_from(name: str, inits: list[Any]) -> dict[str, Any]:
    """Train optimizer `name` from each initial parameter tree of `inits`; one compiled program.

    The runs go through `lax.map` (one after another inside one program, each
    run's arithmetic its own), which on a CPU compiles and runs faster than
    `vmap` for a net this small.
    """
    cfg = Config(
        data=DataConfig(dataset="moons", n_samples=500, noise=0.25, random_state=7, val_fraction=0.0),
        train=TrainConfig(epochs=EPOCHS, precision="float64"),
        optimizer=OPTIMIZERS[name],
    )
    template = inits[0]
    trainer = make_train(cfg, init_fn=lambda key: template, apply_fn=relu_net)

    def one(params0):
        # The optimizer states start at zero whatever the weights, so only the weights are swapped in.
        state = trainer.init_state(jax.random.PRNGKey(0))
        state = state._replace(params=params0, best_params=params0)
        result = trainer.finalize(trainer.run_epochs(state))
        return {"history": result.history, "metrics": result.metrics}

    stacked = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), _stack(inits))
    out = jax.jit(lambda p: jax.lax.map(one, p))(stacked)
    return jax.tree.map(np.asarray, out)


def _reproduced(out: dict[str, Any], i: int) -> tuple[float, ...]:
    acc = out["history"]["train_accuracy"][i]
    final = float(out["metrics"]["final_train_accuracy"][i])
    return (*(float(acc[e]) for e in CHECKPOINTS[:-1]), final, final)


def _lecture_table(runs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, tuple[float, ...]], float]:
    """Rows of printed vs reproduced accuracies, the reproduced values per optimizer, the largest difference."""
    reproduced = {name: _reproduced(runs[name], 0) for name in runs}
    labels = [f"epoch {e}" for e in CHECKPOINTS] + ["final"]
    rows = []
    for j, label in enumerate(labels):
        row = {"checkpoint": label}
        for name in ("sgd", "adam"):
            row[f"{name} printed"] = PRINTED[name][j]
            row[f"{name} reproduced"] = reproduced[name][j]
        rows.append(row)
    max_err = max(abs(reproduced[n][j] - PRINTED[n][j]) for n in runs for j in range(len(labels)))
    return rows, reproduced, max_err


def _lecture_figure(path: Path, runs: dict[str, Any]) -> Path:
    """The lecture's two runs: loss and accuracy over the epochs, with the printed accuracies as circles."""
    fig, (ax_l, ax_a) = plots.new_figure(1, 2, figsize=(11, 4.2))
    ep = np.arange(EPOCHS)
    for i, name in enumerate(("sgd", "adam")):
        h = runs[name]["history"]
        ax_l.plot(ep, h["train_loss"][0], color=f"C{i}", label=LABELS[name])
        ax_a.plot(ep, h["train_accuracy"][0], color=f"C{i}", label=f"{LABELS[name]} (reproduced)")
        ax_a.plot(CHECKPOINTS, PRINTED[name][:4], "o", mfc="none", ms=9, color=f"C{i}",
                  label=f"{LABELS[name]}: printed in the lecture")
    ax_l.set_yscale("log")
    ax_l.set_xlabel("epoch (full-batch updates)")
    ax_l.set_ylabel("training cross-entropy (log scale)")
    ax_l.set_title("The moons lecture reproduced: loss from its initial weights")
    ax_l.legend()
    ax_a.set_xlabel("updates done")
    ax_a.set_ylabel("training accuracy")
    ax_a.set_ylim(0.75, 1.0)
    ax_a.set_title("Training accuracy; circles: the lecture's printed values")
    ax_a.legend(fontsize=8, loc="lower right")
    return plots.save(fig, path)


def _paired_figure(path: Path, runs: dict[str, Any], final: dict[str, np.ndarray],
                   reproduced: dict[str, tuple[float, ...]], n_random: int) -> Path:
    """Loss curves over the paired random initializations, and each pair's final accuracies."""
    fig, (ax_c, ax_s) = plots.new_figure(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    ep = np.arange(EPOCHS)
    for i, name in enumerate(("sgd", "adam")):
        curves = runs[name]["history"]["train_loss"][1:]
        median_band(ax_c, ep, curves, color=f"C{i}", label=f"{LABELS[name]}: median of {n_random}", alpha=0.25,
                    band_label=f"{LABELS[name]}: interquartile range")
        for c in curves:
            ax_c.plot(ep, c, color=f"C{i}", lw=0.4, alpha=0.35)
    ax_c.set_yscale("log")
    ax_c.set_xlabel("epoch (full-batch updates)")
    ax_c.set_ylabel("training cross-entropy (log scale)")
    ax_c.set_title(f"{n_random} random initializations, each trained by both (thin: single runs)")
    ax_c.legend(fontsize=8)
    ax_s.scatter(final["sgd"], final["adam"], s=22, color="C2", label="one initialization")
    ax_s.scatter([reproduced["sgd"][-1]], [reproduced["adam"][-1]], marker="*", s=120, color="C3",
                 label="the lecture's pair (different inits)")
    both = np.concatenate([final["sgd"], final["adam"], [reproduced["sgd"][-1], reproduced["adam"][-1]]])
    lo_ax, hi_ax = both.min() - 0.01, min(both.max() + 0.01, 1.0)
    ax_s.plot([lo_ax, hi_ax], [lo_ax, hi_ax], "k--", lw=0.8, label="equal accuracy")
    ax_s.set_xlim(lo_ax, hi_ax)
    ax_s.set_ylim(lo_ax, hi_ax)
    ax_s.set_xlabel("SGD final training accuracy")
    ax_s.set_ylabel("Adam final training accuracy")
    ax_s.set_title("Paired final accuracy after 400 epochs")
    ax_s.legend(fontsize=8, loc="lower right")
    return plots.save(fig, path)


def _spread_rows(final: dict[str, np.ndarray], floss: dict[str, np.ndarray],
                 to90: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per optimizer: final accuracy and loss over the paired initializations, and epochs to 0.9 accuracy."""
    return [
        {
            "optimizer": LABELS[n],
            "final accuracy median": float(np.median(final[n])),
            "final accuracy min": float(final[n].min()),
            "final accuracy max": float(final[n].max()),
            "final loss median": float(np.median(floss[n])),
            "runs reaching 0.9": int(np.isfinite(to90[n]).sum()),
            "median epochs to 0.9": float(np.median(to90[n][np.isfinite(to90[n])])) if np.isfinite(to90[n]).any()
            else float("nan"),
        }
        for n in ("sgd", "adam")
    ]


def _quartiles_text(a: np.ndarray) -> str:
    lo, med, hi = np.percentile(a, [25, 50, 75])
    return f"median {med:.3f} (interquartile {lo:.3f}-{hi:.3f}, range {a.min():.3f}-{a.max():.3f})"


def _reach_text(a: np.ndarray) -> str:
    hit = np.isfinite(a)
    return f"{int(hit.sum())}/{len(a)} runs, median {np.median(a[hit]):.0f} epochs" if hit.any() else f"0/{len(a)} runs"


def _findings_text(runs: dict[str, Any], reproduced: dict[str, tuple[float, ...]], max_err: float,
                   final: dict[str, np.ndarray], floss: dict[str, np.ndarray], to90: dict[str, np.ndarray]) -> str:
    n_random = len(final["sgd"])
    adam_better = int(np.sum(final["adam"] > final["sgd"]))
    ties = int(np.sum(final["adam"] == final["sgd"]))
    loss_lower = int(np.sum(floss["adam"] < floss["sgd"]))
    verdict = "exactly (to 1e-12)" if max_err < 1e-12 else f"NOT exactly: largest difference {max_err:.3g}"
    return (
        f"The moons lecture's two runs were repeated in float64 from the lecture's own initial weights; the "
        f"training accuracies after 100, 200, 300 and 400 updates match the printed ones {verdict}: "
        f"SGD {', '.join(f'{v:.3f}' for v in reproduced['sgd'][:4])} and Adam "
        f"{', '.join(f'{v:.3f}' for v in reproduced['adam'][:4])} (printed: SGD 0.890, 0.892, 0.898, 0.896; "
        f"Adam 0.946, 0.950, 0.950, 0.950). The final training loss is "
        f"{runs['sgd']['metrics']['final_train_loss'][0]:.4f} for SGD and "
        f"{runs['adam']['metrics']['final_train_loss'][0]:.4f} for Adam.\n\n"
        f"The lecture's two networks start from different draws, so that one comparison mixes the "
        f"optimizer with the initialization. Trained from the same {n_random} further draws of the same "
        f"generator (paired), SGD ends at a final training accuracy {_quartiles_text(final['sgd'])} and Adam at "
        f"{_quartiles_text(final['adam'])}; Adam is more accurate in {adam_better} of {n_random} pairs"
        f"{f' (tied in {ties})' if ties else ''} and reaches a lower final loss in {loss_lower} of {n_random}. "
        f"Reaching 0.9 training accuracy: SGD {_reach_text(to90['sgd'])}, Adam {_reach_text(to90['adam'])}."
    )


def run(out: Path, size: str = "demo") -> Section:
    """Reproduce the moons lecture's printed accuracies, plot both loss curves, then compare over paired inits."""
    check_size(size, SIZES)
    out = Path(out)
    n_random = SIZES[size]
    inits = initializations(n_random)
    with jax.enable_x64(True):
        runs = {
            name: train_from(name, [inits["lecture"][name], *inits["random"]]) for name in ("sgd", "adam")
        }
    rows, reproduced, max_err = _lecture_table(runs)
    # The extension: index 0 is the lecture's own initialization, the rest the paired random ones.
    final = {n: runs[n]["metrics"]["final_train_accuracy"][1:] for n in runs}
    floss = {n: runs[n]["metrics"]["final_train_loss"][1:] for n in runs}
    to90 = {n: records.steps_to_target(runs[n]["history"]["train_accuracy"][1:], 0.9) for n in runs}
    fig1 = _lecture_figure(out / "moons_lecture_reproduction.png", runs)
    fig2 = _paired_figure(out / "moons_random_inits.png", runs, final, reproduced, n_random)
    return Section(
        title="1. Lecture: optimizers — SGD vs Adam on moons",
        text=_findings_text(runs, reproduced, max_err, final, floss, to90),
        figures=[fig1, fig2],
        tables=[("Lecture's printed accuracies vs reproduced (float64)", rows),
                (f"Over {n_random} paired random initializations", _spread_rows(final, floss, to90))],
    )
