"""Experiment 7: initializers and activations (the gradients-and-activations and
initialization-and-quartic lectures, docs/lectures.md).

The initialization-and-quartic lecture asks why initial weights must break the *symmetry* of a layer and
what vanishing and exploding gradients are; the gradients-and-activations lecture pairs each activation
with its initializer (Glorot for tanh/sigmoid/softmax, He for ReLU and its
relatives and Swish, LeCun for SELU), describes dying ReLUs, and recommends
Swish for deep networks. On a deep MLP (10 hidden layers) this experiment
measures, for every initializer x activation pair:

* the gradient norm of every layer at initialization
  (`jaxopt_lab.diagnostics.layer_grad_norms`) and its verdict
  (`gradient_verdict`: vanishing / exploding / healthy);
* the fraction of dead ReLUs (`dead_relu_fraction`) at initialization and after training;
* the training loss after a fixed budget of SGD with momentum.

And two failure modes:

* symmetry: with all weights equal (zeros, or one constant) every unit of a
  layer computes the same function and receives the same gradient, so they stay
  identical however long the network trains; measured as the largest difference
  between two units' incoming weights after training (exactly 0 here);
* exploding gradients: He initialization scaled by 3 makes every layer triple
  the signal; SGD then diverges, and clipping the gradient's global norm
  (the engine's `train.clip_norm`, before the optimizer step)
  keeps the same run finite and training.

Every run, of every kind, trains through the engine's one loop in one compiled
program (`lax.map` over the runs, the activation a branch of
`jaxopt_lab.train.switch`, each run starting from its initializer's weights), so
50-odd runs cost one compilation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import diagnostics, losses, plots
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.data import generators, preprocessing
from jaxopt_lab.experiments import check_size, reproduce_text, run_once
from jaxopt_lab.nn import mlp
from jaxopt_lab.report_page import Section
from jaxopt_lab.train import make_train
from jaxopt_lab.train.switch import switch

SIZES = {
    "tiny": dict(n=256, depth=10, width=16, epochs=3, seeds=1),
    "demo": dict(n=512, depth=10, width=16, epochs=15, seeds=2),
    "full": dict(n=2000, depth=10, width=32, epochs=60, seeds=8),
}

ACTIVATIONS = ("sigmoid", "tanh", "relu", "selu", "swish")
INITS = ("glorot_normal", "he_normal", "lecun_normal")
#: The initializer the gradients-and-activations lecture's table recommends for each activation.
RECOMMENDED = {"sigmoid": "glorot_normal", "tanh": "glorot_normal", "relu": "he_normal",
               "selu": "lecun_normal", "swish": "he_normal"}

LEARNING_RATE = 0.01
MOMENTUM = 0.9
BATCH_SIZE = 64
CLIP_NORM = 1.0
EXPLODING_SCALE = 2.0


class Run(NamedTuple):
    """One training run: its kind ("grid", "symmetry" or "clipping"), activation, initializer."""

    kind: str
    activation: str
    init: str
    init_scale: float
    clip: float  # max global gradient norm; inf for no clipping
    seed: int


def _runs(seeds: int) -> list[Run]:
    runs = [Run("grid", a, i, 1.0, np.inf, s) for a in ACTIVATIONS for i in INITS for s in range(seeds)]
    runs += [Run("symmetry", "tanh", "zeros", 1.0, np.inf, s) for s in range(seeds)]
    runs += [Run("symmetry", "tanh", "constant:0.1", 1.0, np.inf, s) for s in range(seeds)]
    runs += [Run("clipping", "relu", "he_normal", EXPLODING_SCALE, clip, s)
             for clip in (np.inf, CLIP_NORM) for s in range(seeds)]
    return runs


#: (variance numerator, fan) of the normal initializers compared (`jaxopt_lab.nn.init`).
_VARIANCE = {"glorot_normal": (1.0, "fan_avg"), "he_normal": (2.0, "fan_in"), "lecun_normal": (1.0, "fan_in")}


def init_factors(init: str, sizes: list[int]) -> tuple[list[float], float]:
    """Per-layer factors and a constant that turn LeCun-normal weights into `init`'s.

    Glorot, He and LeCun normal draw the same truncated normal, scaled to the
    variance ``scale / fan`` (Glorot: 1 / fan_avg, He: 2 / fan_in, LeCun:
    1 / fan_in), so one draw serves all three: ``w_init = w_lecun * factor``.
    "zeros" and "constant:C" are ``0 * w_lecun + C``. One draw per seed keeps the
    random-number code out of the compiled program; `tests/test_experiments_b.py`
    checks the result against `mlp.init` with each initializer's name.
    """
    if init == "zeros":
        return [0.0] * (len(sizes) - 1), 0.0
    if init.startswith("constant:"):
        return [0.0] * (len(sizes) - 1), float(init.split(":", 1)[1])
    scale, mode = _VARIANCE[init]
    factors = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        n = fan_in if mode == "fan_in" else 0.5 * (fan_in + fan_out)
        factors.append(float(np.sqrt(scale / n) / np.sqrt(1.0 / fan_in)))
    return factors, 0.0


def rescale(params: Any, factors: Any, const: Any) -> Any:
    """LeCun-normal `params` (from `mlp.init`) turned into another initializer's (see `init_factors`)."""
    return {
        name: {"w": layer["w"] * factors[i] + const, "b": layer["b"]}
        for i, (name, layer) in enumerate(params.items())
    }


def config(size: str, activation: str, init: str, init_scale: float = 1.0, clip: float = 0.0) -> Config:
    """The `jaxopt-lab train` config of one run of `size` (`clip` 0: no clipping)."""
    s = SIZES[size]
    return Config(
        data=DataConfig(dataset="moons", n_samples=s["n"], noise=0.2, random_state=4, val_fraction=0.0,
                        standardize=True),
        model=ModelConfig(hidden=(s["width"],) * s["depth"], activation=activation, init=init,
                          init_scale=init_scale),
        train=TrainConfig(loss="cross_entropy", epochs=s["epochs"], batch_size=BATCH_SIZE, clip_norm=clip),
        optimizer=OptimizerConfig(name="sgd", kwargs={"learning_rate": LEARNING_RATE, "momentum": MOMENTUM}),
    )


def _run_config(size: str, run: Run) -> Config:
    return config(size, run.activation, run.init, run.init_scale, float(run.clip) if np.isfinite(run.clip) else 0.0)


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = generators.make_moons(n_samples=n, noise=0.2, random_state=4)
    return np.asarray(preprocessing.Standardizer.fit(x).transform(x)), y


def _initial_params(runs: list[Run], sizes: list[int]) -> Any:
    """Every run's initial weights, stacked: the engine's initialization of its config and seed.

    The weights of seed `s` are drawn as the engine draws them for `jaxopt-lab train --seed s`
    (key `fold_in(PRNGKey(s), 0)`), LeCun-normal once per seed, and rescaled into each
    initializer's (`init_factors`). Drawing outside the training program keeps the
    random-number code out of it: XLA compiles the truncated normal slowly (about 2 s),
    while eager dispatch reuses small per-operation programs.
    """
    draws = {
        seed: mlp.init(jax.random.fold_in(jax.random.PRNGKey(seed), 0), sizes, init="lecun_normal")
        for seed in {r.seed for r in runs}
    }
    starts = []
    for r in runs:
        factors, const = init_factors(r.init, sizes)
        starts.append(rescale(draws[r.seed], [f * r.init_scale for f in factors], const))
    return jax.tree.map(lambda *a: jnp.stack(a), *starts)


def _train(size: str) -> tuple[list[Run], dict[str, Any], list[int]]:
    s = SIZES[size]
    sizes = [2, *([s["width"]] * s["depth"]), 2]
    runs = _runs(s["seeds"])
    # The activation is the one categorical choice left in the program: a branch of
    # `jaxopt_lab.train.switch` each; the initializers are starting points, the clipping
    # threshold a traced hyperparameter (inf: off).
    switched = switch([make_train(config(size, a, "lecun_normal")) for a in ACTIVATIONS], list(ACTIVATIONS),
                      result_fn=lambda r: (r.params, r.history, r.metrics))
    p0 = _initial_params(runs, sizes)
    act_idx = np.asarray([ACTIVATIONS.index(r.activation) for r in runs], np.int32)
    clips = np.asarray([r.clip for r in runs], np.float32)
    seeds = np.asarray([r.seed for r in runs], np.int32)

    def program(act_idx, seeds, clips, p0, data):
        def one(args):
            a, seed, clip, start = args
            return switched(a, jax.random.PRNGKey(seed), {"train.clip_norm": clip}, data, init_params=start)

        # One run after another: each executes only its own activation's branch.
        params, history, metrics = jax.lax.map(one, (act_idx, seeds, clips, p0))
        x, y = data["x_train"], data["y_train"]

        def grad_norms(a, p):
            def norms(act):
                loss = lambda q: losses.softmax_cross_entropy(mlp.apply(q, x, activation=act)[0], y)  # noqa: E731
                return lambda p: diagnostics.layer_grad_norms(jax.grad(loss)(p))

            return jax.lax.switch(a, [norms(act) for act in ACTIVATIONS], p)

        def layerwise(p):
            return {"dead": diagnostics.dead_relu_fraction(p, x, activation="relu"), "spread": _spread(p)}

        diag = {
            "grad_norms": jax.lax.map(lambda args: grad_norms(*args), (act_idx, p0)),
            "at_init": jax.lax.map(layerwise, p0),
            "at_end": jax.lax.map(layerwise, params),
        }
        return history, metrics, diag

    history, metrics, diag = run_once(program, act_idx, seeds, clips, p0, switched.data_arrays)
    at_init, at_end = diag["at_init"], diag["at_end"]
    grad_norms = diag["grad_norms"]
    diverged = np.asarray(metrics["diverged"], bool)
    out = {
        "grad_norms": grad_norms,
        "dead_init": at_init["dead"],
        "dead_final": at_end["dead"],
        "spread_init": np.asarray(at_init["spread"]),
        "spread_final": np.asarray(at_end["spread"]),
        "train_loss": np.asarray(history["train_loss"]),
        # A diverged run stopped at its last finite weights; its loss counts as non-finite.
        "final_loss": np.where(diverged, np.nan, np.asarray(metrics["final_train_loss"])),
    }
    return runs, out, sizes


def _spread(params) -> jax.Array:
    """Largest difference between two units' incoming weights, over the hidden layers."""
    worst = jnp.zeros((), jnp.float32)
    for i in range(len(params) - 1):
        w = params[f"dense_{i}"]["w"]
        worst = jnp.maximum(worst, jnp.max(jnp.abs(w - w[:, :1])))
    return worst


def _finite_median(values: np.ndarray) -> float:
    values = np.asarray(values)
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _select(runs: list[Run], **match: Any) -> np.ndarray:
    return np.asarray([i for i, r in enumerate(runs) if all(getattr(r, k) == v for k, v in match.items())])


def _layer_norms(out: dict[str, Any], idx: np.ndarray, n_layers: int) -> np.ndarray:
    """(runs, layers) gradient norms, input layer first."""
    return np.stack([np.asarray(out["grad_norms"][f"dense_{i}"])[idx] for i in range(n_layers)], axis=1)


def _short(init: str) -> str:
    return init.replace("_normal", "")


def run(out: Path, size: str = "demo") -> Section:
    """Run the grid, the symmetry and the clipping runs; write figures; state the findings."""
    check_size(size, SIZES)
    out = Path(out)
    s = SIZES[size]
    runs, res, sizes = _train(size)
    n_layers = len(sizes) - 1

    grid_rows = []
    for a in ACTIVATIONS:
        for i in INITS:
            idx = _select(runs, kind="grid", activation=a, init=i)
            norms = np.median(_layer_norms(res, idx, n_layers), axis=0)
            verdict = diagnostics.gradient_verdict(list(norms))
            row = {
                "activation": a,
                "init": _short(i) + (" (recommended)" if RECOMMENDED[a] == i else ""),
                "grad norm, first layer": float(norms[0]),
                "grad norm, last layer": float(norms[-1]),
                "largest layer norm": float(np.max(norms)),
                "first / last": float(norms[0] / norms[-1]) if norms[-1] > 0 else float("inf"),
                "verdict at init": verdict,
                f"train loss after {s['epochs']} epochs": float(np.median(res["final_loss"][idx])),
            }
            if a == "relu":
                dead0 = np.mean([np.mean([res["dead_init"][f"dense_{k}"][j] for k in range(n_layers - 1)])
                                 for j in idx])
                dead1 = np.mean([np.mean([res["dead_final"][f"dense_{k}"][j] for k in range(n_layers - 1)])
                                 for j in idx])
                row["dead ReLUs at init"] = float(dead0)
                row["dead ReLUs after training"] = float(dead1)
            grid_rows.append(row)

    sym_rows = []
    for a, i in (("tanh", "zeros"), ("tanh", "constant:0.1"), ("tanh", "glorot_normal")):
        idx = _select(runs, activation=a, init=i, clip=np.inf, init_scale=1.0)
        sym_rows.append({
            "activation": a,
            "init": i,
            "max unit difference at init": float(np.max(res["spread_init"][idx])),
            "max unit difference after training": float(np.max(res["spread_final"][idx])),
            f"train loss after {s['epochs']} epochs": float(np.median(res["final_loss"][idx])),
        })

    clip_rows = []
    for clip in (np.inf, CLIP_NORM):
        idx = _select(runs, kind="clipping", clip=clip)
        final = res["final_loss"][idx]
        norms = _layer_norms(res, idx, n_layers)
        clip_rows.append({
            "run": f"He x {EXPLODING_SCALE:g}, ReLU, " + ("no clipping" if not np.isfinite(clip)
                                                          else f"clip global norm {clip:g}"),
            "gradient norm at init (global)": float(np.median(np.sqrt(np.sum(norms**2, axis=1)))),
            "diverged runs": int(np.sum(~np.isfinite(final))),
            "runs": len(idx),
            "train loss after epoch 1 (median of finite)": _finite_median(res["train_loss"][idx][:, 0]),
            "final train loss (median of finite)": _finite_median(final),
        })

    figures = [
        _norms_figure(out / "initialization_grad_norms.png", runs, res, n_layers, s),
        _loss_figure(out / "initialization_loss_grid.png", grid_rows, s),
        _clip_figure(out / "initialization_clipping.png", runs, res, s),
    ]
    text = _text(grid_rows, sym_rows, clip_rows, s) + "\n\n" + reproduce_text({
        "ReLU with He initialization": _run_config(size, Run("grid", "relu", "he_normal", 1.0, np.inf, 0)),
        f"He x {EXPLODING_SCALE:g} with clipping": _run_config(
            size, Run("clipping", "relu", "he_normal", EXPLODING_SCALE, CLIP_NORM, 0)),
    }, s["seeds"])
    tables = [
        (f"Initializer x activation, {s['depth']} hidden layers of {s['width']} (median of {s['seeds']} seeds)",
         grid_rows),
        ("Symmetry: all weights equal at the start", sym_rows),
        ("Exploding gradients and gradient clipping", clip_rows),
    ]
    return Section("7. Lecture: initialization and activations — symmetry, vanishing gradients, dying ReLU",
                   text, figures, tables)


def _text(grid_rows, sym_rows, clip_rows, s) -> str:
    loss_key = f"train loss after {s['epochs']} epochs"
    verdicts = {}
    for r in grid_rows:
        verdicts.setdefault(r["verdict at init"], []).append(f"{r['activation']}/{r['init'].split(' ')[0]}")
    best = min(grid_rows, key=lambda r: r[loss_key])
    worst = max(grid_rows, key=lambda r: r[loss_key])
    rec = [r for r in grid_rows if "recommended" in r["init"]]
    not_rec = [r for r in grid_rows if "recommended" not in r["init"]]
    sig = [r for r in grid_rows if r["activation"] == "sigmoid"]
    relu = {r["init"].split(" ")[0]: r for r in grid_rows if r["activation"] == "relu"}
    zero, const, ref = sym_rows
    lo, hi = min(r["first / last"] for r in sig), max(r["first / last"] for r in sig)
    if hi < 1e-2:
        sigmoid_line = (
            f"- Sigmoid's gradients shrink towards the input whatever the initializer (first/last {lo:.2g} to "
            f"{hi:.2g}): its derivative is at most 1/4, so each layer multiplies the gradient by a factor below "
            "one (the vanishing gradient of the initialization lecture)."
        )
    else:
        sigmoid_line = f"- Sigmoid's first/last gradient ratio ranges from {lo:.2g} to {hi:.2g} over the initializers."
    no_clip, clipped = clip_rows
    lines = [
        f"A deep MLP ({s['depth']} hidden layers of {s['width']} units) classifies standardized moons, "
        f"trained with SGD (learning rate {LEARNING_RATE:g}, momentum {MOMENTUM:g}, batches of {BATCH_SIZE}) "
        f"for {s['epochs']} epochs from each initializer x activation pair.",
        "",
        "- Gradients at initialization (ratio of the first layer's gradient norm to the last's): "
        + "; ".join(f"{r['activation']}/{r['init'].split(' ')[0]} {r['first / last']:.2g}" for r in grid_rows)
        + ". Verdicts: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in verdicts.items()) + ".",
        "- Small gradients in every layer (largest layer norm below 0.01, a forward signal that shrank "
        "through the layers, which the first/last ratio does not show): "
        + (", ".join(f"{r['activation']}/{r['init'].split(' ')[0]} ({r['largest layer norm']:.2g})"
                     for r in grid_rows if r["largest layer norm"] < 1e-2) or "none") + ".",
        sigmoid_line,
        f"- After {s['epochs']} epochs the lowest training loss is {best['activation']} with "
        f"{best['init'].split(' ')[0]} ({best[loss_key]:.3f}), the highest {worst['activation']} with "
        f"{worst['init'].split(' ')[0]} ({worst[loss_key]:.3f}). Median over the pairs "
        "the activations lecture recommends: "
        f"{np.median([r[loss_key] for r in rec]):.3f}; over the others: "
        f"{np.median([r[loss_key] for r in not_rec]):.3f}.",
        f"- Dead ReLUs (no positive input on any training example): {relu['he']['dead ReLUs at init']:.1%} at "
        f"initialization and {relu['he']['dead ReLUs after training']:.1%} after training with He, "
        f"{relu['glorot']['dead ReLUs at init']:.1%} and {relu['glorot']['dead ReLUs after training']:.1%} with "
        f"Glorot, {relu['lecun']['dead ReLUs at init']:.1%} and {relu['lecun']['dead ReLUs after training']:.1%} "
        "with LeCun.",
        f"- Symmetry (tanh): starting from all-zero weights the largest difference between two units' "
        f"incoming weights is {zero['max unit difference after training']:.3g} after training, from a constant "
        f"0.1 {const['max unit difference after training']:.3g}, against "
        f"{ref['max unit difference after training']:.3g} from Glorot's random weights. Equal units get equal "
        "gradients, so each layer stays a set of copies of one unit (training loss "
        f"{zero[loss_key]:.3f} and {const[loss_key]:.3f}, against {ref[loss_key]:.3f} with Glorot).",
        f"- Exploding gradients: with He weights scaled by {EXPLODING_SCALE:g} the global gradient norm at "
        f"initialization is {no_clip['gradient norm at init (global)']:.3g}; without clipping "
        f"{no_clip['diverged runs']} of {no_clip['runs']} runs diverged (stopped by the engine at a non-finite "
        "loss, gradient or weight, or a loss above `train.divergence_threshold`), with the gradient "
        f"clipped to global norm {CLIP_NORM:g} {clipped['diverged runs']} of {clipped['runs']} did, and the "
        f"clipped runs' training loss falls from {clipped['train loss after epoch 1 (median of finite)']:.3g} "
        f"in the first epoch (mean over its batches) to {clipped['final train loss (median of finite)']:.3g} "
        "after the last (whole training set).",
    ]
    return "\n".join(lines)


def _norms_figure(path: Path, runs, res, n_layers: int, s) -> Path:
    fig, axes = plots.new_figure(1, len(ACTIVATIONS), figsize=(3.2 * len(ACTIVATIONS), 3.6), sharey=True)
    layers = np.arange(1, n_layers + 1)
    for ax, a in zip(axes, ACTIVATIONS, strict=True):
        for c, i in enumerate(INITS):
            idx = _select(runs, kind="grid", activation=a, init=i)
            norms = np.median(_layer_norms(res, idx, n_layers), axis=0)
            style = "-" if RECOMMENDED[a] == i else "--"
            ax.plot(layers, norms, style, marker="o", ms=3, color=f"C{c}", label=_short(i))
        ax.set_yscale("log")
        ax.set_title(a)
        ax.set_xlabel("layer (1 = input side)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gradient norm at initialization")
    axes[0].legend(fontsize=8, title="init (solid: recommended)", title_fontsize=7)
    fig.suptitle(f"Per-layer gradient norms at initialization, {s['depth']} hidden layers "
                 "(flat: healthy; rising to the right: vanishing towards the input)", fontsize=10)
    return plots.save(fig, path)


def _loss_figure(path: Path, grid_rows, s) -> Path:
    loss_key = f"train loss after {s['epochs']} epochs"
    z = np.asarray([[next(r[loss_key] for r in grid_rows if r["activation"] == a and r["init"].startswith(_short(i)))
                     for a in ACTIVATIONS] for i in INITS])
    return plots.heatmap(
        list(ACTIVATIONS), [_short(i) for i in INITS], z, path, xlabel="activation", ylabel="initializer",
        zlabel=f"training loss after {s['epochs']} epochs", title="Training loss per initializer x activation",
    )


def _clip_figure(path: Path, runs, res, s) -> Path:
    fig, ax = plots.new_figure(figsize=(7, 4.2))
    epochs = np.arange(1, s["epochs"] + 1)
    big = f"{EXPLODING_SCALE:g}"
    series = [
        (dict(kind="clipping", clip=CLIP_NORM), f"He x {big}, clipped to global norm {CLIP_NORM:g}", "C1"),
        (dict(kind="clipping", clip=np.inf), f"He x {big}, no clipping", "C3"),
        (dict(kind="grid", activation="relu", init="he_normal"), "He x 1 (reference), no clipping", "C2"),
    ]
    notes = []
    for match, label, color in series:
        curves = np.asarray(res["train_loss"][_select(runs, **match)], float)
        for j, c in enumerate(curves):
            ax.plot(epochs, c, color=color, alpha=0.8, label=label if j == 0 else None)
            bad = np.flatnonzero(~np.isfinite(c))
            if bad.size:
                notes.append(f"{label}, seed {j}: non-finite from epoch {bad[0] + 1}")
                if bad[0] > 0:
                    ax.plot(epochs[bad[0] - 1], c[bad[0] - 1], "x", color=color, ms=9)
    if notes:
        ax.text(0.02, 0.02, "diverged (not drawn):\n" + "\n".join(notes), transform=ax.transAxes, fontsize=7,
                va="bottom", color="C3")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(f"Exploding gradients: {s['depth']}-layer ReLU net with weights {EXPLODING_SCALE:g}x He's")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return plots.save(fig, path)
