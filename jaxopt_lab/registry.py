"""Name -> implementation lookups shared by the config checks, the training engine and the CLI.

One place maps the names a user writes in a config (`optimizer.name = "adamw"`,
`model.activation = "selu"`, `schedule.name = "cosine_decay_schedule"`) to the
functions that implement them, so `jaxopt-lab list`, validation and training
can never disagree about what exists.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax.contrib

from jaxopt_lab import losses
from jaxopt_lab import schedules as schedules_mod
from jaxopt_lab.data import datasets
from jaxopt_lab.nn import activations, init
from jaxopt_lab.optim import aliases, hypergradient

#: Optimizer factories by name. Filled from `jaxopt_lab.optim.aliases` (every public
#: factory there that returns a GradientTransformation) plus `lookahead`-free aliases.
_EXCLUDED_OPTIMIZER_NAMES = {"lookahead", "chain", "asgd_averaged_params"}


def optimizers() -> dict[str, Callable[..., Any]]:
    """Every optimizer a config may name: the project's (sorted), then optax's (``optax.NAME``,
    ``optax.contrib.NAME``, sorted)."""
    return {**own_optimizers(), **optax_optimizers()}


def own_optimizers() -> dict[str, Callable[..., Any]]:
    """The project's optimizers (`jaxopt_lab.optim.aliases` and the hypergradient-descent
    optimizers of `jaxopt_lab.optim.hypergradient`) by name."""

    out = {}
    for module in (aliases, hypergradient):
        names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for name in names:
            fn = getattr(module, name, None)
            if not callable(fn) or isinstance(fn, type) or name in _EXCLUDED_OPTIMIZER_NAMES:
                continue
            if getattr(fn, "__module__", "") != module.__name__:
                continue
            out[name] = fn
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- optax's optimizers by name

#: The modules whose optimizers a config may name, by the prefix it writes.
_OPTAX_MODULES = ("optax", "optax.contrib")

#: An optax optimizer takes its step size first (optax's alias convention); functions whose first
#: keyword is something else are transforms (`clip`, `ema`, ...) or wrappers of other optimizers.
_STEP_SIZE_KEYWORDS = ("learning_rate", "max_learning_rate")

#: optax optimizers that take a step size first but that the engine cannot run, and why.
_REFUSED = {
    "optax.contrib.dpsgd": "it clips and noises per-example gradients (a batch axis on every gradient), "
                           "which the engine does not compute",
    "optax.scale_by_learning_rate": "it is a gradient transformation (a step of -learning_rate * g with no "
                                    "state), not an optimizer: use sgd",
}


@functools.cache
def optax_optimizers() -> dict[str, Callable[..., Any]]:
    """optax's optimizers by dotted name: ``"optax.adafactor"``, ``"optax.contrib.muon"``.

    Found by inspection, so a newer optax brings its new optimizers along: every public
    function of `optax` and `optax.contrib` whose first keyword is its step size
    (``learning_rate``, or ``max_learning_rate`` for `polyak_sgd`), except the ``scale_by_*``
    transforms and the names in `_REFUSED`.
    """

    out = {}
    for prefix in _OPTAX_MODULES:
        mod = importlib.import_module(prefix)
        for attr in sorted(dir(mod)):
            fn = getattr(mod, attr)
            name = f"{prefix}.{attr}"
            if attr.startswith(("_", "scale_by_")) or not inspect.isfunction(fn) or name in _REFUSED:
                continue
            params = list(inspect.signature(fn).parameters)
            if params and params[0] in _STEP_SIZE_KEYWORDS:
                out[name] = fn
    return out


def refusal(name: str) -> str | None:
    """Why `name`, a function of optax that is not in `optimizers()`, cannot be named in a config
    (None when `name` is not such a function)."""
    if name in _REFUSED:
        return _REFUSED[name]
    module, _, attr = name.rpartition(".")
    if module not in _OPTAX_MODULES:
        return None

    fn = getattr(importlib.import_module(module), attr, None)
    if not callable(fn):
        return None
    try:
        first = next(iter(inspect.signature(fn).parameters.values()), None)
    except (TypeError, ValueError):
        first = None
    if first is not None and "GradientTransformation" in str(first.annotation):
        return (f"it wraps another optimizer given as its argument {first.name!r}, which a config cannot write; "
                "build it in Python and pass it as make_train(..., optimizer_fn=...)")
    return "it is not an optimizer (an optimizer's first keyword is its learning_rate)"


def optimizer_factory(name: str) -> Callable[..., Any]:
    """The factory of optimizer `name` (the project's or optax's); KeyError when there is none."""
    own = own_optimizers()
    return own[name] if name in own else optax_optimizers()[name]


def build_optimizer(name: str, kwargs: Mapping[str, Any]) -> Any:
    """The optimizer `name` built with keyword arguments `kwargs` (values may be traced)."""
    return optimizer_factory(name)(**kwargs)


def optimizer_keywords(name: str) -> list[str]:
    """Every keyword optimizer `name`'s factory takes (`*args`/`**kwargs` left out)."""
    return [k for k, p in inspect.signature(optimizer_factory(name)).parameters.items() if p.kind not in _VARIADIC]


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


# ----------------------------------------------------------------------------- which keywords are traced
#
# optax's factories take numbers (traced fine), but also sizes, booleans, dtypes, masks and
# integers that decide the structure of the computation; some of those raise when given a traced
# value (optax issue #412). The engine traces every numeric keyword, so it must know which ones
# can be: `numeric_keywords` decides it once for every caller (engine, sweeps, protocols, config
# checks), by type where the type says it and otherwise by building the optimizer and running one
# step (abstractly, `jax.eval_shape`) with the keyword traced.


def _probe_params() -> dict[str, Any]:
    # A matrix and a vector: optimizers that treat matrices specially (muon, adafactor) take both paths.
    return {"w": jnp.ones((3, 4), jnp.float32), "b": jnp.ones((4,), jnp.float32)}


#: The extra `update` arguments optax's optimizers ask for, as the sets they are asked for in:
#: the loss (`polyak_sgd`, `contrib.momo`), the loss as a function of the parameters
#: (`contrib.sophia`'s Hessian estimate), and all three of `lbfgs`'s line search.
_EXTRA_ARGUMENT_SETS = (("value",), ("obj_fn",), ("value", "grad", "value_fn"))


def _probe_extras(params: Any, names: Sequence[str]) -> dict[str, Any]:
    """What optimizers that need more than gradients get in `update` (see `update_extras`)."""
    def value_fn(p):
        return sum(jnp.sum(x * x) for x in jax.tree.leaves(p))

    return _pick(names, value=value_fn(params), grad=params, value_fn=value_fn)


def _pick(names: Sequence[str], *, value: Any, grad: Any, value_fn: Callable[[Any], Any]) -> dict[str, Any]:
    every = {"value": value, "grad": grad, "value_fn": value_fn, "obj_fn": value_fn}
    return {k: every[k] for k in names}


def _one_step(factory: Callable[..., Any], kwargs: Mapping[str, Any], traced: Mapping[str, Any],
              extras: Sequence[str] = ()) -> Any:
    """One init + update of `factory(**kwargs, **traced)`, the `traced` values as tracers (abstract: no compile)."""


    def run(values):
        opt = factory(**kwargs, **values)
        params = _probe_params()
        state = opt.init(params)
        more = _probe_extras(params, extras)
        return opt.update(params, state, params, **more)

    # Abstract values only: probing must not start a JAX backend (the CLI sets the device count
    # and x64 after the config is checked, which JAX allows only before a backend starts).
    values = {k: jax.ShapeDtypeStruct((), jnp.float32) for k in traced}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. noisy_sgd without a key warns at every build
        return jax.eval_shape(run, values)


@dataclasses.dataclass(frozen=True)
class _Probe:
    """What probing a factory found: its traced and static keywords, whether its update needs
    the loss, and whether it evaluates at other parameters than it trains (schedule-free)."""

    numeric: tuple[str, ...]
    static: tuple[str, ...]
    extras: tuple[str, ...]
    schedule_free: bool
    failure: str | None


def _required_values(factory: Callable[..., Any]) -> dict[str, Any]:
    """Values for the keywords a factory requires, for probing (its step size: 1e-3)."""
    return {k: 1e-3 for k, p in inspect.signature(factory).parameters.items()
            if p.default is inspect.Parameter.empty and p.kind not in _VARIADIC and k in _STEP_SIZE_KEYWORDS}


def _type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(factory)
    except Exception:  # unevaluable string annotations: decide by probing alone
        return {}


def _annotation_is_numeric(hint: Any) -> bool | None:
    """True when a top-level member of the annotation is a number or an array, False when none is,
    None when the annotation says nothing (absent or `Any`)."""

    if hint is None or hint is typing.Any or hint is inspect.Parameter.empty:
        return None
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    numeric_types = (float, int, complex, jax.Array, np.ndarray, np.number)
    if any(m is typing.Any for m in members):
        return None
    return any(isinstance(m, type) and issubclass(m, numeric_types) and m is not bool for m in members)


#: Keywords that hold a mask, a dtype or a random key whatever their annotation says (optax
#: annotates some as `Any`, and they go unused, hence untested by a probe, unless another is set).
_STATIC_NAME_ENDINGS = ("mask", "dtype", "key")


def _candidate_value(param: inspect.Parameter, hint: Any) -> float | None:
    """The value to probe a keyword with, or None when its default or type says it is static."""
    d = param.default
    if isinstance(d, bool) or param.name.endswith(_STATIC_NAME_ENDINGS):
        return None
    if isinstance(d, (int, float)) or (hasattr(d, "dtype") and getattr(d, "shape", None) == ()):
        return float(d)
    if d is not None and d is not inspect.Parameter.empty:
        return None  # a string, a tuple, a dtype, a function, a transformation
    if _annotation_is_numeric(hint) is False:
        return None  # a mask, a dtype, a key
    return 1e-3 if param.name in _STEP_SIZE_KEYWORDS else 0.1


def _extra_arguments(factory: Callable[..., Any], base: Mapping[str, Any]) -> tuple[str, ...]:
    """The extra `update` arguments the optimizer needs: the first set in `_EXTRA_ARGUMENT_SETS`
    that lets it take a step (none when it takes one without)."""
    for names in ((), *_EXTRA_ARGUMENT_SETS):
        try:
            _one_step(factory, base, {}, names)
            return names
        except Exception:
            continue
    return ()


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


@functools.cache
def _probe(factory: Callable[..., Any]) -> _Probe:
    base = _required_values(factory)
    extras = _extra_arguments(factory, base)
    params = optimizer_params(factory)
    try:
        state = _one_step(factory, base, {}, extras)[1]
    except Exception as e:
        return _Probe((), tuple(params), extras, False, _first_line(e))
    hints = _type_hints(factory)
    candidates = {name: _candidate_value(p, hints.get(name)) for name, p in params.items()}
    candidates = {k: v for k, v in candidates.items() if v is not None}
    # Each keyword is traced with the others set (to their probing values): a keyword that only
    # matters when another is set (a dtype of a momentum buffer, a mask of a weight decay) is
    # then used by the step.
    context = {**base, **{k: v for k, v in candidates.items() if k not in base}}
    try:
        _one_step(factory, context, {}, extras)
    except Exception:
        context = dict(base)
    numeric, static = [], []
    for name in params:
        ok = name in candidates
        if ok:
            try:
                _one_step(factory, {k: v for k, v in context.items() if k != name}, {name: candidates[name]}, extras)
            except Exception:
                ok = False
        (numeric if ok else static).append(name)
    schedule_free = hasattr(state, "z") and hasattr(state, "b1")
    return _Probe(tuple(numeric), tuple(static), extras, schedule_free, None)


def optimizer_params(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(factory).parameters.items() if p.kind not in _VARIADIC}


def _factory(name_or_factory: str | Callable[..., Any]) -> Callable[..., Any]:
    return optimizer_factory(name_or_factory) if isinstance(name_or_factory, str) else name_or_factory


def numeric_keywords(name_or_factory: str | Callable[..., Any]) -> tuple[str, ...]:
    """The keywords of an optimizer that the engine passes as traced values (sweepable without
    recompiling): those with a numeric default or a number/array/`ScalarOrSchedule` type that
    survive being traced through one `init` + `update`. Every other keyword is static
    (`static_keywords`): a value for it is a Python value, and sweeping it splits the sweep
    into groups (one compiled program per value)."""
    return _probe(_factory(name_or_factory)).numeric


def static_keywords(name_or_factory: str | Callable[..., Any]) -> tuple[str, ...]:
    """The keywords of an optimizer that cannot be traced (sizes, booleans, dtypes, masks,
    structural integers): the complement of `numeric_keywords`."""
    return _probe(_factory(name_or_factory)).static


def unusable(name: str) -> str | None:
    """Why optimizer `name` cannot take one step on a plain parameter tree (None when it can)."""
    return _probe(optimizer_factory(name)).failure


def extra_update_arguments(name: str) -> tuple[str, ...]:
    """The keyword arguments optimizer `name`'s `update` needs besides gradients, state and
    parameters: none for most; ``value`` (the loss: optax's polyak_sgd, contrib.momo),
    ``obj_fn`` (the loss as a function of the parameters: contrib.sophia), ``value``, ``grad``,
    ``value_fn`` (lbfgs's line search)."""
    return _probe(optimizer_factory(name)).extras


def update_extras(name: str, *, value: Any, grad: Any, value_fn: Callable[[Any], Any]) -> dict[str, Any]:
    """The extra keyword arguments the engine passes to optimizer `name`'s `update`, from the
    step's loss `value`, its gradient `grad` and `value_fn(params) -> loss` on the same batch
    (see `extra_update_arguments`; empty for most optimizers)."""
    return _pick(extra_update_arguments(name), value=value, grad=grad, value_fn=value_fn)


def eval_params(name: str) -> Callable[[Any, Any], Any] | None:
    """How optimizer `name` turns training parameters into the ones to evaluate:
    `fn(opt_state, params) -> params`, or None when they are the same.

    Schedule-free optimizers (`optax.contrib.schedule_free_*`) take gradients at an
    interpolation `y` of their iterates and evaluate at the average `x`
    (Defazio et al. 2024, https://arxiv.org/abs/2405.15682); optax computes `x` with
    `optax.contrib.schedule_free_eval_params`.
    """
    if not _probe(optimizer_factory(name)).schedule_free:
        return None

    return optax.contrib.schedule_free_eval_params


def traced_value_error(name: str, kwargs: Mapping[str, Any]) -> str | None:
    """None when optimizer `name` takes one step with the numeric values of `kwargs` traced,
    else a one-line message naming the first keyword that breaks it."""
    key = (name, repr(sorted(kwargs.items())))
    if key not in _TRACED_CHECKS:
        _TRACED_CHECKS[key] = _traced_value_error(name, kwargs)
    return _TRACED_CHECKS[key]


#: `traced_value_error`'s answers: configs are validated many times (once per sweep group and override).
_TRACED_CHECKS: dict[tuple[str, str], str | None] = {}


def _traced_value_error(name: str, kwargs: Mapping[str, Any]) -> str | None:
    factory = optimizer_factory(name)
    numeric = set(numeric_keywords(factory))
    traced = {k: v for k, v in kwargs.items() if k in numeric and _is_number(v)}
    fixed = {k: v for k, v in {**_required_values(factory), **kwargs}.items() if k not in traced}
    extras = extra_update_arguments(name)
    try:
        _one_step(factory, fixed, traced, extras)
        return None
    except Exception:
        pass
    for key, value in traced.items():
        try:
            _one_step(factory, {**fixed, **{k: v for k, v in traced.items() if k != key}}, {key: value}, extras)
        except Exception as e:
            text = str(e).strip().splitlines()[0] if str(e).strip() else ""
            return f"optimizer.{key} = {value!r} cannot be a traced value of {name} ({type(e).__name__}: {text})"
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def schedules() -> dict[str, Callable[..., Any]]:
    """Every schedule a config may name (`jaxopt_lab.schedules`), sorted."""
    mod = schedules_mod
    names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
    out = {}
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn) and not isinstance(fn, type) and getattr(fn, "__module__", "") == mod.__name__:
            out[name] = fn
    return dict(sorted(out.items()))


#: Which parameter of a schedule the optimizer's learning rate fills.
_LR_SLOTS = ("peak_value", "init_value", "value")


def build_schedule(name: str, learning_rate: Any, kwargs: Mapping[str, Any]) -> Callable[[Any], Any]:
    """The schedule `name` whose starting (or peak) value is `learning_rate`.

    TOML tables have string keys, so `boundaries_and_scales = {"100" = 0.1}`
    arrives with string step numbers and is converted here.
    """
    fn = schedules()[name]
    params = inspect.signature(fn).parameters
    kw = dict(kwargs)
    if "boundaries_and_scales" in kw and isinstance(kw["boundaries_and_scales"], Mapping):
        kw["boundaries_and_scales"] = {int(k): v for k, v in kw["boundaries_and_scales"].items()}
    for slot in _LR_SLOTS:
        if slot in params:
            kw[slot] = learning_rate
            if slot == "peak_value" and "init_value" in params and "init_value" not in kwargs:
                kw["init_value"] = 0.0
            break
    return fn(**kw)


def dataset_names() -> list[str]:
    return sorted(datasets.DATASETS)


def activation_names() -> list[str]:
    return sorted(activations.ACTIVATIONS)


def initializer_names() -> list[str]:
    return sorted(init.INITIALIZERS)


def loss_names() -> list[str]:
    return sorted(losses.LOSSES)
