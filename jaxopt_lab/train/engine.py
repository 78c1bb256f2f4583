"""One training run as a pure function: `make_train(config) -> Trainer`, called as `train(key, hparams)`.

A `Trainer` is built once per *structure* (data set, model, optimizer name,
batch size, epochs: the categorical choices of a config) and compiled once; the
numeric hyperparameters arrive in `hparams` as (possibly traced) scalars, so a
sweep runs `jit(vmap(train))` or `lax.map(train)` over arrays of them with no
recompilation. The data arrive as an argument too (`Trainer.data_arrays`), so
the compiled program holds no data-sized constant.

Inside a run:

* The data split is fixed by `data.random_state` and done once, on the host.
* `key` (from the run's seed) is split into an *init* key (initial weights) and
  an *order* key (mini-batch order, dropout, input noise). With
  `train.shuffle_seed` set, the order key comes from that seed instead, so every
  run of a sweep sees the same batches (common random numbers for paired
  comparisons of optimizers).
* Epochs (`jaxopt_lab.train.step.epoch`) run in a `lax.while_loop` that ends when
  the epoch budget is spent or the run has stopped (early stopping or
  divergence); under `vmap` the loop ends once every run in the batch has
  stopped, and stopped runs are frozen.

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

import importlib
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import config as config_mod
from jaxopt_lab import models as models_mod
from jaxopt_lab import registry
from jaxopt_lab.config import SWITCHABLE_KEYS, TRACEABLE_KEYS, Config, ConfigError, closest
from jaxopt_lab.data import batching
from jaxopt_lab.models import Model
from jaxopt_lab.nn import cnn
from jaxopt_lab.optim.wrappers import reduce_on_plateau
from jaxopt_lab.train import step as step_mod
from jaxopt_lab.train.data import PreparedData, device_arrays, host_view, prepare_data
from jaxopt_lab.train.objective import make_objective
from jaxopt_lab.train.state import HISTORY_KEYS, TrainResult, TrainState

Array = jax.Array
PyTree = Any

def _is_numeric(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


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


def _cast_floats(tree: PyTree, dtype: Any) -> PyTree:
    def cast(a):
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


# ----------------------------------------------------------------------------- the model of a config


def model_from_factory(spec: str, kwargs: Mapping[str, Any], example: np.ndarray) -> Model:
    """`[model] factory = "package.module:function"` called with `[model.kwargs]`; its result
    (a `Model`, or a Flax linen/NNX or Equinox module) as a `Model`. Modules are resolved from
    the working directory and the Python path."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"model.factory = {spec!r} must be 'package.module:function'")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's module: one line
        raise ConfigError(f"model.factory = {spec!r}: cannot import {module_name!r}: {type(e).__name__}: {e}") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise ConfigError(f"model.factory = {spec!r}: {module_name} has no function {attr!r}{closest(attr, names)}")
    try:
        made = fn(**dict(kwargs))
    except TypeError as e:
        raise ConfigError(f"model.factory = {spec!r} rejected model.kwargs: {e}") from None
    return as_model(made, example, source=f"model.factory = {spec!r}")


def as_model(obj: Any, example: np.ndarray, *, source: str = "model") -> Model:
    """`obj` as a `Model`: a `Model` as it is; a Flax linen module, an NNX module or an
    Equinox module through its adapter (with `example`, one batch of inputs)."""
    if isinstance(obj, Model):
        return obj
    kind = type(obj).__module__.split(".")[0]
    if kind == "flax":
        from flax import nnx

        if isinstance(obj, nnx.Module):
            return models_mod.from_nnx(obj)
        return models_mod.from_flax(obj, jnp.asarray(example))
    if kind == "equinox" or any(c.__module__.startswith("equinox") for c in type(obj).__mro__):
        return models_mod.from_equinox(obj)
    raise ConfigError(
        f"{source} returned a {type(obj).__name__}, not a model: return a jaxopt_lab.models.Model "
        "(models.from_functions / from_flax / from_nnx / from_equinox) or a Flax or Equinox module"
    )


def _config_model(config: Config, n_features: int, out_dim: int, dtype: Any, example: np.ndarray) -> Model:
    m = config.model
    factory = getattr(m, "factory", None)
    if factory:
        return model_from_factory(factory, getattr(m, "kwargs", {}) or {}, example)
    kind = getattr(m, "kind", "mlp")
    if kind == "cnn":
        return cnn.from_config(m, n_features, out_dim, dtype)
    return models_mod.mlp(m, n_features, out_dim, dtype)


# ----------------------------------------------------------------------------- the trainer


class Trainer:
    """`train(key, hparams[, data]) -> TrainResult` for one config, built once.

    Call it directly, or use its pieces to checkpoint and resume a run:
    `state = trainer.init_state(key, hp)`, `state = trainer.run_epochs(state, hp, until)`
    (or one epoch: `trainer.step_epoch(state, hp)`), `result = trainer.finalize(state, hp)`.
    Each takes the data as an optional last argument (default: `data_arrays`); pass it
    explicitly inside `jit` so it is an argument of the program, not a constant.

    Attributes:
      config: the config it was built from.
      data: the prepared (split) data, host side.
      data_arrays: the splits as device arrays (`x_train`, `y_train`, `x_val`, ...).
      model: the `jaxopt_lab.models.Model` it trains.
      defaults: every traceable hyperparameter key with its config value.
      spec: the static part of a run (`jaxopt_lab.train.step.RunSpec`).
    """

    def __init__(
        self,
        config: Config,
        *,
        model: Any = None,
        init_fn: Callable[[Array], PyTree] | None = None,
        apply_fn: Callable[..., Any] | None = None,
        loss_fn: Callable[..., Array] | None = None,
        accuracy_fn: Callable[..., Array] | None = None,
        data: Any = None,
        optimizer_fn: Callable[[Mapping[str, Any]], optax.GradientTransformation] | None = None,
    ):
        # The one check of every path in: the same as a config file's, naming the key.
        config_mod.validate(config, data=data is None, optimizer=optimizer_fn is None)
        self.config = config
        self._optimizer_fn = optimizer_fn
        t = config.train
        if t.precision == "float64" and not jax.config.jax_enable_x64:
            raise ConfigError(
                "train.precision = 'float64' needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) "
                "at start-up (the CLI does this for float64 configs)"
            )
        self.dtype = jnp.float64 if t.precision == "float64" else jnp.float32
        self.data: PreparedData = prepare_data(config, data)
        n_train = len(self.data.x_train)
        if t.batch_size > n_train:
            raise ConfigError(f"train.batch_size = {t.batch_size} is larger than the training split ({n_train} rows)")
        self.has_val = self.data.x_val is not None
        self.has_test = self.data.x_test is not None
        self.data_arrays = device_arrays(self.data, self.dtype)
        # The host copy becomes a view of the device copy (the same memory on CPU): one copy
        # of a large data set, not two.
        self.data = host_view(self.data_arrays, self.data.num_classes)

        obj_loss, obj_acc, out_dim = make_objective(t.loss, self.data.num_classes)
        self.loss_fn = loss_fn or obj_loss
        self.accuracy_fn = accuracy_fn if (accuracy_fn is not None or loss_fn is not None) else obj_acc
        self.model = self._build_model(model, init_fn, apply_fn, out_dim)
        name = config.optimizer.name
        self._numeric = registry.numeric_keywords(name)
        self.defaults, self._optional = self._traceable_defaults()
        named = optimizer_fn is None
        eval_at = registry.eval_params(name) if named else None
        self.spec = step_mod.RunSpec(
            model=self.model, loss_fn=self.loss_fn, accuracy_fn=self.accuracy_fn, optimizer=self._optimizer,
            plateau=self._plateau if config.optimizer.plateau is not None else None, dtype=self.dtype,
            batch_size=t.batch_size, drop_last=t.drop_last,
            eval_params=(lambda params, opt_state: eval_at(opt_state, params)) if eval_at is not None else None,
            update_extras=(lambda **kw: registry.update_extras(name, **kw)) if named else None,
        )

    def _build_model(self, model: Any, init_fn, apply_fn, out_dim: int) -> Model:
        example = self.data.x_train[:1]
        if model is not None:
            if init_fn is not None or apply_fn is not None:
                raise ValueError("make_train: pass either model= or init_fn/apply_fn, not both")
            built = as_model(model, example)
        elif init_fn is not None or apply_fn is not None:
            if init_fn is None or apply_fn is None:
                raise ValueError("make_train: init_fn needs apply_fn too")
            built = models_mod.from_functions(init_fn, apply_fn)
        elif getattr(self.config.model, "factory", None):
            built = _config_model(self.config, self.data.x_train.shape[1], out_dim, self.dtype, example)
        else:
            return _config_model(self.config, self.data.x_train.shape[1], out_dim, self.dtype, example)
        # A foreign model computes in the run's precision.
        inner_init = built.init
        return built._replace(init=lambda key, hp: _cast_floats(inner_init(key, hp), self.dtype))

    def _traceable_defaults(self) -> tuple[dict[str, float], set[str]]:
        """Numeric values a sweep may trace: the fixed list, plus the numeric keywords of the
        optimizer, its schedule and its plateau rule. Only values the config sets explicitly
        are passed to factories, so their own defaults stay Python numbers."""
        o = self.config.optimizer
        defaults: dict[str, float] = {k: float(_get(self.config, k)) for k in TRACEABLE_KEYS}
        optional: set[str] = set()
        for name in self._numeric:
            if name in o.kwargs and _is_numeric(o.kwargs[name]):
                defaults[f"optimizer.{name}"] = float(o.kwargs[name])
            else:
                optional.add(f"optimizer.{name}")
        if o.schedule is not None:
            for name, p in inspect.signature(registry.schedules()[o.schedule.name]).parameters.items():
                if name in registry._LR_SLOTS:
                    continue
                if _is_numeric(o.schedule.kwargs.get(name)):
                    defaults[f"optimizer.schedule.{name}"] = float(o.schedule.kwargs[name])
                elif _is_numeric(p.default):
                    optional.add(f"optimizer.schedule.{name}")
        if o.plateau is not None:
            for key, spec in config_mod.key_specs("optimizer.plateau").items():
                if spec.traceable:
                    defaults[key] = float(getattr(o.plateau, key.rsplit(".", 1)[1]))
        return defaults, optional

    def updates_per_epoch(self) -> int:
        """Optimizer updates in one epoch (1 for full batch)."""

        t = self.config.train
        return batching.num_batches(len(self.data.x_train), t.batch_size, t.drop_last)

    def lanes_pay(self) -> bool:
        """Whether runs vmapped in lanes beat runs one at a time on CPU: mini-batch training of a
        model known to batch well (`Model.batch_friendly`)."""
        return self.model.batch_friendly and self.updates_per_epoch() > 1

    def batch_bytes(self) -> int:
        """Bytes of one update's input batch (the whole training split in full batch)."""
        x = self.data_arrays["x_train"]
        rows = self.config.train.batch_size or x.shape[0]
        return int(rows * (x.size // x.shape[0]) * x.dtype.itemsize)

    # -- hyperparameters ------------------------------------------------------

    def traceable_keys(self) -> list[str]:
        """Every key `hparams` may hold (numeric values, traced or not)."""
        return sorted(set(self.defaults) | self._optional)

    def features(self, swept: Any = ()) -> frozenset[str]:
        """The switchable features compiled in when `swept` keys are varied: those the config
        turns on, and those swept."""
        return frozenset(k for k in SWITCHABLE_KEYS if k in swept or self.defaults[k] != 0)

    def resolve(self, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
        """The run's hyperparameters: the config's values updated by `hparams`, as arrays of the
        run's dtype; switchable features that are off are left out (and so out of the program)."""
        hparams = dict(hparams or {})
        valid = self.traceable_keys()
        for key in hparams:
            if key not in valid and not (self._optimizer_fn is not None and key.startswith("optimizer.")):
                raise ValueError(
                    f"hparams key {key!r} is not a numeric hyperparameter of this config{closest(key, valid)}; "
                    f"valid keys: {', '.join(valid)}"
                )
        on = self.features(hparams)
        hp: dict[str, Any] = {
            k: jnp.asarray(v, self.dtype) for k, v in self.defaults.items() if k not in SWITCHABLE_KEYS or k in on
        }
        hp.update({k: jnp.asarray(v, self.dtype) for k, v in hparams.items()})
        return hp

    def _optimizer(self, hp: Mapping[str, Any]) -> tuple[optax.GradientTransformation, Callable[[Array], Array]]:
        if self._optimizer_fn is not None:
            opt_hp = {k.split(".", 1)[1]: v for k, v in hp.items() if k.startswith("optimizer.")}
            lr = opt_hp.get("learning_rate", jnp.nan)
            return self._optimizer_fn(opt_hp), lambda step: lr
        o = self.config.optimizer
        # Numbers the factory cannot trace (sizes, structural ints) stay Python values.
        kwargs: dict[str, Any] = {k: v for k, v in o.kwargs.items() if not (_is_numeric(v) and k in self._numeric)}
        for key, value in hp.items():
            if key.startswith("optimizer.") and key.count(".") == 1:
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
        kw = {k.rsplit(".", 1)[1]: v for k, v in hp.items() if k.startswith("optimizer.plateau.")}
        return reduce_on_plateau(**kw)

    # -- the run ----------------------------------------------------------------

    def _data(self, data: Mapping[str, Array] | None) -> Mapping[str, Array]:
        return self.data_arrays if data is None else data

    def init_state(self, key: Array, hparams: Mapping[str, Any] | None = None) -> TrainState:
        hp = self.resolve(hparams)
        key = _as_raw_key(key)
        init_key = jax.random.fold_in(key, 0)
        if self.config.train.shuffle_seed is not None:
            order_key = jax.random.PRNGKey(self.config.train.shuffle_seed)
        else:
            order_key = jax.random.fold_in(key, 1)
        params, model_state = self.model.init(init_key, hp)
        opt, _ = self._optimizer(hp)
        plateau = self._plateau(hp) if self.spec.plateau is not None else None
        best = step_mod.tracks_best(hp)
        return TrainState(
            params=params,
            opt_state=opt.init(params),
            model_state=model_state,
            plateau_state=plateau.init(params) if plateau is not None else (),
            epoch=jnp.array(0, jnp.int32),
            step=jnp.array(0, jnp.int32),
            best_params=params if best else (),
            best_model_state=model_state if best else (),
            best_loss=jnp.array(jnp.inf, self.dtype),
            best_epoch=jnp.array(0, jnp.int32),
            wait=jnp.array(0, jnp.int32),
            stopped=jnp.array(False),
            diverged=jnp.array(False),
            order_key=order_key,
            history=jnp.full((self.config.train.epochs, len(HISTORY_KEYS)), jnp.nan, self.dtype),
        )

    def step_epoch(self, state: TrainState, hparams: Mapping[str, Any] | None = None,
                   data: Mapping[str, Array] | None = None) -> TrainState:
        """One more epoch of `state`, whatever its stop flags (callers check `stopped`/`diverged`:
        `run_epochs` does, and the sweep's refilling lanes do between epochs)."""
        return step_mod.epoch(self.spec, state, self.resolve(hparams), self._data(data))

    def run_epochs(self, state: TrainState, hparams: Mapping[str, Any] | None = None, until: Any = None,
                   data: Mapping[str, Array] | None = None) -> TrainState:
        """Continue `state` until `until` epochs are done (default: all), or the run stops."""
        hp = self.resolve(hparams)
        arrays = self._data(data)
        until = self.config.train.epochs if until is None else until

        def cond(s):
            return (s.epoch < until) & ~s.stopped & ~s.diverged

        return jax.lax.while_loop(cond, lambda s: step_mod.epoch(self.spec, s, hp, arrays), state)

    def finalize(self, state: TrainState, hparams: Mapping[str, Any] | None = None,
                 data: Mapping[str, Array] | None = None) -> TrainResult:
        """The run's result: final metrics in inference mode (at the best epoch's parameters
        when early stopping restores them), the history, and the parameters."""
        hp = self.resolve(hparams)
        arrays = self._data(data)
        spec = self.spec
        nan = jnp.asarray(jnp.nan, self.dtype)
        best = step_mod.tracks_best(hp)
        params = step_mod.evaluation_point(spec, state.params, state.opt_state)
        model_state = state.model_state
        if best:
            patience = hp["train.early_stopping_patience"]
            restore = (patience > 0) & self.config.train.restore_best & (state.best_epoch > 0)
            params = step_mod.tree_where(restore, state.best_params, params)
            model_state = step_mod.tree_where(restore, state.best_model_state, model_state)

        def metrics_on(split):
            return step_mod.evaluate(spec, params, model_state, arrays[f"x_{split}"], arrays[f"y_{split}"], hp)

        tr_loss, tr_acc = metrics_on("train")
        metrics = {"final_train_loss": tr_loss, "final_train_accuracy": tr_acc}
        if "x_val" in arrays:
            va_loss, va_acc = metrics_on("val")
            metrics.update(
                final_val_loss=va_loss, final_val_accuracy=va_acc,
                best_val_loss=jnp.where(state.best_epoch > 0, state.best_loss, nan),
            )
        else:
            metrics.update(final_val_loss=nan, final_val_accuracy=nan, best_val_loss=nan)
        if "x_test" in arrays:
            te_loss, te_acc = metrics_on("test")
            metrics.update(final_test_loss=te_loss, final_test_accuracy=te_acc)
        metrics.update(best_epoch=state.best_epoch, epochs_run=state.epoch, diverged=state.diverged)
        return TrainResult(
            params=params, best_params=state.best_params if best else None, model_state=model_state,
            history={k: state.history[:, i] for i, k in enumerate(HISTORY_KEYS)}, metrics=metrics,
        )

    def __call__(self, key: Array, hparams: Mapping[str, Any] | None = None,
                 data: Mapping[str, Array] | None = None) -> TrainResult:
        state = self.init_state(key, hparams)
        state = self.run_epochs(state, hparams, data=data)
        return self.finalize(state, hparams, data=data)


def make_train(
    config: Config | None = None,
    *,
    model: Any = None,
    init_fn: Callable[[Array], PyTree] | None = None,
    apply_fn: Callable[..., Any] | None = None,
    loss_fn: Callable[..., Array] | None = None,
    accuracy_fn: Callable[..., Array] | None = None,
    data: Any = None,
    optimizer_fn: Callable[[Mapping[str, Any]], optax.GradientTransformation] | None = None,
) -> Trainer:
    """Build the trainer of `config` (default: `Config()`): `trainer(key, hparams) -> TrainResult`.

    Args:
      config: the run's configuration.
      model: a `jaxopt_lab.models.Model`, or a Flax linen / NNX or Equinox module (adapted
        with `models.from_flax` / `from_nnx` / `from_equinox`), instead of the config's model.
      init_fn, apply_fn: a plain-function model (`models.from_functions`): `init_fn(key) ->
        params`, `apply_fn(params, x[, train=..., key=...]) -> outputs`.
      loss_fn: `loss_fn(outputs, y, where)` instead of the config's loss.
      accuracy_fn: `accuracy_fn(outputs, y, where)` (with `loss_fn`: none unless given).
      data: `(x, y)` arrays (or a `Dataset`) instead of the config's data set.
      optimizer_fn: `optimizer_fn(opt_hparams) -> GradientTransformation` instead of the
        config's optimizer (a chain, a `lookahead`, a custom schedule): it receives the
        `optimizer.*` entries of `hparams` (and the config's explicit optimizer keywords)
        without the prefix, as possibly traced values, so any of them can be swept.

    Returns:
      A `Trainer`: a callable `train(key, hparams[, data]) -> TrainResult`, pure and
      traceable, with its pieces (`init_state`, `step_epoch`, `run_epochs`, `finalize`).

    Weight penalties and decoupled weight decay apply to the model's `decay_mask`
    (for foreign models: leaves of rank >= 2).
    """
    return Trainer(
        config or Config(), model=model, init_fn=init_fn, apply_fn=apply_fn, loss_fn=loss_fn,
        accuracy_fn=accuracy_fn, data=data, optimizer_fn=optimizer_fn,
    )

