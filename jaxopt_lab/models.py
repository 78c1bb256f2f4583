"""The model protocol of the training engine, and adapters for Flax, Flax NNX, Equinox and plain functions.

A model is two pure functions and a mask:

* ``init(key, hp) -> (params, model_state)``: fresh parameters (the trainable
  leaves the optimizer updates) and model state (everything else the model
  carries between steps: batch-norm running statistics, counters; ``{}`` when
  there is none).
* ``apply(params, model_state, x, *, train, key, hp) -> (outputs, new_model_state)``:
  outputs for a batch ``x``; in training (``train=True``) the model may use
  ``key`` (dropout) and update its state, in inference it must not.
* ``decay_mask(params) -> pytree of bools``: the leaves weight decay and the
  L1/L2 penalties apply to.

``hp`` holds the run's numeric hyperparameters (possibly traced); the built-in
models read ``model.*`` keys from it (``model.dropout``, ``model.init_scale``,
``model.bn_momentum``), other models may ignore it. Models with
``takes_batch_mask=True`` also accept ``where=`` (a boolean row mask of a padded
mini-batch) so batch statistics skip padding rows.

Adapters wrap a library's own split/merge API rather than a module system of
our own: `from_flax` (Flax linen: every variable collection other than
``params`` is model state), `from_nnx` (``nnx.split``/``nnx.merge``),
`from_equinox` (``eqx.partition``/``eqx.combine``, ``eqx.nn.State``), and
`from_functions` for plain functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lab.losses import decay_mask
from jaxopt_lab.nn import activations
from jaxopt_lab.nn import mlp as mlp_lib

PyTree = Any


class Model(NamedTuple):
    """A model for `jaxopt_lab.train.make_train` (see the module docstring for the contract).

    Fields:
      init: ``init(key, hp) -> (params, model_state)``.
      apply: ``apply(params, model_state, x, *, train, key, hp) -> (outputs, new_model_state)``.
      decay_mask: ``decay_mask(params) -> bools``: leaves that weight decay and penalties apply to.
      takes_batch_mask: `apply` accepts ``where=`` (rows of a padded mini-batch).
      uses_key: `apply` may draw randomness from ``key`` in training (dropout); when
        False the engine derives no per-update keys unless the run's own
        hyperparameters (``model.dropout``, ``train.input_noise``) need them.
      batch_friendly: many runs of this model vmapped together are faster on CPU than one
        at a time for mini-batch training (small dense layers: measured for the built-in MLP).
        False for anything else: XLA's CPU convolutions batched over runs ran 25x slower than
        the same runs one at a time (digits CNN), and a foreign model is not measured.
      name: shown in errors and reports.
    """

    init: Callable[[jax.Array, Mapping[str, Any]], tuple[PyTree, PyTree]]
    apply: Callable[..., tuple[jax.Array, PyTree]]
    decay_mask: Callable[[PyTree], PyTree]
    takes_batch_mask: bool = False
    uses_key: bool = True
    batch_friendly: bool = False
    name: str = "model"


def matrices(params: PyTree) -> PyTree:
    """The default decay mask of a foreign model: leaves of rank >= 2 (weights, not biases or scales)."""
    return jax.tree.map(lambda a: jnp.ndim(a) >= 2, params)


def is_model(obj: Any) -> bool:
    return isinstance(obj, Model)


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _missing(extra: str, library: str) -> ImportError:
    return ImportError(f"{library} is not installed: pip install 'jaxopt-lab[{extra}]'")


# ----------------------------------------------------------------------------- plain functions


def from_functions(
    init_fn: Callable[..., Any],
    apply_fn: Callable[..., Any],
    *,
    stateful: bool = False,
    decay_mask: Callable[[PyTree], PyTree] | None = None,
) -> Model:
    """A model from plain functions.

    Args:
      init_fn: ``init_fn(key) -> params``, or with ``stateful=True``
        ``init_fn(key) -> (params, model_state)``.
      apply_fn: ``apply_fn(params, x[, train=..., key=...]) -> outputs``, or with
        ``stateful=True`` ``apply_fn(params, model_state, x[, train=..., key=...]) ->
        (outputs, new_model_state)``. ``train`` and ``key`` are passed only when the
        function names them.
      stateful: whether the functions carry model state.
      decay_mask: leaves weight decay applies to (default: `matrices`).

    Returns:
      A `Model`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxopt_lab import models
      >>> m = models.from_functions(lambda key: {"w": jax.random.normal(key, (3, 2))}, lambda p, x: x @ p["w"])
      >>> params, state = m.init(jax.random.PRNGKey(0), {})
      >>> m.apply(params, state, jnp.ones((4, 3)), train=False, key=None, hp={})[0].shape
      (4, 2)
    """
    wants_train, wants_key = _accepts(apply_fn, "train"), _accepts(apply_fn, "key")

    def init(key, hp):
        out = init_fn(key)
        return out if stateful else (out, {})

    def apply(params, model_state, x, *, train, key, hp):
        kw = {}
        if wants_train:
            kw["train"] = train
        if wants_key:
            kw["key"] = key
        if stateful:
            return apply_fn(params, model_state, x, **kw)
        return apply_fn(params, x, **kw), model_state

    return Model(init=init, apply=apply, decay_mask=decay_mask or matrices, uses_key=wants_key,
                 name=getattr(apply_fn, "__name__", "model"))


# ----------------------------------------------------------------------------- Flax linen


def from_flax(module: Any, *example: Any, rng_collections: tuple[str, ...] = ("dropout",),
              decay_mask: Callable[[PyTree], PyTree] | None = None) -> Model:
    """A Flax linen module as a model: ``params`` are trained, every other variable
    collection (``batch_stats``, ...) is model state, updated in training through
    ``mutable=`` and read-only in inference.

    Args:
      module: a ``flax.linen.Module``. When its ``__call__`` takes ``train`` it is
        passed the mode (the usual ``nn.BatchNorm(use_running_average=not train)``,
        ``nn.Dropout(deterministic=not train)`` pattern).
      *example: example inputs for ``module.init`` (one batch is enough).
      rng_collections: the rng streams drawn in training from the run's key.
      decay_mask: leaves weight decay applies to (default: `matrices`).

    Returns:
      A `Model` whose ``init`` calls ``module.init`` with the run's key (so every seed
      gets its own initial weights).
    """
    try:
        import flax.linen as nn  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised without the extra
        raise _missing("models", "flax") from e
    if not example:
        raise ValueError("from_flax needs an example input: from_flax(module, x[:1])")
    wants_train = _accepts(module.__call__, "train")

    def call_kwargs(train: bool) -> dict[str, Any]:
        return {"train": train} if wants_train else {}

    def init(key, hp):
        init_key, drop_key = jax.random.split(key)
        rngs = {"params": init_key, **{c: drop_key for c in rng_collections}}
        variables = module.init(rngs, *example, **call_kwargs(False))
        variables = dict(variables)
        params = variables.pop("params", {})
        return params, variables

    def apply(params, model_state, x, *, train, key, hp):
        variables = {"params": params, **model_state}
        rngs = {c: jax.random.fold_in(key, i) for i, c in enumerate(rng_collections)} if key is not None else None
        if train and model_state:
            out, updated = module.apply(variables, x, rngs=rngs, mutable=list(model_state), **call_kwargs(True))
            return out, {**model_state, **dict(updated)}
        return module.apply(variables, x, rngs=rngs, **call_kwargs(train)), model_state

    return Model(init=init, apply=apply, decay_mask=decay_mask or matrices, name=type(module).__name__)


# ----------------------------------------------------------------------------- Flax NNX


def from_nnx(model: Any, decay_mask: Callable[[PyTree], PyTree] | None = None) -> Model:
    """A Flax NNX model as a model: ``nnx.Param`` variables are trained, every other
    variable (``nnx.BatchStat``, dropout rng streams, ...) is model state.

    Args:
      model: an ``nnx.Module`` instance (its initial weights are used for every seed;
        seeds then vary the data order), or a constructor ``make(rngs: nnx.Rngs) ->
        nnx.Module`` called with the run's key inside the compiled program (every seed
        gets its own initial weights and dropout stream). Training/inference mode is set
        with the module's ``train()``/``eval()``.
      decay_mask: leaves weight decay applies to (default: `matrices`).

    Returns:
      A `Model` whose params and state are ``nnx.State`` pytrees (``nnx.split``).
    """
    try:
        from flax import nnx
    except ImportError as e:  # pragma: no cover
        raise _missing("models", "flax") from e

    if isinstance(model, nnx.Module):
        graphdef, params0, rest0 = nnx.split(model, nnx.Param, ...)

        def init(key, hp):
            return params0, rest0
    elif callable(model):
        graphdef = nnx.split(nnx.eval_shape(lambda: model(nnx.Rngs(0))), nnx.Param, ...)[0]

        def init(key, hp):
            _, params, rest = nnx.split(model(nnx.Rngs(key)), nnx.Param, ...)
            return params, rest
    else:
        raise TypeError(f"from_nnx needs an nnx.Module or a constructor make(rngs), not {type(model).__name__}")

    def apply(params, model_state, x, *, train, key, hp):
        # Fresh Variables at the current trace level: NNX refuses to mutate a Variable
        # created under another transform (the epoch loop's carry, the gradient's trace).
        params, model_state = jax.tree.map(lambda a: a, (params, model_state))
        m = nnx.merge(graphdef, params, model_state)
        if train:
            m.train()
        else:
            m.eval()
        out = m(x)
        return out, nnx.split(m, nnx.Param, ...)[2]

    return Model(init=init, apply=apply, decay_mask=decay_mask or matrices, name=type(model).__name__)


# ----------------------------------------------------------------------------- Equinox


def from_equinox(module: Any, *example: Any, state: Any = None,
                 decay_mask: Callable[[PyTree], PyTree] | None = None) -> Model:
    """An Equinox module as a model: its inexact arrays are trained (``eqx.partition`` /
    ``eqx.combine``); an ``eqx.nn.State`` is model state.

    Equinox layers act on one example, so the batch is ``vmap``-ped with axis name
    ``"batch"`` (what ``eqx.nn.BatchNorm(axis_name="batch")`` expects). Training or
    inference is set with ``eqx.nn.inference_mode``; in training each example gets its
    own key (``module(x, key=k)``, or ``module(x, state, key=k)`` with state).

    Args:
      module: an ``eqx.Module`` (its weights are used for every seed), or a constructor
        ``make(key) -> module`` or ``make(key) -> (module, state)`` (e.g. through
        ``eqx.nn.make_with_state``), called with the run's key.
      *example: an optional example batch, used to check the forward pass at build time.
      state: the ``eqx.nn.State`` of a stateful module instance.
      decay_mask: leaves weight decay applies to (default: `matrices`).

    Returns:
      A `Model`.
    """
    try:
        import equinox as eqx
    except ImportError as e:  # pragma: no cover
        raise _missing("models", "equinox") from e

    if isinstance(module, eqx.Module):
        fixed = (module, state)

        def build(key):
            return fixed
    elif callable(module):
        def build(key):
            made = module(key)
            return made if isinstance(made, tuple) else (made, None)
    else:
        raise TypeError(f"from_equinox needs an eqx.Module or a constructor make(key), not {type(module).__name__}")

    probe_module, probe_state = eqx.filter_eval_shape(build, jax.random.PRNGKey(0))

    def is_param(x):
        return eqx.is_inexact_array(x) or (isinstance(x, jax.ShapeDtypeStruct) and jnp.issubdtype(x.dtype, jnp.inexact))

    _, static = eqx.partition(probe_module, is_param)
    stateful = probe_state is not None

    def init(key, hp):
        m, s = build(key)
        params, _ = eqx.partition(m, eqx.is_inexact_array)
        return params, (s if stateful else {})

    def apply(params, model_state, x, *, train, key, hp):
        # A copy: calling a stateful layer marks the State it was given as used, and the
        # engine still reads the old state (a skipped update keeps it).
        model_state = jax.tree.map(lambda a: a, model_state)
        m = eqx.nn.inference_mode(eqx.combine(params, static), value=not train)
        n = x.shape[0]
        keys = jax.random.split(key, n) if (train and key is not None) else None
        if stateful:
            if keys is None:
                fn = jax.vmap(lambda xi: m(xi, model_state), axis_name="batch", out_axes=(0, None))
                return fn(x)
            fn = jax.vmap(lambda xi, ki: m(xi, model_state, key=ki), axis_name="batch", out_axes=(0, None))
            return fn(x, keys)
        if keys is None:
            return jax.vmap(lambda xi: m(xi), axis_name="batch")(x), model_state
        return jax.vmap(lambda xi, ki: m(xi, key=ki), axis_name="batch")(x, keys), model_state

    model = Model(init=init, apply=apply, decay_mask=decay_mask or _eqx_matrices, name=type(probe_module).__name__)
    if example:
        p, s = jax.eval_shape(init, jax.random.PRNGKey(0), {})
        jax.eval_shape(lambda p, s, x: apply(p, s, x, train=False, key=None, hp={}), p, s, example[0])
    return model


def _eqx_matrices(params: PyTree) -> PyTree:
    # Partitioned Equinox modules hold None where a leaf is static; None stays None.
    return jax.tree.map(lambda a: jnp.ndim(a) >= 2, params)


# ----------------------------------------------------------------------------- built-in models


def mlp(model_config: Any, n_features: int, out_dim: int, dtype: Any) -> Model:
    """The config's MLP (`[model] kind = "mlp"`): `hidden`, `activation`, `init`, `norm`;
    reads ``model.init_scale``, ``model.dropout`` and ``model.bn_momentum`` from `hp`."""

    m = model_config
    sizes = [n_features, *m.hidden, out_dim]
    init_name = activations.recommended_init(m.activation) if m.init == "auto" else m.init

    def init(key, hp):
        params = mlp_lib.init(key, sizes, init=init_name, activation=m.activation, norm=m.norm, dtype=dtype,
                              init_scale=hp["model.init_scale"])
        return params, mlp_lib.init_state(params, m.norm)

    def apply(params, model_state, x, *, train, key, hp, where=None):
        return mlp_lib.apply(
            params, x, model_state, activation=m.activation, norm=m.norm, dropout=hp.get("model.dropout", 0.0),
            train=train, key=key, bn_momentum=hp["model.bn_momentum"], where=where,
        )

    return Model(init=init, apply=apply, decay_mask=decay_mask, takes_batch_mask=True, uses_key=False,
                 batch_friendly=True, name="mlp")
