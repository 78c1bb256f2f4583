"""Experiment configuration: typed sections, defaults, and validation of TOML input.

A config has the sections of docs/guide.md (`data`, `model`, `train`,
`optimizer`, `sweep`). Every value is checked before anything runs: an unknown
section or key, a wrong type, an out-of-range value or an unknown name raises
`ConfigError` with one line naming the key, the value and the valid choices
(the CLI prints it and exits with status 2).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """Bad configuration input: the message names the key and the valid choices."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "moons"
    n_samples: int = 500
    noise: float = 0.25
    random_state: int = 7
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    stratify: bool = True
    standardize: bool = False
    path: str | None = None
    label_column: str | None = None
    # dataset = "npz": the arrays' names in the .npz file at `path`, or, for a pair of .npy
    # files, `path` holds x and `y_path` holds y (x_key/y_key are then unused).
    x_key: str = "x"
    y_key: str = "y"
    y_path: str | None = None
    # "classification" (labels mapped to 0..k-1) or "regression"; None: the data set's own task.
    task: str | None = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # kind = "cnn": convolutions (one entry per layer in channels/kernels/strides, padding SAME) on
    # rows reshaped to image_shape (H, W, C), then `pool`, then the dense layers `hidden`.
    kind: str = "mlp"
    channels: tuple[int, ...] = (8, 16)
    kernels: tuple[int, ...] = (3, 3)
    strides: tuple[int, ...] = (1, 2)
    image_shape: tuple[int, ...] = ()
    pool: str = "flatten"
    hidden: tuple[int, ...] = (20,)
    activation: str = "relu"
    init: str = "he_normal"
    init_scale: float = 1.0
    dropout: float = 0.0
    norm: str = "none"
    bn_momentum: float = 0.9
    #: "package.module:function" returning a model (see `jaxopt_lab.models`); called with `kwargs`.
    factory: str | None = None
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    loss: str = "cross_entropy"
    epochs: int = 400
    batch_size: int = 0
    drop_last: bool = False
    early_stopping_patience: int = 0
    min_delta: float = 0.0
    restore_best: bool = True
    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    input_noise: float = 0.0
    precision: str = "float32"
    shuffle_seed: int | None = None
    divergence_threshold: float = 1e6


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant"
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PlateauConfig:
    """Performance scheduling: `reduce_on_plateau` fed the validation loss per epoch."""

    factor: float = 0.5
    patience: int = 10
    rtol: float = 1e-4
    atol: float = 0.0
    cooldown: int = 0
    min_scale: float = 0.0


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "sgd"
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"learning_rate": 0.1})
    schedule: ScheduleConfig | None = None
    plateau: PlateauConfig | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    sweep: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def replace(self, **sections: Any) -> Config:
        return dataclasses.replace(self, **sections)


def closest(name: str, choices: Any) -> str:
    """' (did you mean ...?)' for a near miss, else ''."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def choices_error(key: str, value: Any, choices: Any) -> ConfigError:
    valid = ", ".join(sorted(str(c) for c in choices))
    return ConfigError(f"{key} = {value!r} is not a valid choice{closest(value, choices)}; valid choices: {valid}")


_SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _field_types(cls: type) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, annotation: str, default: Any) -> Any:
    """Check a TOML value against a dataclass field's annotation (as written in this module)."""
    ann = annotation.replace(" ", "")
    optional = "None" in ann
    if value is None and optional:
        return None
    if ann.startswith("tuple"):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        # A tuple too: `sweep.config_sweep.to_dict` hands the config's own tuples back through here.
        sequence = isinstance(value, list | tuple)
        if not sequence or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{key} = {value!r} must be a list of integers")
        return tuple(value)
    if ann.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r} must be true or false")
        return value
    if ann.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r} must be an integer")
        return value
    if ann.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r} must be a number")
        return float(value)
    if ann.startswith("Mapping"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} = {value!r} must be a table ([{key}])")
        return dict(value)
    if ann.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r} must be a string")
        return value
    return value


def _section(name: str, raw: Mapping[str, Any]) -> Any:
    cls = _SECTION_TYPES[name]
    fields = _field_types(cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(
                f"unknown key {name}.{key}{closest(key, fields)}; valid keys of [{name}]: {', '.join(fields)}"
            )
        f = fields[key]
        values[key] = _coerce(f"{name}.{key}", value, str(f.type), f.default)
    return cls(**values)


def _optimizer_section(raw: Mapping[str, Any]) -> OptimizerConfig:
    raw = dict(raw)
    name = raw.pop("name", "sgd")
    if not isinstance(name, str):
        raise ConfigError(f"optimizer.name = {name!r} must be a string")
    schedule = raw.pop("schedule", None)
    plateau = raw.pop("plateau", None)
    sched_cfg = None
    if schedule is not None:
        if isinstance(schedule, str):
            schedule = {"name": schedule}
        if not isinstance(schedule, Mapping) or "name" not in schedule:
            raise ConfigError("optimizer.schedule must be a table with a 'name' key, e.g. name = \"cosine\"")
        schedule = dict(schedule)
        sname = schedule.pop("name")
        sched_cfg = ScheduleConfig(name=sname, kwargs=schedule)
    plat_cfg = None
    if plateau is not None:
        if not isinstance(plateau, Mapping):
            raise ConfigError("optimizer.plateau must be a table of reduce_on_plateau keywords")
        fields = _field_types(PlateauConfig)
        vals = {}
        for key, value in plateau.items():
            if key not in fields:
                raise ConfigError(
                    f"unknown key optimizer.plateau.{key}{closest(key, fields)}; valid keys: {', '.join(fields)}"
                )
            vals[key] = _coerce(f"optimizer.plateau.{key}", value, str(fields[key].type), fields[key].default)
        plat_cfg = PlateauConfig(**vals)
    for key, value in raw.items():
        if isinstance(value, bool) or isinstance(value, (int, float)) or value is None:
            continue
        if isinstance(value, str) and key in ("mu_dtype", "accumulator_dtype"):
            continue
        raise ConfigError(f"optimizer.{key} = {value!r} must be a number or a boolean")
    return OptimizerConfig(name=name, kwargs=raw, schedule=sched_cfg, plateau=plat_cfg)


def from_dict(raw: Mapping[str, Any]) -> Config:
    """Build a `Config` from a parsed TOML mapping, checking sections, keys and types.

    Names (optimizer, dataset, activation, ...) and ranges are checked by
    `validate`, which needs the registries of the other modules.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("a config must be a table of sections")
    valid_sections = ("data", "model", "train", "optimizer", "sweep")
    for section in raw:
        if section not in valid_sections:
            raise ConfigError(
                f"unknown section [{section}]{closest(section, valid_sections)}; valid sections: "
                + ", ".join(valid_sections)
            )
        if not isinstance(raw[section], Mapping):
            raise ConfigError(f"[{section}] must be a table, not {raw[section]!r}")
    kwargs: dict[str, Any] = {}
    for name in _SECTION_TYPES:
        if name in raw:
            kwargs[name] = _section(name, raw[name])
    if "optimizer" in raw:
        kwargs["optimizer"] = _optimizer_section(raw["optimizer"])
    if "sweep" in raw:
        kwargs["sweep"] = dict(raw["sweep"])
    return Config(**kwargs)


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate a TOML config file.

    `overrides` (``{"train.epochs": 50, "sweep.grid.optimizer.learning_rate": [0.1, 0.3]}``, what
    ``--set`` gives) replace or add values of the file before anything is checked, so they are
    validated exactly like the file's own.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text (byte {e.start}: {e.reason}); TOML files "
                          "are UTF-8") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {e}") from None
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    cfg = from_dict(raw)
    validate(cfg)
    return cfg


#: The largest seed: seeds are 32-bit (`jax.random.PRNGKey` keeps the low 32 bits), so a larger one
#: would silently alias a smaller one and is refused instead (docs/guide.md).
SEED_MAX = 2**32 - 1
#: Upper bounds that keep a typo (``epochs = 1000000000000``) a clear error instead of an overflow or
#: an allocation failure after the sweep started (docs/guide.md).
MAX_EPOCHS = 10_000_000
MAX_WIDTH = 1 << 20


def check_seed(key: str, value: Any) -> None:
    """`ConfigError` unless `value` is an integer seed in [0, `SEED_MAX`]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= SEED_MAX:
        raise ConfigError(f"{key} = {value!r} is out of range: seeds are integers in [0, {SEED_MAX}] (2**32 - 1)")


def _check(key: str, value: Any, low: float | None, high: float | None, *, low_open=False, high_open=False,
           allow_inf: bool = False) -> None:
    """`ConfigError` unless `value` lies in the range; an unbounded side still excludes infinity
    (``[0.0, inf)``) unless `allow_inf`."""
    if value is None:
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} = {value!r} must be a number") from None
    ok = not math.isnan(v) and (allow_inf or math.isfinite(v))
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise ConfigError(
            f"{key} = {value!r} is out of range; valid range: {lb}{'-inf' if low is None else low}, "
            f"{'inf' if high is None else high}{hb}"
        )


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw[a][b]...[z] = value`` for ``key = "a.b...z"``, creating tables on the way."""
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"{key!r} is not a section.key name (e.g. optimizer.learning_rate)")
    node = raw
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is a value, not a table: cannot set {key}")
    node[parts[-1]] = value


def validate(cfg: Config, *, data: bool = True, optimizer: bool = True) -> None:
    """Check every name and range of a config, raising `ConfigError` on the first problem.

    The one check of every path in: config files, each value a sweep draws, and `make_train` /
    `Trainer` built from a `Config` in Python. `data=False` skips the data set's section (a
    `Trainer` given its data), `optimizer=False` the optimizer's (one given an optimizer function).
    """
    if not isinstance(cfg, Config):
        raise ConfigError(f"config must be a jaxopt_lab.config.Config, not {type(cfg).__name__}")
    if data:
        _validate_data(cfg.data)
    _validate_model_train(cfg)
    if optimizer:
        validate_optimizer(cfg.optimizer)


def _validate_data(d: DataConfig) -> None:
    from jaxopt_lab import registry

    if d.dataset not in registry.dataset_names():
        raise choices_error("data.dataset", d.dataset, registry.dataset_names())
    _check("data.n_samples", d.n_samples, 2, None)
    check_seed("data.random_state", d.random_state)
    _check("data.noise", d.noise, 0, None)
    _check("data.val_fraction", d.val_fraction, 0, 1, high_open=True)
    _check("data.test_fraction", d.test_fraction, 0, 1, high_open=True)
    if d.val_fraction + d.test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {d.val_fraction + d.test_fraction!r} must be below 1"
        )
    if d.dataset == "csv" and (d.path is None or d.label_column is None):
        raise ConfigError("data.dataset = 'csv' needs data.path and data.label_column")
    if d.dataset == "npz" and d.path is None:
        raise ConfigError("data.dataset = 'npz' needs data.path (an .npz file, or an .npy file of x with data.y_path)")
    if d.task is not None and d.task not in ("classification", "regression"):
        raise choices_error("data.task", d.task, ("classification", "regression"))


def _validate_model_train(cfg: Config) -> None:
    from jaxopt_lab import registry

    m, t = cfg.model, cfg.train
    _validate_cnn(m)
    for h in m.hidden:
        _check("model.hidden", h, 1, MAX_WIDTH)
    if m.activation not in registry.activation_names():
        raise choices_error("model.activation", m.activation, registry.activation_names())
    if m.init != "auto" and m.init not in registry.initializer_names():
        base = m.init.split(":")[0]
        if base not in registry.initializer_names():
            raise choices_error("model.init", m.init, [*registry.initializer_names(), "auto"])
        from jaxopt_lab.nn.init import get_initializer

        try:  # the argument after ':' ("normal:0.3"): a number in range
            get_initializer(m.init)
        except ValueError as e:
            raise ConfigError(f"model.{e}") from None
    _check("model.dropout", m.dropout, 0, 1, high_open=True)
    _check("model.init_scale", m.init_scale, 0, None)
    if m.norm not in ("none", "batch", "layer"):
        raise choices_error("model.norm", m.norm, ("none", "batch", "layer"))
    _check("model.bn_momentum", m.bn_momentum, 0, 1)
    if m.factory is not None:
        module, sep, attr = m.factory.partition(":")
        if not (sep and module and attr):
            raise ConfigError(f"model.factory = {m.factory!r} must be 'package.module:function'")
    if t.loss not in registry.loss_names():
        raise choices_error("train.loss", t.loss, registry.loss_names())
    _check("train.epochs", t.epochs, 1, MAX_EPOCHS)
    _check("train.batch_size", t.batch_size, 0, None)
    _check("train.early_stopping_patience", t.early_stopping_patience, 0, None)
    _check("train.min_delta", t.min_delta, 0, None)
    for key in ("l1", "l2", "weight_decay", "clip_norm", "input_noise"):
        _check(f"train.{key}", getattr(t, key), 0, None)
    if t.precision not in ("float32", "float64"):
        raise choices_error("train.precision", t.precision, ("float32", "float64"))
    if t.shuffle_seed is not None:
        check_seed("train.shuffle_seed", t.shuffle_seed)
    _check("train.divergence_threshold", t.divergence_threshold, 0, None, low_open=True, allow_inf=True)


def _validate_cnn(m: ModelConfig) -> None:
    """`model.kind` and, for "cnn", the layer lists, the image shape and the pooling."""
    if m.kind not in ("mlp", "cnn"):
        raise choices_error("model.kind", m.kind, ("mlp", "cnn"))
    if m.kind != "cnn":
        return
    if not m.channels or len(m.kernels) != len(m.channels) or len(m.strides) != len(m.channels):
        raise ConfigError(
            f"model.channels, model.kernels and model.strides need one entry per conv layer, at least one: "
            f"got {len(m.channels)}, {len(m.kernels)} and {len(m.strides)} entries"
        )
    for key in ("channels", "kernels", "strides"):
        for value in getattr(m, key):
            _check(f"model.{key}", value, 1, None)
    if len(m.image_shape) not in (2, 3):
        raise ConfigError(
            f"model.image_shape = {list(m.image_shape)!r}: model.kind = 'cnn' needs [height, width] or "
            "[height, width, channels], e.g. [8, 8, 1] for the digits"
        )
    for value in m.image_shape:
        _check("model.image_shape", value, 1, None)
    if m.pool not in ("avg", "flatten"):
        raise choices_error("model.pool", m.pool, ("avg", "flatten"))
    if m.norm != "none":
        raise ConfigError(f"model.norm = {m.norm!r}: model.kind = 'cnn' has no normalization layers; use 'none'")


def validate_optimizer(o: OptimizerConfig) -> None:
    """The optimizer's name, its keywords (those its factory takes) and their ranges."""
    from jaxopt_lab import registry

    factories = registry.optimizers()
    if o.name not in factories:
        reason = registry.refusal(o.name)
        if reason is not None:
            raise ConfigError(f"optimizer.name = {o.name!r} cannot be trained by name: {reason}")
        raise choices_error("optimizer.name", o.name, factories)
    reason = registry.unusable(o.name)
    if reason is not None:
        raise ConfigError(f"optimizer.name = {o.name!r} cannot take a step on a parameter tree: {reason}")
    params = registry.optimizer_params(factories[o.name])
    for key, value in o.kwargs.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
            raise ConfigError(f"optimizer.{key} = {value!r} is not a finite number")
    for key in o.kwargs:
        if key not in params:
            raise ConfigError(
                f"optimizer.{key} is not a keyword of {o.name}{closest(key, params)}; valid keywords: "
                + ", ".join(params)
            )
    lr = params.get("learning_rate")
    if lr is not None and "learning_rate" not in o.kwargs and lr.default is inspect.Parameter.empty:
        raise ConfigError(f"optimizer.learning_rate is required by {o.name}")
    try:
        registry.build_optimizer(o.name, dict(o.kwargs))
    except ValueError as e:
        raise ConfigError(f"optimizer: {e}") from None
    except TypeError as e:
        raise ConfigError(f"optimizer.{o.name}: {e}") from None
    traced_error = registry.traced_value_error(o.name, o.kwargs)
    if traced_error is not None:
        raise ConfigError(traced_error)
    if o.schedule is not None:
        schedules = registry.schedules()
        if o.schedule.name not in schedules:
            raise choices_error("optimizer.schedule.name", o.schedule.name, schedules)
        sparams = inspect.signature(schedules[o.schedule.name]).parameters
        for key in o.schedule.kwargs:
            if key not in sparams or key == "init_value":
                valid = [p for p in sparams if p != "init_value"]
                raise ConfigError(
                    f"optimizer.schedule.{key} is not a keyword of {o.schedule.name}{closest(key, valid)}; "
                    f"valid keywords: {', '.join(valid)} (init_value is optimizer.learning_rate)"
                )
        _check_schedule_values(o)
    if o.plateau is not None:
        _check("optimizer.plateau.factor", o.plateau.factor, 0, 1, low_open=True)
        _check("optimizer.plateau.patience", o.plateau.patience, 0, None)


def _check_schedule_values(o: OptimizerConfig) -> None:
    """Each schedule keyword of the type its schedule takes (a string only where the default is one,
    numbers finite), and the schedule buildable from them."""
    from jaxopt_lab import registry

    params = inspect.signature(registry.schedules()[o.schedule.name]).parameters
    for key, value in o.schedule.kwargs.items():
        takes_text = isinstance(params[key].default, str)
        if isinstance(value, str) and not takes_text:
            raise ConfigError(f"optimizer.schedule.{key} = {value!r} must be a number")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
            raise ConfigError(f"optimizer.schedule.{key} = {value!r} must be a finite number")
    lr = o.kwargs.get("learning_rate", 0.1)
    try:
        registry.build_schedule(o.schedule.name, lr, o.schedule.kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"optimizer.schedule ({o.schedule.name}): {e}") from None
