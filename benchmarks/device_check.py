"""The Python half of `benchmarks/accelerator.sh`: one benchmark step, then the device's peak memory.

    python benchmarks/device_check.py backend
    python benchmarks/device_check.py throughput [sweep_throughput.py options ...]
    python benchmarks/device_check.py cnn [--config examples/digits_cnn.toml] [--seeds N] [--epochs N] [--reps N]

* ``backend`` prints `jax.default_backend()` (cpu, gpu or tpu) and the devices.
* ``throughput`` runs `sweep_throughput.main(options)` in this process (project vs
  hand-written `jit(vmap)`, with its own correctness checks) and exits with its status.
* ``cnn`` sweeps the config's grid (learning rates x seeds) with the project's engine
  (`config_sweep.run_sweep`, what `jaxopt-lab sweep` runs) and with a hand-written
  `jax.jit(jax.vmap(train))` of the same network (`jaxopt_lab.nn.cnn`), optax and the same
  split, initial weights, batches and epochs (early stopping off), prints both rates, their
  ratio and the final validation accuracies, and checks the accuracies agree run by run
  (exit 1 if not). It first checks that the engine builds a convnet for
  ``model.kind = "cnn"`` and stops with a message if it does not.

Each step ends with ``peak device memory: ...`` from `jax.devices()[0].memory_stats()`
(``peak_bytes_in_use``; "n/a" on backends that keep no statistics, like the CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def peak_memory_line() -> str:
    device = jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if not stats or "peak_bytes_in_use" not in stats:
        return f"peak device memory: n/a ({device.platform} keeps no allocator statistics)"
    peak, limit = stats["peak_bytes_in_use"], stats.get("bytes_limit")
    of = f" of {limit / 2**20:,.0f} MiB" if limit else ""
    return f"peak device memory: {peak / 2**20:,.1f} MiB{of} ({device.device_kind})"


def cmd_backend() -> int:
    print(jax.default_backend())
    print("devices:", ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()), file=sys.stderr)
    return 0


def cmd_throughput(argv: list[str]) -> int:
    import sweep_throughput

    status = sweep_throughput.main(argv)
    print(peak_memory_line(), flush=True)
    return status


# ----------------------------------------------------------------------------- the CNN sweep


def _config(path: str, seeds: int | None, epochs: int | None) -> Any:
    from jaxopt_lab import config as config_mod

    raw = tomllib.loads(Path(path).read_text())
    if seeds is not None:
        raw.setdefault("sweep", {})["seeds"] = seeds
    if epochs is not None:
        raw.setdefault("train", {})["epochs"] = epochs
    # Same work and comparable results: the hand-written loop trains every epoch and keeps the last
    # parameters, so the engine must not stop early or restore the best epoch's parameters.
    raw.setdefault("train", {})["early_stopping_patience"] = 0
    cfg = config_mod.from_dict(raw)
    config_mod.validate(cfg)
    return cfg


def _engine_builds_a_cnn(cfg: Any) -> bool:
    from jaxopt_lab.train import make_train

    state = jax.eval_shape(make_train(cfg).init_state, jax.random.PRNGKey(0))
    return isinstance(state.params, dict) and "conv_0" in state.params


def _hand_written(cfg: Any, learning_rates: np.ndarray, seeds: np.ndarray) -> tuple[Any, Any]:
    """`jit(vmap(train))` over (learning rate, seed) pairs: the CNN, Adam, per-epoch shuffled batches."""
    import optax

    from jaxopt_lab.nn import cnn
    from jaxopt_lab.train import prepare_data

    data = prepare_data(cfg)
    x_tr, y_tr = jnp.asarray(data.x_train, jnp.float32), jnp.asarray(data.y_train)
    x_va, y_va = jnp.asarray(data.x_val, jnp.float32), jnp.asarray(data.y_val)
    init_fn, apply_fn = cnn.functions_from_config(cfg.model, x_tr.shape[1], data.num_classes, jnp.float32)
    n, bs, epochs = len(x_tr), cfg.train.batch_size or len(x_tr), cfg.train.epochs
    n_batches = -(-n // bs)

    def loss(params, x, y, where):
        nll = -jnp.take_along_axis(jax.nn.log_softmax(apply_fn(params, x)), y[:, None], axis=1)[:, 0]
        return jnp.sum(jnp.where(where, nll, 0.0)) / jnp.maximum(jnp.sum(where), 1)

    def train(lr, seed):
        key = jax.random.PRNGKey(seed)
        params = init_fn(jax.random.fold_in(key, 0))
        opt = optax.adam(lr)
        opt_state = opt.init(params)

        def epoch(carry, e):
            params, opt_state = carry
            order = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 1), e), n)
            order = jnp.concatenate([order, jnp.zeros(n_batches * bs - n, order.dtype)]).reshape(n_batches, bs)
            valid = (jnp.arange(n_batches * bs) < n).reshape(n_batches, bs)

            def step(carry, batch):
                params, opt_state = carry
                idx, where = batch
                grads = jax.grad(loss)(params, x_tr[idx], y_tr[idx], where)
                updates, opt_state = opt.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), (order, valid))
            val_loss = loss(params, x_va, y_va, jnp.ones(len(x_va), bool))
            return (params, opt_state), val_loss

        (params, _), val_losses = jax.lax.scan(epoch, (params, opt_state), jnp.arange(epochs))
        accuracy = jnp.mean(jnp.argmax(apply_fn(params, x_va), axis=1) == y_va)
        return val_losses[-1], accuracy

    return jax.jit(jax.vmap(train)), (jnp.asarray(learning_rates, jnp.float32), jnp.asarray(seeds))


def cmd_cnn(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="device_check.py cnn")
    p.add_argument("--config", default=str(ROOT / "examples" / "digits_cnn.toml"))
    p.add_argument("--seeds", type=int, default=None, help="seeds per learning rate (default: the config's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the config's)")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    from jaxopt_lab.sweep import config_sweep

    cfg = _config(args.config, args.seeds, args.epochs)
    if not _engine_builds_a_cnn(cfg):
        print("CNN sweep skipped: this engine does not build a convnet for model.kind = 'cnn' yet "
              "(no conv_0 in the parameters of make_train(config))", flush=True)
        return 0
    plan = config_sweep.plan(cfg)
    rows = [dict(point) for point in plan.points]
    lrs = np.array([r.get("optimizer.learning_rate", cfg.optimizer.kwargs["learning_rate"]) for r in rows], float)
    seeds = np.array([r["seed"] for r in rows], np.int32)
    print(f"## CNN sweep: {len(rows)} runs ({cfg.train.epochs} epochs, batch {cfg.train.batch_size}, "
          f"channels {list(cfg.model.channels)}, kernels {list(cfg.model.kernels)}, strides {list(cfg.model.strides)})",
          flush=True)

    def project() -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        result = config_sweep.run_sweep(cfg, sweep_plan=plan)
        seconds = time.perf_counter() - t0
        return seconds, np.array([r.get("final_val_accuracy", np.nan) for r in result.rows], float)

    expert, expert_args = _hand_written(cfg, lrs, seeds)

    def hand_written() -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        _, accuracy = jax.block_until_ready(expert(*expert_args))
        return time.perf_counter() - t0, np.asarray(accuracy)

    for name, fn in (("project API", project), ("expert jit(vmap)", hand_written)):
        t0 = time.perf_counter()
        fn()
        print(f"  warm-up {name}: {time.perf_counter() - t0:.1f}s (compile included)", flush=True)
    times: dict[str, list[float]] = {"project API": [], "expert jit(vmap)": []}
    accuracy: dict[str, np.ndarray] = {}
    for r in range(args.reps):  # alternated, so a change of machine load hits both
        for name, fn in (("project API", project), ("expert jit(vmap)", hand_written)):
            seconds, accuracy[name] = fn()
            times[name].append(seconds)
            print(f"  round {r + 1}: {name}: {seconds:.2f}s ({len(rows) / seconds:.1f} runs/s)", flush=True)
    rate = {name: len(rows) / float(np.median(t)) for name, t in times.items()}
    for name in times:
        acc = accuracy[name]
        print(f"  {name}: {rate[name]:.1f} runs/s (median of {args.reps}), final validation accuracy median "
              f"{np.nanmedian(acc):.3f} [{np.nanmin(acc):.3f}-{np.nanmax(acc):.3f}]")
    print(f"  ratio project API / expert jit(vmap): {rate['project API'] / rate['expert jit(vmap)']:.2f}x")
    # Same network, initial weights, batches and optimizer: run by run, the same accuracy up to
    # float32 rounding (amplified in a few runs by hundreds of steps).
    close = np.abs(accuracy["project API"] - accuracy["expert jit(vmap)"]) <= 0.02
    ok = bool(np.mean(close) >= 0.75)
    print(f"  check: {'PASS' if ok else 'FAIL'}: {int(close.sum())} of {len(close)} runs within 0.02 validation "
          "accuracy of the hand-written run (needed: 75%)")
    print(peak_memory_line(), flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"backend": lambda a: cmd_backend(), "throughput": cmd_throughput, "cnn": cmd_cnn}
    if not argv or argv[0] not in commands:
        print(f"usage: device_check.py {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
