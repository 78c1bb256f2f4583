"""Experiment 5 (the gradients-and-activations lecture): learning-rate schedules compared on one problem, over seeds.

The gradients-and-activations lecture lists power scheduling ``eta(t) = eta0 / (1 + t/s)^c``, exponential
scheduling ``eta0 * 0.1^(t/s)``, piecewise-constant scheduling and performance
scheduling (Keras' ``ReduceLROnPlateau(factor=0.5, patience=5)``: halve the
rate when the validation loss stops improving), and recommends the last one as
"pretty good and requires very little hyperparameter tuning". The hyperparameter lecture says
"begin with a large learning rate, then decrease". Here each is run with
mini-batch SGD on the moons MLP, against a constant rate, cosine decay
(Loshchilov & Hutter, 2017) and linear warmup followed by cosine decay (Goyal
et al., 2017), every schedule from the same initial rate and over the same
seeds (the same initial weights and mini-batch order for every schedule, so
differences are the schedules').

The schedules step once per update. To keep the number of compiled programs
small, schedules that are one family with different (traced) parameters share
one program:

* `warmup_cosine_decay_schedule` + `reduce_on_plateau`: constant (no warmup,
  end value = peak, plateau patience longer than the run), cosine (end 0),
  warmup-cosine (warmup 10% of the steps) and performance scheduling
  (constant + plateau with factor 0.5, patience 5 epochs);
* `power_schedule`: power scheduling with c = 1;
* `exponential_decay(staircase=True)`: with one-step transitions it is the
  smooth exponential ``eta0 * r^t`` exactly (steps are integers); with
  transitions of a third of the run it is the piecewise-constant schedule
  ``{S/3: 0.1, 2S/3: 0.1}`` (`piecewise_constant_schedule` gives the same values).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.config import (
    Config,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    PlateauConfig,
    ScheduleConfig,
    TrainConfig,
)
from jaxopt_lab.experiments import check_size
from jaxopt_lab.experiments.curve_bands import median_band
from jaxopt_lab.report_page import Section
from jaxopt_lab.train import make_train

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"epochs": 20, "seeds": 2},
    "demo": {"epochs": 60, "seeds": 6},
    "full": {"epochs": 200, "seeds": 16},
}
LR0 = 1.0
BATCH = 32
N_SAMPLES = 500
VAL_FRACTION = 0.2
N_TRAIN = N_SAMPLES - int(round(N_SAMPLES * VAL_FRACTION))  # the split's training rows
PLATEAU = {"factor": 0.5, "patience": 5}
ORDER = ("constant", "power", "exponential", "piecewise", "cosine", "warmup-cosine", "performance")


def _base(epochs: int) -> Config:
    return Config(
        data=DataConfig(dataset="moons", n_samples=N_SAMPLES, noise=0.25, random_state=3, val_fraction=VAL_FRACTION),
        model=ModelConfig(hidden=(20,), activation="relu", init="he_normal"),
        train=TrainConfig(epochs=epochs, batch_size=BATCH),
    )


def families(epochs: int, steps: int) -> list[tuple[Config, dict[str, dict[str, float]]]]:
    """(config of one compiled program, {schedule label: its traced hyperparameters}) per family.

    `steps` is the run's number of updates (epochs x batches per epoch).
    """
    base = _base(epochs)
    never = float(epochs + 1)  # a plateau patience longer than the run: the plateau rule never fires
    cosine = base.replace(optimizer=OptimizerConfig(
        "sgd", {"learning_rate": LR0},
        schedule=ScheduleConfig("warmup_cosine_decay_schedule",
                                {"warmup_steps": 0, "decay_steps": steps, "end_value": 0.0}),
        plateau=PlateauConfig(factor=PLATEAU["factor"], patience=PLATEAU["patience"]),
    ))
    power = base.replace(optimizer=OptimizerConfig(
        "sgd", {"learning_rate": LR0},
        schedule=ScheduleConfig("power_schedule", {"decay_steps": steps / 10, "power": 1.0}),
    ))
    expo = base.replace(optimizer=OptimizerConfig(
        "sgd", {"learning_rate": LR0},
        schedule=ScheduleConfig("exponential_decay", {"transition_steps": 1, "decay_rate": 0.5, "staircase": True}),
    ))
    third = float(max(-(-steps // 3), 1))  # ceil: the last update (count S - 1) stays before a third drop
    return [
        (cosine, {
            "constant": {"optimizer.schedule.warmup_steps": 0.0, "optimizer.schedule.end_value": LR0,
                         "optimizer.plateau.patience": never},
            "cosine": {"optimizer.schedule.warmup_steps": 0.0, "optimizer.schedule.end_value": 0.0,
                       "optimizer.plateau.patience": never},
            "warmup-cosine": {"optimizer.schedule.warmup_steps": float(steps // 10),
                              "optimizer.schedule.end_value": 0.0, "optimizer.plateau.patience": never},
            "performance": {"optimizer.schedule.warmup_steps": 0.0, "optimizer.schedule.end_value": LR0,
                            "optimizer.plateau.patience": float(PLATEAU["patience"])},
        }),
        (power, {"power": {"optimizer.schedule.decay_steps": steps / 10, "optimizer.schedule.power": 1.0}}),
        (expo, {
            # 0.1^(t / (S/2)) per step: a hundredth of the initial rate at the end.
            "exponential": {"optimizer.schedule.transition_steps": 1.0,
                            "optimizer.schedule.decay_rate": 0.1 ** (2.0 / steps)},
            "piecewise": {"optimizer.schedule.transition_steps": third, "optimizer.schedule.decay_rate": 0.1},
        }),
    ]


DESCRIPTIONS = {
    "constant": f"eta = {LR0:g}",
    "power": "eta0 / (1 + t/s), s = S/10",
    "exponential": "eta0 * 0.1^(t / (S/2))",
    "piecewise": "eta0, then x0.1 after S/3 and 2S/3",
    "cosine": "eta0 * (1 + cos(pi t/S)) / 2",
    "warmup-cosine": "linear warmup over S/10, then cosine to 0",
    "performance": f"eta0, x{PLATEAU['factor']:g} after {PLATEAU['patience']} epochs without val. improvement",
}


def _run_family(trainer: Any, members: dict[str, dict[str, float]], n_seeds: int) -> tuple[dict[str, Any], float]:
    """Every (schedule, seed) of one family in one compiled program; returns outputs per label, compile s.

    The runs go one after another inside the program (`lax.map`): on a CPU this compiles faster than
    `vmap` and each run's arithmetic is exactly its own. Seeds are shared by every schedule, so each
    schedule sees the same initial weights and mini-batch order.
    """
    labels = list(members)
    keys = sorted(members[labels[0]])
    seeds = np.tile(np.arange(n_seeds, dtype=np.int32), len(labels))
    hp = {k: np.repeat(np.asarray([members[lab][k] for lab in labels], np.float64), n_seeds) for k in keys}
    hp = {k: v.astype(trainer.dtype) for k, v in hp.items()}

    def one(args):
        seed, h = args
        r = trainer(jax.random.PRNGKey(seed), h)
        return {"metrics": r.metrics, "history": r.history}

    t0 = time.perf_counter()
    program = jax.jit(lambda s, h: jax.lax.map(one, (s, h))).lower(seeds, hp).compile()
    seconds = time.perf_counter() - t0
    out = jax.tree.map(np.asarray, program(seeds, hp))
    return {lab: jax.tree.map(lambda a, i=i: a[i * n_seeds:(i + 1) * n_seeds], out)
            for i, lab in enumerate(labels)}, seconds


def _train_every_schedule(epochs: int, steps: int, n_seeds: int) -> tuple[dict[str, dict[str, Any]], float, float]:
    """Outputs (metrics, history) per schedule label, the wall seconds of all families and their compile seconds."""
    outputs: dict[str, dict[str, Any]] = {}
    compile_s = 0.0
    t_start = time.perf_counter()
    for cfg, members in families(epochs, steps):
        trainer = make_train(cfg)
        if trainer.data.x_train.shape[0] != N_TRAIN:
            raise RuntimeError(f"expected {N_TRAIN} training rows, the split has {trainer.data.x_train.shape[0]}")
        out_f, seconds = _run_family(trainer, members, n_seeds)
        compile_s += seconds
        for label in members:
            outputs[label] = out_f[label]
    return outputs, time.perf_counter() - t_start, compile_s


def _loss_figure(path: Path, hist: dict[str, Any], names: list[str], epochs: int, n_seeds: int) -> Path:
    """Training and validation loss per epoch, median and interquartile band over seeds, one curve per schedule."""
    fig, (ax_t, ax_v) = plots.new_figure(1, 2, figsize=(12, 4.4))
    ep = np.arange(1, epochs + 1)
    for i, n in enumerate(names):
        for ax, key in ((ax_t, "train_loss"), (ax_v, "val_loss")):
            median_band(ax, ep, hist[n][key], color=f"C{i}", label=n, alpha=0.15)
    for ax, what in ((ax_t, "training loss"), (ax_v, "validation loss")):
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{what} (log scale)")
    ax_t.set_title(f"Training loss (epoch mean over mini-batches), {n_seeds} seeds")
    ax_v.set_title("Validation loss after each epoch")
    ax_v.legend(fontsize=8, ncol=2)
    return plots.save(fig, path)


def _final_rows(names: list[str], hist: dict[str, Any], met: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per schedule: its rule, final rate and the final metrics over seeds."""
    rows = []
    for n in names:
        m = met[n]
        va = np.asarray(m["final_val_accuracy"], float)
        rows.append({
            "schedule": n,
            "rule": DESCRIPTIONS[n],
            "final lr (median)": float(np.nanmedian(hist[n]["learning_rate"][:, -1])),
            "final train loss (median)": float(np.median(m["final_train_loss"])),
            "final val loss (median)": float(np.median(m["final_val_loss"])),
            "best val loss (median)": float(np.median(m["best_val_loss"])),
            "final val accuracy (mean)": float(va.mean()),
            "val accuracy std": float(va.std(ddof=1)) if len(va) > 1 else float("nan"),
            "diverged": int(np.sum(m["diverged"])),
        })
    return rows


def _findings_text(rows: list[dict[str, Any]], hist: dict[str, Any], *, epochs: int, steps: int, n_seeds: int,
                   wall_s: float, compile_s: float) -> str:
    by = {r["schedule"]: r for r in rows}
    rank = sorted(rows, key=lambda r: r["final val loss (median)"])
    const = by["constant"]
    better = [r["schedule"] for r in rows
              if r["schedule"] != "constant" and r["final val loss (median)"] < const["final val loss (median)"]]
    perf_scale = hist["performance"]["learning_rate"][:, -1] / LR0
    reductions = np.round(np.log(perf_scale) / np.log(PLATEAU["factor"])).astype(int)
    return (
        f"{len(rows)} schedules x {n_seeds} seeds of mini-batch SGD (batch {BATCH}, {epochs} epochs = {steps} "
        f"updates, initial rate {LR0:g}) on moons, in {len(families(epochs, steps))} compiled programs "
        f"({wall_s:.1f} s, {compile_s:.1f} s of it compiling). Ranked by median final validation loss: "
        + ", ".join(f"{r['schedule']} {r['final val loss (median)']:.4f}" for r in rank)
        + f". Against the constant rate ({const['final val loss (median)']:.4f}, training loss "
        f"{const['final train loss (median)']:.4f}), "
        + (f"{len(better)} of {len(rows) - 1} schedules end lower ({', '.join(better)})" if better
           else "no schedule ends lower")
        + f"; the best, {rank[0]['schedule']}, ends at training loss {rank[0]['final train loss (median)']:.4f} "
        f"with a final rate of {rank[0]['final lr (median)']:.3g}. Performance scheduling halved the rate "
        f"{int(np.median(reductions))} times in the median run (between {reductions.min()} and "
        f"{reductions.max()} over the seeds) with no schedule to design beyond factor and patience. Final "
        f"validation accuracies (mean over seeds): "
        + ", ".join(f"{r['schedule']} {r['final val accuracy (mean)']:.3f}" for r in rows) + "."
    )


def run(out: Path, size: str = "demo") -> Section:
    """Every schedule over the same seeds: learning-rate and loss curves, final metrics."""
    check_size(size, SIZES)
    out = Path(out)
    sz = SIZES[size]
    epochs, n_seeds = sz["epochs"], sz["seeds"]
    steps = epochs * -(-N_TRAIN // BATCH)
    outputs, wall_s, compile_s = _train_every_schedule(epochs, steps, n_seeds)
    names = [n for n in ORDER if n in outputs]
    hist = {n: outputs[n]["history"] for n in names}
    met = {n: outputs[n]["metrics"] for n in names}

    fig_lr = plots.curves_with_bands(
        {n: hist[n]["learning_rate"] for n in names}, out / "schedules_learning_rate.png",
        ylabel="learning rate (log scale)", xlabel="epoch", logy=True,
        title=f"Rate at each epoch's last update ({steps} updates; median, band over {n_seeds} seeds)",
    )
    fig_loss = _loss_figure(out / "schedules_loss.png", hist, names, epochs, n_seeds)
    rows = _final_rows(names, hist, met)
    return Section(
        title="5. Lecture: learning-rate scheduling — schedules compared over seeds",
        text=_findings_text(rows, hist, epochs=epochs, steps=steps, n_seeds=n_seeds, wall_s=wall_s,
                            compile_s=compile_s),
        figures=[fig_lr, fig_loss],
        tables=[(f"Final metrics over {n_seeds} seeds (S = {steps} updates)", rows)],
    )
