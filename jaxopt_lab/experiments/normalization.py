"""Experiment 8: batch norm and layer norm, and batch norm's dependence on the batch size (seed 001).

Seed 001: batch norm standardizes each unit with the statistics of the
mini-batch and keeps running averages for inference; it allows higher learning
rates and is less sensitive to initialization, but "depends on batch size: no
effect with small batches". Layer norm standardizes each example over its own
units, needs no running averages and does not depend on the batch ("USE THIS").

A deep ReLU MLP (8 hidden layers) learns the 8x8 digits with SGD + momentum,
without normalization, with batch norm and with layer norm
(`jaxopt_lab.nn.mlp.apply(norm=...)`), at several batch sizes; accuracy is
measured on held-out digits in inference mode (batch norm then uses its running
averages). The three normalizations share one compiled loop per batch size
(`lax.switch` on the run's normalization), so the nine combinations cost three
compilations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import losses, plots
from jaxopt_lab.data import digits as digits_mod
from jaxopt_lab.data import preprocessing, splits
from jaxopt_lab.experiments import check_size
from jaxopt_lab.experiments._training_loop import fit, run_once
from jaxopt_lab.nn import mlp
from jaxopt_lab.optim import aliases
from jaxopt_lab.report import Section

SIZES = {
    # rows: digits used (3/4 train, 1/4 validation); every batch size divides the training rows.
    "tiny": dict(rows=512, epochs=2, seeds=1, batch_sizes=(4, 128)),
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


def _data(rows: int) -> tuple[np.ndarray, ...]:
    x, y = digits_mod.load_digits()
    x, y = x[:rows], y[:rows]
    tr, va, _ = splits.train_val_test_split(len(x), val_fraction=0.25, seed=1, stratify=y)
    scaler = preprocessing.Standardizer.fit(x[tr])
    x = np.asarray(scaler.transform(x))
    return x[tr], y[tr], x[va], y[va]


def _train(size: str) -> dict[int, dict[str, Any]]:
    """`result[batch_size][name]` of shape (norms, seeds, ...), one program for everything."""
    s = SIZES[size]
    x_tr_np, y_tr_np, x_va_np, y_va_np = _data(s["rows"])
    x_tr, y_tr = jnp.asarray(x_tr_np, jnp.float32), jnp.asarray(y_tr_np, jnp.int32)
    x_va, y_va = jnp.asarray(x_va_np, jnp.float32), jnp.asarray(y_va_np, jnp.int32)
    n = int(x_tr.shape[0])
    if any(n % b for b in s["batch_sizes"]):
        raise ValueError(f"batch sizes {s['batch_sizes']} must divide the {n} training rows")
    sizes = [x_tr.shape[1], *([WIDTH] * DEPTH), 10]

    def split_params(params):
        """The same weights for every normalization; norm scales/biases only where one is used."""
        return {k: v for k, v in params.items() if not k.startswith("norm_")}

    def make_apply(norm, train):
        def apply(args):
            params, state, x = args
            p = split_params(params) if norm == "none" else params
            out, new_state = mlp.apply(p, x, state if norm == "batch" else None, norm=norm, train=train,
                                       bn_momentum=BN_MOMENTUM)
            return out, new_state if norm == "batch" else state

        return apply

    def make_grad(norm):
        apply = make_apply(norm, True)

        def value_and_grad(args):
            params, state, x, y = args

            def loss(p):
                out, new_state = apply((p, state, x))
                return losses.softmax_cross_entropy(out, y), new_state

            return jax.value_and_grad(loss, has_aux=True)(params)

        return value_and_grad

    branches_grad = [make_grad(nm) for nm in NORMS]
    branches_eval = [make_apply(nm, False) for nm in NORMS]

    def one(norm_idx, key, batch_size):
        init_key, order_key = jax.random.split(key)
        params = mlp.init(init_key, sizes, init="he_normal", norm="batch")
        state = mlp.init_state(params, "batch")

        # Every batch is full (the batch sizes divide the training rows), so no padding mask.
        def batch_grad(p, ms, idx, mask, k):
            return jax.lax.switch(norm_idx, branches_grad, (p, ms, x_tr[idx], y_tr[idx]))

        def evaluate(p, ms):
            out_va, _ = jax.lax.switch(norm_idx, branches_eval, (p, ms, x_va))
            return {
                "val_loss": losses.softmax_cross_entropy(out_va, y_va),
                "val_accuracy": losses.accuracy(out_va, y_va),
            }

        opt = aliases.sgd(LEARNING_RATE, momentum=MOMENTUM)
        _, _, hist = fit(None, opt, params, order_key, n=n, batch_size=batch_size, epochs=s["epochs"],
                         evaluate=evaluate, model_state=state, batch_grad=batch_grad)
        return hist

    norm_idx = jnp.repeat(jnp.arange(len(NORMS)), s["seeds"])
    keys = jnp.tile(jax.random.split(jax.random.PRNGKey(8), s["seeds"]), (len(NORMS), 1))

    def program(norm_idx, keys):
        out = {}
        for b in s["batch_sizes"]:
            flat = jax.lax.map(lambda a, b=b: one(a[0], a[1], b), (norm_idx, keys))
            out[b] = jax.tree.map(lambda a: a.reshape(len(NORMS), s["seeds"], *a.shape[1:]), flat)
        return out

    return run_once(program, norm_idx, keys)


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
            acc, loss = h["val_accuracy"][:, -1], h["batch_loss"][:, -1]
            rows.append({
                "normalization": norm,
                "batch size": b,
                "final val accuracy (median)": float(np.nanmedian(acc)),
                "val accuracy (min over seeds)": float(np.nanmin(acc)),
                TRAIN_LOSS: float(np.nanmedian(loss)),
                "final val loss (median)": float(np.nanmedian(h["val_loss"][:, -1])),
                "diverged runs": int(np.sum(~np.isfinite(loss))),
            })
    figures = [
        _curves_figure(out / "normalization_curves.png", res, s),
        _batch_figure(out / "normalization_batch_size.png", rows, s),
    ]
    text = _text(rows, s)
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
