"""The options of `[sweep.protocol_options]`: their schema, the checks of their values, shared options.

A protocol declares its options as a mapping ``{key: Option}``; `parse_options` checks a
user's table against it (unknown keys get a "did you mean", every value is checked by its
kind) and fills in the defaults. A bad value is a `ConfigError` that names the key
(``sweep.protocol_options.KEY``) and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxopt_lab import config as config_mod
from jaxopt_lab import registry
from jaxopt_lab.config import Config, ConfigError
from jaxopt_lab.train.state import RANKING_METRICS

__all__ = [
    "PREFIX", "METRICS", "Option", "TUNING_SEED", "SPACE_SEED", "METRIC", "parse_options", "check_optimizers",
    "check_per_optimizer", "config_optimizer",
]

#: Where the options live in a config; error messages name keys under it.
PREFIX = "sweep.protocol_options"

#: Metrics a protocol may rank by: `runs.csv` column `final_<metric>`, and whether higher is better.
METRICS = RANKING_METRICS


@dataclasses.dataclass(frozen=True)
class Option:
    """One key of `[sweep.protocol_options]`: its kind, default (a value or `f(cfg)`), range and help.

    Kinds: ``int``, ``float``, ``bool``, ``str`` (with `choices`), ``names`` (a non-empty list of
    distinct strings), ``range`` (``[low, high]`` with ``0 < low < high``), ``table`` (checked by
    the protocol) and ``list`` (a list of tables, checked by the protocol).
    """

    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None


#: Options several protocols take, with the same meaning in each.
TUNING_SEED = Option("int", 0, "the seed of every tuning run", low=0)
SPACE_SEED = Option("int", 0, "seed of the random search's draws", low=0)
METRIC = Option("str", "auto", "ranking metric (auto: final validation accuracy, else loss)",
                choices=("auto", *METRICS))


def parse_options(protocol: str, raw: Any, schema: Mapping[str, Option], cfg: Config) -> dict[str, Any]:
    """`raw` checked against `schema`, defaults filled in; `ConfigError` names the offending key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{PREFIX} must be a table of options for protocol {protocol!r}, not {raw!r}")
    for key in raw:
        if key not in schema:
            raise ConfigError(
                f"unknown key {PREFIX}.{key}{config_mod.closest(key, schema)}; valid keys for protocol "
                f"{protocol!r}: {', '.join(schema)}"
            )
    out = {}
    for key, opt in schema.items():
        if key in raw:
            out[key] = _check_option(f"{PREFIX}.{key}", raw[key], opt)
        else:
            out[key] = opt.default(cfg) if callable(opt.default) else opt.default
    return out


def _check_bounds(where: str, value: Any, number: float, opt: Option) -> None:
    if (opt.low is not None and number < opt.low) or (opt.high is not None and number > opt.high):
        lo = "-inf" if opt.low is None else opt.low
        hi = "inf" if opt.high is None else opt.high
        raise ConfigError(f"{where} = {value!r} is out of range; valid range: [{lo}, {hi}]")


def _int_option(where: str, value: Any, opt: Option) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} = {value!r} must be an integer")
    _check_bounds(where, value, value, opt)
    return value


def _float_option(where: str, value: Any, opt: Option) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r} must be a finite number")
    _check_bounds(where, value, float(value), opt)
    return float(value)


def _bool_option(where: str, value: Any, opt: Option) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r} must be true or false")
    return value


def _str_option(where: str, value: Any, opt: Option) -> str:
    if not isinstance(value, str) or (opt.choices and value not in opt.choices):
        raise config_mod.choices_error(where, value, opt.choices or ())
    return value


def _names_option(where: str, value: Any, opt: Option) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} = {value!r} must be a non-empty list of names")
    for i, v in enumerate(value):
        if v in value[:i]:
            raise ConfigError(f"{where}: {v!r} is listed twice")
    return list(value)


def _range_option(where: str, value: Any, opt: Option) -> list[float]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
    if not ok or not (0 < value[0] < value[1]) or not all(math.isfinite(v) for v in value):
        raise ConfigError(f"{where} = {value!r} must be [low, high] with 0 < low < high")
    return [float(value[0]), float(value[1])]


def _table_option(where: str, value: Any, opt: Option) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} = {value!r} must be a table")
    return dict(value)


def _list_option(where: str, value: Any, opt: Option) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where} must be a non-empty list of tables ([[{where}]] in TOML)")
    return [dict(v) for v in value]


#: The check of each option kind: ``(where, value, option) -> the value to use``.
_KIND_CHECKS: dict[str, Callable[[str, Any, Option], Any]] = {
    "int": _int_option, "float": _float_option, "bool": _bool_option, "str": _str_option,
    "names": _names_option, "range": _range_option, "table": _table_option, "list": _list_option,
}


def _check_option(where: str, value: Any, opt: Option) -> Any:
    return _KIND_CHECKS[opt.kind](where, value, opt)


def check_optimizers(names: Sequence[str]) -> list[str]:
    """Every name must be a registered optimizer; the error lists the valid ones."""
    valid = registry.optimizers()
    for name in names:
        if name not in valid:
            reason = registry.refusal(name)
            if reason is not None:
                raise ConfigError(f"{PREFIX}.optimizers: {name!r} cannot be trained by name: {reason}")
            raise config_mod.choices_error(f"{PREFIX}.optimizers", name, valid)
    return list(names)


def check_per_optimizer(where: str, table: Mapping[str, Any], optimizers: Sequence[str]) -> None:
    """A per-optimizer table must only name optimizers being compared."""
    for name in table:
        if name not in optimizers:
            raise ConfigError(
                f"{where}.{name}: {name!r} is not one of {PREFIX}.optimizers{config_mod.closest(name, optimizers)}; "
                f"optimizers: {', '.join(optimizers)}"
            )


def config_optimizer(cfg: Config) -> list[str]:
    """Default of `optimizers`: the config's own optimizer."""
    return [cfg.optimizer.name]
