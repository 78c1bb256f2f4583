"""Optimizer step cost: each project optimizer's `update` + `apply_updates` against optax's same one.

    python benchmarks/optimizer_step.py [--size tiny|small|full] [--out results.json]
                                        [--optimizers adam,sgd,...] [--reps N]

One step is `updates, state = opt.update(grads, state, params); params = apply_updates(params,
updates)`, jitted with the parameters and the state donated (their buffers are reused, as a
training loop does), on a float32 parameter tree (`full`: 10,025,000 parameters in 50 leaves,
25 dense layers of 400x1000 weights and 1000 biases). For each optimizer the project's and
optax's steps are timed alternately (P O P O ...), `--steps` steps per sample, and compared:

* time per step and the per-round ratio project / optax (target <= 1.05);
* optimizer-state bytes (target: equal; Adam holds exactly two moment trees and a count);
* the effective memory traffic (bytes read and written per step / time) against a measured
  streaming rate (`y = a x + b` over the same tree), since a step is memory bound;
* correctness: three steps from the same start give the same parameters (float32 rounding).

Also the lecture's manual NumPy AdaGrad, RMSProp and Adam (the initialization-and-quartic lecture: `G += g**2`,
`W -= alpha g / sqrt(G + eps)`, ..., eps = 1e-6) per step on the same tree, against the
project's optimizer configured to the same formula (and checked to give the same numbers).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

#: (layers, fan_in, fan_out, steps per timed sample, default repetitions)
SIZES = {
    "tiny": (5, 100, 100, 5, 2),
    "small": (25, 200, 400, 20, 3),
    "full": (25, 400, 1000, 20, 5),
}

# name -> (project factory(module), optax factory). Same explicit arguments on both sides.
OPTIMIZERS: dict[str, tuple[Callable[[Any], Any], Callable[[], Any]]] = {
    "sgd": (lambda m: m.sgd(1e-2), lambda: optax.sgd(1e-2)),
    "momentum": (lambda m: m.sgd(1e-2, momentum=0.9), lambda: optax.sgd(1e-2, momentum=0.9)),
    "nesterov": (
        lambda m: m.sgd(1e-2, momentum=0.9, nesterov=True),
        lambda: optax.sgd(1e-2, momentum=0.9, nesterov=True),
    ),
    "adagrad": (lambda m: m.adagrad(1e-2), lambda: optax.adagrad(1e-2)),
    "rmsprop": (lambda m: m.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
    "adadelta": (lambda m: m.adadelta(1.0), lambda: optax.adadelta(1.0)),
    "adam": (lambda m: m.adam(1e-3), lambda: optax.adam(1e-3)),
    "adamw": (lambda m: m.adamw(1e-3), lambda: optax.adamw(1e-3)),
    "nadam": (lambda m: m.nadam(1e-3), lambda: optax.nadam(1e-3)),
    "nadamw": (lambda m: m.nadamw(1e-3), lambda: optax.nadamw(1e-3)),
    "adamax": (lambda m: m.adamax(1e-3), lambda: optax.adamax(1e-3)),
    "adamaxw": (lambda m: m.adamaxw(1e-3), lambda: optax.adamaxw(1e-3)),
    "amsgrad": (lambda m: m.amsgrad(1e-3), lambda: optax.amsgrad(1e-3)),
    "lion": (lambda m: m.lion(1e-4), lambda: optax.lion(1e-4)),
    "radam": (lambda m: m.radam(1e-3), lambda: optax.radam(1e-3)),
    "adabelief": (lambda m: m.adabelief(1e-3), lambda: optax.adabelief(1e-3)),
    "lamb": (lambda m: m.lamb(1e-3), lambda: optax.lamb(1e-3)),
    "yogi": (lambda m: m.yogi(1e-3), lambda: optax.yogi(1e-3)),
    "sign_sgd": (lambda m: m.sign_sgd(1e-2), lambda: optax.sign_sgd(1e-2)),
    "noisy_sgd": (lambda m: m.noisy_sgd(1e-2, key=0), lambda: optax.noisy_sgd(1e-2, key=0)),
}
TINY_OPTIMIZERS = ("sgd", "momentum", "adam")

# The initialization-and-quartic lecture's optimizers and the project's optimizer written to the same formula.
LECTURE = {
    "adagrad": lambda m: m.adagrad(1e-2, initial_accumulator_value=0.0, eps=1e-6),
    "rmsprop": lambda m: m.rmsprop(1e-2, decay=0.9, eps=1e-6),
    "adam": lambda m: m.adam(1e-2, eps=1e-6),
}


def make_tree(layers: int, fan_in: int, fan_out: int, key: jax.Array) -> dict[str, jax.Array]:
    tree = {}
    for i, k in enumerate(jax.random.split(key, layers)):
        kw, kb = jax.random.split(k)
        tree[f"layer_{i:02d}/w"] = jax.random.normal(kw, (fan_in, fan_out), jnp.float32) * 0.05
        tree[f"layer_{i:02d}/b"] = jax.random.normal(kb, (fan_out,), jnp.float32) * 0.05
    return tree


def tree_bytes(tree: Any) -> int:
    total = 0
    for x in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        total += int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
    return total


def make_step(opt: Any) -> Callable:
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def fresh(tree: Any) -> Any:
    """A copy with its own buffers (the step donates its inputs)."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


class Stepper:
    """Holds one implementation's live params and state; `run(k)` does k donated steps."""

    def __init__(self, opt: Any, params: Any, grads: Any):
        self.step = make_step(opt)
        self.grads = grads
        self.params = fresh(params)
        self.state = opt.init(self.params)
        self.state_bytes = tree_bytes(self.state)

    def compile(self) -> float:
        t0 = time.perf_counter()
        self.params, self.state = self.step(self.params, self.state, self.grads)
        jax.block_until_ready(self.params)
        return time.perf_counter() - t0

    def run(self, k: int) -> None:
        p, s = self.params, self.state
        for _ in range(k):
            p, s = self.step(p, s, self.grads)
        jax.block_until_ready((p, s))
        self.params, self.state = p, s


def trajectories_match(proj: Any, ref: Any, params: Any, grads: Any, steps: int = 3) -> tuple[bool, float]:
    """Both optimizers from the same start with the same (step-scaled) gradients: (match, worst difference).

    The difference is that of the parameter displacements, relative to the largest displacement.
    """
    outs = []
    for opt in (proj, ref):
        p = fresh(params)
        s = opt.init(p)
        step = make_step(opt)
        for t in range(steps):
            p, s = step(p, s, jax.tree.map(lambda g, t=t: g * (1.0 + 0.5 * t), grads))
        outs.append(jax.device_get(p))
    start = jax.device_get(params)
    worst = 0.0
    for a, b, p0 in zip(*(jax.tree.leaves(t) for t in (outs[0], outs[1], start)), strict=True):
        worst = max(worst, _rel_step_diff(a - p0, b - p0))
    return worst <= 1e-4, worst


def _rel_step_diff(moved: np.ndarray, ref_moved: np.ndarray) -> float:
    """Largest difference of two parameter displacements, relative to the largest reference displacement."""
    scale = float(np.max(np.abs(ref_moved)))
    return float(np.max(np.abs(moved - ref_moved))) / scale if scale > 0 else float(np.max(np.abs(moved)))


# ----------------------------------------------------------------------------- NumPy (the quartic lecture)


class LectureNumpy:
    """The lecture's hand-written optimizers on a dict of float32 NumPy arrays, one leaf at a time."""

    def __init__(
        self,
        name: str,
        params: Any,
        grads: Any,
        lr: float = 1e-2,
        rho: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
    ):
        self.name, self.lr, self.rho, self.beta1, self.beta2 = name, lr, rho, beta1, beta2
        self.W = {k: np.array(v) for k, v in params.items()}
        self.g = {k: np.array(v) for k, v in grads.items()}
        self.G = {k: np.zeros_like(v) for k, v in self.W.items()}
        self.S = {k: np.zeros_like(v) for k, v in self.W.items()} if name == "adam" else None
        self.t = 0

    def step(self, scale: float = 1.0) -> None:
        eps, alpha = 1e-6, self.lr
        self.t += 1
        for k, W in self.W.items():
            grad = self.g[k] if scale == 1.0 else self.g[k] * np.float32(scale)
            if self.name == "adagrad":
                self.G[k] += grad**2
                W -= alpha * grad / np.sqrt(self.G[k] + eps)
            elif self.name == "rmsprop":
                self.G[k] = self.rho * self.G[k] + (1 - self.rho) * grad**2
                W -= alpha * grad / np.sqrt(self.G[k] + eps)
            else:
                V = self.G[k] = self.beta1 * self.G[k] + (1 - self.beta1) * grad
                S = self.S[k] = self.beta2 * self.S[k] + (1 - self.beta2) * grad**2
                V_norm = V / (1 - self.beta1**self.t)
                S_norm = S / (1 - self.beta2**self.t)
                W -= alpha * V_norm / (np.sqrt(S_norm) + eps)

    def run(self, k: int) -> None:
        for _ in range(k):
            self.step()


# ----------------------------------------------------------------------------- driver


def stream_rate(params: Any, reps: int = 5) -> common.Spread:
    """GB/s of `y = 0.5 x + b` over the tree, donated: the memory-bound ceiling of a step."""
    f = jax.jit(lambda x, b: jax.tree.map(lambda u, v: 0.5 * u + v, x, b), donate_argnums=(0,))
    x, b = fresh(params), fresh(params)
    x = f(x, b)
    jax.block_until_ready(x)
    rates = []
    nbytes = 3 * tree_bytes(params)
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(10):
            x = f(x, b)
        jax.block_until_ready(x)
        rates.append(10 * nbytes / (time.perf_counter() - t0) / 1e9)
    return common.spread(rates)


def main(argv: Sequence[str] | None = None) -> int:
    from jaxopt_lab.optim import aliases

    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--optimizers", default=None, help="comma-separated subset of: " + ", ".join(OPTIMIZERS))
    p.add_argument("--steps", type=int, default=None, help="steps per timed sample")
    args = p.parse_args(argv)
    layers, fan_in, fan_out, steps, reps = SIZES[args.size]
    steps = args.steps or steps
    reps = args.reps or reps
    names = (
        [s.strip() for s in args.optimizers.split(",") if s.strip()]
        if args.optimizers
        else list(TINY_OPTIMIZERS if args.size == "tiny" else OPTIMIZERS)
    )
    for n in names:
        if n not in OPTIMIZERS:
            p.error(f"--optimizers: {n!r} is not a valid choice; valid choices: {', '.join(OPTIMIZERS)}")

    info = common.machine_info()
    kp, kg = jax.random.split(jax.random.PRNGKey(0))
    params = make_tree(layers, fan_in, fan_out, kp)
    grads = make_tree(layers, fan_in, fan_out, kg)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    p_bytes = tree_bytes(params)
    print(
        f"# optimizer step — --size {args.size}: {n_params:,} float32 parameters in "
        f"{len(jax.tree.leaves(params))} leaves; {steps} steps per sample, {reps} round(s)"
    )
    print("machine:", common.format_machine(info))
    print("command:", " ".join(["python", "benchmarks/optimizer_step.py", *(argv or sys.argv[1:])]))
    stream = stream_rate(params)
    print(f"streaming rate (y = 0.5 x + b over the tree, donated): {stream.fmt(3)} GB/s")

    checks = common.Checks()
    rows, records = [], {}
    for name in names:
        proj_f, optax_f = OPTIMIZERS[name]
        proj, ref = proj_f(aliases), optax_f()
        same, worst = trajectories_match(proj, ref, params, grads)
        checks.add(
            f"{name}: same parameters as optax after 3 steps",
            same,
            f"max displacement difference {worst:.1e} of the largest displacement",
        )
        a, b = Stepper(proj, params, grads), Stepper(ref, params, grads)
        compile_a, compile_b = a.compile(), b.compile()
        samples = common.alternate(
            {"project": lambda a=a: a.run(steps), "optax": lambda b=b: b.run(steps)},
            reps,
            work={"project": steps, "optax": steps},
        )
        t_a = common.spread(s.seconds / steps * 1e3 for s in samples["project"])
        t_b = common.spread(s.seconds / steps * 1e3 for s in samples["optax"])
        ratio = common.spread(
            x.seconds / y.seconds for x, y in zip(samples["project"], samples["optax"], strict=True)
        )
        # Traffic per step: params read + written, grads read, every state leaf read + written.
        traffic = 3 * p_bytes + 2 * a.state_bytes
        gbps = traffic / (t_a.median / 1e3) / 1e9
        rows.append(
            {
                "optimizer": name,
                "project ms/step": t_a.fmt(3),
                "optax ms/step": t_b.fmt(3),
                "project / optax": ratio.fmt(3),
                "≤ 1.05": "yes" if ratio.median <= 1.05 else "NO",
                "state MiB project": f"{a.state_bytes / 2**20:.1f}",
                "state MiB optax": f"{b.state_bytes / 2**20:.1f}",
                "state equal": "yes" if a.state_bytes == b.state_bytes else "NO",
                "project GB/s": f"{gbps:.1f}",
                "compile s (P/O)": f"{compile_a:.2f}/{compile_b:.2f}",
            }
        )
        records[name] = {
            "project_ms": t_a.as_dict(),
            "optax_ms": t_b.as_dict(),
            "ratio": ratio.as_dict(),
            "state_bytes_project": a.state_bytes,
            "state_bytes_optax": b.state_bytes,
            "traffic_bytes_per_step": traffic,
            "project_gbps": gbps,
            "compile_seconds": [compile_a, compile_b],
            "max_rel_diff_3_steps": worst,
        }
        print(f"  {name}: project {t_a.fmt(3)} ms, optax {t_b.fmt(3)} ms, ratio {ratio.fmt(3)}", flush=True)
        del a, b
    print()
    print(common.table(rows))
    met_time = sum(r["≤ 1.05"] == "yes" for r in rows)
    met_state = sum(r["state equal"] == "yes" for r in rows)
    print(
        f"\ntargets: time ratio ≤ 1.05 met by {met_time}/{len(rows)}; "
        f"state bytes equal for {met_state}/{len(rows)} (parameters: {p_bytes / 2**20:.1f} MiB)"
    )

    # --- the lecture's NumPy optimizers
    lect_rows, lect_records = [], {}
    np_steps = max(2, steps // 4)
    for name in LECTURE:
        proj = LECTURE[name](aliases)
        lec = LectureNumpy(name, jax.device_get(params), jax.device_get(grads))
        # Same numbers: 3 steps of each from the same start with the same gradients.
        check = LectureNumpy(name, jax.device_get(params), jax.device_get(grads))
        for t in range(3):
            check.step(1.0 + 0.5 * t)
        pp, s = fresh(params), None
        s = proj.init(pp)
        stp = make_step(proj)
        for t in range(3):
            pp, s = stp(pp, s, jax.tree.map(lambda g, t=t: g * (1.0 + 0.5 * t), grads))
        pp = jax.device_get(pp)
        p0 = jax.device_get(params)
        worst = max(_rel_step_diff(pp[k] - p0[k], check.W[k] - p0[k]) for k in pp)
        checks.add(
            f"lecture NumPy {name} = project {name} (eps 1e-6) after 3 steps",
            worst <= 1e-4,
            f"max displacement difference {worst:.1e} of the largest displacement",
        )
        a = Stepper(proj, params, grads)
        a.compile()
        lec.run(1)
        samples = common.alternate(
            {"project": lambda a=a: a.run(steps), "numpy": lambda lec=lec: lec.run(np_steps)},
            reps,
            work={"project": steps, "numpy": np_steps},
        )
        t_a = common.spread(s.seconds / steps * 1e3 for s in samples["project"])
        t_n = common.spread(s.seconds / np_steps * 1e3 for s in samples["numpy"])
        speedup = common.spread(
            (y.seconds / np_steps) / (x.seconds / steps)
            for x, y in zip(samples["project"], samples["numpy"], strict=True)
        )
        lect_rows.append(
            {
                "optimizer": name,
                "project ms/step": t_a.fmt(3),
                "lecture NumPy ms/step": t_n.fmt(3),
                "NumPy / project": speedup.fmt(3),
            }
        )
        lect_records[name] = {
            "project_ms": t_a.as_dict(),
            "numpy_ms": t_n.as_dict(),
            "ratio": speedup.as_dict(),
            "max_rel_diff_3_steps": worst,
        }
    print("\nThe lecture's NumPy optimizers (initialization-and-quartic lecture, float32 arrays, one leaf at a time)")
    print(common.table(lect_rows))

    payload = {
        "benchmark": "optimizer_step",
        "size": args.size,
        "reps": reps,
        "steps_per_sample": steps,
        "machine": info,
        "command": " ".join(["python", "benchmarks/optimizer_step.py", *(argv or sys.argv[1:])]),
        "parameters": n_params,
        "leaves": len(jax.tree.leaves(params)),
        "stream_gbps": stream.as_dict(),
        "optimizers": records,
        "table": rows,
        "lecture_numpy": lect_records,
        "lecture_table": lect_rows,
    }
    return common.finish(checks, payload, args.out)


if __name__ == "__main__":
    sys.exit(main())
