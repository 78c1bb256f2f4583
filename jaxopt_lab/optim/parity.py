"""Parity of every optimizer shared with optax, on one random problem: the `compare-optax` table.

Both libraries run the same number of full-batch steps from the same start on
a small tanh MLP regression (random data from `seed`); the table reports the
largest relative difference of the parameters over the whole trajectory
(leaf by leaf, relative to the largest entry of optax's), the final losses,
and the optimizer state sizes. The promise (docs/optimizers.md, "Guarantees") is `max_rel_diff < 1e-9` in
float64 over 100 steps.
"""

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab.optim import aliases
from jaxopt_lab.optim.base import apply_updates

__all__ = ["PARITY_CASES", "TOLERANCE", "parity_table", "format_parity_table"]

TOLERANCE = 1e-9

#: (optimizer name, explicit keyword arguments) run against `optax.<name>` with the same arguments.
#: Only adadelta's learning rate is not optax's default: optax's `None` ascends (see docs/optimizers.md).
PARITY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"learning_rate": 0.05}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"learning_rate": 0.05}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 0.01, "eps_in_sqrt": False}),
    ("adadelta", {"learning_rate": 1.0}),
    ("adam", {"learning_rate": 0.01}),
    ("adamw", {"learning_rate": 0.01}),
    ("nadam", {"learning_rate": 0.01}),
    ("nadamw", {"learning_rate": 0.01}),
    ("adamax", {"learning_rate": 0.01}),
    ("adamaxw", {"learning_rate": 0.01}),
    ("amsgrad", {"learning_rate": 0.01}),
    ("lion", {"learning_rate": 0.001}),
    ("radam", {"learning_rate": 0.01}),
    ("adabelief", {"learning_rate": 0.01}),
    ("lamb", {"learning_rate": 0.01}),
    ("yogi", {"learning_rate": 0.01}),
    ("noisy_sgd", {"learning_rate": 0.01, "key": 0}),
    ("sign_sgd", {"learning_rate": 0.001}),
]


def _problem(seed: int, dtype: Any) -> tuple[Any, Callable[[Any], jax.Array]]:
    """A 3-8-1 tanh MLP regression on 32 random points: parameters and loss."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(32, 3)), dtype)
    y = jnp.asarray(np.sin(rng.normal(size=(32, 1)) * 2.0), dtype)
    params = {
        "w1": jnp.asarray(rng.normal(size=(3, 8)) / np.sqrt(3.0), dtype),
        "b1": jnp.zeros((8,), dtype),
        "w2": jnp.asarray(rng.normal(size=(8, 1)) / np.sqrt(8.0), dtype),
        "b2": jnp.zeros((1,), dtype),
    }

    def loss(p):
        hidden = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((hidden @ p["w2"] + p["b2"] - y) ** 2)

    return params, loss


def _run_pair(
    ours: Any, ref: Any, params: Any, loss: Callable[[Any], jax.Array], steps: int
) -> tuple[tuple[Any, jax.Array, Any], tuple[Any, jax.Array, Any]]:
    """Trajectory, final loss and initial state of both optimizers (one compilation for the pair)."""
    grad = jax.grad(loss)

    def trajectory(opt, p0):
        def step(carry, _):
            p, s = carry
            u, s = opt.update(grad(p), s, p)
            p = apply_updates(p, u)
            return (p, s), p

        state0 = opt.init(p0)
        (p, _), traj = jax.lax.scan(step, (p0, state0), None, length=steps)
        return traj, loss(p), state0

    return jax.jit(lambda p0: (trajectory(ours, p0), trajectory(ref, p0)))(params)


def _label(name: str, kwargs: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "learning_rate")
    return f"{name}({extra})" if extra else name


def _nbytes(tree: Any) -> int:
    total = 0
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        total += int(np.asarray(leaf).nbytes)
    return total


def parity_table(
    steps: int = 100, seed: int = 0, dtype: Any = jnp.float64, only: Sequence[str] | None = None
) -> list[dict]:
    """Run every optimizer shared with optax, and optax's, on the same random problem.

    Args:
      steps: full-batch steps per optimizer.
      seed: seed of the problem's data and initial parameters.
      dtype: parameter dtype; float64 is enabled for the run if JAX's x64 mode is off.
      only: optimizer names to run (default: all shared with optax).

    Returns:
      One dict per case: `optimizer` (name and non-default keywords), `learning_rate`,
      `max_rel_diff`, `final_loss`, `optax_final_loss`, `state_bytes`,
      `optax_state_bytes` and `match` (`max_rel_diff < TOLERANCE`).
    """
    if steps < 1:
        raise ValueError(f"steps={steps!r} is out of range: valid range is [1, inf]")
    names = sorted({name for name, _ in PARITY_CASES})
    for name in only or ():
        if name not in names:
            raise ValueError(f"optimizer {name!r} has no parity case; valid choices: {', '.join(names)}")
    wants_x64 = jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64
    context = jax.enable_x64(True) if wants_x64 else contextlib.nullcontext()
    rows = []
    with context:
        params, loss = _problem(seed, dtype)
        for name, kwargs in PARITY_CASES:
            if only and name not in only:
                continue
            (ours_traj, ours_loss, ours_state), (ref_traj, ref_loss, ref_state) = _run_pair(
                getattr(aliases, name)(**kwargs), getattr(optax, name)(**kwargs), params, loss, steps
            )
            diffs = jax.tree.map(
                lambda a, b: jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(b)), jnp.finfo(b.dtype).tiny),
                ours_traj,
                ref_traj,
            )
            max_rel = float(max(jax.tree.leaves(diffs)))
            rows.append(
                {
                    "optimizer": _label(name, kwargs),
                    "learning_rate": kwargs["learning_rate"],
                    "max_rel_diff": max_rel,
                    "final_loss": float(ours_loss),
                    "optax_final_loss": float(ref_loss),
                    "state_bytes": _nbytes(ours_state),
                    "optax_state_bytes": _nbytes(ref_state),
                    "match": bool(max_rel < TOLERANCE),
                }
            )
    return rows


def format_parity_table(rows: list[dict]) -> str:
    """A plain-text table of `parity_table`'s rows, one optimizer a line, with a verdict line."""
    header = ("optimizer", "lr", "max rel diff", "final loss", "optax loss", "state B", "optax B", "match")
    lines = [
        (
            r["optimizer"],
            f"{r['learning_rate']:g}",
            f"{r['max_rel_diff']:.2e}",
            f"{r['final_loss']:.6g}",
            f"{r['optax_final_loss']:.6g}",
            str(r["state_bytes"]),
            str(r["optax_state_bytes"]),
            "yes" if r["match"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]

    def fmt(cells):
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded)

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    bad = [r["optimizer"] for r in rows if not r["match"]]
    verdict = (
        f"all {len(rows)} cases match optax (max rel diff < {TOLERANCE:g})"
        if not bad
        else f"{len(bad)} of {len(rows)} differ from optax beyond {TOLERANCE:g}: {', '.join(bad)}"
    )
    return "\n".join([*out, "", verdict])
