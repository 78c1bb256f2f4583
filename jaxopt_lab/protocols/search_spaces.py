"""Search spaces of the protocols and the `[sweep]` tables built from them.

A space is ``{keyword: {distribution: [args]}}`` over an optimizer's numeric keywords
(`check_space`). A protocol never calls the engine with anything but a config and its
`[sweep]` table: `random_table` turns a space into a `[sweep.random]` (or ``quasirandom``)
table, `point_table` reruns one configuration over seeds, both in the TOML shape
`nest` gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jaxopt_lab import config as config_mod
from jaxopt_lab import registry
from jaxopt_lab.config import ConfigError
from jaxopt_lab.sweep import space as space_mod

__all__ = [
    "DISTRIBUTIONS", "check_space", "space_rows", "full_key", "nest", "random_table", "point_table", "swept_point",
]

#: The distributions a space entry may name.
DISTRIBUTIONS = ("loguniform", "uniform", "one_minus_loguniform", "choice")


def check_space(where: str, optimizer: str, space: Any) -> dict[str, dict[str, list]]:
    """A search space: ``{keyword: {distribution: [args]}}`` over the optimizer's keywords.

    Distributions: ``loguniform``, ``uniform`` (``[low, high]``), ``choice`` (a list) and
    ``one_minus_loguniform`` (``[low, high]``: ``1 - x`` with ``x`` log-uniform, the scale Choi et
    al. 2019 search momenta and betas on). A dotted key (``train.weight_decay``) addresses
    another section.
    """
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{where} must be a non-empty table of keyword = {{ distribution = [args] }}")
    numeric = list(registry.numeric_keywords(optimizer))
    out = {}
    for key, spec in space.items():
        if "." not in key and key not in numeric:
            raise ConfigError(
                f"{where}.{key} is not a numeric keyword of {optimizer}{config_mod.closest(key, numeric)}; "
                f"valid keywords: {', '.join(numeric)}"
            )
        out[key] = _check_distribution(f"{where}.{key}", spec)
    return out


def _check_distribution(where: str, spec: Any) -> dict[str, list]:
    """One space entry, ``{distribution: [args]}``, checked by the engine's own distributions."""
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ConfigError(f"{where} = {spec!r} must be one entry such as {{ loguniform = [1e-4, 1.0] }}")
    ((dist, args),) = spec.items()
    if dist not in DISTRIBUTIONS:
        raise config_mod.choices_error(where, dist, DISTRIBUTIONS)
    try:
        if dist == "choice":
            space_mod.choice(args)
        elif not isinstance(args, list) or len(args) != 2:
            raise ValueError(f"{dist} takes [low, high], not {args!r}")
        elif dist == "uniform":
            space_mod.uniform(*args)
        else:
            space_mod.loguniform(*args)
            if dist == "one_minus_loguniform" and args[1] > 1:
                raise ValueError(f"one_minus_loguniform high={args[1]!r} must be <= 1 (values are 1 - x)")
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    return {dist: list(args)}


def space_rows(spaces: Mapping[str, Mapping[str, Mapping[str, list]]]) -> list[dict[str, Any]]:
    """The searched spaces as table rows: optimizer, hyperparameter, distribution, bounds."""
    rows = []
    for name, space in spaces.items():
        for key, spec in space.items():
            ((dist, args),) = spec.items()
            if dist == "choice":
                rows.append({"optimizer": name, "hyperparameter": key, "distribution": "choice",
                             "low": None, "high": None, "values": ", ".join(map(str, args))})
            elif dist == "one_minus_loguniform":
                rows.append({"optimizer": name, "hyperparameter": f"1 - {key}", "distribution": "loguniform",
                             "low": float(args[0]), "high": float(args[1]), "values": None})
            else:
                rows.append({"optimizer": name, "hyperparameter": key, "distribution": dist,
                             "low": float(args[0]), "high": float(args[1]), "values": None})
    return rows


def full_key(key: str) -> str:
    """A space key as a config key: bare names are optimizer keywords."""
    return key if "." in key else f"optimizer.{key}"


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"optimizer.b1": v}`` -> ``{"optimizer": {"b1": v}}`` (the TOML shape of `[sweep]` tables)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def random_table(space: Mapping[str, Mapping[str, list]], trials: int, seed: int) -> dict[str, Any]:
    """The `[sweep.random]` table of a random search over `space` (see `check_space`).

    A space entry is already in the engine's `[sweep.random]` syntax; only its key becomes a
    full config key.
    """
    dists = {}
    for key, spec in space.items():
        ((dist, args),) = spec.items()
        dists[full_key(key)] = {dist: list(args)}
    return {"trials": trials, "seed": seed, **nest(dists)}


def point_table(point: Mapping[str, Any], seeds: Sequence[int]) -> dict[str, Any]:
    """A `[sweep]` table running one configuration over `seeds`.

    The configuration's keys stay *swept* (one-value grid axes) rather than written into the
    config, so the rerun has the same structure, and hence the same compiled program, as the
    search it comes from.
    """
    table: dict[str, Any] = {"seeds": [int(s) for s in seeds]}
    if point:
        table["grid"] = nest({k: [v] for k, v in point.items()})
    return table


def swept_point(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The swept values of a `runs.csv` row but its seed: the configuration to rerun."""
    return {k: row[k] for k in keys if k != "seed"}
