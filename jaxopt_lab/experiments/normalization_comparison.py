"""Experiment 8: batch norm and layer norm, and batch norm's dependence on the batch size (the hyperparameter lecture).

The hyperparameter lecture: batch norm standardizes each unit with the statistics of the
mini-batch and keeps running averages for inference; it allows higher learning
rates and is less sensitive to initialization, but "depends on batch size: no
effect with small batches". Layer norm standardizes each example over its own
units, needs no running averages and does not depend on the batch ("USE THIS").

A deep ReLU MLP (8 hidden layers) learns the 8x8 digits with SGD + momentum,
without normalization, with batch norm and with layer norm
(`jaxopt_lab.nn.mlp.apply(norm=...)`), at several batch sizes; accuracy is
measured on held-out digits in inference mode (batch norm then uses its running
averages). Every (normalization, batch size) pair is a branch of one compiled
program (`jaxopt_lab.train.switch`), trained by the engine's one loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.experiments import check_size, reproduce_text, run_once
from jaxopt_lab.report_page import Section
from jaxopt_lab.train import make_train
from jaxopt_lab.train.switch import switch

SIZES = {
    # rows: digits used (3/4 train, 1/4 validation).
    "tiny": dict(rows=512, epochs=4, seeds=2, batch_sizes=(4, 128)),
    "demo": dict(rows=1024, epochs=6, seeds=3, batch_sizes=(4, 128)),
    "full": dict(rows=1792, epochs=30, seeds=8, batch_sizes=(2, 4, 16, 64, 192)),
}

NORMS = ("none", "batch", "layer")
#: Column of the mean training loss over the last epoch's batches, as trained on.
TRAIN_LOSS = "last epoch's training loss (median)"
DEPTH, WIDTH = 6, 32
LEARNING_RATE = 0.02
MOMENTUM = 0.9
BN_MOMENTUM = 0.9
N_DIGITS = 1797


def config(size: str, norm: str, batch_size: int) -> Config:
    """The `jaxopt-lab train` config of one (normalization, batch size) run of `size`.

    The digits are split by `data.random_state`: `rows` of them for training (3/4) and validation
    (1/4), the rest into a test split the experiment does not read (a config has no option to
    load fewer digits)."""
    s = SIZES[size]
    return Config(
        data=DataConfig(dataset="digits", random_state=1, standardize=True,
                        val_fraction=round(0.25 * s["rows"] / N_DIGITS, 4),
                        test_fraction=round(1.0 - s["rows"] / N_DIGITS, 4)),
        model=ModelConfig(hidden=(WIDTH,) * DEPTH, activation="relu", init="he_normal", norm=norm,
                          bn_momentum=BN_MOMENTUM),
        train=TrainConfig(loss="cross_entropy", epochs=s["epochs"], batch_size=batch_size),
        optimizer=OptimizerConfig(name="sgd", kwargs={"learning_rate": LEARNING_RATE, "momentum": MOMENTUM}),
    )


def _train(size: str) -> dict[int, dict[str, Any]]:
    """`result[batch_size][name]` of shape (norms, seeds, ...): the history columns and final
    metrics. One program: every (normalization, batch size) is a branch of
    `jaxopt_lab.train.switch.switch` (they differ in parameters, state and batch size), the runs
    go one after another (`lax.map`), each executing its own branch; seed `s` is
    `jaxopt-lab train --seed s`."""
    s = SIZES[size]
    combos = [(b, norm) for b in s["batch_sizes"] for norm in NORMS]
    switched = switch([make_train(config(size, norm, b)) for b, norm in combos],
                      [f"{norm} norm, batch {b}" for b, norm in combos],
                      result_fn=lambda r: (r.history, r.metrics))
    branch = np.repeat(np.arange(len(combos)), s["seeds"])
    seed = np.tile(np.arange(s["seeds"]), len(combos))

    def program(branch, seed, data):
        return jax.lax.map(lambda a: switched(a[0], jax.random.PRNGKey(a[1]), None, data), (branch, seed))

    history, metrics = run_once(program, branch, seed, switched.data_arrays)
    out: dict[int, dict[str, Any]] = {}
    for b in s["batch_sizes"]:
        idx = np.asarray([i for i, (bb, _) in enumerate(combos) if bb == b])
        cols = {**history, **metrics}
        out[b] = {k: np.asarray(v).reshape(len(combos), s["seeds"], *np.shape(v)[1:])[idx] for k, v in cols.items()}
    return out


def run(out: Path, size: str = "demo") -> Section:
    """Train every normalization at every batch size; write figures and findings."""
    check_size(size, SIZES)
    out = Path(out)
    s = SIZES[size]
    res = _train(size)
    rows = []
    for b in s["batch_sizes"]:
        for k, norm in enumerate(NORMS):
            h = {name: np.asarray(v)[k] for name, v in res[b].items()}
            acc, loss = h["val_accuracy"][:, -1], h["train_loss"][:, -1]
            rows.append({
                "normalization": norm,
                "batch size": b,
                "final val accuracy (median)": float(np.nanmedian(acc)),
                "val accuracy (min over seeds)": float(np.nanmin(acc)),
                TRAIN_LOSS: float(np.nanmedian(loss)),
                "final val loss (median)": float(np.nanmedian(h["val_loss"][:, -1])),
                "diverged runs": int(np.sum(h["diverged"])),
            })
    figures = [
        _curves_figure(out / "normalization_curves.png", res, s),
        _batch_figure(out / "normalization_batch_size.png", rows, s),
    ]
    large = max(s["batch_sizes"])
    text = _text(rows, s) + "\n\n" + reproduce_text(
        {f"{norm} norm, batch size {large}": config(size, norm, large) for norm in ("batch", "layer")}, s["seeds"]
    ) + (
        "\n\nThe other rows differ in `model.norm` and `train.batch_size`. At the smallest batch size "
        "training is chaotic (a few examples' statistics, momentum 0.9): float32 rounding differences "
        "between two compilations of the same run (other XLA options, other fusion) grow into visibly "
        "different final numbers, so there `jaxopt-lab train` reproduces the runs' behaviour, not their "
        "digits; at the largest batch size it reproduces them to float32 rounding."
    )
    return Section(
        "8. Lecture: normalization — none vs batch norm vs layer norm", text, figures,
        [(f"Digits, {DEPTH} hidden ReLU layers of {WIDTH}, {s['epochs']} epochs, {s['seeds']} seeds", rows)],
    )


def _text(rows, s) -> str:
    def get(norm, b, key="final val accuracy (median)"):
        return next(r[key] for r in rows if r["normalization"] == norm and r["batch size"] == b)

    small, large = min(s["batch_sizes"]), max(s["batch_sizes"])
    lines = [
        f"A {DEPTH}-hidden-layer ReLU MLP ({WIDTH} units per layer, He initialization) learns the digits with "
        f"SGD (learning rate {LEARNING_RATE:g}, momentum {MOMENTUM:g}) for {s['epochs']} epochs at batch sizes "
        f"{', '.join(str(b) for b in s['batch_sizes'])}; validation accuracy is measured in inference mode "
        "(batch norm with its running averages, momentum "
        f"{BN_MOMENTUM:g}). Medians over {s['seeds']} seeds.",
        "",
    ]
    for b in s["batch_sizes"]:
        lines.append(
            f"- Batch size {b}: validation accuracy {get('none', b):.3f} without normalization, "
            f"{get('batch', b):.3f} with batch norm, {get('layer', b):.3f} with layer norm (final training "
            f"loss {get('none', b, TRAIN_LOSS):.3f}, {get('batch', b, TRAIN_LOSS):.3f}, "
            f"{get('layer', b, TRAIN_LOSS):.3f})."
        )
    gap_small = get("batch", small) - get("layer", small)
    gap_large = get("batch", large) - get("layer", large)
    lines.append(
        f"- Batch norm minus layer norm, validation accuracy: {gap_small:+.3f} at batch size {small}, "
        f"{gap_large:+.3f} at batch size {large}. Batch norm estimates each unit's mean and variance from the "
        f"{small} examples of a batch and, at inference, uses running averages of those noisy estimates; "
        "layer norm's statistics come from one example's own units, the same in training and at inference, "
        "whatever the batch (the hyperparameter lecture: batch norm \"depends on batch size\", layer norm does not)."
    )
    chance = 1.0 / 10
    for b in s["batch_sizes"]:
        if get("none", b) < 2 * chance:
            lines.append(
                f"- Without normalization the network does not learn at batch size {b} (validation accuracy "
                f"{get('none', b):.3f}, chance is {chance:.2f}) at the learning rate that the normalized "
                "networks train with."
            )
    return "\n".join(lines)


def _curves_figure(path: Path, res, s) -> Path:
    bs = s["batch_sizes"]
    fig, axes = plots.new_figure(1, len(bs), figsize=(4.2 * len(bs), 3.8), sharey=True)
    axes = np.atleast_1d(axes)
    epochs = np.arange(1, s["epochs"] + 1)
    for ax, b in zip(axes, bs, strict=True):
        for k, norm in enumerate(NORMS):
            acc = np.asarray(res[b]["val_accuracy"])[k]
            med = np.nanmedian(acc, axis=0)
            ax.plot(epochs, med, color=f"C{k}", marker="o", ms=3, label=norm)
            if acc.shape[0] > 1:
                ax.fill_between(epochs, np.nanmin(acc, axis=0), np.nanmax(acc, axis=0), color=f"C{k}", alpha=0.15)
        ax.set_title(f"batch size {b}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy (inference mode)")
    axes[0].legend(title="normalization", fontsize=8)
    fig.suptitle(f"Digits, {DEPTH} hidden layers: median over {s['seeds']} seeds, band = min..max", fontsize=10)
    return plots.save(fig, path)


def _batch_figure(path: Path, rows, s) -> Path:
    """Grouped bars: final validation accuracy per normalization, one bar per batch size."""
    bs = s["batch_sizes"]
    fig, ax = plots.new_figure(figsize=(7, 4))
    width = 0.8 / len(bs)
    for j, b in enumerate(bs):
        vals = [next(r["final val accuracy (median)"] for r in rows
                     if r["normalization"] == norm and r["batch size"] == b) for norm in NORMS]
        xs = np.arange(len(NORMS)) + (j - (len(bs) - 1) / 2) * width
        bars = ax.bar(xs, vals, width, label=f"batch size {b}", color=f"C{j}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(NORMS)), [f"{norm} norm" if norm != "none" else "no normalization" for norm in NORMS])
    ax.set_ylabel("final validation accuracy (median over seeds)")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.1, color="0.5", ls=":", lw=1, label="chance (10 classes)")
    ax.set_title(f"Digits, {DEPTH} hidden layers, {s['epochs']} epochs: accuracy by batch size")
    ax.legend(fontsize=8, loc="upper left")
    return plots.save(fig, path)
