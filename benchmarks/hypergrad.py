"""What a hypergradient costs: time as a multiple of one training run, and memory vs the horizon.

Problem: the moons MLP 2-20-2 (500 points, validation 0.2), SGD with momentum 0.9,
mini-batches of 32 (13 updates per epoch), float32. The hypergradient is that of the
final validation loss with respect to learning rate, momentum, weight decay and init scale
(`jaxopt_lab.meta.hypergrad`).

* **Time.** One training run (`jit(trainer)`, the engine's `while_loop`), reverse mode with
  and without `remat`, and forward mode (4 tangents, vmapped), each compiled ahead of time
  and timed alternately; the ratio to the training run is formed per round.
* **Memory.** XLA's own account of each compiled program (`compiled.memory_analysis()`):
  `temp` is the scratch memory the program needs at its peak (stored states and
  residuals of the backward pass); arguments and outputs are listed apart. Reverse mode with
  `remat` at 100 and 2,000 epochs, and without `remat`, for contrast.

Checks: reverse and forward mode agree (1e-3 relative, float32), and the memory of
reverse mode with `remat` at 2,000 epochs is at most 5x that at 100 epochs.

    python benchmarks/hypergrad.py --size small --out hypergrad.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402

WRT = ["optimizer.learning_rate", "optimizer.momentum", "train.weight_decay", "model.init_scale"]
HP = {"train.weight_decay": 1e-3}
TIME_EPOCHS = {"tiny": 10, "small": 100, "full": 500}
MEMORY_EPOCHS = {"tiny": (20, 80), "small": (100, 2000), "full": (100, 2000)}


def make_trainer(epochs: int):
    from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
    from jaxopt_lab.train import make_train

    return make_train(Config(
        data=DataConfig(dataset="moons", n_samples=500, noise=0.2, random_state=0, val_fraction=0.2),
        model=ModelConfig(hidden=(20,)),
        train=TrainConfig(epochs=epochs, batch_size=32),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ))


def programs(trainer):
    import jax

    from jaxopt_lab import meta

    return {
        "training run": jax.jit(lambda k, hp: trainer(k, hp).metrics["final_val_loss"]),
        "reverse, remat": jax.jit(lambda k, hp: meta.hypergrad(trainer, k, hp, WRT, remat=True)),
        "reverse, no remat": jax.jit(lambda k, hp: meta.hypergrad(trainer, k, hp, WRT, remat=False)),
        "forward (4 tangents)": jax.jit(lambda k, hp: meta.hypergrad(trainer, k, hp, WRT, mode="forward")),
    }


def memory(trainer, name: str, fn) -> dict:
    import jax

    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    compiled = fn.lower(key, HP).compile()
    m = compiled.memory_analysis()
    return {
        "program": name, "epochs": trainer.config.train.epochs, "temp_bytes": int(m.temp_size_in_bytes),
        "argument_bytes": int(m.argument_size_in_bytes), "output_bytes": int(m.output_size_in_bytes),
        "compile_s": time.perf_counter() - t0,
    }


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--parts", default="time,memory",
                   help="comma-separated: time, memory, digits (default time,memory)")
    args = p.parse_args()
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    if not parts or parts - {"time", "memory", "digits"}:
        p.error(f"--parts {args.parts!r}: valid parts are time, memory, digits")
    reps = args.reps or common.default_reps(args.size)
    checks = common.Checks()
    payload: dict = {"machine": common.machine_info(), "size": args.size}

    if "time" in parts:
        measure_time(args.size, reps, checks, payload)
    if "memory" in parts:
        measure_memory(args.size, checks, payload)
    if "digits" in parts:
        compare_digits(args.size, checks, payload)
    return common.finish(checks, payload, args.out)


def measure_time(size: str, reps: int, checks, payload: dict) -> None:
    import jax

    epochs = TIME_EPOCHS[size]
    trainer = make_trainer(epochs)
    key = jax.random.PRNGKey(0)
    compiled = {}
    for name, fn in programs(trainer).items():
        t0 = time.perf_counter()
        compiled[name] = fn.lower(key, HP).compile()
        payload.setdefault("compile_s", {})[name] = time.perf_counter() - t0

    def call(name):
        return lambda: jax.block_until_ready(compiled[name](key, HP))

    samples = common.alternate({n: call(n) for n in compiled}, reps)
    base = samples["training run"]
    rows = []
    for name, s in samples.items():
        rows.append({
            "program": name, "seconds": common.spread([x.seconds for x in s]).fmt(3),
            "x training run": common.spread(a.seconds / b.seconds for a, b in zip(s, base, strict=True)).fmt(3),
            "compile s": f"{payload['compile_s'][name]:.1f}",
        })
    payload["time"] = {n: [x.seconds for x in s] for n, s in samples.items()}
    print(f"\nTime, {epochs} epochs x 13 updates, median [min-max] over {reps} rounds")
    print(common.table(rows))

    rev = compiled["reverse, remat"](key, HP)
    fwd = compiled["forward (4 tangents)"](key, HP)
    worst = max(abs(float(rev[1][k]) - float(fwd[1][k])) / max(abs(float(fwd[1][k])), 1e-12) for k in WRT)
    checks.add("reverse mode = forward mode (float32, 1e-3 relative)", worst < 1e-3, f"worst {worst:.2e}")
    payload["hypergrad"] = {k: float(v) for k, v in rev[1].items()}


def measure_memory(size: str, checks, payload: dict) -> None:
    import numpy as np

    mem_rows = []
    short, long_ = MEMORY_EPOCHS[size]
    for e in (short, long_):
        t = make_trainer(e)
        progs = programs(t)
        for name in ("training run", "reverse, remat", "reverse, no remat"):
            mem_rows.append(memory(t, name, progs[name]))
    payload["memory"] = mem_rows
    print("\nMemory, KiB (XLA memory_analysis of the compiled program)")
    print(common.table([
        {"program": r["program"], "epochs": r["epochs"], "temp": f"{r['temp_bytes'] / 1024:.1f}",
         "arguments": f"{r['argument_bytes'] / 1024:.1f}", "outputs": f"{r['output_bytes'] / 1024:.1f}"}
        for r in mem_rows
    ]))

    def temp(name, e):
        return next(r["temp_bytes"] for r in mem_rows if r["program"] == name and r["epochs"] == e)

    ratio = temp("reverse, remat", long_) / max(temp("reverse, remat", short), 1)
    ratio_plain = temp("reverse, no remat", long_) / max(temp("reverse, no remat", short), 1)
    print(f"\nreverse mode temp memory, {long_} vs {short} epochs: remat {ratio:.2f}x, no remat {ratio_plain:.2f}x "
          f"(epochs {long_ / short:.0f}x, sqrt {np.sqrt(long_ / short):.2f}x)")
    payload["memory_ratio"] = {"remat": ratio, "no_remat": ratio_plain}
    checks.add(f"remat: {long_} epochs use <= 5x the temp memory of {short}", ratio <= 5, f"{ratio:.2f}x")



# ----------------------------------------------------------------------------- digits: hypertune vs random search

DIGITS = {"tiny": {"epochs": 5, "steps": 3, "searches": 2, "configs": 8},
          "small": {"epochs": 30, "steps": 20, "searches": 10, "configs": 64},
          "full": {"epochs": 30, "steps": 40, "searches": 10, "configs": 64}}  # steps: outer steps of hypertune
SEARCH_BOX = {"optimizer.learning_rate": (1e-3, 1.0), "train.weight_decay": (1e-5, 1e-1)}
START_BOX = {"optimizer.learning_rate": (1e-3, 1e-1), "train.weight_decay": (1e-5, 1e-2)}
HELD_OUT_SEEDS = 4


def digits_trainer(epochs: int):
    from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
    from jaxopt_lab.train import make_train

    return make_train(Config(
        data=DataConfig(dataset="digits", random_state=0, val_fraction=0.2),
        model=ModelConfig(hidden=(32,)),
        train=TrainConfig(epochs=epochs, batch_size=128, weight_decay=1e-4),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.01, "momentum": 0.9}),
    ))


def compare_digits(size: str, checks, payload: dict) -> None:
    """Per search seed: random search (N log-uniform configs in SEARCH_BOX, one training seed each,
    best by validation loss) against `meta.tune` from a log-uniform start in START_BOX (2 training
    seeds per step, adam 0.1 on log h). Both chosen configs are then scored on held-out seeds."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxopt_lab import meta, optim

    sz = DIGITS[size]
    trainer = digits_trainer(sz["epochs"])
    wrt = list(SEARCH_BOX)
    rng = np.random.default_rng(0)

    def log_uniform(box, n):
        return {k: np.exp(rng.uniform(np.log(lo), np.log(hi), n)) for k, (lo, hi) in box.items()}

    def val_loss(key, hp):
        return trainer(key, hp).metrics["final_val_loss"]

    runs = jax.jit(jax.vmap(val_loss))
    t0 = time.perf_counter()
    rs_best = []
    for s in range(sz["searches"]):
        pts = log_uniform(SEARCH_BOX, sz["configs"])
        keys = jax.random.split(jax.random.PRNGKey(1000 + s), sz["configs"])
        losses = np.asarray(runs(keys, {k: jnp.asarray(v) for k, v in pts.items()}))
        i = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))
        rs_best.append({k: float(v[i]) for k, v in pts.items()})
    rs_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    starts = log_uniform(START_BOX, sz["searches"])
    ht_final, ht_best, ht_epochs = [], [], 0
    outer = optim.adam(0.1)  # one object: every search reuses the one compiled tuning program
    for s in range(sz["searches"]):
        res = meta.tune(trainer, {k: float(v[s]) for k, v in starts.items()}, wrt, steps=sz["steps"],
                        outer_optimizer=outer, seeds=2, key=2000 + s)
        ht_final.append({k: float(v[-1]) for k, v in res.hparams.items()})
        # The path's best point by its own (training-seed) objective: what a user of the trace would pick.
        j = int(np.nanargmin(np.asarray(res.objective)))
        ht_best.append({k: float(v[j]) for k, v in res.hparams.items()})
        ht_epochs += res.epochs
    ht_seconds = time.perf_counter() - t0

    held = jax.random.split(jax.random.PRNGKey(99), HELD_OUT_SEEDS)

    def score(hp):
        stacked = {k: jnp.full(HELD_OUT_SEEDS, v) for k, v in hp.items()}
        return float(np.nanmean(np.asarray(runs(held, stacked))))

    rs_scores = [score(hp) for hp in rs_best]
    ht_scores = [score(hp) for hp in ht_final]
    hb_scores = [score(hp) for hp in ht_best]
    rs_epochs = sz["searches"] * sz["configs"] * sz["epochs"]
    rows = [{"search": s, "random search": f"{a:.4f}", "hypertune final": f"{b:.4f}",
             "hypertune best on path": f"{c:.4f}",
             "final lr": f"{ht_final[s]['optimizer.learning_rate']:.3g}",
             "final wd": f"{ht_final[s]['train.weight_decay']:.3g}"}
            for s, (a, b, c) in enumerate(zip(rs_scores, ht_scores, hb_scores, strict=True))]
    print(f"\nDigits MLP 64-32-10, {sz['epochs']} epochs: validation loss (mean of {HELD_OUT_SEEDS} held-out seeds) "
          f"of the config each method picks")
    print(common.table(rows))
    wins = sum(b <= a for a, b in zip(rs_scores, ht_scores, strict=True))
    wins_best = sum(c <= a for a, c in zip(rs_scores, hb_scores, strict=True))
    print(f"median: random search {np.median(rs_scores):.4f}, hypertune final {np.median(ht_scores):.4f}, best on "
          f"path {np.median(hb_scores):.4f}; <= random search in {wins}/{len(rows)} (final), "
          f"{wins_best}/{len(rows)} (best on path) searches")
    print(f"compute per search: random search {rs_epochs // sz['searches']} training epochs ({rs_seconds:.0f}s all); "
          f"hypertune {ht_epochs // sz['searches']} forward epochs, each with a backward pass and a recomputation "
          f"({ht_seconds:.0f}s all, incl. its compile)")
    payload["digits"] = {"random_search": rs_scores, "hypertune": ht_scores, "hypertune_final": ht_final,
                         "hypertune_best_on_path": hb_scores, "hypertune_best_point": ht_best,
                         "random_search_best": rs_best, "rs_epochs": rs_epochs, "ht_forward_epochs": ht_epochs,
                         "rs_seconds": rs_seconds, "ht_seconds": ht_seconds}
    checks.add("digits: every chosen config trains (finite held-out loss)",
               all(np.isfinite(rs_scores)) and all(np.isfinite(ht_scores)) and all(np.isfinite(hb_scores)))


if __name__ == "__main__":
    sys.exit(main())
