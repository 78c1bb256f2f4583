"""Losses, accuracy and weight penalties for pure-function models.

Every loss and `accuracy` take predictions with the examples on the leading
axis and return the **mean over the examples**. The optional `where` is a
boolean mask over the examples (False marks padding in a mini-batch): the mean
is over the examples where it is True, and an all-False mask gives 0, never
NaN, so padded batches can be averaged with weights afterwards.

Per-example terms (`z` logits, `y` labels, `e = pred - target`):

=====================  =========================================================
softmax_cross_entropy  ``logsumexp(z) - sum_k y_k z_k``  (``y`` one-hot/probabilities,
                       or an integer class)
binary_cross_entropy   ``-y log s(z) - (1 - y) log(1 - s(z)) = max(z, 0) - y z + log(1 + exp(-|z|))``
                       (the stable form: no exp overflow, no log(0)), summed over
                       outputs for multi-label logits
mse                    ``mean_k e_k^2``
mae                    ``mean_k |e_k|``
huber                  ``mean_k h(e_k)``, ``h(e) = e^2 / 2`` for ``|e| <= delta``,
                       ``delta (|e| - delta / 2)`` beyond (Huber, 1964)
=====================  =========================================================

Penalties (the optimizers-and-overfitting lecture): `l2_penalty(params) = 0.5 * sum w^2` (ridge; its gradient
is `w`, so ``loss + lam * l2_penalty`` is what weight decay with rate `lam`
does to plain SGD) and `l1_penalty(params) = sum |w|` (lasso), over the leaves a
mask selects; `decay_mask` selects the weight matrices and leaves biases and
norm scales/biases alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lab._checks import check_range, unknown_choice

__all__ = [
    "LOSSES",
    "accuracy",
    "binary_cross_entropy",
    "decay_mask",
    "get_loss",
    "huber",
    "l1_penalty",
    "l2_penalty",
    "mae",
    "masked_mean",
    "mse",
    "softmax_cross_entropy",
]


def masked_mean(values: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean of per-example `values` over the examples where `where` is True (0 when none is)."""
    values = jnp.asarray(values)
    if where is None:
        return jnp.mean(values)
    where = jnp.asarray(where, bool)
    if where.shape != values.shape:
        raise ValueError(f"where has shape {where.shape}, needs one flag per example: {values.shape}")
    # where() first: a padded example's value may be inf/nan and 0 * nan is nan.
    total = jnp.sum(jnp.where(where, values, 0))
    return total / jnp.maximum(jnp.sum(where), 1).astype(values.dtype)


def _is_integer(labels: jax.Array) -> bool:
    return jnp.issubdtype(jnp.asarray(labels).dtype, jnp.integer)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean cross-entropy of softmax(`logits`) against `labels`.

    Args:
      logits: `(n, k)` unnormalized log-probabilities.
      labels: `(n,)` integer classes, or `(n, k)` one-hot / probability rows.
      where: optional `(n,)` boolean mask of the examples to average over.
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if logits.ndim < 1:
        raise ValueError(f"logits must have a class axis, got shape {logits.shape}")
    lse = jax.nn.logsumexp(logits, axis=-1)
    if _is_integer(labels):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"integer labels have shape {labels.shape}, need {logits.shape[:-1]} for logits {logits.shape}"
            )
        picked = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
        per_example = lse - picked
    else:
        if labels.shape != logits.shape:
            raise ValueError(
                f"one-hot labels have shape {labels.shape}, need {logits.shape} (or integer labels "
                f"of shape {logits.shape[:-1]})"
            )
        per_example = lse - jnp.sum(labels * logits, axis=-1)
    return masked_mean(per_example, where)


def _binary_pair(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if logits.ndim == 0:
        raise ValueError("logits must have an example axis, got a scalar")
    if labels.shape != logits.shape:
        # (n,) against (n, 1) is the same thing; anything else would broadcast to (n, n) silently.
        if labels.size == logits.size and logits.ndim <= 2 and labels.ndim <= 2 and logits.shape[0] == labels.shape[0]:
            labels = labels.reshape(logits.shape)
        else:
            raise ValueError(f"labels have shape {labels.shape}, logits {logits.shape}: they must match")
    return logits, labels


def binary_cross_entropy(logits: jax.Array, labels: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean binary cross-entropy of sigmoid(`logits`) against `labels` in [0, 1], from the logits.

    Args:
      logits: `(n,)` or `(n, 1)`; `(n, k)` is k independent binary outputs
        (multi-label), whose per-example losses are summed.
      labels: 0/1 (or probabilities), `(n,)` or `(n, 1)` alike.
      where: optional `(n,)` boolean mask.
    """
    logits, labels = _binary_pair(logits, labels)
    labels = labels.astype(logits.dtype)
    elementwise = jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    per_example = jnp.sum(elementwise.reshape(elementwise.shape[0], -1), axis=-1)
    return masked_mean(per_example, where)


def _regression_error(pred: jax.Array, target: jax.Array) -> jax.Array:
    pred, target = _binary_pair(pred, target)
    error = pred - target.astype(pred.dtype)
    return error.reshape(error.shape[0], -1)


def mse(pred: jax.Array, target: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean squared error (the mean over examples of the mean over outputs)."""
    return masked_mean(jnp.mean(jnp.square(_regression_error(pred, target)), axis=-1), where)


def mae(pred: jax.Array, target: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean absolute error."""
    return masked_mean(jnp.mean(jnp.abs(_regression_error(pred, target)), axis=-1), where)


def huber(pred: jax.Array, target: jax.Array, delta: Any = 1.0, where: jax.Array | None = None) -> jax.Array:
    """Mean Huber loss: quadratic within `delta` of the target, linear beyond (as optax and PyTorch)."""
    check_range("delta", delta, low=0.0, low_inclusive=False)
    abs_error = jnp.abs(_regression_error(pred, target))
    quad = jnp.minimum(abs_error, delta)
    per_element = 0.5 * quad**2 + delta * (abs_error - quad)
    return masked_mean(jnp.mean(per_element, axis=-1), where)


def accuracy(logits: jax.Array, labels: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Fraction of correct predictions.

    Multi-class `(n, k)` logits: the argmax against integer or one-hot labels.
    A single binary output, `(n,)` or `(n, 1)`: `logits > 0` against 0/1 labels.
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        logits, labels = _binary_pair(logits, labels)
        correct = (logits > 0) == (labels > 0.5)
        correct = correct.reshape(correct.shape[0])
    else:
        if labels.shape == logits.shape and not _is_integer(labels):
            labels = jnp.argmax(labels, axis=-1)
        if labels.shape != logits.shape[:-1]:
            raise ValueError(f"labels have shape {labels.shape}, need {logits.shape[:-1]} for logits {logits.shape}")
        correct = jnp.argmax(logits, axis=-1) == labels
    dtype = logits.dtype if jnp.issubdtype(logits.dtype, jnp.floating) else jnp.float32
    return masked_mean(correct.astype(dtype), where)


_LOSSES: dict[str, Callable[..., jax.Array]] = {
    "cross_entropy": softmax_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "bce": binary_cross_entropy,
    "mse": mse,
    "mae": mae,
    "huber": huber,
}

LOSSES: tuple[str, ...] = tuple(_LOSSES)
"""Every accepted loss name, aliases included."""


def get_loss(name: str) -> Callable[..., jax.Array]:
    """The loss called `name` (see `LOSSES`): `(pred, target, where=None) -> scalar`."""
    key = str(name).lower()
    if key not in _LOSSES:
        raise unknown_choice("loss", name, LOSSES)
    return _LOSSES[key]


def decay_mask(params: Any) -> Any:
    """True for weight matrices (leaves named "w"), False for biases and norm scales/biases.

    The usual choice for weight decay: decaying a bias or a norm scale does not
    reduce the model's capacity, it only shifts or shrinks its units.
    """

    def is_weight(path: tuple[Any, ...], _leaf: Any) -> bool:
        last = path[-1] if path else None
        name = getattr(last, "key", getattr(last, "name", None))
        return name == "w"

    return jax.tree_util.tree_map_with_path(is_weight, params)


def _selected(params: Any, mask: Any) -> list[jax.Array]:
    if mask is None:
        return jax.tree_util.tree_leaves(params)
    if callable(mask):
        mask = mask(params)
    flags = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda p, m: bool(m), params, mask))
    return [leaf for leaf, keep in zip(jax.tree_util.tree_leaves(params), flags, strict=True) if keep]


def l2_penalty(params: Any, mask: Any = None) -> jax.Array:
    """``0.5 * sum w^2`` over the leaves where `mask` is True.

    `mask` is a pytree of bools shaped like `params`, or a `params -> mask`
    function; `mask=None` takes every leaf; `mask=decay_mask` leaves biases and norm parameters out.
    """
    leaves = _selected(params, mask)
    return 0.5 * sum((jnp.sum(jnp.square(leaf)) for leaf in leaves), jnp.asarray(0.0))


def l1_penalty(params: Any, mask: Any = None) -> jax.Array:
    """``sum |w|`` over the leaves where `mask` is True (see `l2_penalty`)."""
    leaves = _selected(params, mask)
    return sum((jnp.sum(jnp.abs(leaf)) for leaf in leaves), jnp.asarray(0.0))
