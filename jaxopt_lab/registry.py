"""Name -> implementation lookups shared by the config checks, the training engine and the CLI.

One place maps the names a user writes in a config (`optimizer.name = "adamw"`,
`model.activation = "selu"`, `schedule.name = "cosine_decay_schedule"`) to the
functions that implement them, so `jaxopt-lab list`, validation and training
can never disagree about what exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

#: Optimizer factories by name. Filled from `jaxopt_lab.optim.aliases` (every public
#: factory there that returns a GradientTransformation) plus `lookahead`-free aliases.
_EXCLUDED_OPTIMIZER_NAMES = {"lookahead", "chain", "asgd_averaged_params"}


def optimizers() -> dict[str, Callable[..., Any]]:
    from jaxopt_lab.optim import aliases

    names = getattr(aliases, "__all__", None) or [n for n in dir(aliases) if not n.startswith("_")]
    out = {}
    for name in names:
        fn = getattr(aliases, name, None)
        if not callable(fn) or isinstance(fn, type) or name in _EXCLUDED_OPTIMIZER_NAMES:
            continue
        if getattr(fn, "__module__", "") != aliases.__name__:
            continue
        out[name] = fn
    return dict(sorted(out.items()))


def build_optimizer(name: str, kwargs: Mapping[str, Any]) -> Any:
    """The optimizer `name` built with keyword arguments `kwargs` (values may be traced)."""
    return optimizers()[name](**kwargs)


def optimizer_keywords(name: str) -> list[str]:
    return list(inspect.signature(optimizers()[name]).parameters)


def schedules() -> dict[str, Callable[..., Any]]:
    from jaxopt_lab import schedules as mod

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
    from jaxopt_lab.data import registry as data_registry

    return sorted(data_registry.DATASETS)


def activation_names() -> list[str]:
    from jaxopt_lab.nn import activations

    return sorted(activations.ACTIVATIONS)


def initializer_names() -> list[str]:
    from jaxopt_lab.nn import init

    return sorted(init.INITIALIZERS)


def loss_names() -> list[str]:
    from jaxopt_lab import losses

    return sorted(losses.LOSSES)
