"""Experiment 10: how well does a validation split estimate accuracy? (the optimizers-and-overfitting lecture)

The optimizers-and-overfitting lecture lists the ways to split data: random (and stratified) resampling into
train/validation/test, k-fold cross-validation ("split into K equal-sized
partitions, iteratively test on one partition while training on the remaining
K-1") and leave-one-out. On a small data set (a few dozen moons) this
experiment compares their estimates of a small MLP's accuracy:

* a single random 80/20 split, repeated over many split seeds: how much does
  the estimate depend on which rows happened to land in the validation part?
* 5-fold and 10-fold cross-validation (`jaxopt_lab.data.splits.kfold`),
  repeated over shuffles;
* leave-one-out (`splits.leave_one_out`): n fits, one row held out each.

The reference is the accuracy of the same model trained on all n rows and
tested on thousands of fresh rows from the same distribution (the generator can
draw more). Every fit of every scheme is the same program, the engine's
(`jaxopt_lab.train.make_train`): a fit sees all n rows, with the labels of the
rows outside its training split held out of the loss, so all fits run in one
`vmap`ped training loop with one compilation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import losses, plots
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.data import generators, splits
from jaxopt_lab.experiments import check_size, reproduce_text, run_once
from jaxopt_lab.report_page import Section
from jaxopt_lab.train import make_train

SIZES = {
    "tiny": dict(n=30, single=12, repeats=3, steps=150, test=2000),
    "demo": dict(n=60, single=60, repeats=12, steps=300, test=5000),
    "full": dict(n=100, single=400, repeats=50, steps=600, test=20000),
}

NOISE = 0.3
HIDDEN = 8
LEARNING_RATE = 0.05
VAL_FRACTION = 0.2
#: The seed of every fit's initial weights (the same for all: `jaxopt-lab train --seed 10`).
SEED = 10
#: The label that takes a row out of a fit's loss.
HELD_OUT = -1


def _schemes(n: int, y: np.ndarray, single: int, repeats: int) -> dict[str, list[list[tuple[np.ndarray, np.ndarray]]]]:
    """scheme -> list of estimates -> list of (train_idx, val_idx) fits that make up one estimate."""
    out: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {}
    out[f"single split ({VAL_FRACTION:.0%} validation)"] = [
        [splits.train_val_test_split(n, val_fraction=VAL_FRACTION, seed=seed)[:2]] for seed in range(single)
    ]
    for k in (5, 10):
        out[f"{k}-fold"] = [splits.kfold(n, k, seed=seed) for seed in range(repeats)]
    out["leave-one-out"] = [splits.leave_one_out(n)]
    return out


def config(n: int, steps: int) -> Config:
    """The `jaxopt-lab train` config of the fit on all `n` rows (seed `SEED`)."""
    return Config(
        data=DataConfig(dataset="moons", n_samples=n, noise=NOISE, random_state=2, val_fraction=0.0),
        model=ModelConfig(hidden=(HIDDEN,), activation="relu", init="he_normal"),
        train=TrainConfig(loss="cross_entropy", epochs=steps, batch_size=0),
        optimizer=OptimizerConfig(name="adam", kwargs={"learning_rate": LEARNING_RATE}),
    )


def _masked(fn):
    """`fn(outputs, y, where)` over the rows whose label is not `HELD_OUT`."""
    def masked(out, y, where):
        keep = y != HELD_OUT if where is None else (y != HELD_OUT) & where
        return fn(out, jnp.maximum(y, 0), keep)

    return masked


def trainer(x, y, steps: int):
    """The engine's trainer of every fit: full-batch Adam on all rows of `x`, where a label
    `HELD_OUT` takes its row out of the loss (a fit's data differ only in which labels are held out)."""
    return make_train(
        config(len(x), steps), data=(np.asarray(x), np.asarray(y)),
        loss_fn=_masked(lambda out, y, where: losses.softmax_cross_entropy(out, y, where=where)),
        accuracy_fn=_masked(lambda out, y, where: losses.accuracy(out, y, where=where)),
    )


def _fit_all(x, y, masks_train, steps, x_test, y_test):
    """Train one MLP per row of `masks_train` (its training rows) through the engine, vmapped.

    Every fit is the same program (`trainer`) on the same rows, from the same initial weights
    (seed `SEED`); the labels of the rows outside its mask are `HELD_OUT`, so only its
    training rows enter the loss. One compilation for all fits.

    Returns, per fit (leading axis): its parameters, whether it classifies each of the n rows
    correctly, and its accuracy on the fresh test rows.
    """
    train = trainer(x, y, steps)
    y_all = jnp.asarray(y, jnp.int32)
    x_test = jnp.asarray(x_test, train.dtype)
    y_test = jnp.asarray(y_test, jnp.int32)

    def predict(params, x):
        return train.model.apply(params, {}, x, train=False, key=None, hp=train.resolve(None))[0]

    def program(masks, data):
        def fit(mask):
            labels = jnp.where(mask, data["y_train"], HELD_OUT)
            return train(jax.random.PRNGKey(SEED), None, {**data, "y_train": labels}).params

        params = jax.vmap(fit)(masks)
        correct = jax.vmap(lambda p: jnp.argmax(predict(p, data["x_train"]), -1) == y_all)(params)
        fresh = jax.vmap(lambda p: losses.accuracy(predict(p, x_test), y_test))(params)
        return params, correct, fresh

    return run_once(program, jnp.asarray(masks_train, bool), train.data_arrays)


def run(out: Path, size: str = "demo") -> Section:
    """Estimate accuracy with every scheme; compare their spread and bias with the fresh-data accuracy."""
    check_size(size, SIZES)
    out = Path(out)
    s = SIZES[size]
    n = s["n"]
    x, y = generators.make_moons(n_samples=n, noise=NOISE, random_state=2)
    x_test, y_test = generators.make_moons(n_samples=s["test"], noise=NOISE, random_state=1002)
    schemes = _schemes(n, y, s["single"], s["repeats"])

    # Every fit as a training mask; fit 0 trains on all rows (the model whose true accuracy is the target).
    fits: list[tuple[np.ndarray, np.ndarray]] = [(np.arange(n), np.arange(0))]
    where: dict[str, list[list[int]]] = {}
    for name, estimates in schemes.items():
        where[name] = []
        for folds in estimates:
            where[name].append(list(range(len(fits), len(fits) + len(folds))))
            fits.extend(folds)
    masks = np.zeros((len(fits), n), bool)
    for i, (tr, _) in enumerate(fits):
        masks[i, tr] = True
    _, correct, fresh = _fit_all(x, y, masks, s["steps"], x_test, y_test)
    correct, fresh = np.asarray(correct), np.asarray(fresh, float)
    true_acc = float(fresh[0])
    train_acc = float(np.mean(correct[0]))

    estimates: dict[str, np.ndarray] = {}
    for name, groups in where.items():
        vals = []
        for fit_ids in groups:
            # Pooled over the folds: correct validation predictions / validation rows.
            hits = sum(int(correct[i][fits[i][1]].sum()) for i in fit_ids)
            total = sum(len(fits[i][1]) for i in fit_ids)
            vals.append(hits / total)
        estimates[name] = np.asarray(vals)

    rows = []
    for name, est in estimates.items():
        fits_per = len(where[name][0])
        rows.append({
            "scheme": name,
            "estimates": len(est),
            "fits per estimate": fits_per,
            "validation rows per fit": len(fits[where[name][0][0]][1]),
            "mean estimate": float(np.mean(est)),
            "std over repeats": float(np.std(est)),
            "min": float(np.min(est)),
            "max": float(np.max(est)),
            "RMSE vs fresh-data accuracy": float(np.sqrt(np.mean((est - true_acc) ** 2))),
            "its models on fresh rows (mean)": float(np.mean([fresh[i] for g in where[name] for i in g])),
        })
    figures = [_figure(out / "splits_estimates.png", estimates, true_acc, n, s)]
    text = _text(rows, true_acc, train_acc, n, s) + "\n\n" + reproduce_text(
        {f"the fit on all {n} rows (its final_train_accuracy is the {train_acc:.3f} above)": config(n, s["steps"])},
        1).replace("(S = 0..0)", f"(S = {SEED})")
    return Section(
        "10. Lecture: data splits — single split vs k-fold vs leave-one-out", text, figures,
        [(f"Accuracy estimates of a 2-{HIDDEN}-2 MLP from {n} moons (fresh-data accuracy {true_acc:.3f})", rows)],
    )


def _text(rows: list[dict[str, Any]], true_acc: float, train_acc: float, n: int, s) -> str:
    by = {r["scheme"].split(" (")[0]: r for r in rows}
    single, k5, k10, loo = by["single split"], by["5-fold"], by["10-fold"], by["leave-one-out"]
    ratio = single["std over repeats"] / max(k10["std over repeats"], 1e-12)
    se = float(np.sqrt(true_acc * (1 - true_acc) / n))
    return "\n".join([
        f"A 2-{HIDDEN}-2 ReLU MLP (Adam, {s['steps']} full-batch steps, the same initial weights for every "
        f"fit) learns {n} noisy moons. Trained on all {n} rows it scores {train_acc:.3f} on them and "
        f"{true_acc:.3f} on {s['test']} fresh rows from the same distribution: the accuracy every scheme tries "
        "to estimate.",
        "",
        f"- A single {VAL_FRACTION:.0%} validation split ({single['validation rows per fit']} rows) gives "
        f"estimates from {single['min']:.3f} to {single['max']:.3f} over {single['estimates']} split seeds "
        f"(std {single['std over repeats']:.3f}, RMSE {single['RMSE vs fresh-data accuracy']:.3f} against the "
        "fresh-data accuracy): which rows land in the validation part decides much of the result.",
        f"- 5-fold cross-validation ({k5['fits per estimate']} fits, every row validated once): mean "
        f"{k5['mean estimate']:.3f}, std {k5['std over repeats']:.3f} over {k5['estimates']} shuffles, RMSE "
        f"{k5['RMSE vs fresh-data accuracy']:.3f}. 10-fold: mean {k10['mean estimate']:.3f}, std "
        f"{k10['std over repeats']:.3f}, RMSE {k10['RMSE vs fresh-data accuracy']:.3f}. The single split's "
        f"spread is {ratio:.1f}x 10-fold's.",
        f"- Leave-one-out ({loo['fits per estimate']} fits, one per row; no randomness left): "
        f"{loo['mean estimate']:.3f} (error {loo['mean estimate'] - true_acc:+.3f}).",
        f"- What the fewer training rows cost: the models behind the estimates score "
        f"{single['its models on fresh rows (mean)']:.3f} (single splits), {k5['its models on fresh rows (mean)']:.3f}"
        f" (5-fold), {k10['its models on fresh rows (mean)']:.3f} (10-fold) and "
        f"{loo['its models on fresh rows (mean)']:.3f} (leave-one-out) on fresh rows, against {true_acc:.3f} "
        f"with all {n} rows.",
        "- What the estimates miss beyond that (mean estimate minus its models' fresh-data accuracy): "
        + ", ".join(f"{r['scheme'].split(' (')[0]} {r['mean estimate'] - r['its models on fresh rows (mean)']:+.3f}"
                    for r in rows)
        + f". Every scheme validates on the same {n} rows, and {n} rows pin an accuracy down only to about "
        f"+-{se:.3f} (one standard error, sqrt(p(1-p)/n)): more folds remove the luck of the split, not the "
        "luck of the sample.",
    ])


def _figure(path: Path, estimates: dict[str, np.ndarray], true_acc: float, n: int, s) -> Path:
    fig, ax = plots.new_figure(figsize=(7.5, 4.2))
    names = list(estimates)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        est = estimates[name]
        jitter = rng.uniform(-0.15, 0.15, len(est)) if len(est) > 1 else np.zeros(1)
        ax.scatter(np.full(len(est), i) + jitter, est, s=14, alpha=0.6, color=f"C{i}")
        ax.errorbar(i + 0.3, est.mean(), yerr=est.std() if len(est) > 1 else None, fmt="D", color="k", ms=5,
                    capsize=4)
    ax.axhline(true_acc, color="C3", ls="--", label=f"accuracy on {s['test']} fresh rows ({true_acc:.3f})")
    ax.set_xticks(range(len(names)), [f"{nm}\n({len(estimates[nm])} repeats)" for nm in names], fontsize=8)
    ax.set_ylabel("estimated accuracy")
    ax.set_title(f"Accuracy estimates from {n} rows: each dot one repeat (new split seed / shuffle);\n"
                 "diamond: mean +- std", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return plots.save(fig, path)
