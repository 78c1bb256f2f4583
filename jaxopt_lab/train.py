"""One training run as a pure function: `make_train(config) -> train(key, hparams)`.

`train` is built once per *structure* (dataset, model shape, optimizer name,
batch size, epochs: the categorical choices of a config) and compiled once; the
numeric hyperparameters arrive in `hparams` as (possibly traced) scalars, so a
sweep runs `jit(vmap(train))` or `lax.map(train)` over arrays of them with no
recompilation.

Inside a run:

* The data split is fixed by `data.random_state` and done once, on the host.
* `key` (from the run's seed) is split into an *init* key (initial weights) and
  an *order* key (mini-batch order, dropout, input noise). With
  `train.shuffle_seed` set, the order key comes from that seed instead, so every
  run of a sweep sees the same batches (common random numbers for paired
  comparisons of optimizers).
* Epochs run in a `lax.while_loop` that ends when the epoch budget is spent or
  the run has stopped (early stopping or divergence); under `vmap` the loop ends
  once every run in the batch has stopped, and stopped runs are frozen.
* Mini-batches run in a `lax.scan` inside the epoch. Full batch (`batch_size =
  0`), SGD (`1`) and mini-batches (`n`) are the same code path; a last partial
  batch is padded and masked, so losses are exact means over real examples.
* Schedules are stepped per *update* (the optimizer's own step count), not per
  epoch; `reduce_on_plateau` is fed the monitored loss once per epoch.
* Divergence: a step whose loss, gradients or new parameters are not finite is
  not applied; the run is flagged `diverged` and frozen from then on. Nothing of
  it leaks into other runs (each run's arithmetic is its own).

History conventions (per epoch, shape `(epochs,)`, NaN after the run stopped):
`train_loss`/`train_accuracy` are means over the epoch's mini-batches as they
were trained on (Keras's convention: in full batch, the loss *before* that
epoch's update); `val_loss`/`val_accuracy` are evaluated in inference mode
after the epoch; `learning_rate` is the rate of the epoch's last update
(schedule times plateau scale); `grad_norm` is the mean global gradient norm
over the epoch's updates (before clipping).

Final metrics are computed in inference mode on the final parameters (the best
epoch's, when early stopping is on and `train.restore_best`). `best_epoch` and
`epochs_run` count epochs from 1.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import config as config_mod
from jaxopt_lab import losses as losses_mod
from jaxopt_lab import registry
from jaxopt_lab.config import Config, ConfigError, PlateauConfig

Array = jax.Array
PyTree = Any

HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "grad_norm")

#: Hyperparameters a sweep may vary without recompiling (besides every numeric
#: keyword of the optimizer, its schedule and its plateau rule).
TRACEABLE_KEYS = (
    "model.dropout",
    "model.init_scale",
    "model.bn_momentum",
    "train.l1",
    "train.l2",
    "train.weight_decay",
    "train.clip_norm",
    "train.input_noise",
    "train.early_stopping_patience",
    "train.min_delta",
    "train.divergence_threshold",
)


class PreparedData(NamedTuple):
    """The split, preprocessed data of a run, on the host (float64 numpy)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int | None


class TrainState(NamedTuple):
    """Everything a run carries from one epoch to the next; saving it and continuing
    with `Trainer.run_epochs` gives the same result as an uninterrupted run.

    Fields:
      params: current model parameters.
      opt_state: the optimizer's state.
      model_state: batch-norm running statistics (`{}` without batch norm).
      plateau_state: `reduce_on_plateau`'s state, or `()` without it.
      epoch: epochs completed (int32).
      step: updates applied or attempted (int32); the dropout/noise key index.
      best_params: parameters at the best monitored loss so far; `()` when early stopping
        is off and not swept (not tracked: copying them every epoch is not free).
      best_model_state: model_state at that epoch (likewise).
      best_loss: best monitored loss (validation, else training), +inf at start.
      best_epoch: 1-based epoch of best_loss (0 before any).
      wait: epochs since the last improvement (early-stopping counter).
      stopped: early stopping triggered.
      diverged: a non-finite loss, gradient or parameter was met.
      order_key: key for the mini-batch order, dropout and input noise.
      history: `(epochs, len(HISTORY_KEYS))` array, one column per history key
        (one array so an epoch's record is one write).
    """

    params: PyTree
    opt_state: PyTree
    model_state: PyTree
    plateau_state: PyTree
    epoch: Array
    step: Array
    best_params: PyTree
    best_model_state: PyTree
    best_loss: Array
    best_epoch: Array
    wait: Array
    stopped: Array
    diverged: Array
    order_key: Array
    history: Array


class TrainResult(NamedTuple):
    """The outcome of a run.

    Fields:
      params: final parameters (the best epoch's when early stopping restored them).
      best_params: parameters at the best monitored loss (None when early stopping is off
        and not swept: then only `best_epoch` and `best_val_loss` are tracked).
      model_state: batch-norm statistics matching `params`.
      history: per-epoch metrics, `(epochs,)` arrays, NaN after the run stopped.
      metrics: scalars: final_{train,val,test}_{loss,accuracy}, best_val_loss,
        best_epoch, epochs_run, diverged (NaN where not applicable).
    """

    params: PyTree
    best_params: PyTree
    model_state: PyTree
    history: dict[str, Array]
    metrics: dict[str, Array]


# ----------------------------------------------------------------------------- data


def prepare_data(config: Config, data: Any = None, *, task: str = "classification") -> PreparedData:
    """Load (or take) the data set, split it by `data.random_state`, standardize on train rows."""
    from jaxopt_lab.data import preprocessing, splits
    from jaxopt_lab.data.registry import DATASETS, load_dataset

    d = config.data
    if data is None:
        wanted = {"n_samples": d.n_samples, "noise": d.noise, "random_state": d.random_state, "path": d.path,
                  "label_column": d.label_column}
        accepted = DATASETS[d.dataset].options
        ds = load_dataset(d.dataset, **{k: v for k, v in wanted.items() if k in accepted and v is not None})
        x, y, num_classes = np.asarray(ds.x, np.float64), np.asarray(ds.y), ds.num_classes
    else:
        if hasattr(data, "x") and hasattr(data, "y"):
            x, y = np.asarray(data.x, np.float64), np.asarray(data.y)
            num_classes = getattr(data, "num_classes", None)
        else:
            x, y = (np.asarray(a) for a in data)
            x = x.astype(np.float64)
            num_classes = int(y.max()) + 1 if np.issubdtype(y.dtype, np.integer) else None
    if x.ndim == 1:
        x = x[:, None]
    stratify = y if (num_classes is not None and d.stratify and d.val_fraction + d.test_fraction > 0) else None
    if d.val_fraction == 0 and d.test_fraction == 0:
        tr, va, te = np.arange(len(x)), np.arange(0), np.arange(0)
    else:
        tr, va, te = splits.train_val_test_split(
            len(x), val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.random_state,
            stratify=stratify,
        )
    if d.standardize:
        scaler = preprocessing.Standardizer.fit(x[tr])
        x = scaler.transform(x)

    def part(idx):
        return (x[idx], y[idx]) if len(idx) else (None, None)

    return PreparedData(*part(tr), *part(va), *part(te), num_classes=num_classes)


# ----------------------------------------------------------------------------- losses


def _make_objective(loss_name: str, num_classes: int | None) -> tuple[Callable, Callable | None, int]:
    """(loss(outputs, y, where), accuracy(outputs, y, where) or None, output width)."""
    loss = losses_mod.get_loss(loss_name)
    if loss_name == "binary_cross_entropy":
        if num_classes not in (2, None):
            raise ConfigError(
                f"train.loss = 'binary_cross_entropy' needs 2 classes, the data has {num_classes}; "
                "use 'cross_entropy'"
            )
        return (
            lambda out, y, where: loss(out[:, 0], y, where=where),
            lambda out, y, where: losses_mod.accuracy(out[:, 0], y, where=where),
            1,
        )
    if loss_name == "cross_entropy":
        if num_classes is None:
            raise ConfigError("train.loss = 'cross_entropy' needs a classification data set; use 'mse'")
        return (
            lambda out, y, where: loss(out, y, where=where),
            lambda out, y, where: losses_mod.accuracy(out, y, where=where),
            num_classes,
        )
    # Regression losses: on class labels they fit one-hot targets.
    if num_classes is None:
        return (lambda out, y, where: loss(out[:, 0], y, where=where), None, 1)
    return (
        lambda out, y, where: loss(out, jax.nn.one_hot(y, num_classes, dtype=out.dtype), where=where),
        lambda out, y, where: losses_mod.accuracy(out, y, where=where),
        num_classes,
    )


# ----------------------------------------------------------------------------- trainer


def _tree_where(pred: Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def _all_finite(tree: PyTree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _is_numeric(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


class Trainer:
    """`train(key, hparams) -> TrainResult` for one config, built once.

    Call it directly, or use its pieces to checkpoint and resume a run:
    `state = trainer.init_state(key, hp)`, `state = trainer.run_epochs(state, hp, until)`
    (or one epoch: `trainer.step_epoch(state, hp)`), `result = trainer.finalize(state, hp)`.

    Attributes:
      config: the config it was built from.
      data: the prepared (split) data, host side.
      defaults: every traceable hyperparameter key with its config value.
    """

    def __init__(
        self,
        config: Config,
        *,
        init_fn: Callable[[Array], PyTree] | None = None,
        apply_fn: Callable[..., Any] | None = None,
        loss_fn: Callable[..., Array] | None = None,
        accuracy_fn: Callable[..., Array] | None = None,
        data: Any = None,
        optimizer_fn: Callable[[Mapping[str, Any]], optax.GradientTransformation] | None = None,
    ):
        config_mod.validate(config, data=data is None, optimizer=optimizer_fn is None)  # the TOML path's checks
        self.config = config
        self._optimizer_fn = optimizer_fn
        t, m, o = config.train, config.model, config.optimizer
        if t.precision == "float64" and not jax.config.jax_enable_x64:
            raise ConfigError(
                "train.precision = 'float64' needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) "
                "at start-up (the CLI does this for float64 configs)"
            )
        self.dtype = jnp.float64 if t.precision == "float64" else jnp.float32
        self.data = prepare_data(config, data)
        n_train = len(self.data.x_train)
        if t.batch_size > n_train:
            raise ConfigError(f"train.batch_size = {t.batch_size} is larger than the training split ({n_train} rows)")
        self.has_val = self.data.x_val is not None
        self.has_test = self.data.x_test is not None

        obj_loss, obj_acc, out_dim = _make_objective(t.loss, self.data.num_classes)
        self.loss_fn = loss_fn or obj_loss
        self.accuracy_fn = accuracy_fn if loss_fn is not None else obj_acc
        if accuracy_fn is not None:
            self.accuracy_fn = accuracy_fn

        if init_fn is None:
            from jaxopt_lab.nn import activations, mlp

            sizes = [self.data.x_train.shape[1], *m.hidden, out_dim]
            init_name = activations.recommended_init(m.activation) if m.init == "auto" else m.init

            def model_init(key, hp):
                params = mlp.init(
                    key, sizes, init=init_name, activation=m.activation, norm=m.norm, dtype=self.dtype,
                    init_scale=hp["model.init_scale"],
                )
                return params, mlp.init_state(params, m.norm)

            def model_apply(params, state, x, *, train, key, hp, where=None):
                dropout = hp["model.dropout"] if "model.dropout" in hp[_ON] else 0.0
                return mlp.apply(
                    params, x, state, activation=m.activation, norm=m.norm, dropout=dropout,
                    train=train, key=key, bn_momentum=hp["model.bn_momentum"], where=where,
                )

            self.mask_fn = losses_mod.decay_mask
        else:
            if apply_fn is None:
                raise ValueError("make_train: init_fn needs apply_fn too")
            takes = inspect.signature(apply_fn).parameters
            wants_train, wants_key = "train" in takes, "key" in takes

            def model_init(key, hp):
                params = jax.tree.map(lambda a: jnp.asarray(a, self.dtype), init_fn(key))
                return params, {}

            def model_apply(params, state, x, *, train, key, hp, where=None):
                kw = {}
                if wants_train:
                    kw["train"] = train
                if wants_key:
                    kw["key"] = key
                return apply_fn(params, x, **kw), state

            self.mask_fn = lambda params: jax.tree.map(lambda a: a.ndim >= 2, params)
        self._model_init, self._model_apply = model_init, model_apply

        # Numeric values a sweep may trace: the fixed list, plus the numeric keywords of the
        # optimizer, its schedule and its plateau rule. Only values the config sets explicitly
        # are passed to factories, so their own defaults stay Python numbers.
        defaults: dict[str, float] = {k: float(_get(config, k)) for k in TRACEABLE_KEYS}
        optional: set[str] = set()
        for name, p in inspect.signature(registry.optimizers()[o.name]).parameters.items():
            if name in o.kwargs and _is_numeric(o.kwargs[name]):
                defaults[f"optimizer.{name}"] = float(o.kwargs[name])
            elif _is_numeric(p.default) or (p.default is None and name not in _NON_NUMERIC_KEYWORDS):
                optional.add(f"optimizer.{name}")
        if o.schedule is not None:
            for name, p in inspect.signature(registry.schedules()[o.schedule.name]).parameters.items():
                if name in _LR_SLOTS:
                    continue
                if _is_numeric(o.schedule.kwargs.get(name)):
                    defaults[f"optimizer.schedule.{name}"] = float(o.schedule.kwargs[name])
                elif _is_numeric(p.default):
                    optional.add(f"optimizer.schedule.{name}")
        if o.plateau is not None:
            for f in dataclasses.fields(PlateauConfig):
                defaults[f"optimizer.plateau.{f.name}"] = float(getattr(o.plateau, f.name))
        self.defaults = defaults
        self._optional = optional

    # -- hyperparameters ------------------------------------------------------

    def traceable_keys(self) -> list[str]:
        """Every key `hparams` may hold (numeric values, traced or not)."""
        return sorted(set(self.defaults) | self._optional)

    def resolve(self, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
        hparams = dict(hparams or {})
        valid = self.traceable_keys()
        for key in hparams:
            if key not in valid and not (self._optimizer_fn is not None and key.startswith("optimizer.")):
                from jaxopt_lab.config import closest

                raise ValueError(
                    f"hparams key {key!r} is not a numeric hyperparameter of this config{closest(key, valid)}; "
                    f"valid keys: {', '.join(valid)}"
                )
        hp: dict[str, Any] = {k: jnp.asarray(v, self.dtype) for k, v in self.defaults.items()}
        hp.update({k: jnp.asarray(v, self.dtype) for k, v in hparams.items()})
        # Features that are off in the config and not swept are left out of the compiled
        # program altogether: on tiny models every extra op per step costs time.
        hp[_ON] = frozenset(k for k in _SWITCHABLE if k in hparams or self.defaults[k] != 0)
        return hp

    def _optimizer(self, hp: Mapping[str, Any]) -> tuple[optax.GradientTransformation, Callable[[Array], Array]]:
        if self._optimizer_fn is not None:
            opt_hp = {k.split(".", 1)[1]: v for k, v in hp.items() if k != _ON and k.startswith("optimizer.")}
            lr = opt_hp.get("learning_rate", jnp.nan)
            return self._optimizer_fn(opt_hp), lambda step: lr
        o = self.config.optimizer
        kwargs: dict[str, Any] = {k: v for k, v in o.kwargs.items() if not _is_numeric(v)}
        for key, value in hp.items():
            if key != _ON and key.startswith("optimizer.") and key.count(".") == 1:
                kwargs[key.split(".", 1)[1]] = value
        lr = kwargs.get("learning_rate")
        if o.schedule is not None and lr is not None:
            skw = {k: v for k, v in o.schedule.kwargs.items() if not _is_numeric(v)}
            for key, value in hp.items():
                if key.startswith("optimizer.schedule."):
                    skw[key.rsplit(".", 1)[1]] = value
            sched = registry.build_schedule(o.schedule.name, lr, skw)
            kwargs["learning_rate"] = sched
            lr_fn = sched
        elif lr is not None:
            lr_fn = lambda step: lr  # noqa: E731
        else:
            lr_fn = lambda step: jnp.nan  # noqa: E731
        return registry.build_optimizer(o.name, kwargs), lr_fn

    def _plateau(self, hp: Mapping[str, Any]):
        if self.config.optimizer.plateau is None:
            return None
        from jaxopt_lab.optim.wrappers import reduce_on_plateau

        kw = {k.rsplit(".", 1)[1]: v for k, v in hp.items() if k.startswith("optimizer.plateau.")}
        return reduce_on_plateau(**kw)

    # -- the run ----------------------------------------------------------------

    def init_state(self, key: Array, hparams: Mapping[str, Any] | None = None) -> TrainState:
        hp = self.resolve(hparams)
        key = _as_raw_key(key)
        init_key = jax.random.fold_in(key, 0)
        if self.config.train.shuffle_seed is not None:
            order_key = jax.random.PRNGKey(self.config.train.shuffle_seed)
        else:
            order_key = jax.random.fold_in(key, 1)
        params, model_state = self._model_init(init_key, hp)
        opt, _ = self._optimizer(hp)
        plateau = self._plateau(hp)
        epochs = self.config.train.epochs
        return TrainState(
            params=params,
            opt_state=opt.init(params),
            model_state=model_state,
            plateau_state=plateau.init(params) if plateau is not None else (),
            epoch=jnp.array(0, jnp.int32),
            step=jnp.array(0, jnp.int32),
            best_params=params if _tracks_best(hp) else (),
            best_model_state=model_state if _tracks_best(hp) else (),
            best_loss=jnp.array(jnp.inf, self.dtype),
            best_epoch=jnp.array(0, jnp.int32),
            wait=jnp.array(0, jnp.int32),
            stopped=jnp.array(False),
            diverged=jnp.array(False),
            order_key=order_key,
            history=jnp.full((epochs, len(HISTORY_KEYS)), jnp.nan, self.dtype),
        )

    def _epoch(self, state: TrainState, hp: Mapping[str, Any]) -> TrainState:
        from jaxopt_lab.data import batching

        cfg = self.config.train
        dt = self.dtype
        on = hp[_ON]
        x_tr = jnp.asarray(self.data.x_train, dt)
        y_tr = jnp.asarray(self.data.y_train)
        n = x_tr.shape[0]
        opt, lr_fn = self._optimizer(hp)
        plateau = self._plateau(hp)
        scale = state.plateau_state.scale if plateau is not None else jnp.asarray(1.0, dt)
        if cfg.batch_size == 0:
            idx = mask = None
            n_batches = 1
        else:
            idx, mask = batching.epoch_batches(
                jax.random.fold_in(state.order_key, state.epoch), n, cfg.batch_size, shuffle=True,
                drop_last=cfg.drop_last,
            )
            n_batches = idx.shape[0]

        def step(carry, batch):
            params, opt_state, model_state, step_i, diverged, sums = carry
            if batch is None:
                xb, yb, mb = x_tr, y_tr, None
            else:
                bidx, mb = batch
                xb, yb = x_tr[bidx], y_tr[bidx]
            dkey = nkey = None
            if "model.dropout" in on or "train.input_noise" in on:
                # Per-update keys, derived only when something random happens in the step:
                # on tiny models the hashing would otherwise cost as much as the step.
                skey = jax.random.fold_in(jax.random.fold_in(state.order_key, 1_000_003), step_i)
                dkey, nkey = jax.random.split(skey)
            if "train.input_noise" in on:
                xb = xb + hp["train.input_noise"] * jax.random.normal(nkey, xb.shape, dt)

            def objective(p):
                out, new_ms = self._model_apply(p, model_state, xb, train=True, key=dkey, hp=hp, where=mb)
                data_loss = self.loss_fn(out, yb, mb)
                total = data_loss
                if "train.l2" in on:
                    total = total + hp["train.l2"] * losses_mod.l2_penalty(p, self.mask_fn(p))
                if "train.l1" in on:
                    total = total + hp["train.l1"] * losses_mod.l1_penalty(p, self.mask_fn(p))
                return total, (data_loss, out, new_ms)

            (total, (data_loss, out, new_ms)), grads = jax.value_and_grad(objective, has_aux=True)(params)
            gnorm = optax.tree.norm(grads)
            if "train.clip_norm" in on:
                clip = hp["train.clip_norm"]
                factor = jnp.where((clip > 0) & (gnorm > clip), clip / jnp.maximum(gnorm, 1e-30), 1.0)
                grads = jax.tree.map(lambda g: g * factor.astype(g.dtype), grads)
            updates, new_opt = opt.update(grads, opt_state, params)
            # The optimizer's own count equals step_i: a skipped (non-finite) step ends the run.
            lr_t = jnp.asarray(lr_fn(step_i), dt) * scale
            if plateau is not None:
                updates = jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)
            if "train.weight_decay" in on:
                # Decoupled weight decay (Loshchilov & Hutter), scaled by the current rate.
                wd = hp["train.weight_decay"]
                updates = jax.tree.map(
                    lambda u, p, mk: (u - lr_t * wd * p).astype(u.dtype) if mk else u,
                    updates, params, self.mask_fn(params),
                )
            new_params = optax.apply_updates(params, updates)
            ok = (
                jnp.isfinite(total)
                & (total <= hp["train.divergence_threshold"])
                & jnp.isfinite(gnorm)
                & _all_finite(new_params)
            )
            apply = ok & ~diverged
            params = _tree_where(apply, new_params, params)
            opt_state = _tree_where(apply, new_opt, opt_state)
            model_state = _tree_where(apply, new_ms, model_state)
            diverged = diverged | ~ok
            acc = self.accuracy_fn(out, yb, mb) if self.accuracy_fn is not None else jnp.nan
            w = jnp.where(apply, 1.0, 0.0).astype(dt)
            sums = (
                sums[0] + w * jnp.where(apply, data_loss, 0.0),
                sums[1] + w * jnp.where(apply, acc, 0.0),
                sums[2] + w * jnp.where(apply, gnorm, 0.0),
                sums[3] + w,
                jnp.where(apply, lr_t, sums[4]).astype(dt),
            )
            return (params, opt_state, model_state, step_i + 1, diverged, sums), None

        zero = jnp.zeros((), dt)
        carry = (state.params, state.opt_state, state.model_state, state.step, state.diverged,
                 (zero, zero, zero, zero, jnp.asarray(jnp.nan, dt)))
        if idx is None:
            carry, _ = step(carry, None)
        else:
            carry, _ = jax.lax.scan(step, carry, (idx, mask), length=n_batches)
        params, opt_state, model_state, step_i, diverged, sums = carry
        count = sums[3]
        safe = jnp.maximum(count, 1.0)
        nan = jnp.asarray(jnp.nan, dt)
        train_loss = jnp.where(count > 0, sums[0] / safe, nan)
        train_acc = jnp.where(count > 0, sums[1] / safe, nan) if self.accuracy_fn is not None else nan
        grad_norm = jnp.where(count > 0, sums[2] / safe, nan)

        if self.has_val:
            val_loss, val_acc = self._evaluate(params, model_state, self.data.x_val, self.data.y_val, hp)
            monitor = val_loss
        else:
            val_loss = val_acc = nan
            monitor = train_loss
        monitor_ok = jnp.isfinite(monitor) & ~diverged
        epoch = state.epoch + 1
        improved = monitor_ok & (monitor < state.best_loss - hp["train.min_delta"])
        best_loss = jnp.where(improved, monitor, state.best_loss)
        best_epoch = jnp.where(improved, epoch, state.best_epoch)
        best_params, best_model_state = state.best_params, state.best_model_state
        if _tracks_best(hp):
            best_params = _tree_where(improved, params, best_params)
            best_model_state = _tree_where(improved, model_state, best_model_state)
        wait = jnp.where(improved, 0, state.wait + 1)
        patience = hp["train.early_stopping_patience"]
        stopped = (patience > 0) & (wait >= patience)

        plateau_state = state.plateau_state
        if plateau is not None:
            _, new_ps = plateau.update(jnp.zeros((), dt), plateau_state, value=monitor)
            plateau_state = _tree_where(monitor_ok, new_ps, plateau_state)

        e = state.epoch
        values = {
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "learning_rate": sums[4],
            "grad_norm": grad_norm,
        }
        record = jnp.stack([jnp.asarray(values[k], dt) for k in HISTORY_KEYS])
        history = jax.lax.dynamic_update_slice(state.history, record[None, :], (e, jnp.zeros((), e.dtype)))
        return TrainState(
            params=params, opt_state=opt_state, model_state=model_state, plateau_state=plateau_state,
            epoch=epoch, step=step_i, best_params=best_params, best_model_state=best_model_state,
            best_loss=best_loss, best_epoch=best_epoch, wait=wait, stopped=stopped, diverged=diverged,
            order_key=state.order_key, history=history,
        )

    def _evaluate(self, params, model_state, x, y, hp) -> tuple[Array, Array]:
        x = jnp.asarray(x, self.dtype)
        y = jnp.asarray(y)
        out, _ = self._model_apply(params, model_state, x, train=False, key=None, hp=hp)
        loss = self.loss_fn(out, y, None)
        acc = self.accuracy_fn(out, y, None) if self.accuracy_fn is not None else jnp.asarray(jnp.nan, self.dtype)
        return loss.astype(self.dtype), jnp.asarray(acc, self.dtype)

    def step_epoch(self, state: TrainState, hparams: Mapping[str, Any] | None = None) -> TrainState:
        """One more epoch of `state`, whatever its stop flags (callers check `stopped`/`diverged`:
        `run_epochs` does, and the sweep's refilling lanes do between epochs)."""
        return self._epoch(state, self.resolve(hparams))

    def run_epochs(self, state: TrainState, hparams: Mapping[str, Any] | None = None, until: Any = None) -> TrainState:
        """Continue `state` until `until` epochs are done (default: all), or the run stops."""
        hp = self.resolve(hparams)
        until = self.config.train.epochs if until is None else until

        def cond(s):
            return (s.epoch < until) & ~s.stopped & ~s.diverged

        return jax.lax.while_loop(cond, lambda s: self._epoch(s, hp), state)

    def finalize(self, state: TrainState, hparams: Mapping[str, Any] | None = None) -> TrainResult:
        hp = self.resolve(hparams)
        nan = jnp.asarray(jnp.nan, self.dtype)
        restore = (hp["train.early_stopping_patience"] > 0) & self.config.train.restore_best & (state.best_epoch > 0)
        params, model_state = state.params, state.model_state
        if _tracks_best(hp):
            params = _tree_where(restore, state.best_params, params)
            model_state = _tree_where(restore, state.best_model_state, model_state)
        tr_loss, tr_acc = self._evaluate(params, model_state, self.data.x_train, self.data.y_train, hp)
        metrics = {"final_train_loss": tr_loss, "final_train_accuracy": tr_acc}
        if self.has_val:
            va_loss, va_acc = self._evaluate(params, model_state, self.data.x_val, self.data.y_val, hp)
            metrics.update(
                final_val_loss=va_loss, final_val_accuracy=va_acc,
                best_val_loss=jnp.where(state.best_epoch > 0, state.best_loss, nan),
            )
        else:
            metrics.update(final_val_loss=nan, final_val_accuracy=nan, best_val_loss=nan)
        if self.has_test:
            te_loss, te_acc = self._evaluate(params, model_state, self.data.x_test, self.data.y_test, hp)
            metrics.update(final_test_loss=te_loss, final_test_accuracy=te_acc)
        metrics.update(best_epoch=state.best_epoch, epochs_run=state.epoch, diverged=state.diverged)
        return TrainResult(
            params=params, best_params=state.best_params if _tracks_best(hp) else None, model_state=model_state,
            history={k: state.history[:, i] for i, k in enumerate(HISTORY_KEYS)}, metrics=metrics,
        )

    def __call__(self, key: Array, hparams: Mapping[str, Any] | None = None) -> TrainResult:
        state = self.init_state(key, hparams)
        state = self.run_epochs(state, hparams)
        return self.finalize(state, hparams)


def make_train(
    config: Config | None = None,
    *,
    init_fn: Callable[[Array], PyTree] | None = None,
    apply_fn: Callable[..., Any] | None = None,
    loss_fn: Callable[..., Array] | None = None,
    accuracy_fn: Callable[..., Array] | None = None,
    data: Any = None,
    optimizer_fn: Callable[[Mapping[str, Any]], optax.GradientTransformation] | None = None,
) -> Trainer:
    """Build `train(key, hparams) -> TrainResult` for `config` (default: `Config()`).

    With `init_fn(key) -> params` and `apply_fn(params, x[, train=..., key=...]) -> outputs`
    the run trains a user's model instead of the config's MLP; `loss_fn(outputs, y, where)`
    replaces the config's loss; `data` is `(x, y)` arrays (or a `Dataset`) instead of the
    config's data set. Weight penalties and decoupled weight decay then apply to leaves of
    rank >= 2. `optimizer_fn(opt_hparams) -> GradientTransformation` replaces the config's
    optimizer (a chain, a `lookahead`, a custom schedule): it receives the `optimizer.*`
    entries of `hparams` (and the config's explicit optimizer keywords) without the prefix,
    as possibly traced values, so any of them can be swept.
    """
    return Trainer(
        config or Config(), init_fn=init_fn, apply_fn=apply_fn, loss_fn=loss_fn, accuracy_fn=accuracy_fn, data=data,
        optimizer_fn=optimizer_fn,
    )


# ----------------------------------------------------------------------------- helpers


def _get(config: Config, dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    value = getattr(getattr(config, section), key)
    return math.inf if value is None else value


def _as_raw_key(key: Any) -> Array:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    if key.shape == ():
        return jax.random.PRNGKey(key)
    return key


_ON = "__enabled__"
_SWITCHABLE = (
    "train.input_noise", "train.l1", "train.l2", "train.clip_norm", "train.weight_decay", "model.dropout",
    "train.early_stopping_patience",
)
def _tracks_best(hp: Mapping[str, Any]) -> bool:
    return "train.early_stopping_patience" in hp[_ON]


_NON_NUMERIC_KEYWORDS = {"mask", "mu_dtype", "accumulator_dtype", "nesterov"}
_LR_SLOTS = registry._LR_SLOTS
