"""Hypergradients: derivatives of a whole training run with respect to its hyperparameters.

A run built by `make_train` is a pure function of its numeric hyperparameters, so
the derivative of, say, the final validation loss with respect to the learning
rate is one transformation away:

    from jaxopt_lab import meta
    value, grads = meta.hypergrad(trainer, key, {"optimizer.learning_rate": 0.1},
                                  wrt=["optimizer.learning_rate", "train.weight_decay"])

How a run is made differentiable:

* **Fixed-length epochs.** `Trainer.__call__` runs epochs in a `lax.while_loop`
  (it stops when the run stops), which reverse mode cannot differentiate. Here the
  epochs run in a `lax.scan` of the full epoch budget; once a run has stopped
  (early stopping) or diverged, the remaining epochs are *masked*: the state is
  kept as it was (`jnp.where` on the stop flags). The result equals the
  `while_loop` run's.
* **The stop epoch is fixed.** Early stopping, the best epoch that `restore_best`
  returns to, divergence and `reduce_on_plateau`'s decisions are comparisons:
  their derivative is zero almost everywhere, so the hypergradient is the
  derivative of the run *with the same stop epoch and the same decisions*.
  Likewise the mini-batch order and dropout masks are fixed by the key. A
  diverged run's hypergradient is not meaningful (it may be NaN).
* **Memory.** Reverse mode stores the state of every epoch unless `remat=True`
  (the default): then epochs run as `ceil(E / B)` segments of `B = ceil(sqrt(E))`
  epochs, each segment and each epoch under `jax.checkpoint`, so the backward pass
  stores one state per segment plus, while it recomputes a segment, one state per
  epoch of it: about `2 sqrt(E)` states instead of `E`, for one more forward pass.
  The per-epoch history is a scan *output*, not part of the carried state, so the
  stored states do not grow with the horizon.
* **Forward mode** (`mode="forward"`) pushes one tangent per hyperparameter through
  the run with `jax.jvp`, `vmap`ped over the tangents: no stored trajectory, cost
  about (1 + number of hyperparameters) runs. It is the better choice for one or
  two hyperparameters and long horizons.
* **Log space.** With `log_space=True` derivatives are with respect to `log h`,
  i.e. `h * df/dh`: the natural scale of positive hyperparameters (a learning rate
  doubled, not increased by 0.1). At `h = 0` this is 0.

Long horizons make hypergradients explode (chaotic training dynamics; Metz et al.,
2019, "Understanding and correcting pathologies in the training of learned
optimizers"). Two remedies are here: `truncated_hypergrad` (the derivative over the
last K epochs from a stored state) and `es_hypergrad` (antithetic evolution
strategies and Persistent ES, Vicol et al., 2021, "Unbiased gradient estimation in
unrolled computation graphs with persistent evolution strategies"), which estimate
the gradient of a Gaussian-smoothed objective and report their standard error.

`tune` uses hypergradients for gradient-based hyperparameter tuning: one of our
optimizers steps the (log) hyperparameters along the seed-averaged hypergradient.

Everything here is traceable: `jax.vmap(lambda k: hypergrad(trainer, k, hp, wrt))(keys)`
runs every seed in one compiled program.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.ticker import NullFormatter

from jaxopt_lab import _io, optim, plots
from jaxopt_lab._checks import check_choice, closest

Array = jax.Array
Objective = str | Callable[[Any], Array]

MODES = ("reverse", "forward")
ES_METHODS = ("es", "pes")
ESTIMATORS = ("hypergrad", "es")


# ----------------------------------------------------------------------------- checks


def check_wrt(trainer: Any, wrt: Sequence[str], hparams: Mapping[str, Any] | None = None) -> list[str]:
    """The keys of `wrt` as a list, or `ValueError` naming a bad one and the valid keys.

    A key is valid when the trainer can trace it (`trainer.traceable_keys()`) and it has
    a value: the config's, or one given in `hparams`.
    """

    wrt = [wrt] if isinstance(wrt, str) else list(wrt)
    if not wrt:
        raise ValueError("wrt is empty: name at least one hyperparameter")
    valid = trainer.traceable_keys()
    hparams = hparams or {}
    for key in wrt:
        if key not in valid:
            raise ValueError(
                f"wrt key {key!r} is not a traceable hyperparameter of this config{closest(key, valid)}; "
                f"valid keys: {', '.join(valid)}"
            )
        if key not in hparams and key not in trainer.defaults:
            raise ValueError(f"wrt key {key!r} has no value in this config: give it in hparams")
    if len(set(wrt)) != len(wrt):
        raise ValueError(f"wrt names a key twice: {wrt}")
    return wrt


# ----------------------------------------------------------------------------- the differentiable run


def _tree_where(pred: Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def segment_length(epochs: int) -> int:
    """Epochs per checkpointed segment under `remat`: ceil(sqrt(epochs)), which minimizes
    the states stored (one per segment plus one per epoch of the segment recomputed)."""
    return max(1, math.ceil(math.sqrt(epochs)))


def run_scan(trainer: Any, state: Any, hparams: Mapping[str, Any], epochs: int, *, remat: bool = True) -> Any:
    """`epochs` more epochs of `state` in a fixed-length, reverse-differentiable scan.

    Epochs after the run stopped or diverged are masked (the state is kept), so the
    result equals `trainer.run_epochs(state, hparams, state.epoch + epochs)`. With
    `remat`, memory for the backward pass grows as sqrt(epochs) (see the module doc).
    """
    n_cols = state.history.shape[1]
    nan = jnp.asarray(jnp.nan, state.history.dtype)
    # The history is written row by row as a scan output: carrying the full
    # (epochs, columns) array would make every stored state grow with the horizon.
    blank = jnp.full(state.history.shape, jnp.nan, state.history.dtype)

    def epoch(carry, _):
        done = carry.stopped | carry.diverged
        new = trainer.step_epoch(carry._replace(history=blank), hparams)
        row = jnp.where(done, nan, jax.lax.dynamic_index_in_dim(new.history, carry.epoch, keepdims=False))
        new = new._replace(history=carry.history)
        return _tree_where(done, carry, new), row

    def run(carry, length):
        return jax.lax.scan(epoch, carry, None, length=length)

    start = state.epoch
    carry = state._replace(history=jnp.zeros((0, n_cols), state.history.dtype))
    if epochs == 0:
        rows = jnp.zeros((0, n_cols), state.history.dtype)
    elif not remat:
        carry, rows = run(carry, epochs)
    else:
        seg = segment_length(epochs)
        n_seg, rest = divmod(epochs, seg)
        epoch = jax.checkpoint(epoch)

        @jax.checkpoint
        def segment(c, _):
            return run(c, seg)

        carry, rows = jax.lax.scan(segment, carry, None, length=n_seg)
        rows = rows.reshape(n_seg * seg, n_cols)
        if rest:
            carry, tail = jax.checkpoint(lambda c: run(c, rest))(carry)
            rows = jnp.concatenate([rows, tail])
    history = jax.lax.dynamic_update_slice(state.history, rows, (start, jnp.zeros((), start.dtype)))
    return carry._replace(history=history)


def _objective_value(trainer: Any, state: Any, hparams: Mapping[str, Any], objective: Objective) -> Array:
    result = trainer.finalize(state, hparams)
    if callable(objective):
        return jnp.asarray(objective(result))
    if objective not in result.metrics:
        raise ValueError(
            f"objective={objective!r} is not a metric of this run; valid choices: {', '.join(result.metrics)}, "
            "or a function of the TrainResult"
        )
    return result.metrics[objective]


def _derivatives(f: Callable[[dict], Array], theta: dict[str, Array], mode: str) -> tuple[Array, dict[str, Array]]:
    if mode == "reverse":
        return jax.value_and_grad(f)(theta)
    keys = list(theta)
    basis = {k: jnp.stack([jnp.asarray(float(k == j), theta[k].dtype) for j in keys]) for k in keys}

    def one(tangent):
        return jax.jvp(f, (theta,), (tangent,))

    values, slopes = jax.vmap(one, out_axes=(0, 0))(basis)
    return values[0], {k: slopes[i] for i, k in enumerate(keys)}


def _to_log(grads: dict[str, Array], theta: Mapping[str, Array]) -> dict[str, Array]:
    # d f / d log h = h * d f / d h (the chain rule through h = exp(log h)).
    return {k: g * theta[k] for k, g in grads.items()}


def _split(trainer: Any, hparams: Mapping[str, Any], wrt: Sequence[str]) -> tuple[dict, dict]:
    dt = trainer.dtype
    theta = {k: jnp.asarray(hparams[k] if k in hparams else trainer.defaults[k], dt) for k in wrt}
    fixed = {k: v for k, v in hparams.items() if k not in wrt}
    return theta, fixed


def _hypergrad(trainer, key, hparams, wrt, objective, mode, log_space, remat):
    theta, fixed = _split(trainer, hparams, wrt)
    epochs = trainer.config.train.epochs

    def f(th):
        hp = {**fixed, **th}
        state = trainer.init_state(key, hp)
        state = run_scan(trainer, state, hp, epochs, remat=remat and mode == "reverse")
        return _objective_value(trainer, state, hp, objective)

    value, grads = _derivatives(f, theta, mode)
    return value, _to_log(grads, theta) if log_space else grads


def _truncated(trainer, state, hparams, wrt, horizon, objective, mode, log_space, remat):
    theta, fixed = _split(trainer, hparams, wrt)

    def f(th):
        hp = {**fixed, **th}
        s = run_scan(trainer, state, hp, horizon, remat=remat and mode == "reverse")
        return _objective_value(trainer, s, hp, objective)

    value, grads = _derivatives(f, theta, mode)
    return value, _to_log(grads, theta) if log_space else grads


# One compiled program per (trainer, options): hypergrad is called in loops (tune, demos). The
# cache lives on the trainer, so it goes when the trainer goes (a module-level weak-keyed cache
# would keep every trainer alive: its compiled closures refer to it).
_CACHE_ATTRIBUTE = "_meta_compiled"


def _compiled(trainer: Any, fn: Callable, options: tuple) -> Callable:
    cache = getattr(trainer, _CACHE_ATTRIBUTE, None)
    if cache is None:
        cache = {}
        try:
            setattr(trainer, _CACHE_ATTRIBUTE, cache)
        except AttributeError:  # a trainer that takes no attributes: compile per call
            pass
    key = (fn.__name__, options)
    if key not in cache:
        cache[key] = jax.jit(_bind(fn, trainer, options))
    return cache[key]


def _bind(fn: Callable, trainer: Any, options: tuple) -> Callable:
    def bound(*args):
        return fn(trainer, *args, *options)

    return bound


def _validate(trainer, hparams, wrt, mode):
    check_choice("mode", mode, MODES)
    wrt = check_wrt(trainer, wrt, hparams)
    trainer.resolve(hparams)  # names a bad hparams key, with the valid ones
    return wrt


# ----------------------------------------------------------------------------- public API


def hypergrad(
    trainer: Any,
    key: Any,
    hparams: Mapping[str, jax.typing.ArrayLike] | None,
    wrt: Sequence[str],
    objective: Objective = "final_val_loss",
    mode: str = "reverse",
    log_space: bool = True,
    *,
    remat: bool = True,
) -> tuple[Array, dict[str, Array]]:
    """The objective of a whole training run and its derivatives with respect to hyperparameters.

    Args:
      trainer: a `Trainer` from `make_train(config)`; the horizon is `config.train.epochs`.
      key: the run's PRNG key (or integer seed), as for `trainer(key, hparams)`.
      hparams: hyperparameter values (any of `trainer.traceable_keys()`); keys not given take
        the config's values. Values may be traced (`vmap` over starting points).
      wrt: the hyperparameters to differentiate with respect to.
      objective: a key of the run's final metrics (`final_val_loss`, `final_train_loss`,
        `best_val_loss`, ...) or a function of the `TrainResult` returning a scalar.
      mode: `"reverse"` (one backward pass for all of `wrt`) or `"forward"` (one `jvp` per
        hyperparameter, vmapped; no stored trajectory).
      log_space: derivatives with respect to `log h` (`h * df/dh`) instead of `h`.
      remat: checkpoint epochs so that reverse mode stores about `2 sqrt(epochs)` states.

    Returns:
      `(value, {key: derivative})`: the objective (equal to the ordinary run's) and its
      derivatives.

    Example:
      >>> from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
      >>> from jaxopt_lab.train import make_train
      >>> trainer = make_train(Config(data=DataConfig(n_samples=60), model=ModelConfig(hidden=(4,)),
      ...                             train=TrainConfig(epochs=3),
      ...                             optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9})))
      >>> value, g = hypergrad(trainer, jax.random.PRNGKey(0), {}, ["optimizer.learning_rate"])
      >>> sorted(g), bool(jnp.isfinite(g["optimizer.learning_rate"]))
      (['optimizer.learning_rate'], True)
      >>> keys = jax.random.split(jax.random.PRNGKey(0), 4)  # one program over seeds
      >>> values, gs = jax.vmap(lambda k: hypergrad(trainer, k, {}, ["optimizer.learning_rate"]))(keys)
      >>> gs["optimizer.learning_rate"].shape
      (4,)

    References:
      Maclaurin, Duvenaud & Adams (2015), "Gradient-based hyperparameter optimization
      through reversible learning"; Franceschi et al. (2017), "Forward and reverse
      gradient-based hyperparameter optimization"; Griewank (1992) on checkpointing.
    """
    hparams = dict(hparams or {})
    wrt = _validate(trainer, hparams, wrt, mode)
    fn = _compiled(trainer, _hypergrad, (tuple(wrt), objective, mode, bool(log_space), bool(remat)))
    return fn(key, hparams)


def run_state(trainer: Any, key: Any, hparams: Mapping[str, Any] | None = None, epochs: int | None = None) -> Any:
    """The `TrainState` after `epochs` epochs (default: all) of the run `(key, hparams)`: the stored
    state `truncated_hypergrad` starts from."""
    epochs = trainer.config.train.epochs if epochs is None else int(epochs)
    hparams = dict(hparams or {})
    return trainer.run_epochs(trainer.init_state(key, hparams), hparams, epochs)


def truncated_hypergrad(
    trainer: Any,
    state: Any,
    hparams: Mapping[str, jax.typing.ArrayLike] | None,
    wrt: Sequence[str],
    horizon: int,
    objective: Objective = "final_val_loss",
    mode: str = "reverse",
    log_space: bool = True,
    *,
    remat: bool = True,
) -> tuple[Array, dict[str, Array]]:
    """The hypergradient over the last `horizon` epochs only, starting from a stored `state`.

    The state (e.g. `run_state(trainer, key, hp, epochs - horizon)`) is a constant: the
    derivative ignores how the hyperparameters shaped the epochs before it. This bias
    buys a derivative that does not explode on long, chaotic horizons, at the cost of
    `horizon` epochs instead of the whole run.

    Args:
      trainer, hparams, wrt, objective, mode, log_space, remat: as in `hypergrad`.
      state: a `TrainState` of this trainer; `state.epoch + horizon` must not exceed the
        config's epochs.
      horizon: the number of epochs differentiated through.

    Returns:
      `(value, {key: derivative})` of the objective after those epochs.

    References:
      Shaban et al. (2019), "Truncated back-propagation for bilevel optimization".
    """
    total = trainer.config.train.epochs
    if not 0 < int(horizon) <= total:
        raise ValueError(f"horizon={horizon!r} is out of range: valid range is [1, {total}] (train.epochs)")
    hparams = dict(hparams or {})
    wrt = _validate(trainer, hparams, wrt, mode)
    fn = _compiled(trainer, _truncated, (tuple(wrt), int(horizon), objective, mode, bool(log_space), bool(remat)))
    return fn(state, hparams)


# ----------------------------------------------------------------------------- evolution strategies


def _raw_key(key: Any) -> Array:
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jax.random.PRNGKey(key) if key.shape == () else key


class ESEstimate(NamedTuple):
    """An evolution-strategies estimate of a hypergradient.

    Fields:
      value: the objective at the unperturbed hyperparameters.
      grads: `{key: estimate}` of the derivative (with respect to `log h` when `log_space`).
      stderr: `{key: standard error}` of each estimate: `sqrt(variance / pairs)`.
      variance: `{key: variance}` of the one-pair estimator (sample variance over pairs):
        the estimator's own noise, comparable across methods and `sigma`.
    """

    value: Array
    grads: dict[str, Array]
    stderr: dict[str, Array]
    variance: dict[str, Array]


def _summarize(value: Array, per_pair: Array, wrt: Sequence[str]) -> ESEstimate:
    pairs = per_pair.shape[0]
    mean = per_pair.mean(axis=0)
    var = per_pair.var(axis=0, ddof=1)
    stderr = jnp.sqrt(var / pairs)
    return ESEstimate(
        value=value,
        grads={k: mean[i] for i, k in enumerate(wrt)},
        stderr={k: stderr[i] for i, k in enumerate(wrt)},
        variance={k: var[i] for i, k in enumerate(wrt)},
    )


def _es_lanes(trainer, key, hparams, noise_key, wrt, sigma, pairs, objective, log_space):
    """The objective of `2 pairs + 1` whole runs (one vmapped program) and the pairs' directions `z`:
    lane 0 is the unperturbed run, then the + and - halves of each antithetic pair."""
    theta, fixed = _split(trainer, hparams, wrt)
    base = jnp.stack([jnp.log(theta[k]) if log_space else theta[k] for k in wrt])
    z = jax.random.normal(noise_key, (pairs, len(wrt)), base.dtype)
    points = jnp.concatenate([base[None], base + sigma * z, base - sigma * z])

    def objective_at(point):
        values = jnp.exp(point) if log_space else point
        hp = {**fixed, **{k: values[i] for i, k in enumerate(wrt)}}
        return _objective_value(trainer, trainer.run_epochs(trainer.init_state(key, hp), hp), hp, objective)

    return jax.vmap(objective_at)(points), z


def _es_per_pair(f: Array, z: Array, sigma: float) -> Array:
    pairs = z.shape[0]
    f_plus, f_minus = f[1 : pairs + 1], f[pairs + 1 :]
    return ((f_plus - f_minus) / (2 * sigma))[:, None] * z


def _es(trainer, key, hparams, noise_key, wrt, sigma, pairs, objective, log_space):
    f, z = _es_lanes(trainer, key, hparams, noise_key, wrt, sigma, pairs, objective, log_space)
    return _summarize(f[0], _es_per_pair(f, z, sigma), wrt)


def _pes(trainer, key, hparams, noise_key, wrt, sigma, pairs, truncation, objective, log_space):
    theta, fixed = _split(trainer, hparams, wrt)
    base = jnp.stack([jnp.log(theta[k]) if log_space else theta[k] for k in wrt])
    epochs = trainer.config.train.epochs
    n_unrolls = -(-epochs // truncation)

    def hp_at(point):
        values = jnp.exp(point) if log_space else point
        return {**fixed, **{k: values[i] for i, k in enumerate(wrt)}}

    # Particles: the unperturbed run, then the + and - member of each pair; all share the
    # training key (common random numbers), each keeps its own training state.
    n = 2 * pairs + 1
    state0 = trainer.init_state(key, hp_at(base))

    # The initial state depends on the hyperparameters too (model.init_scale): each particle
    # starts from the state its first unroll's perturbation gives.
    def unroll(carry, j):
        states, xi, k, _ = carry
        k, sub = jax.random.split(k)
        z = jax.random.normal(sub, (pairs, len(wrt)), base.dtype)
        points = jnp.concatenate([base[None], base + sigma * z, base - sigma * z])
        fresh = jax.vmap(lambda p: trainer.init_state(key, hp_at(p)))(points)
        states = jax.tree.map(lambda a, b: jnp.where(j == 0, a, b), fresh, states)
        until = jnp.minimum((j + 1) * truncation, epochs)
        states = jax.vmap(lambda s, p: trainer.run_epochs(s, hp_at(p), until))(states, points)
        return (states, xi + z, k, points), None

    states = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *jnp.shape(a))), state0)
    xi = jnp.zeros((pairs, len(wrt)), base.dtype)
    points = jnp.broadcast_to(base, (n, len(wrt)))
    (states, xi, _, points), _ = jax.lax.scan(unroll, (states, xi, noise_key, points), jnp.arange(n_unrolls))
    # Each particle's objective is read with the hyperparameters of its last unroll.
    f = jax.vmap(lambda s, p: _objective_value(trainer, s, hp_at(p), objective))(states, points)
    f_plus, f_minus = f[1 : pairs + 1], f[pairs + 1 :]
    per_pair = ((f_plus - f_minus) / (2 * sigma))[:, None] * xi
    return _summarize(f[0], per_pair, wrt)


def es_hypergrad(
    trainer: Any,
    key: Any,
    hparams: Mapping[str, jax.typing.ArrayLike] | None,
    wrt: Sequence[str],
    *,
    sigma: float = 0.05,
    pairs: int = 32,
    method: str = "es",
    truncation: int | None = None,
    objective: Objective = "final_val_loss",
    log_space: bool = True,
    noise_key: Any = None,
) -> ESEstimate:
    r"""An evolution-strategies estimate of the hypergradient, with its standard error.

    Antithetic ES (`method="es"`) estimates the gradient of the Gaussian-smoothed objective
    :math:`\tilde f(\theta) = E_z f(\theta + \sigma z)` from `pairs` pairs of whole runs:

    .. math::
        \hat g = \frac{1}{N} \sum_{i=1}^N \frac{f(\theta + \sigma z_i) - f(\theta - \sigma z_i)}{2\sigma} z_i,
        \qquad z_i \sim \mathcal N(0, I).

    Persistent ES (`method="pes"`) runs the horizon in unrolls of `truncation` epochs; each
    particle keeps its own training state, draws a fresh perturbation :math:`z_{i,j}` for every
    unroll and accumulates :math:`\xi_i = \sum_j z_{i,j}`; the estimate uses :math:`\xi_i` in
    place of :math:`z_i`. It is unbiased for the smoothed objective in which every unroll has
    its own perturbation, which is what makes it usable online on truncated unrolls; its
    variance grows with the number of unrolls.

    Neither needs a derivative of the run, so neither explodes on chaotic horizons: they see
    the loss landscape at the scale `sigma` (in log units when `log_space`). All runs (the
    unperturbed one and both members of every pair) share the training `key` (common random
    numbers) and run as one vmapped program.

    Args:
      trainer, key, hparams, wrt, objective, log_space: as in `hypergrad`.
      sigma: the perturbation scale (> 0).
      pairs: antithetic pairs (>= 2, for the variance).
      method: `"es"` or `"pes"`.
      truncation: epochs per unroll for `"pes"` (default: a quarter of the horizon).
      noise_key: the key of the perturbations (default: derived from `key`).

    Returns:
      an `ESEstimate` (value, grads, stderr, variance).

    Example:
      >>> from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
      >>> from jaxopt_lab.train import make_train
      >>> trainer = make_train(Config(data=DataConfig(n_samples=60), model=ModelConfig(hidden=(4,)),
      ...                             train=TrainConfig(epochs=3),
      ...                             optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9})))
      >>> est = es_hypergrad(trainer, jax.random.PRNGKey(0), {}, ["optimizer.learning_rate"], pairs=8)
      >>> bool(est.stderr["optimizer.learning_rate"] > 0)
      True

    References:
      Salimans et al. (2017), "Evolution strategies as a scalable alternative to reinforcement
      learning"; Vicol, Metz & Sohl-Dickstein (2021), "Unbiased gradient estimation in unrolled
      computation graphs with persistent evolution strategies".
    """
    check_choice("method", method, ES_METHODS)
    if not sigma > 0:
        raise ValueError(f"sigma={sigma!r} is out of range: valid range is (0, inf)")
    if int(pairs) < 2:
        raise ValueError(f"pairs={pairs!r} is out of range: valid range is [2, inf) (the variance needs two)")
    hparams = dict(hparams or {})
    wrt = _validate(trainer, hparams, wrt, "reverse")
    if noise_key is None:
        noise_key = jax.random.fold_in(_raw_key(key), 0x5E5)
    if method == "es":
        fn = _compiled(trainer, _es, (tuple(wrt), float(sigma), int(pairs), objective, bool(log_space)))
    else:
        epochs = trainer.config.train.epochs
        truncation = max(1, epochs // 4) if truncation is None else int(truncation)
        if not 0 < truncation <= epochs:
            raise ValueError(f"truncation={truncation!r} is out of range: valid range is [1, {epochs}] (train.epochs)")
        options = (tuple(wrt), float(sigma), int(pairs), truncation, objective, bool(log_space))
        fn = _compiled(trainer, _pes, options)
    return fn(key, hparams, noise_key)


# ----------------------------------------------------------------------------- gradient-based tuning


class TuneResult(NamedTuple):
    """The path of `tune`: row `i` is the point after `i` outer steps (row 0 the start).

    Fields:
      hparams: `{key: (steps + 1,) values}` along the path.
      objective: `(steps + 1,)` objective at each point (its unperturbed runs), averaged over the seeds.
      hypergrad: `{key: (steps + 1,) derivatives}` at each point, averaged over the seeds
        (with respect to `log h` when `log_space`): the exact hypergradient, or the ES estimate
        with `estimator="es"`; the last row's was not used for a step.
      epochs: training epochs run (forward). `estimator="hypergrad"`: `(steps + 1) * seeds * E`
        (`E = train.epochs`), each with a backward pass (and, with `remat`, a recomputation);
        `"es"`: `(steps + 1) * seeds * (2 pairs + 1) * E`, with no backward pass.
      selection: `(steps + 1,)` the score `best_step` minimizes: `objective` for `"hypergrad"`; for
        `"es"`, the mean over every run of the step (the unperturbed one and both members of each
        pair, all seeds): an estimate of the Gaussian-smoothed objective from `seeds * (2 pairs + 1)`
        runs, less noisy than `objective`, and worse next to a cliff of the loss.
      best_step: the step whose `selection` is lowest (non-finite ignored; 0 when none is finite).
        It costs nothing: every point's score was computed on the way.
    """

    hparams: dict[str, Array]
    objective: Array
    hypergrad: dict[str, Array]
    epochs: int
    selection: Array | None = None
    best_step: int = 0

    def best(self) -> dict[str, float]:
        """The hyperparameters at `best_step`: the point of the path to use."""
        return {k: float(v[self.best_step]) for k, v in self.hparams.items()}


def _finite_or_worst(f: Array) -> Array:
    # A diverged run counts as bad as the worst finite run of its seed's step (ignoring it would
    # draw the tuner towards divergence); a seed with no finite run stays NaN (and is averaged out).
    worst = jnp.max(jnp.where(jnp.isfinite(f), f, -jnp.inf), axis=-1, keepdims=True)
    return jnp.where(jnp.isfinite(f), f, jnp.where(jnp.isfinite(worst), worst, jnp.nan))


def _tune_estimate(trainer, fixed, h, step_keys, noise_keys, wrt, objective, mode, log_space, estimator, sigma,
                   pairs):
    """(seed-mean objective, seed-mean derivative estimate, selection score) at the point `h`."""
    if estimator == "hypergrad":
        values, grads = jax.vmap(
            lambda key: _hypergrad(trainer, key, {**fixed, **h}, wrt, objective, mode, log_space, True)
        )(step_keys)
        # A diverged seed's derivative is meaningless (often NaN): average the others.
        value = jnp.nanmean(values)
        return value, {k: jnp.nanmean(g) for k, g in grads.items()}, value
    f, z = jax.vmap(
        lambda key, nk: _es_lanes(trainer, key, {**fixed, **h}, nk, wrt, sigma, pairs, objective, log_space)
    )(step_keys, noise_keys)
    f = _finite_or_worst(f)
    per_pair = jax.vmap(lambda fs, zs: _es_per_pair(fs, zs, sigma))(f, z).reshape(-1, len(wrt))
    g = jnp.nanmean(per_pair, axis=0)
    return jnp.nanmean(f[:, 0]), {k: g[i] for i, k in enumerate(wrt)}, jnp.nanmean(f)


def _tune(trainer, hparams, keys, wrt, steps, outer, objective, mode, log_space, estimator, sigma, pairs, resample):
    theta0, fixed = _split(trainer, hparams, wrt)
    if log_space:
        theta0 = {k: jnp.log(v) for k, v in theta0.items()}

    def at(theta):
        return {k: jnp.exp(v) for k, v in theta.items()} if log_space else theta

    def step(carry, i):
        theta, outer_state = carry
        h = at(theta)
        # resample: new training seeds every step, so the path follows the hypergradient of the
        # expectation over seeds instead of fitting the few seeds it was given.
        step_keys = jax.vmap(lambda k: jax.random.fold_in(k, i))(keys) if resample else keys
        noise_keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 0x5E5), i))(keys)
        value, grads, score = _tune_estimate(trainer, fixed, h, step_keys, noise_keys, wrt, objective, mode,
                                             log_space, estimator, sigma, pairs)
        updates, outer_state = outer.update(grads, outer_state, theta)
        return (optax.apply_updates(theta, updates), outer_state), (h, value, grads, score)

    _, (path, objective_path, grad_path, scores) = jax.lax.scan(
        step, (theta0, outer.init(theta0)), jnp.arange(steps + 1)
    )
    return path, objective_path, grad_path, scores


def seed_keys(seeds: Any, key: Any = 0) -> Array:
    """`seeds` as a stack of PRNG keys: an int n gives n keys split from `key`; keys pass through."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds={seeds!r} is out of range: valid range is [1, inf)")
        return jax.random.split(_raw_key(key), seeds)
    keys = jnp.asarray(seeds)
    return jax.vmap(_raw_key)(keys) if keys.ndim == 1 else keys


def tune(
    trainer: Any,
    hparams0: Mapping[str, jax.typing.ArrayLike] | None,
    wrt: Sequence[str],
    steps: int = 50,
    outer_optimizer: Any = None,
    seeds: Any = 4,
    *,
    objective: Objective = "final_val_loss",
    mode: str = "reverse",
    log_space: bool = True,
    key: Any = 0,
    estimator: str = "hypergrad",
    sigma: float = 0.25,
    pairs: int = 4,
    resample: bool = False,
) -> TuneResult:
    r"""Gradient-based hyperparameter tuning: an optimizer steps the hyperparameters along the hypergradient.

    Each outer step estimates the derivative of the objective for every seed (vmapped),
    averages it over the seeds, and hands it to `outer_optimizer` as the gradient of the (log)
    hyperparameters :math:`\theta = \log h`:

    .. math::
        \theta_{i+1} = \theta_i + \mathrm{update}\Big(\frac{1}{S}\sum_s \hat g_s(\theta_i)\Big).

    The estimate :math:`\hat g_s` is the exact hypergradient (`estimator="hypergrad"`, as
    `hypergrad`) or antithetic ES (`estimator="es"`, as `es_hypergrad`: `pairs` pairs of runs
    perturbed by `sigma` in log units, fresh perturbations every step). On horizons where
    training is chaotic the exact derivative of each seed's run says little about how the
    *expected* loss changes (a rate past which some seeds fail has a seed-mean derivative of
    any sign); ES estimates the slope of the loss smoothed at the scale `sigma` and sees such a
    cliff. It needs no backward pass. See docs/hypergradients.md for when to use which.

    The whole path is one compiled program (a `lax.scan` over outer steps). Log space keeps
    positive hyperparameters positive; it does not keep e.g. a momentum below 1. Use
    `result.best()` (the point of `best_step`) rather than the last point: a step can overshoot.

    Args:
      trainer: a `Trainer`.
      hparams0: starting values (keys not given take the config's).
      wrt: the hyperparameters tuned (positive, when `log_space`).
      steps: outer steps.
      outer_optimizer: a `GradientTransformation` (default `jaxopt_lab.optim.adam(0.05)`:
        about 5% per step in log space).
      seeds: the number of training seeds averaged per step, or their keys.
      objective, mode, log_space: as in `hypergrad` (`mode` is unused by `"es"`).
      key: the key the seeds are split from when `seeds` is a number.
      estimator: `"hypergrad"` (exact, reverse or forward mode) or `"es"`.
      sigma: the ES perturbation scale (> 0; log units when `log_space`).
      pairs: antithetic ES pairs per seed and step (>= 1).
      resample: draw new training seeds (`fold_in(seed, step)`) at every step instead of
        reusing the same ones.

    Returns:
      a `TuneResult` (the path, its objective and derivative estimates, its best step).

    Example:
      >>> from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
      >>> from jaxopt_lab.train import make_train
      >>> trainer = make_train(Config(data=DataConfig(n_samples=60), model=ModelConfig(hidden=(4,)),
      ...                             train=TrainConfig(epochs=3),
      ...                             optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9})))
      >>> res = tune(trainer, {"train.weight_decay": 1e-3}, ["optimizer.learning_rate", "train.weight_decay"],
      ...            steps=2)
      >>> res.hparams["optimizer.learning_rate"].shape  # the start and each step
      (3,)
      >>> res = tune(trainer, {}, ["optimizer.learning_rate"], steps=2, seeds=2, estimator="es", pairs=2)
      >>> res.epochs, sorted(res.best())  # (2 steps + 1) x 2 seeds x (2 pairs x 2 + 1) runs x 3 epochs
      (90, ['optimizer.learning_rate'])

    References:
      Maclaurin, Duvenaud & Adams (2015); Franceschi et al. (2017); Lorraine, Vicol & Duvenaud
      (2020), "Optimizing millions of hyperparameters by implicit differentiation"; Salimans et
      al. (2017) and Metz et al. (2019) for ES on chaotic unrolls.
    """
    # Over 80 lines only with its docstring (59 lines); the code itself is 37.
    if int(steps) < 0:
        raise ValueError(f"steps={steps!r} is out of range: valid range is [0, inf)")
    check_choice("estimator", estimator, ESTIMATORS)
    if not sigma > 0:
        raise ValueError(f"sigma={sigma!r} is out of range: valid range is (0, inf)")
    if int(pairs) < 1:
        raise ValueError(f"pairs={pairs!r} is out of range: valid range is [1, inf)")
    hparams0 = dict(hparams0 or {})
    wrt = _validate(trainer, hparams0, wrt, mode)
    if outer_optimizer is None:
        outer_optimizer = optim.adam(0.05)
    keys = seed_keys(seeds, key)
    es = estimator == "es"
    options = (tuple(wrt), int(steps), outer_optimizer, objective, mode, bool(log_space), estimator,
               float(sigma) if es else None, int(pairs) if es else None, bool(resample))
    path, values, grads, scores = _compiled(trainer, _tune, options)(hparams0, keys)
    runs_per_seed = 2 * int(pairs) + 1 if es else 1
    epochs = (int(steps) + 1) * int(keys.shape[0]) * runs_per_seed * trainer.config.train.epochs
    return TuneResult(hparams=path, objective=values, hypergrad=grads, epochs=epochs, selection=scores,
                      best_step=_best_step(scores))


def _best_step(scores: Array) -> int:
    scores = np.asarray(scores, dtype=float)
    finite = np.isfinite(scores)
    return int(np.argmin(np.where(finite, scores, np.inf))) if finite.any() else 0


# ----------------------------------------------------------------------------- tuning outputs


def random_landscape(
    trainer: Any, hparams: Mapping[str, Any], bounds: Mapping[str, tuple[float, float]], keys: Array, n: int,
    *, objective: str = "final_val_loss", seed: int = 0,
) -> tuple[dict[str, Array], Array]:
    """Random search: `n` log-uniform points in `bounds`, each trained on every key (one vmapped
    program); returns the points and their seed-averaged objective (NaN where every seed diverged)."""

    rng = np.random.default_rng(seed)
    points = {k: np.exp(rng.uniform(np.log(lo), np.log(hi), n)) for k, (lo, hi) in bounds.items()}
    fixed = {k: v for k, v in hparams.items() if k not in bounds}

    def one(point):
        hp = {**fixed, **point}
        values = jax.vmap(lambda key: _metric(trainer(key, hp), objective))(keys)
        return jnp.nanmean(values)

    return points, jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in points.items()})


def _metric(result: Any, objective: Objective) -> Array:
    return jnp.asarray(objective(result)) if callable(objective) else result.metrics[objective]


def write_tune(folder: Any, result: TuneResult, landscape: tuple[dict, Any] | None = None) -> list[Any]:
    """`hypertune.csv` (step, each hyperparameter, objective, each hypergradient) and `hypertune.png`
    (objective per step; the path over the random-search landscape; the best point starred) in `folder`."""

    folder = Path(folder)
    keys = list(result.hparams)
    path = {k: np.asarray(v) for k, v in result.hparams.items()}
    values = np.asarray(result.objective)
    grads = {k: np.asarray(v) for k, v in result.hypergrad.items()}
    _io.write_csv(folder / "hypertune.csv", ["step", *keys, "objective", *(f"hypergrad.{k}" for k in keys)],
                  ([i, *(float(path[k][i]) for k in keys), float(values[i]), *(float(grads[k][i]) for k in keys)]
                   for i in range(len(values))))

    fig, (ax_o, ax_p) = plots.new_figure(1, 2, figsize=(10, 4))
    best = result.best_step
    ax_o.plot(np.arange(len(values)), values, marker=".", label="hypertune (seed mean)")
    ax_o.plot([best], [values[best]], "*", color="C3", ms=12, label=f"best point (step {best})")
    ax_o.set_xlabel("outer step")
    ax_o.set_ylabel("objective")
    ax_o.set_title("Objective along the hypergradient path")
    if landscape is not None:
        pts, objs = landscape
        objs = np.asarray(objs)
        if np.isfinite(objs).any():
            ax_o.axhline(np.nanmin(objs), color="gray", ls="--", label=f"best of {len(objs)} random configs")
        x = np.asarray(pts[keys[0]])
        if len(keys) >= 2:
            # Diverged or far-off configs would stretch the colour scale: clip it at the 90th percentile.
            finite = objs[np.isfinite(objs)]
            vmax = float(np.percentile(finite, 90)) if finite.size else None
            sc = ax_p.scatter(x, np.asarray(pts[keys[1]]), c=objs, cmap="viridis", s=25, vmax=vmax)
            fig.colorbar(sc, ax=ax_p, label="objective (random search)")
        else:
            ax_p.scatter(x, objs, color="gray", s=15, label="random search")
    if len(keys) >= 2:
        ax_p.plot(path[keys[0]], path[keys[1]], color="C3", marker=".", label="hypertune path")
        ax_p.plot(path[keys[0]][:1], path[keys[1]][:1], "ko", label="start")
        ax_p.plot(path[keys[0]][best], path[keys[1]][best], "*", color="C3", ms=14, label="best point")
        ax_p.set_ylabel(keys[1])
        ax_p.set_yscale("log")
    else:
        ax_p.plot(path[keys[0]], values, color="C3", marker=".", label="hypertune path")
        ax_p.set_ylabel("objective")
    ax_p.set_xscale("log")
    ax_p.set_xlabel(keys[0])

    ax_p.xaxis.set_minor_formatter(NullFormatter())
    ax_p.yaxis.set_minor_formatter(NullFormatter())
    ax_p.set_title("Path over the random-search landscape")
    ax_p.legend(fontsize=8)
    ax_o.legend(fontsize=8)
    plots.save(fig, folder / "hypertune.png")
    return [folder / "hypertune.csv", folder / "hypertune.png"]
