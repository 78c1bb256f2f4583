"""A lean mini-batch training loop and fast compilation, for experiments that compare structures.

`jaxopt_lab.train.make_train` is the general engine: one compiled program per
*structure* (optimizer name, activation, normalization, batch size), with early
stopping, divergence freezing, histories and every regularizer. Experiments that
compare many structures side by side (14 optimizers, 15 initializer x activation
pairs, 3 normalizations x several batch sizes) would pay one such compilation each,
and on a 2-core CPU XLA's compilation of a program, not running it, is what
costs seconds. These experiments therefore train with `fit`, a loop with only
what they measure, put several structures in *one* program (`jax.jit` of a
function that returns all their results), and compile it with `compile_fast`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab.data import batching

PyTree = Any

#: XLA CPU compiler options by how much run time a program has to amortize its
#: compilation (CPU seconds measured on this project's experiment programs):
#:
#: - "fast": no LLVM optimization passes and the classic elemental emitters
#:   instead of the newer fusion emitters: compiles about 4x faster (optimizer
#:   comparison: 8.9 s -> 2.3 s) but its matrix products are unvectorized loops,
#:   about 3x slower; right for models of a few thousand parameters.
#: - "balanced": LLVM optimization level 2 (the default is higher) and the
#:   classic emitters: compiles 2-3x faster than the default and runs almost as
#:   fast (regularization experiment, vmapped make_train: 10.6 s compile + 2.2 s
#:   run -> 3.8 s + 2.1 s).
#: - "default": XLA's own settings.
#:
#: Results agree with the default's to float32 rounding.
COMPILER_OPTIONS: dict[str, dict[str, Any]] = {
    "fast": {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False},
    "balanced": {"xla_backend_optimization_level": 2, "xla_cpu_use_fusion_emitters": False},
    "default": {},
}


def compile_fast(fn: Callable[..., Any], *args: Any, mode: str = "fast") -> Callable[..., Any]:
    """`jax.jit(fn)` lowered for `args` and compiled with `COMPILER_OPTIONS[mode]` (on CPU).

    A JAX/XLA build that does not know one of the options compiles with its defaults.
    """
    options = COMPILER_OPTIONS[mode]
    lowered = jax.jit(fn).lower(*args)
    if not options or jax.default_backend() != "cpu":
        return lowered.compile()
    try:
        return lowered.compile(compiler_options=options)
    except Exception:  # noqa: BLE001 - an unknown option is reported as a generic XLA error
        return lowered.compile()


def run_once(fn: Callable[..., Any], *args: Any, mode: str = "fast") -> Any:
    """Compile `fn` for `args` (see `compile_fast`), run it once, return the result as numpy arrays."""
    return jax.device_get(compile_fast(fn, *args, mode=mode)(*args))


def switch_optimizer(
    index: jax.Array, optimizers: Sequence[optax.GradientTransformation]
) -> optax.GradientTransformation:
    """One of several optimizers chosen by a (traced) integer: many optimizers, one compiled loop.

    The state is the tuple of every optimizer's state; `update` runs
    `optimizers[index]` alone (`lax.switch`) and leaves the other states as they
    are, so a run follows exactly the trajectory of its own optimizer. Run the
    different indices with `lax.map` (a real branch per run): under `vmap` over
    `index` the switch would compute every branch for every run.
    """
    optimizers = tuple(optimizers)

    def init_fn(params: PyTree) -> tuple:
        return tuple(opt.init(params) for opt in optimizers)

    def branch(j: int):
        def run(operand):
            grads, states, params = operand
            updates, new_state = optimizers[j].update(grads, states[j], params)
            return updates, tuple(new_state if i == j else s for i, s in enumerate(states))

        return run

    def update_fn(grads: PyTree, states: tuple, params: PyTree | None = None) -> tuple[PyTree, tuple]:
        return jax.lax.switch(index, [branch(j) for j in range(len(optimizers))], (grads, states, params))

    return optax.GradientTransformation(init_fn, update_fn)


def fit(
    batch_loss: Callable[..., tuple[jax.Array, PyTree]] | None,
    optimizer: optax.GradientTransformation,
    params: PyTree,
    key: jax.Array,
    *,
    n: int,
    batch_size: int,
    epochs: int,
    evaluate: Callable[[PyTree, PyTree], Mapping[str, jax.Array]],
    model_state: PyTree = None,
    batch_grad: Callable[..., tuple[tuple[jax.Array, PyTree], PyTree]] | None = None,
) -> tuple[PyTree, PyTree, dict[str, jax.Array]]:
    """Train for `epochs` epochs of mini-batches; returns (params, model_state, history).

    Args:
      batch_loss: `(params, model_state, idx, mask, key) -> (loss, new_model_state)`:
        the loss of the batch of rows `idx` (padding where `mask` is False).
      optimizer: any optax-compatible transformation (it gets `params` too).
      params, model_state: the starting point (`model_state`: e.g. batch-norm statistics).
      key: shuffles the rows each epoch and feeds `batch_loss` a key per step.
      n, batch_size: rows and rows per step (static); 0 is full batch, as
        `jaxopt_lab.data.batching.epoch_batches`.
      epochs: number of epochs (static).
      evaluate: `(params, model_state) -> {name: scalar}`, called after every epoch.
      batch_grad: instead of `batch_loss`, a function with the same arguments returning
        `((loss, new_model_state), grads)`: for a model chosen by `lax.switch`, switching
        between whole value-and-gradient functions traces and compiles much faster than
        differentiating through the switch.

    Returns:
      The final params and model state, and `history[name]` of shape `(epochs,)`
      for every name `evaluate` returns plus "batch_loss" (the epoch's mean
      training loss as trained on). A run whose loss becomes non-finite keeps
      going with NaNs: its history shows where it diverged.
    """
    model_state = {} if model_state is None else model_state
    opt_state = optimizer.init(params)
    if batch_grad is None:
        if batch_loss is None:
            raise ValueError("fit needs batch_loss or batch_grad")
        batch_grad = jax.value_and_grad(batch_loss, has_aux=True)

    def epoch(carry, e):
        params, opt_state, ms = carry
        ekey = jax.random.fold_in(key, e)
        idx, mask = batching.epoch_batches(jax.random.fold_in(ekey, 0), n, batch_size)

        def step(c, batch):
            params, opt_state, ms, i = c
            bidx, bmask = batch
            (loss, new_ms), grads = batch_grad(params, ms, bidx, bmask, jax.random.fold_in(ekey, i + 1))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, new_ms, i + 1), loss

        (params, opt_state, ms, _), losses = jax.lax.scan(step, (params, opt_state, ms, 0), (idx, mask))
        metrics = dict(evaluate(params, ms))
        metrics["batch_loss"] = jnp.mean(losses)
        return (params, opt_state, ms), metrics

    (params, _, model_state), history = jax.lax.scan(
        epoch, (params, opt_state, model_state), jnp.arange(epochs)
    )
    return params, model_state, history
