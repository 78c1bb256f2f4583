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
    p.add_argument("--digits-split", type=int, default=0,
                   help="digits: the train/validation split's seed (0: the benchmark; others: for development)")
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
        compare_digits(args.size, checks, payload, split=args.digits_split)
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
# The hypertune methods compared, each `meta.tune` keywords plus the outer Adam's rate; `steps` is a
# fraction of the size's outer steps. "exact, 2 seeds" is the first version measured (BENCHMARKS.md 6.3).
# "ES" replaces the exact hypergradient, which on this 30-epoch horizon is chaotic (per-seed
# derivatives of any sign and magnitudes up to 1e10 at one point: `chaos_probe`), by an antithetic-ES
# estimate (4 pairs per seed at scale 0.25 in log units) with new training seeds every step. Its
# settings were chosen on another split of the data (`--digits-split 1`), not on this one.
ES = {"estimator": "es", "pairs": 4, "sigma": 0.25, "resample": True, "outer_lr": 0.2, "steps": 0.5}
METHODS = {
    "exact, 2 seeds": {"estimator": "hypergrad", "seeds": 2, "resample": False, "outer_lr": 0.1, "steps": 1.0},
    "ES, 2 seeds": {**ES, "seeds": 2},
    "ES, 1 seed": {**ES, "seeds": 1},
}
EQUAL_COMPUTE = "ES, 2 seeds"  # random search is also run at this method's compute


def digits_trainer(epochs: int, split: int = 0):
    from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
    from jaxopt_lab.train import make_train

    return make_train(Config(
        data=DataConfig(dataset="digits", random_state=split, val_fraction=0.2),
        model=ModelConfig(hidden=(32,)),
        train=TrainConfig(epochs=epochs, batch_size=128, weight_decay=1e-4),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.01, "momentum": 0.9}),
    ))


def _log_uniform(rng, box: dict, n: int) -> dict:
    import numpy as np

    return {k: np.exp(rng.uniform(np.log(lo), np.log(hi), n)) for k, (lo, hi) in box.items()}


def _val_loss_runs(trainer):
    """`runs(keys, hparams)`: final validation losses of a batch of runs, one vmapped program."""
    import jax

    return jax.jit(jax.vmap(lambda key, hp: trainer(key, hp).metrics["final_val_loss"]))


def random_searches(trainer, sz: dict, rng, seed0: int = 1000) -> tuple[list[dict], float]:
    """Per search: `configs` log-uniform points of SEARCH_BOX, one training seed each; the best by
    validation loss. Returns the chosen configs and the seconds taken."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    runs = _val_loss_runs(trainer)
    t0 = time.perf_counter()
    best = []
    for s in range(sz["searches"]):
        pts = _log_uniform(rng, SEARCH_BOX, sz["configs"])
        keys = jax.random.split(jax.random.PRNGKey(seed0 + s), sz["configs"])
        losses = np.asarray(runs(keys, {k: jnp.asarray(v) for k, v in pts.items()}))
        i = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))
        best.append({k: float(v[i]) for k, v in pts.items()})
    return best, time.perf_counter() - t0


def hypertune_searches(trainer, sz: dict, starts: dict, method: dict, seed0: int = 2000) -> dict:
    """`meta.tune` from each start with `method`; the final and the best point of each path."""
    from jaxopt_lab import meta, optim

    options = {k: v for k, v in method.items() if k not in ("outer_lr", "steps")}
    steps = max(1, round(method["steps"] * sz["steps"]))
    outer = optim.adam(method["outer_lr"])  # one object: every search reuses the one compiled program
    t0 = time.perf_counter()
    final, best, epochs = [], [], 0
    for s in range(sz["searches"]):
        res = meta.tune(trainer, {k: float(v[s]) for k, v in starts.items()}, list(SEARCH_BOX), steps=steps,
                        outer_optimizer=outer, key=seed0 + s, **options)
        final.append({k: float(v[-1]) for k, v in res.hparams.items()})
        best.append(res.best())
        epochs += res.epochs
    return {"final": final, "best": best, "forward_epochs": epochs // sz["searches"], "steps": steps,
            "seconds": time.perf_counter() - t0}


def hypergrad_cost(trainer, seeds: int = 2, reps: int = 5) -> float:
    """Time of one exact hypergradient (learning rate and weight decay, reverse mode with remat, `seeds`
    seeds vmapped, as `meta.tune` runs it) over the same seeds' training runs: median ratio of
    alternated rounds, on this model."""
    import jax
    import numpy as np

    from jaxopt_lab import meta

    hp = {"optimizer.learning_rate": 0.01, "train.weight_decay": 1e-4}
    keys = jax.random.split(jax.random.PRNGKey(5), seeds)
    progs = {"run": jax.jit(jax.vmap(lambda k: trainer(k, hp).metrics["final_val_loss"])),
             "hypergrad": jax.jit(jax.vmap(lambda k: meta.hypergrad(trainer, k, hp, list(SEARCH_BOX))))}
    compiled = {n: f.lower(keys).compile() for n, f in progs.items()}
    samples = common.alternate({n: (lambda c=c: jax.block_until_ready(c(keys))) for n, c in compiled.items()},
                               reps)
    return float(np.median([a.seconds / b.seconds for a, b in zip(samples["hypergrad"], samples["run"],
                                                                      strict=True)]))


def chaos_probe(trainer, rates=(0.01, 0.02, 0.04), wd: float = 1e-3, seeds: int = 8) -> dict:
    """Per-seed exact d(val loss)/d(log lr) and val loss at a few rates (keys of PRNGKey(7), none a
    search uses): where the per-seed derivatives disagree, their mean says little about the seed-mean loss."""
    import jax
    import numpy as np

    from jaxopt_lab import meta

    keys = jax.random.split(jax.random.PRNGKey(7), seeds)
    per_seed = jax.jit(jax.vmap(lambda k, lr: meta.hypergrad(
        trainer, k, {"optimizer.learning_rate": lr, "train.weight_decay": wd}, list(SEARCH_BOX)), (0, None)))
    out = {}
    for lr in rates:
        values, grads = per_seed(keys, lr)
        out[lr] = {"val_loss": np.asarray(values).tolist(),
                   "d_log_lr": np.asarray(grads["optimizer.learning_rate"]).tolist()}
        print(f"lr {lr:g}, wd {wd:g}, {seeds} seeds: seed-mean val loss {np.mean(values):.3f}; d val loss / d log lr "
              f"per seed: {', '.join(f'{g:.3g}' for g in sorted(out[lr]['d_log_lr']))}")
    return out


def held_out_scores(trainer, configs: list[dict]) -> list[float]:
    """Mean final validation loss of each config over HELD_OUT_SEEDS training seeds no search used."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    runs = _val_loss_runs(trainer)
    held = jax.random.split(jax.random.PRNGKey(99), HELD_OUT_SEEDS)
    return [float(np.nanmean(np.asarray(runs(held, {k: jnp.full(HELD_OUT_SEEDS, v) for k, v in hp.items()}))))
            for hp in configs]


def compare_digits(size: str, checks, payload: dict, split: int = 0, methods: dict | None = None) -> None:
    """Per search seed: random search against each hypertune method of METHODS from a log-uniform
    start in START_BOX; every chosen config is scored on held-out training seeds. Compute is counted
    in epochs; an exact hypergradient's backward pass is converted to epochs by its measured time."""
    import numpy as np

    sz = DIGITS[size]
    methods = METHODS if methods is None else methods
    trainer = digits_trainer(sz["epochs"], split)
    rng = np.random.default_rng(split)  # split 0: the draws of the first measurement
    rs_best, rs_seconds = random_searches(trainer, sz, rng)
    starts = _log_uniform(rng, START_BOX, sz["searches"])
    rs_scores = held_out_scores(trainer, rs_best)
    cost = hypergrad_cost(trainer) if any(m["estimator"] == "hypergrad" for m in methods.values()) else None
    rs_epochs = sz["configs"] * sz["epochs"]
    rows = [{"method": "random search", "median": f"{np.median(rs_scores):.4f}", "<= random search": "",
             "epoch-equivalents per search": f"{rs_epochs:,}", "seconds (all searches)": f"{rs_seconds:.0f}"}]
    out = {"random_search": {"scores": rs_scores, "configs": rs_best, "epochs": rs_epochs, "seconds": rs_seconds},
           "hypergrad_cost_x_run": cost, "split": split, "methods": {}}
    for name, method in methods.items():
        res = hypertune_searches(trainer, sz, starts, method)
        exact = method["estimator"] == "hypergrad"
        equiv = res["forward_epochs"] * (cost if exact else 1.0)
        for which in ("final", "best"):
            scores = held_out_scores(trainer, res[which])
            res[f"{which}_scores"] = scores
            wins = sum(b <= a for a, b in zip(rs_scores, scores, strict=True))
            rows.append({"method": f"hypertune {name}, {which} point", "median": f"{np.median(scores):.4f}",
                         "<= random search": f"{wins}/{len(scores)}", "epoch-equivalents per search": f"{equiv:,.0f}",
                         "seconds (all searches)": f"{res['seconds']:.0f}"})
        res["epoch_equivalents"] = equiv
        out["methods"][name] = res
        checks.add(f"digits, {name}: every chosen config trains (finite held-out loss)",
                   bool(np.all(np.isfinite(res["final_scores"] + res["best_scores"]))))
    if EQUAL_COMPUTE in out["methods"]:
        n = round(out["methods"][EQUAL_COMPUTE]["epoch_equivalents"] / sz["epochs"])
        eq_best, eq_seconds = random_searches(trainer, {**sz, "configs": n}, rng, seed0=3000)
        eq_scores = held_out_scores(trainer, eq_best)
        wins = sum(b <= a for a, b in zip(rs_scores, eq_scores, strict=True))
        rows.append({"method": f"random search, {n} configs (compute of {EQUAL_COMPUTE})",
                     "median": f"{np.median(eq_scores):.4f}", "<= random search": f"{wins}/{len(eq_scores)}",
                     "epoch-equivalents per search": f"{n * sz['epochs']:,}",
                     "seconds (all searches)": f"{eq_seconds:.0f}"})
        out["random_search_equal_compute"] = {"configs": n, "scores": eq_scores, "chosen": eq_best}
    print(f"\nDigits MLP 64-32-10, {sz['epochs']} epochs, split {split}: validation loss (mean of {HELD_OUT_SEEDS} "
          f"held-out seeds) of the config each method picks; {sz['searches']} searches")
    print(common.table(rows))
    if cost is not None:
        print(f"one exact hypergradient (2 hyperparameters, reverse mode, remat) = {cost:.2f} training runs here")
    out["chaos_probe"] = chaos_probe(trainer)
    payload["digits"] = out
    checks.add("digits: random search's configs train (finite held-out loss)", bool(np.all(np.isfinite(rs_scores))))


if __name__ == "__main__":
    sys.exit(main())
