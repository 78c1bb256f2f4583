"""Machinery the benchmark protocols share: options, per-optimizer configs, sweeps, tables, figures, staging.

Every run of a protocol goes through the vectorized config-sweep engine
(`jaxopt_lab.sweep.config_sweep`): a protocol only writes `[sweep]` tables
(grids, random searches, seed lists) for configs derived from the user's, plans
and runs them, and reads the rows back. The configs of one optimizer in one
protocol differ only in their `[sweep]` table, so the engine's caches (one
trainer and one compiled program per structure and chunk shape) serve the
tuning sweep, the one-shot sweep and the rerun alike; `SweepRunner` also picks
chunk sizes that give every sweep the same chunk shape, so the compiled
program is reused rather than rebuilt for a different shape.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import config as config_mod
from jaxopt_lab.config import Config, ConfigError
from jaxopt_lab.sweep import config_sweep
from jaxopt_lab.sweep import results as results_mod
from jaxopt_lab.sweep import space as space_mod

PREFIX = "sweep.protocol_options"

#: Metrics a protocol may rank by: `runs.csv` column `final_<metric>`, and whether higher is better.
METRICS = {
    "val_accuracy": "max", "val_loss": "min", "test_accuracy": "max", "test_loss": "min",
    "train_accuracy": "max", "train_loss": "min",
}

#: Learning rates for optimizers whose factory has no default: the values their authors or the
#: common frameworks (PyTorch, Keras) recommend. The one-shot ("default hyperparameters") runs of
#: Crowded Valley use them.
DEFAULT_LEARNING_RATES = {
    "sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "noisy_sgd": 0.01, "sign_sgd": 0.001,
    "adam": 1e-3, "adamw": 1e-3, "amsgrad": 1e-3, "radam": 1e-3, "adabelief": 1e-3, "lamb": 1e-3,
    "nadam": 2e-3, "nadamw": 2e-3, "adamax": 2e-3, "adamaxw": 2e-3, "rmsprop": 1e-2, "adagrad": 1e-2,
    "yogi": 1e-2, "lion": 1e-4,
}

# ----------------------------------------------------------------------------- options


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


def _check_option(where: str, value: Any, opt: Option) -> Any:
    def bounds(v: float) -> None:
        if (opt.low is not None and v < opt.low) or (opt.high is not None and v > opt.high):
            lo = "-inf" if opt.low is None else opt.low
            hi = "inf" if opt.high is None else opt.high
            raise ConfigError(f"{where} = {value!r} is out of range; valid range: [{lo}, {hi}]")

    if opt.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {value!r} must be an integer")
        bounds(value)
        return value
    if opt.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where} = {value!r} must be a finite number")
        bounds(float(value))
        return float(value)
    if opt.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} must be true or false")
        return value
    if opt.kind == "str":
        if not isinstance(value, str) or (opt.choices and value not in opt.choices):
            raise config_mod.choices_error(where, value, opt.choices or ())
        return value
    if opt.kind == "names":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} = {value!r} must be a non-empty list of names")
        for i, v in enumerate(value):
            if v in value[:i]:
                raise ConfigError(f"{where}: {v!r} is listed twice")
        return list(value)
    if opt.kind == "range":
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
        if not ok or not (0 < value[0] < value[1]) or not all(math.isfinite(v) for v in value):
            raise ConfigError(f"{where} = {value!r} must be [low, high] with 0 < low < high")
        return [float(value[0]), float(value[1])]
    if opt.kind == "table":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} = {value!r} must be a table")
        return dict(value)
    if opt.kind == "list":
        if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(f"{where} must be a non-empty list of tables ([[{where}]] in TOML)")
        return [dict(v) for v in value]
    raise AssertionError(opt.kind)


def check_optimizers(names: Sequence[str]) -> list[str]:
    """Every name must be a registered optimizer; the error lists the valid ones."""
    from jaxopt_lab import registry

    valid = registry.optimizers()
    for name in names:
        if name not in valid:
            reason = registry.refusal(name)
            if reason is not None:
                raise ConfigError(f"{PREFIX}.optimizers: {name!r} cannot be trained by name: {reason}")
            raise config_mod.choices_error(f"{PREFIX}.optimizers", name, valid)
    return list(names)


def config_optimizer(cfg: Config) -> list[str]:
    """Default of `optimizers`: the config's own optimizer."""
    return [cfg.optimizer.name]


# ----------------------------------------------------------------------------- search spaces


def _factory_params(name: str) -> Mapping[str, inspect.Parameter]:
    from jaxopt_lab import registry

    return registry.optimizer_params(registry.optimizer_factory(name))


def default_learning_rate(name: str) -> float:
    """`DEFAULT_LEARNING_RATES` of an optimizer, also under optax's names (``optax.adam`` as ``adam``)."""
    return DEFAULT_LEARNING_RATES.get(name.rsplit(".", 1)[-1], 0.01)


def check_space(where: str, optimizer: str, space: Any) -> dict[str, dict[str, list]]:
    """A search space: ``{keyword: {distribution: [args]}}`` over the optimizer's keywords.

    Distributions: ``loguniform``, ``uniform`` (``[low, high]``), ``choice`` (a list) and
    ``one_minus_loguniform`` (``[low, high]``: ``1 - x`` with ``x`` log-uniform, the scale Choi et
    al. 2019 search momenta and betas on). A dotted key (``train.weight_decay``) addresses
    another section.
    """
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{where} must be a non-empty table of keyword = {{ distribution = [args] }}")
    from jaxopt_lab import registry

    numeric = list(registry.numeric_keywords(optimizer))
    out = {}
    for key, spec in space.items():
        if "." not in key and key not in numeric:
            raise ConfigError(
                f"{where}.{key} is not a numeric keyword of {optimizer}{config_mod.closest(key, numeric)}; "
                f"valid keywords: {', '.join(numeric)}"
            )
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise ConfigError(f"{where}.{key} = {spec!r} must be one entry such as {{ loguniform = [1e-4, 1.0] }}")
        ((dist, args),) = spec.items()
        valid = ("loguniform", "uniform", "one_minus_loguniform", "choice")
        if dist not in valid:
            raise config_mod.choices_error(f"{where}.{key}", dist, valid)
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
            raise ConfigError(f"{where}.{key}: {e}") from None
        out[key] = {dist: list(args)}
    return out


def engine_distribution(spec: Mapping[str, list]) -> dict[str, list]:
    """A space entry as the engine's `[sweep.random]` syntax (the same table)."""
    ((dist, args),) = spec.items()
    return {dist: list(args)}


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
    """The `[sweep.random]` table of a random search over `space` (see `check_space`)."""
    dists = {full_key(k): engine_distribution(v) for k, v in space.items()}
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
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        kw["learning_rate"] = float(default) if numeric else default_learning_rate(name)
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
        if isinstance(d, (int, float)) and not isinstance(d, bool):
            out[k] = float(d)
    return out


# ----------------------------------------------------------------------------- metrics


def resolve_metric(choice: str, rows: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """(`runs.csv` column, ``"max"``/``"min"``, note) of the metric to rank runs by.

    ``auto`` is the final validation accuracy for classification and the final validation
    loss otherwise (DeepOBS's choice); without a validation split, the training metric, with a
    note saying so.
    """
    def has(col: str) -> bool:
        return any(r.get(col) is not None for r in rows)

    note = ""
    if choice == "auto":
        split = "val" if has("final_val_loss") else "train"
        if split == "train":
            note = "no validation split (data.val_fraction = 0): runs are ranked by their training metric"
        choice = f"{split}_accuracy" if has(f"final_{split}_accuracy") else f"{split}_loss"
    column = f"final_{choice}"
    if not has(column):
        raise ConfigError(
            f"{PREFIX}.metric = {choice!r} is not measured by this config (no {column} in runs.csv); "
            f"valid choices: auto, {', '.join(m for m in METRICS if has('final_' + m))}"
        )
    return column, METRICS[choice], note


def stats(rows: Sequence[Mapping[str, Any]], column: str) -> dict[str, Any]:
    """Mean, std (ddof=1), n of a metric over non-diverged runs (diverged counted separately)."""
    vals = np.asarray([r[column] for r in rows if not r.get("diverged") and r.get(column) is not None], float)
    return {
        "mean": float(vals.mean()) if vals.size else math.nan,
        "std": float(vals.std(ddof=1)) if vals.size > 1 else math.nan,
        "n": int(vals.size),
        "n_diverged": sum(bool(r.get("diverged")) for r in rows),
    }


def pm(s: Mapping[str, Any]) -> str:
    """``mean ± std`` for a table cell."""
    if not s or s.get("n", 0) == 0 or math.isnan(s["mean"]):
        return "-"
    if math.isnan(s["std"]):
        return f"{s['mean']:.4g}"
    return f"{s['mean']:.4g} ± {s['std']:.2g}"


def swept_point(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: row[k] for k in keys if k != "seed"}


# ----------------------------------------------------------------------------- sweeps


@dataclasses.dataclass
class SweepRecord:
    """One sweep a protocol ran: where its results are and what it was for."""

    name: str
    path: str
    kind: str
    optimizer: str
    table: dict[str, Any]
    runs: int
    compilations: int
    wall_seconds: float
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(d.pop("extra"))
        return d


class SweepRunner:
    """Runs a protocol's sweeps through the engine and writes each into the staging folder.

    Chunk shapes: the engine compiles one program per structure *and* chunk shape, so every
    sweep is given a chunk size whose shape equals `shape` when one exists (always, on CPU,
    where it is the device count: each device runs its runs one after another in any case).
    """

    def __init__(self, stage: Path, *, execution: str = "auto", progress: bool | None = None,
                 chunk_size: int | None = None, shape_hint: int = 1, label: str = "protocol"):
        import jax

        from jaxopt_lab.sweep import runner

        self.stage = stage
        self.execution = runner.default_execution() if execution == "auto" else execution
        self.progress = progress
        self.chunk_size = chunk_size
        self.n_devices = len(jax.local_devices())
        d = self.n_devices
        self.shape = d if self.execution == "map" else math.ceil(max(shape_hint, 1) / d) * d
        self.records: list[SweepRecord] = []
        self.label = label

    def _chunk(self, n: int) -> int | None:
        from jaxopt_lab.sweep import runner

        if self.chunk_size is not None:
            return self.chunk_size
        for cs in range(self.shape, 0, -1):
            if runner.chunk_plan(n, self.n_devices, cs)[0] == self.shape:
                return cs
        return None

    def say(self, text: str) -> None:
        if self.progress is not False:
            print(f"{self.label}: {text}", file=sys.stderr, flush=True)

    def run(self, cfg: Config, table: Mapping[str, Any], subdir: str, *, kind: str, optimizer: str,
            **extra: Any) -> config_sweep.ConfigSweepResult:
        """Plan and run `cfg` with `[sweep] = table`, write it to ``stage/subdir``, record it."""
        scfg = cfg.replace(sweep=dict(table))
        sweep_plan = config_sweep.plan(scfg)
        self.say(f"{subdir}: {len(sweep_plan.points)} runs")
        result = config_sweep.run_sweep(
            scfg, sweep_plan=sweep_plan, chunk_size=self._chunk(len(sweep_plan.points)),
            execution=self.execution, progress=self.progress,
        )
        config_sweep.write_results(self.stage / subdir, result, report=False)
        self.records.append(SweepRecord(
            name=subdir.replace("/", ":"), path=subdir, kind=kind, optimizer=optimizer, table=dict(table),
            runs=len(result.rows), compilations=result.stats.compilations,
            wall_seconds=result.stats.wall_seconds, extra=extra,
        ))
        return result


#: A temporary folder beside `out`, moved into `out` only when the block completes.
staged = results_mod.staged_folder


# ----------------------------------------------------------------------------- tables and figures


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """A CSV of row dicts: floats in full precision (``inf`` as ``inf``), None as an empty cell."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            cells = []
            for c in cols:
                v = r.get(c)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    cells.append("")
                elif isinstance(v, bool):
                    cells.append("true" if v else "false")
                elif isinstance(v, float):
                    cells.append(repr(v))
                else:
                    cells.append(str(v))
            w.writerow(cells)
    return path


def mean_std_curves(curves: Mapping[str, np.ndarray], path: Path, *, ylabel: str, title: str,
                    logy: bool = False) -> Path:
    """Mean ± one standard deviation over seeds per epoch: `curves[label]` has shape (seeds, epochs).

    DeepOBS plots its learning curves this way; NaN (epochs after a run stopped) are skipped.
    """
    import warnings

    from jaxopt_lab import plots

    fig, ax = plots.new_figure(figsize=(6.5, 4))
    for i, (label, c) in enumerate(curves.items()):
        c = np.atleast_2d(np.asarray(c, float))
        c = np.where(np.isfinite(c), c, np.nan)
        if not np.isfinite(c).any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(c, axis=0)
            std = np.nanstd(c, axis=0, ddof=1) if c.shape[0] > 1 else np.zeros_like(mean)
        ep = np.arange(1, c.shape[1] + 1)
        color = f"C{i % 10}"
        ax.plot(ep, mean, color=color, label=f"{label} (n={c.shape[0]})")
        ax.fill_between(ep, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return plots.save(fig, path)


def errorbar_figure(labels: Sequence[str], series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    path: Path, *, ylabel: str, title: str) -> Path:
    """Bars with ±std error bars: one group per label, one bar per series (NaN: no bar)."""
    from jaxopt_lab import plots

    fig, ax = plots.new_figure(figsize=(max(5.0, 1.3 * len(labels) + 2), 4))
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, (name, (means, stds)) in enumerate(series.items()):
        m = np.asarray(means, float)
        s = np.nan_to_num(np.asarray(stds, float))
        ax.bar(x + (i - (n - 1) / 2) * width, m, width, yerr=s, capsize=4, color=f"C{i % 10}", label=name)
    ax.set_xticks(x, list(labels))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    finite = [v for means, _ in series.values() for v in means if np.isfinite(v)]
    if finite and "accuracy" in ylabel:
        lo = min(finite)
        ax.set_ylim(max(0.0, lo - 0.1 * (1 - lo) - 0.05), 1.0)
    return plots.save(fig, path)


def history_curves(result: config_sweep.ConfigSweepResult, key: str) -> np.ndarray | None:
    h = result.histories.get(key)
    if h is None or not np.isfinite(np.asarray(h, float)).any():
        return None
    return np.asarray(h, float)


# ----------------------------------------------------------------------------- search, then rerun


@dataclasses.dataclass
class Tuned:
    """A random search of one optimizer and the rerun of its best configuration."""

    optimizer: str
    config: Config
    tuning: config_sweep.ConfigSweepResult
    column: str
    mode: str
    note: str
    best_row: Mapping[str, Any] | None
    point: dict[str, Any] | None
    rerun: config_sweep.ConfigSweepResult | None

    def best_config(self) -> dict[str, Any] | None:
        if self.point is None:
            return None
        return config_sweep.to_dict(config_sweep.apply_overrides(self.config, self.point))


def search_and_rerun(runner: SweepRunner, cfg: Config, name: str, space: Mapping[str, Mapping[str, list]], *,
                     trials: int, space_seed: int, tuning_seed: int, rerun_seeds: int, metric: str,
                     search: str = "random") -> Tuned:
    """A search of `trials` configurations (one seed), then the best rerun over seeds 0..n-1.

    `search` is the `[sweep]` table the trials come from: ``"random"`` or ``"quasirandom"``
    (both take the table `random_table` writes). Both sweeps share the config and the swept
    keys, so the rerun reuses the search's program.
    """
    from jaxopt_lab.sweep import results as results_mod

    table = {"seeds": [tuning_seed], search: random_table(space, trials, space_seed)}
    tuning = runner.run(cfg, table, f"tuning/{name}", kind="tuning", optimizer=name)
    column, mode, note = resolve_metric(metric, tuning.rows)
    row = results_mod.best_run(tuning.rows, column, mode)
    point = rerun = None
    if row is not None:
        point = swept_point(row, tuning.plan.swept_keys)
        rerun = runner.run(cfg, point_table(point, range(rerun_seeds)), f"rerun/{name}", kind="rerun",
                           optimizer=name, best=point)
    return Tuned(name, cfg, tuning, column, mode, note, row, point, rerun)


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


def check_per_optimizer(where: str, table: Mapping[str, Any], optimizers: Sequence[str]) -> None:
    """A per-optimizer table must only name optimizers being compared."""
    for name in table:
        if name not in optimizers:
            raise ConfigError(
                f"{where}.{name}: {name!r} is not one of {PREFIX}.optimizers{config_mod.closest(name, optimizers)}; "
                f"optimizers: {', '.join(optimizers)}"
            )


def point_text(point: Mapping[str, Any] | None) -> str:
    if not point:
        return "-"
    return ", ".join(f"{k.split('.', 1)[1] if k.startswith('optimizer.') else k}={v:.3g}"
                     if isinstance(v, float) else f"{k}={v}" for k, v in point.items())
