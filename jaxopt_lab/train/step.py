"""The one training loop: a pure epoch of mini-batch updates, and evaluation.

Everything that trains a model in this package (the engine, the sweeps, the
experiments, the protocol presets, hypergradients) runs these functions, so a
result of one can be reproduced with any other.

What is compiled in is decided by the keys present in the resolved
hyperparameters `hp` (`Trainer.resolve`): a feature that is off in the config
and not swept (`train.l2`, `model.dropout`, ...) has no key, and its code is
left out of the program.

Inside an epoch:

* Mini-batches run in a `lax.scan`. Full batch (`batch_size = 0`), SGD (`1`)
  and mini-batches (`n`) are the same code path; a last partial batch is
  padded and masked, so losses are exact means over real examples.
* Schedules are stepped per *update* (the optimizer's own step count);
  `reduce_on_plateau` is fed the monitored loss once per epoch.
* Divergence: a step whose loss, gradients or new parameters are not finite
  (or whose loss exceeds `train.divergence_threshold`) is not applied; the run
  is flagged `diverged` and frozen from then on.
* Early stopping: after the epoch the monitored loss (validation, else
  training) is compared with the best so far less `train.min_delta`; after
  `train.early_stopping_patience` epochs without improvement the run stops
  (`stopped`). This is the only place that decides it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab import losses
from jaxopt_lab.config import RANDOM_KEYS
from jaxopt_lab.data import batching
from jaxopt_lab.models import Model
from jaxopt_lab.train.state import HISTORY_KEYS, TrainState

Array = jax.Array
PyTree = Any


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """The static part of a run, fixed when a trainer is built.

    Attributes:
      model: the model (`jaxopt_lab.models.Model`).
      loss_fn: `loss(outputs, y, where) -> scalar`.
      accuracy_fn: `accuracy(outputs, y, where) -> scalar`, or None (regression).
      optimizer: `optimizer(hp) -> (GradientTransformation, lr(step) -> rate)`.
      plateau: `plateau(hp) -> reduce_on_plateau transform`, or None.
      dtype: the float dtype of the run.
      batch_size: rows per update (0: full batch).
      drop_last: leave out a last partial batch instead of padding it.
      eval_params: `eval_params(params, opt_state) -> params` to evaluate at (optimizers
        whose iterate is not the point to evaluate, e.g. schedule-free), or None.
      update_extras: `update_extras(value=, grad=, value_fn=) -> kwargs` for optimizers whose
        `update` needs more than the gradient (the loss for Polyak steps, ...), or None.
    """

    model: Model
    loss_fn: Callable[..., Array]
    accuracy_fn: Callable[..., Array] | None
    optimizer: Callable[[Mapping[str, Any]], tuple[optax.GradientTransformation, Callable[[Array], Array]]]
    plateau: Callable[[Mapping[str, Any]], Any] | None
    dtype: Any
    batch_size: int
    drop_last: bool
    eval_params: Callable[[PyTree, PyTree], PyTree] | None = None
    update_extras: Callable[..., Mapping[str, Any]] | None = None


def tree_where(pred: Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def all_finite(tree: PyTree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def tracks_best(hp: Mapping[str, Any]) -> bool:
    """Early stopping is compiled in: the best epoch's parameters are kept."""
    return "train.early_stopping_patience" in hp


def _apply_model(spec: RunSpec, params, model_state, x, *, train, key, hp, where=None):
    if spec.model.takes_batch_mask:
        return spec.model.apply(params, model_state, x, train=train, key=key, hp=hp, where=where)
    return spec.model.apply(params, model_state, x, train=train, key=key, hp=hp)


def evaluate(spec: RunSpec, params: PyTree, model_state: PyTree, x: Array, y: Array,
             hp: Mapping[str, Any]) -> tuple[Array, Array]:
    """(loss, accuracy) of the model in inference mode on `x, y` (accuracy NaN for regression)."""
    out, _ = _apply_model(spec, params, model_state, x, train=False, key=None, hp=hp)
    loss = spec.loss_fn(out, y, None)
    acc = spec.accuracy_fn(out, y, None) if spec.accuracy_fn is not None else jnp.asarray(jnp.nan, spec.dtype)
    return loss.astype(spec.dtype), jnp.asarray(acc, spec.dtype)


def evaluation_point(spec: RunSpec, params: PyTree, opt_state: PyTree) -> PyTree:
    return spec.eval_params(params, opt_state) if spec.eval_params is not None else params


def _update(spec: RunSpec, hp, data, order_key, opt, lr_fn, scale, carry, batch):
    """One update on one mini-batch: the gradient step with its penalties, clipping,
    decoupled weight decay and divergence guard."""
    dt = spec.dtype
    params, opt_state, model_state, step_i, diverged, sums = carry
    x_tr, y_tr = data["x_train"], data["y_train"]
    if batch is None:
        xb, yb, mb = x_tr, y_tr, None
    else:
        bidx, mb = batch
        xb, yb = x_tr[bidx], y_tr[bidx]
    skey = dkey = nkey = None
    if spec.model.uses_key or any(k in hp for k in RANDOM_KEYS):
        # Per-update keys, derived only when something random may happen in the step:
        # on tiny models the hashing would otherwise cost as much as the step.
        skey = jax.random.fold_in(jax.random.fold_in(order_key, 1_000_003), step_i)
        dkey, nkey = jax.random.split(skey)
    if "train.input_noise" in hp:
        xb = xb + hp["train.input_noise"] * jax.random.normal(nkey, xb.shape, dt)

    def objective(p):
        out, new_ms = _apply_model(spec, p, model_state, xb, train=True, key=dkey, hp=hp, where=mb)
        data_loss = spec.loss_fn(out, yb, mb)
        total = data_loss
        if "train.l2" in hp:
            total = total + hp["train.l2"] * losses.l2_penalty(p, spec.model.decay_mask(p))
        if "train.l1" in hp:
            total = total + hp["train.l1"] * losses.l1_penalty(p, spec.model.decay_mask(p))
        return total, (data_loss, out, new_ms)

    (total, (data_loss, out, new_ms)), grads = jax.value_and_grad(objective, has_aux=True)(params)
    gnorm = optax.tree.norm(grads)
    if "train.clip_norm" in hp:
        clip = hp["train.clip_norm"]
        factor = jnp.where((clip > 0) & (gnorm > clip), clip / jnp.maximum(gnorm, 1e-30), 1.0)
        grads = jax.tree.map(lambda g: g * factor.astype(g.dtype), grads)
    if "train.grad_noise" in hp:
        # Its own stream of the update's key, so dropout and input noise draw what they drew without it.
        leaves, treedef = jax.tree.flatten(grads)
        keys = jax.random.split(jax.random.fold_in(skey, 2), len(leaves))
        grads = treedef.unflatten([
            g + (hp["train.grad_noise"] * jax.random.normal(k, g.shape, g.dtype)).astype(g.dtype)
            for g, k in zip(leaves, keys, strict=True)
        ])
    extra = {} if spec.update_extras is None else spec.update_extras(
        value=total, grad=grads, value_fn=lambda p: objective(p)[0])
    updates, new_opt = opt.update(grads, opt_state, params, **extra)
    # The optimizer's own count equals step_i: a skipped (non-finite) step ends the run.
    lr_t = jnp.asarray(lr_fn(step_i), dt) * scale
    if spec.plateau is not None:
        updates = jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)
    if "train.weight_decay" in hp:
        # Decoupled weight decay (Loshchilov & Hutter), scaled by the current rate.
        wd = hp["train.weight_decay"]
        updates = jax.tree.map(
            lambda u, p, mk: (u - lr_t * wd * p).astype(u.dtype) if mk else u,
            updates, params, spec.model.decay_mask(params),
        )
    new_params = optax.apply_updates(params, updates)
    ok = jnp.isfinite(total) & jnp.isfinite(gnorm) & all_finite(new_params)
    if "train.divergence_threshold" in hp:
        ok = ok & (total <= hp["train.divergence_threshold"])
    apply = ok & ~diverged
    params = tree_where(apply, new_params, params)
    opt_state = tree_where(apply, new_opt, opt_state)
    model_state = tree_where(apply, new_ms, model_state)
    diverged = diverged | ~ok
    acc = spec.accuracy_fn(out, yb, mb) if spec.accuracy_fn is not None else jnp.nan
    w = jnp.where(apply, 1.0, 0.0).astype(dt)
    sums = (
        sums[0] + w * jnp.where(apply, data_loss, 0.0),
        sums[1] + w * jnp.where(apply, acc, 0.0),
        sums[2] + w * jnp.where(apply, gnorm, 0.0),
        sums[3] + w,
        jnp.where(apply, lr_t, sums[4]).astype(dt),
    )
    return (params, opt_state, model_state, step_i + 1, diverged, sums), None


def epoch(spec: RunSpec, state: TrainState, hp: Mapping[str, Any], data: Mapping[str, Array]) -> TrainState:
    """One epoch of `state`: the updates of every mini-batch, then validation, the
    early-stopping rule, the plateau rule and the epoch's history record."""
    dt = spec.dtype
    n = data["x_train"].shape[0]
    opt, lr_fn = spec.optimizer(hp)
    plateau = spec.plateau(hp) if spec.plateau is not None else None
    scale = state.plateau_state.scale if plateau is not None else jnp.asarray(1.0, dt)

    def update(carry, batch):
        return _update(spec, hp, data, state.order_key, opt, lr_fn, scale, carry, batch)

    zero = jnp.zeros((), dt)
    carry = (state.params, state.opt_state, state.model_state, state.step, state.diverged,
             (zero, zero, zero, zero, jnp.asarray(jnp.nan, dt)))
    if spec.batch_size == 0:
        carry, _ = update(carry, None)
    else:
        idx, mask = batching.epoch_batches(
            jax.random.fold_in(state.order_key, state.epoch), n, spec.batch_size, shuffle=True,
            drop_last=spec.drop_last,
        )
        carry, _ = jax.lax.scan(update, carry, (idx, mask), length=idx.shape[0])
    params, opt_state, model_state, step_i, diverged, sums = carry
    count = sums[3]
    safe = jnp.maximum(count, 1.0)
    nan = jnp.asarray(jnp.nan, dt)
    train_loss = jnp.where(count > 0, sums[0] / safe, nan)
    train_acc = jnp.where(count > 0, sums[1] / safe, nan) if spec.accuracy_fn is not None else nan
    grad_norm = jnp.where(count > 0, sums[2] / safe, nan)

    at = evaluation_point(spec, params, opt_state)
    if "x_val" in data:
        val_loss, val_acc = evaluate(spec, at, model_state, data["x_val"], data["y_val"], hp)
        monitor = val_loss
    else:
        val_loss = val_acc = nan
        monitor = train_loss
    monitor_ok = jnp.isfinite(monitor) & ~diverged
    e = state.epoch
    improved = monitor_ok & (monitor < state.best_loss - hp["train.min_delta"])
    best_loss = jnp.where(improved, monitor, state.best_loss)
    best_epoch = jnp.where(improved, e + 1, state.best_epoch)
    best_params, best_model_state = state.best_params, state.best_model_state
    if tracks_best(hp):
        best_params = tree_where(improved, at, best_params)
        best_model_state = tree_where(improved, model_state, best_model_state)
    wait = jnp.where(improved, 0, state.wait + 1)
    stopped = jnp.array(False)
    if "train.early_stopping_patience" in hp:
        patience = hp["train.early_stopping_patience"]
        stopped = (patience > 0) & (wait >= patience)

    plateau_state = state.plateau_state
    if plateau is not None:
        _, new_ps = plateau.update(jnp.zeros((), dt), plateau_state, value=monitor)
        plateau_state = tree_where(monitor_ok, new_ps, plateau_state)

    values = {
        "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss, "val_accuracy": val_acc,
        "learning_rate": sums[4], "grad_norm": grad_norm,
    }
    record = jnp.stack([jnp.asarray(values[k], dt) for k in HISTORY_KEYS])
    history = jax.lax.dynamic_update_slice(state.history, record[None, :], (e, jnp.zeros((), e.dtype)))
    return TrainState(
        params=params, opt_state=opt_state, model_state=model_state, plateau_state=plateau_state,
        epoch=e + 1, step=step_i, best_params=best_params, best_model_state=best_model_state,
        best_loss=best_loss, best_epoch=best_epoch, wait=wait, stopped=stopped, diverged=diverged,
        order_key=state.order_key, history=history,
    )
