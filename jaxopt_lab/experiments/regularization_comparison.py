"""Experiment 6: regularization against overfitting (the moons, hyperparameter, optimizers-and-overfitting
and gradients-and-activations lectures, docs/lectures.md).

An over-parameterized ReLU network (2 -> 64 -> 64 -> 2, about 4,500 weights)
learns the moons from a few dozen examples with full-batch Adam, and is scored
on a large validation set drawn from the same distribution, so the measured
generalization gap is the model's, not the noise of a small validation split.

Every regularizer of the lectures runs through `jaxopt_lab.train.make_train`'s
own switches, all traced hyperparameters of one compiled program:

* none (the baseline, which overfits: training loss to ~0, validation loss up);
* dropout (`model.dropout`, all four of those lectures);
* L2 in the loss (`train.l2`, ``loss + lam/2 ||W||^2``, the optimizers-and-overfitting and
  gradients-and-activations lectures);
* decoupled weight decay (`train.weight_decay`, ``W <- W - lr lam W`` after the
  Adam step: AdamW, Loshchilov & Hutter 2019; the moons, hyperparameter and
  gradients-and-activations lectures);
* L1 in the loss (`train.l1`, ``loss + lam ||W||_1``, the optimizers-and-overfitting lecture);
* early stopping with patience, restoring the best epoch's weights
  (`train.early_stopping_patience`, the moons, hyperparameter and
  gradients-and-activations lectures);
* augmentation by input noise (`train.input_noise`: fresh Gaussian noise on the
  inputs at every step, the optimizers-and-overfitting lecture's `random_noise` augmentation).

The gradients-and-activations lecture warns "never use L1/L2 with Adam-type optimizers": Adam divides the
penalty's gradient ``lam W`` by the running RMS of the *whole* gradient, so
weights with large loss gradients are hardly decayed and the penalty's strength
is not what `lam` says. AdamW applies the decay outside the adaptive scaling.
The experiment sweeps the same nominal strength `lam` for both and measures the
final weight norm and validation loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size, reproduce_text, run_once
from jaxopt_lab.experiments.curve_bands import median_band
from jaxopt_lab.report_page import Section
from jaxopt_lab.sweep.config_sweep import apply_overrides
from jaxopt_lab.train import make_train

SIZES = {
    "tiny": dict(n_train=30, n_val=120, epochs=60, seeds=2, patience=10, strengths=(1e-2, 1.0, 10.0)),
    "demo": dict(n_train=30, n_val=400, epochs=200, seeds=4, patience=20,
                 strengths=(1e-3, 1e-2, 1e-1, 1.0, 10.0)),
    "full": dict(n_train=30, n_val=2000, epochs=600, seeds=16, patience=40,
                 strengths=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)),
}

HPARAM_KEYS = (
    "model.dropout", "train.l2", "train.l1", "train.weight_decay", "train.input_noise",
    "train.early_stopping_patience",
)

LEARNING_RATE = 0.01


def methods(patience: int) -> dict[str, dict[str, float]]:
    """The regularizers compared, each as the hyperparameters it sets (the rest are 0)."""
    return {
        "none": {},
        "dropout 0.5": {"model.dropout": 0.5},
        "L2 (lam 0.01)": {"train.l2": 0.01},
        "weight decay (lam 1)": {"train.weight_decay": 1.0},
        "L1 (lam 0.001)": {"train.l1": 0.001},
        f"early stopping (patience {patience})": {"train.early_stopping_patience": float(patience)},
        "input noise (std 0.15)": {"train.input_noise": 0.15},
    }


def config(size: str) -> Config:
    s = SIZES[size]
    n = s["n_train"] + s["n_val"]
    return Config(
        data=DataConfig(dataset="moons", n_samples=n, noise=0.25, random_state=3, val_fraction=s["n_val"] / n),
        model=ModelConfig(hidden=(64, 64), activation="relu", init="he_normal"),
        train=TrainConfig(loss="cross_entropy", epochs=s["epochs"], batch_size=0, restore_best=True),
        optimizer=OptimizerConfig(name="adam", kwargs={"learning_rate": LEARNING_RATE}),
    )


def method_config(size: str, label: str) -> Config:
    """`config(size)` with the hyperparameters of method `label` set: `jaxopt-lab train` on it
    with `--seed S` reproduces the experiment's run of seed S."""
    hp = methods(SIZES[size]["patience"])[label]
    return apply_overrides(config(size), {k: int(v) if k.endswith("patience") else v for k, v in hp.items()})


def _runs(size: str) -> tuple[list[tuple[dict[str, float], int]], dict[str, list[int]]]:
    """The distinct runs (hparams, seed) and, per label, the indices of its runs (one per seed).

    Labels are the methods, then "sweep L2 lam" / "sweep AdamW lam" for the strength sweep; a
    method that is also a point of the sweep shares its runs.
    """
    s = SIZES[size]
    labelled = list(methods(s["patience"]).items())
    for lam in s["strengths"]:
        labelled += [(f"sweep L2 {lam:g}", {"train.l2": lam}), (f"sweep AdamW {lam:g}", {"train.weight_decay": lam})]
    runs: list[tuple[dict[str, float], int]] = []
    where: dict[tuple, int] = {}
    groups: dict[str, list[int]] = {}
    for label, hp in labelled:
        for seed in range(s["seeds"]):
            key = (tuple(sorted(hp.items())), seed)
            if key not in where:
                where[key] = len(runs)
                runs.append((hp, seed))
            groups.setdefault(label, []).append(where[key])
    return runs, groups


def _train(size: str) -> tuple[dict[str, np.ndarray], dict[str, Any], Any]:
    trainer = make_train(config(size))
    runs, groups = _runs(size)
    hps = {k: jnp.asarray([hp.get(k, 0.0) for hp, _ in runs], jnp.float32) for k in HPARAM_KEYS}
    seeds = jnp.asarray([seed for _, seed in runs], jnp.int32)

    def one(seed, hp):
        result = trainer(jax.random.PRNGKey(seed), hp)
        weights = [layer["w"] for name, layer in result.params.items() if name.startswith("dense_")]
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(w)) for w in weights))
        return result.metrics, result.history, norm

    # One program for every run; vmapped, since the 64x64 layers give XLA's vectorized
    # kernels enough to do ("balanced" options: full optimization, half the compile time).
    metrics, history, norms = run_once(jax.vmap(one), seeds, hps, mode="balanced")
    groups_idx = {label: np.asarray(idx) for label, idx in groups.items()}
    return groups_idx, {"metrics": metrics, "history": history, "weight_norm": norms}, trainer


def run(out: Path, size: str = "demo") -> Section:
    """Train every regularizer and the strength sweep; write the figures and the findings."""
    check_size(size, SIZES)
    out = Path(out)
    s = SIZES[size]
    groups, res, trainer = _train(size)
    m, h = res["metrics"], res["history"]
    labels = list(methods(s["patience"]))

    rows = []
    for label in labels:
        idx = groups[label]
        tr, va = m["final_train_loss"][idx], m["final_val_loss"][idx]
        rows.append({
            "method": label,
            "final train loss": float(np.median(tr)),
            "final val loss": float(np.median(va)),
            "gap (val - train)": float(np.median(va - tr)),
            "best val loss (any epoch)": float(np.median(m["best_val_loss"][idx])),
            "final val accuracy": float(np.median(m["final_val_accuracy"][idx])),
            "epochs run": float(np.median(m["epochs_run"][idx])),
            "weight norm": float(np.median(res["weight_norm"][idx])),
        })
    strongest = f"sweep L2 {s['strengths'][-1]:g}"
    figures = [
        _curves_figure(out / "regularization_curves.png", labels + [strongest], groups, h, m, s),
        _gap_figure(out / "regularization_gap.png", rows),
        _contrast_figure(out / "regularization_l2_vs_adamw.png", groups, m, res["weight_norm"], s),
    ]
    sweep_rows = []
    for lam in s["strengths"]:
        for name in ("sweep L2", "sweep AdamW"):
            idx = groups[f"{name} {lam:g}"]
            sweep_rows.append({
                "method": "L2 in the loss + Adam" if name == "sweep L2" else "decoupled decay (AdamW)",
                "lam": lam,
                "final train loss": float(np.median(m["final_train_loss"][idx])),
                "final val loss": float(np.median(m["final_val_loss"][idx])),
                "final val accuracy": float(np.median(m["final_val_accuracy"][idx])),
                "weight norm": float(np.median(res["weight_norm"][idx])),
            })
    text = _text(rows, sweep_rows, s, len(trainer.data.x_train), len(trainer.data.x_val))
    text += "\n\n" + reproduce_text({label: method_config(size, label) for label in labels[:2]}, s["seeds"])
    tables = [
        (f"Regularizers after {s['epochs']} epochs (median of {s['seeds']} seeds)", rows),
        ("Same nominal strength lam: L2 in the loss with Adam vs decoupled weight decay (AdamW)", sweep_rows),
    ]
    return Section("6. Lecture: regularization — overfitting and its cures", text, figures, tables)


def _text(rows, sweep_rows, s, n_train, n_val) -> str:
    base = rows[0]
    best = min(rows, key=lambda r: r["final val loss"])
    early = next(r for r in rows if r["method"].startswith("early stopping"))
    l2 = [r for r in sweep_rows if r["method"].startswith("L2")]
    aw = [r for r in sweep_rows if r["method"].startswith("decoupled")]
    best_l2 = min(l2, key=lambda r: r["final val loss"])
    best_aw = min(aw, key=lambda r: r["final val loss"])
    under = max(l2[-1], aw[-1], key=lambda r: r["final train loss"])
    lams = ", ".join(f"{r['lam']:g}" for r in l2)
    overfits = base["final val loss"] > 1.2 * base["best val loss (any epoch)"]
    overfit_line = (
        f"- Without regularization {'it overfits' if overfits else 'the validation loss hardly rises'}: the "
        f"final training loss is {base['final train loss']:.2g} while the validation loss ends at "
        f"{base['final val loss']:.3f}, against {base['best val loss (any epoch)']:.3f} at its best epoch "
        f"(generalization gap {base['gap (val - train)']:.3f})."
    )
    if under["final train loss"] > 0.5:
        underfit_line = (
            f"- Underfitting: at the strongest strength (lam {s['strengths'][-1]:g}) {under['method']} keeps the "
            f"training loss at {under['final train loss']:.3f} (an untrained classifier scores ln 2 = 0.693): "
            "the model can no longer fit even its training set."
        )
    else:
        underfit_line = (
            f"- Even the strongest strength (lam {s['strengths'][-1]:g}) leaves the training loss at "
            f"{under['final train loss']:.3f} ({under['method']}): no underfitting in this range."
        )
    lines = [
        f"A 2-64-64-2 ReLU network (about 4,500 weights) learns the moons from {n_train} examples with "
        f"full-batch Adam (learning rate {LEARNING_RATE:g}, {s['epochs']} epochs) and is scored on {n_val} "
        "fresh validation examples.",
        "",
        overfit_line,
        f"- The lowest final validation loss is {best['method']}'s ({best['final val loss']:.3f}, gap "
        f"{best['gap (val - train)']:.3f}, accuracy {best['final val accuracy']:.3f} against "
        f"{base['final val accuracy']:.3f} without regularization). Early stopping stopped after a median of "
        f"{early['epochs run']:.0f} epochs and kept the best epoch's weights (validation loss "
        f"{early['final val loss']:.3f}).",
        "- Gaps per method: " + "; ".join(f"{r['method']} {r['gap (val - train)']:.3f}" for r in rows) + ".",
        underfit_line,
        f"- L2 with Adam vs AdamW at the same nominal lam ({lams}): the final weight norm is "
        + ", ".join(f"{r['weight norm']:.2f}" for r in l2) + " with L2 in the loss and "
        + ", ".join(f"{r['weight norm']:.2f}" for r in aw) + " with decoupled decay. Between the two "
        f"largest lam the norm changes {l2[-2]['weight norm'] / l2[-1]['weight norm']:.2f}x with L2 + Adam "
        f"and {aw[-2]['weight norm'] / aw[-1]['weight norm']:.2f}x with AdamW: Adam divides the penalty's "
        "gradient lam W by the running RMS of the whole gradient, so once the penalty dominates, the step "
        "is about the learning rate whatever lam is, and L2's strength is not the lam it is given (the "
        "gradients-and-activations lecture: never use L1/L2 with Adam-type optimizers). The best validation "
        "loss of the sweep is "
        f"{best_l2['final val loss']:.3f} for L2 + Adam (lam {best_l2['lam']:g}) and "
        f"{best_aw['final val loss']:.3f} for AdamW (lam {best_aw['lam']:g}): the same nominal lam means "
        "very different regularization.",
    ]
    return "\n".join(lines)


def _curves_figure(path: Path, labels: list[str], groups, h, m, s) -> Path:
    cols = 4
    rows = -(-len(labels) // cols)
    fig, axes = plots.new_figure(rows, cols, figsize=(3.6 * cols, 2.9 * rows), sharex=True, sharey=True)
    axes = np.atleast_1d(axes).ravel()
    for ax, label in zip(axes, labels, strict=False):
        idx = groups[label]
        epochs = np.arange(1, h["train_loss"].shape[1] + 1)
        median_band(ax, epochs, h["train_loss"][idx], color="C0", label="training")
        median_band(ax, epochs, h["val_loss"][idx], color="C3", label="validation", ls="--")
        if label.startswith("early stopping"):
            best = float(np.median(m["best_epoch"][idx]))
            ax.axvline(best, color="0.4", ls=":", label=f"restored epoch ({best:.0f})")
            ax.legend(fontsize=7, loc="lower left")
        title = label.replace("sweep L2", "underfit: L2 lam") if label.startswith("sweep") else label
        ax.set_title(title, fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes[len(labels):]:
        ax.axis("off")
    for ax in axes[(rows - 1) * cols:]:
        ax.set_xlabel("epoch")
    for ax in axes[::cols]:
        ax.set_ylabel("cross-entropy loss")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Learning curves, median and IQR over {s['seeds']} seeds "
                 "(training: solid, validation: dashed)", fontsize=11)
    return plots.save(fig, path)


def _gap_figure(path: Path, rows: list[dict[str, Any]]) -> Path:
    fig, ax = plots.new_figure(figsize=(8, 4))
    x = np.arange(len(rows))
    tr = [r["final train loss"] for r in rows]
    va = [r["final val loss"] for r in rows]
    ax.bar(x - 0.2, tr, 0.4, label="final training loss", color="C0")
    ax.bar(x + 0.2, va, 0.4, label="final validation loss", color="C3")
    for i, r in enumerate(rows):
        ax.text(i + 0.2, va[i], f"acc {r['final val accuracy']:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [r["method"] for r in rows], rotation=25, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(top=max(va) * 8)
    ax.set_ylabel("cross-entropy loss (median over seeds)")
    ax.set_title("Generalization gap per regularizer (acc: validation accuracy)")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    return plots.save(fig, path)


def _contrast_figure(path: Path, groups, m, norms, s) -> Path:
    lams = np.asarray(s["strengths"], float)
    fig, (ax_v, ax_n) = plots.new_figure(1, 2, figsize=(10, 3.8))
    for name, label, color in (("sweep L2", "L2 in the loss + Adam", "C1"),
                               ("sweep AdamW", "decoupled weight decay (AdamW)", "C2")):
        val = [np.median(m["final_val_loss"][groups[f"{name} {lam:g}"]]) for lam in s["strengths"]]
        nrm = [np.median(norms[groups[f"{name} {lam:g}"]]) for lam in s["strengths"]]
        ax_v.plot(lams, val, marker="o", color=color, label=label)
        ax_n.plot(lams, nrm, marker="o", color=color, label=label)
    for ax in (ax_v, ax_n):
        ax.set_xscale("log")
        ax.set_xlabel("nominal strength lam")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_v.set_ylabel("final validation loss (median)")
    ax_v.set_title("Validation loss")
    ax_n.set_ylabel("weight norm ||W|| at the end (median)")
    ax_n.set_yscale("log")
    ax_n.set_title("How much the weights shrink")
    fig.suptitle("Same lam, different regularizer: L2 with Adam vs AdamW", fontsize=11)
    return plots.save(fig, path)
