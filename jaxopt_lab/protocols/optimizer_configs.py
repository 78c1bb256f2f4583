"""The config each compared optimizer trains with: the user's problem, that optimizer, explicit keywords.

Every keyword a protocol searches is set explicitly (to the factory's default where the user
gave none) so that the one-shot run, the search and the rerun trace the same values and share
one compiled program.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from jaxopt_lab import config as config_mod
from jaxopt_lab import registry
from jaxopt_lab.config import Config, ConfigError

__all__ = ["DEFAULT_LEARNING_RATES", "default_learning_rate", "optimizer_config", "factory_defaults",
           "search_config"]

#: Learning rates for optimizers whose factory has no default: the values their authors or the
#: common frameworks (PyTorch, Keras) recommend. The one-shot ("default hyperparameters") runs of
#: Crowded Valley use them.
DEFAULT_LEARNING_RATES = {
    "sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "noisy_sgd": 0.01, "sign_sgd": 0.001,
    "adam": 1e-3, "adamw": 1e-3, "amsgrad": 1e-3, "radam": 1e-3, "adabelief": 1e-3, "lamb": 1e-3,
    "nadam": 2e-3, "nadamw": 2e-3, "adamax": 2e-3, "adamaxw": 2e-3, "rmsprop": 1e-2, "adagrad": 1e-2,
    "yogi": 1e-2, "lion": 1e-4,
}


def _factory_params(name: str) -> Mapping[str, inspect.Parameter]:
    return registry.optimizer_params(registry.optimizer_factory(name))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def default_learning_rate(name: str) -> float:
    """`DEFAULT_LEARNING_RATES` of an optimizer, also under optax's names (``optax.adam`` as ``adam``)."""
    return DEFAULT_LEARNING_RATES.get(name.rsplit(".", 1)[-1], 0.01)


def optimizer_config(cfg: Config, name: str, kwargs: Mapping[str, Any] | None = None, *,
                     inherit: bool = True) -> Config:
    """`cfg` (without its `[sweep]`) training with optimizer `name`.

    The config's own optimizer keeps all its keywords; another optimizer keeps those of them
    it accepts, as the engine does for a sweep over ``optimizer.name`` (none when not
    `inherit`: its own defaults). `kwargs` are set on top. A learning rate is always set
    explicitly, so it is a traced value of the compiled program.
    """
    params = _factory_params(name)
    if name == cfg.optimizer.name:
        kw = dict(cfg.optimizer.kwargs)
    elif inherit:
        kw = {k: v for k, v in cfg.optimizer.kwargs.items() if k in params}
    else:
        kw = {}
    kw.update(kwargs or {})
    if "learning_rate" in params and "learning_rate" not in kw:
        default = params["learning_rate"].default
        kw["learning_rate"] = float(default) if _is_number(default) else default_learning_rate(name)
    opt = dataclasses.replace(cfg.optimizer, name=name, kwargs=kw)
    out = cfg.replace(optimizer=opt, sweep={})
    config_mod.validate(out)
    return out


def factory_defaults(name: str, keys: Sequence[str]) -> dict[str, float]:
    """The factory's numeric defaults of the optimizer keywords among `keys` (None defaults skipped)."""
    params = _factory_params(name)
    out = {}
    for k in keys:
        if "." in k or k not in params:
            continue
        d = params[k].default
        if _is_number(d):
            out[k] = float(d)
    return out


def search_config(cfg: Config, name: str, space: Mapping[str, Any], kwargs: Mapping[str, Any] | None = None,
                  *, kwargs_where: str | None = None) -> Config:
    """`optimizer_config` of `name` (its own defaults) with every keyword of `space` set explicitly.

    The searched keywords the factory has numeric defaults for are set to those defaults
    unless the optimizer's config already sets them; `kwargs` (user one-shot values) go on top.
    A config those `kwargs` make invalid is a `ConfigError` prefixed with `kwargs_where`, the
    option they came from.
    """
    base = optimizer_config(cfg, name, inherit=False)
    extra = {k: v for k, v in factory_defaults(name, list(space)).items() if k not in base.optimizer.kwargs}
    try:
        return optimizer_config(cfg, name, {**extra, **(kwargs or {})}, inherit=False)
    except ConfigError as e:
        if kwargs_where is None:
            raise
        raise ConfigError(f"{kwargs_where}: {e}") from None
