"""Gradient diagnostics: per-layer norms, vanishing/exploding verdicts, dead ReLUs, gradient checks.

The lectures (the gradients-and-activations lecture) compute a gradient two ways. "Idea #1", finite
differences, perturbs one parameter at a time: a central difference

    dL/dtheta_i ~ (L(theta + h e_i) - L(theta - h e_i)) / (2 h)

costs two evaluations of the loss per parameter, so a whole gradient costs
2N forward passes for N parameters -- "intractable" for hundreds of thousands
of parameters, which `fd_vs_backprop_timing` measures. "Idea #2",
backpropagation (the chain rule, reverse-mode autodiff), gives all N
derivatives for a small constant multiple of one forward pass. Finite
differences remain the independent check of a backward pass:
`finite_difference_check` compares the two leaf by leaf.

`layer_grad_norms`, `update_ratios`, `gradient_verdict` and
`dead_relu_fraction` put numbers on the failure modes of the gradients-and-activations and
initialization-and-quartic lectures (docs/lectures.md):
vanishing and exploding gradients and dying ReLUs.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxopt_lab import losses
from jaxopt_lab.nn import mlp

__all__ = [
    "dead_relu_fraction",
    "fd_vs_backprop_timing",
    "finite_difference_check",
    "gradient_verdict",
    "layer_grad_norms",
    "update_ratios",
]


def _tree_norm(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.asarray(0.0)
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))


def _natural_key(name: str) -> list[Any]:
    # "dense_2" before "dense_10": digits compare as numbers.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


def _layers(tree: Any) -> dict[str, Any]:
    """Top-level entries of a params-like pytree (its layers), in natural name order."""
    if isinstance(tree, Mapping):
        return {name: tree[name] for name in sorted(tree, key=_natural_key)}
    return {"params": tree}


def layer_grad_norms(grads: Any) -> dict[str, jax.Array]:
    """The L2 norm of the gradient of each layer (each top-level entry of `grads`).

    A layer's norm covers all its leaves (`w` and `b` together). Layers come in
    natural name order ("dense_2" before "dense_10"); a pytree that is not a
    dict counts as one layer named "params". Works under `jit`.
    """
    return {name: _tree_norm(sub) for name, sub in _layers(grads).items()}


def update_ratios(updates: Any, params: Any) -> dict[str, jax.Array]:
    """``||update|| / ||params||`` per layer.

    The step an optimizer actually takes relative to the weights it moves. A
    common rule of thumb (Karpathy, CS231n notes) is about 1e-3 per step: far
    below, the layer barely learns (learning rate too low or gradients
    vanishing); far above, each step rewrites it (too high, or exploding).
    A layer whose parameters are all zero gives inf (0 when the update is 0 too).
    """
    p_layers = _layers(params)
    ratios = {}
    for name, u in _layers(updates).items():
        if name not in p_layers:
            raise ValueError(f"updates has layer {name!r} that params lacks (params: {sorted(p_layers)})")
        u_norm, p_norm = _tree_norm(u), _tree_norm(p_layers[name])
        safe = jnp.where(p_norm > 0, p_norm, 1.0)
        ratios[name] = jnp.where(p_norm > 0, u_norm / safe, jnp.where(u_norm > 0, jnp.inf, 0.0))
    return ratios


def _layer_order(names: Sequence[str]) -> list[str]:
    dense = [n for n in names if re.fullmatch(r"dense_\d+", n)]
    if dense:
        return sorted(dense, key=lambda n: int(n.split("_")[1]))
    return list(names)


def gradient_verdict(
    norms: Mapping[str, Any] | Sequence[Any],
    *,
    depth_ratio: float = 1e3,
    floor: float = 1e-7,
    ceiling: float = 1e3,
) -> str:
    """ "vanishing", "exploding" or "healthy", from per-layer gradient norms.

    `norms` is `layer_grad_norms(grads)` (only the `dense_i` layers are used,
    input layer first) or a sequence ordered from input to output. With
    ``r = norm(first layer) / norm(last layer)``:

    - **exploding** if a norm is inf/nan, or ``max norm > ceiling`` (1e3), or
      ``r > depth_ratio`` (1e3);
    - **vanishing** if ``r < 1 / depth_ratio``, or ``max norm < floor`` (1e-7);
    - **healthy** otherwise.

    Why these numbers. Depth ratio 1e3: one learning rate serves all layers,
    so a layer whose gradient is 1000 times smaller than the output layer's
    needs 1000 times more steps to move as far -- frozen for a training run of
    ordinary length; with sigmoid units, whose derivative is at most 1/4, five
    layers are enough to shrink the gradient by 4^5 ~ 1e3 (the quartic lecture's vanishing
    gradient). Floor 1e-7: float32's resolution is 1.2e-7, so with learning
    rates <= 1 an update of that size relative to weights of order one is
    rounded away and nothing learns. Ceiling 1e3: with a learning rate of 1e-3
    or more, one step then moves a layer by more than the norm of a freshly
    initialized layer (sqrt(2 fan_out) for He init, about 6 for 20 units),
    i.e. each step rewrites the layer. The thresholds are keywords.
    """
    if isinstance(norms, Mapping):
        values = [norms[name] for name in _layer_order(list(norms))]
    else:
        values = list(norms)
    if not values:
        raise ValueError("norms is empty: need at least one layer's gradient norm")
    v = np.asarray([float(np.asarray(n)) for n in values])
    if not np.all(np.isfinite(v)) or v.max() > ceiling:
        return "exploding"
    if v.max() < floor:
        return "vanishing"
    first, last = v[0], v[-1]
    if last == 0 or first / last > depth_ratio:
        return "exploding" if first > 0 else "vanishing"
    if first / last < 1.0 / depth_ratio:
        return "vanishing"
    return "healthy"


def dead_relu_fraction(
    params: mlp.Params,
    x: jax.Array,
    state: mlp.State | None = None,
    *,
    activation: str = "relu",
    norm: str = "none",
    train: bool = False,
) -> dict[str, jax.Array]:
    """Fraction of each hidden layer's units that are dead on the batch `x`.

    A unit is dead when the input of its activation is <= 0 for every example
    of the batch: a ReLU then outputs 0 and passes back a zero gradient, so its
    incoming weights never change again (the gradients-and-activations lecture's "dying ReLU"). Returns
    ``{"dense_i": fraction}`` per hidden layer. With batch norm, pass `state`
    (inference statistics) or `train=True` (the batch's own). Works under `jit`.
    """
    _, hidden = mlp.apply_with_hidden(params, x, state, activation=activation, norm=norm, train=train)
    out = {}
    for name, layer in hidden.items():
        pre = layer["pre"]
        dead = jnp.all(pre <= 0, axis=tuple(range(pre.ndim - 1)))
        out[name] = jnp.mean(dead.astype(pre.dtype))
    return out


def _leaf_name(path: tuple[Any, ...]) -> str:
    parts = []
    for key in path:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts) if parts else "params"


def _fd_gradient(f: Callable[[Any], jax.Array], unravel: Callable[[jax.Array], Any]):
    """`(flat, steps) -> central-difference gradient`, one coordinate at a time (2N evaluations)."""

    def loss(v: jax.Array) -> jax.Array:
        return f(unravel(v))

    def gradient(flat: jax.Array, steps: jax.Array) -> jax.Array:
        def one(i: jax.Array) -> jax.Array:
            e = jnp.zeros_like(flat).at[i].set(steps[i])
            return (loss(flat + e) - loss(flat - e)) / (2 * steps[i])

        return jax.lax.map(one, jnp.arange(flat.size))

    return gradient


def finite_difference_check(f: Callable[[Any], jax.Array], params: Any, eps: float | None = None) -> dict[str, float]:
    """Relative error between central differences and `jax.grad(f)`, per leaf of `params`.

    For each leaf, ``||g_fd - g_bp|| / max(||g_fd||, ||g_bp||)`` (0 when both
    are 0), keyed by the leaf's path ("dense_0/w"). The step for coordinate i
    is ``h_i = eps * max(1, |theta_i|)``; by default ``eps = cbrt(machine
    epsilon)`` (6e-6 in float64, 5e-3 in float32), which balances the
    truncation error O(h^2) against the rounding error O(eps_mach / h) of a
    central difference. Expect errors around 1e-8 in float64 and 1e-3 in
    float32 for smooth functions; kinks (ReLU at 0) inside a step break it.

    `f` maps `params` to a scalar and must be jittable. Cost: 2N evaluations of
    `f` for N parameters.
    """
    flat, unravel = ravel_pytree(params)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise ValueError(f"params must be floating point, got {flat.dtype}")
    out = jnp.shape(f(params))
    if out != ():
        raise ValueError(f"f must return a scalar, got shape {out}")
    if eps is None:
        eps = float(np.cbrt(np.finfo(flat.dtype).eps))
    if not eps > 0:
        raise ValueError(f"eps={eps!r} is out of range: valid range is (0, inf)")
    steps = jnp.asarray(eps, flat.dtype) * jnp.maximum(1.0, jnp.abs(flat))
    g_fd = unravel(jax.jit(_fd_gradient(f, unravel))(flat, steps))
    g_bp = jax.grad(f)(params)
    errors = {}
    fd_leaves = jax.tree_util.tree_leaves_with_path(g_fd)
    for (path, a), b in zip(fd_leaves, jax.tree_util.tree_leaves(g_bp), strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = max(np.linalg.norm(a), np.linalg.norm(b))
        errors[_leaf_name(path)] = 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)
    return errors


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    jax.block_until_ready(fn())  # compile and warm up outside the clock
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def fd_vs_backprop_timing(
    sizes: Sequence[Sequence[int]],
    *,
    n_examples: int = 64,
    repeats: int = 3,
    seed: int = 0,
    dtype: Any = jnp.float32,
) -> list[dict[str, Any]]:
    """Time a full gradient by finite differences and by backpropagation, per MLP size.

    For each layer-size list in `sizes` (e.g. ``[[2, 4, 2], [2, 64, 2]]``), a
    ReLU MLP with softmax cross-entropy on `n_examples` random points; both
    gradients are jitted and timed after compilation (best of `repeats`).
    Finite differences cost 2N forward passes, so their time grows linearly
    with the parameter count N while backpropagation's stays near one pass.

    Returns one dict per size: ``sizes``, ``num_params``, ``forward_passes_fd``
    (2N), ``backprop_seconds``, ``finite_difference_seconds`` and ``slowdown``
    (their ratio).
    """
    rows = []
    key = jax.random.PRNGKey(seed)
    for layer_sizes in sizes:
        layer_sizes = [int(s) for s in layer_sizes]
        k_init, k_x, k_y, key = jax.random.split(key, 4)
        params = mlp.init(k_init, layer_sizes, dtype=dtype)
        x = jax.random.normal(k_x, (n_examples, layer_sizes[0]), dtype)
        y = jax.random.randint(k_y, (n_examples,), 0, max(layer_sizes[-1], 2))

        def loss(p: Any, x: jax.Array = x, y: jax.Array = y) -> jax.Array:
            logits = mlp.apply(p, x)[0]
            if logits.shape[-1] == 1:
                return losses.binary_cross_entropy(logits, y)
            return losses.softmax_cross_entropy(logits, y)

        flat, unravel = ravel_pytree(params)
        steps = jnp.full_like(flat, float(np.cbrt(np.finfo(flat.dtype).eps)))
        fd = jax.jit(_fd_gradient(loss, unravel))
        bp = jax.jit(jax.grad(loss))
        t_bp = _best_time(lambda bp=bp, params=params: bp(params), repeats)
        t_fd = _best_time(lambda fd=fd, flat=flat, steps=steps: fd(flat, steps), repeats)
        n = int(flat.size)
        rows.append(
            {
                "sizes": layer_sizes,
                "num_params": n,
                "forward_passes_fd": 2 * n,
                "backprop_seconds": t_bp,
                "finite_difference_seconds": t_fd,
                "slowdown": t_fd / t_bp if t_bp > 0 else math.inf,
            }
        )
    return rows
