"""Experiment configuration: typed sections, defaults, and validation of TOML input.

A config has the sections of docs/guide.md (`data`, `model`, `train`,
`optimizer`, `sweep`). Every value is checked before anything runs: an unknown
section or key, a wrong type, an out-of-range value or an unknown name raises
`ConfigError` with one line naming the key, the value and the valid choices
(the CLI prints it and exits with status 2).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import registry
from jaxopt_lab._checks import ConfigError, choices_error, closest
from jaxopt_lab.nn.init import get_initializer

#: The largest seed: seeds are 32-bit (`jax.random.PRNGKey` keeps the low 32 bits), so a larger one
#: would silently alias a smaller one and is refused instead (docs/guide.md).
SEED_MAX = 2**32 - 1
#: Upper bounds that keep a typo (``epochs = 1000000000000``) a clear error instead of an overflow or
#: an allocation failure after the sweep started (docs/guide.md).
MAX_EPOCHS = 10_000_000
MAX_WIDTH = 1 << 20


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """What one config key accepts and how a sweep may vary it.

    The one source of truth for a key of `[data]`, `[model]`, `[train]` and `[optimizer.plateau]`:
    `validate` checks its range and choices from here, the engine's traceable and switchable key
    sets (`TRACEABLE_KEYS`, `SWITCHABLE_KEYS`, `RANDOM_KEYS`) are derived from here, and so are
    docs/guide.md's key tables (`key_table`) and `jaxopt-lab list keys`. Adding a traceable
    training key is one `option(...)` field here plus its use in `jaxopt_lab.train.step`.

    Attributes:
      help: what the key does, one sentence or two (markdown; the guide's "meaning" column).
      low, high: the valid range (None: unbounded); `low_open`/`high_open` exclude the bound.
      allow_inf: infinity is a valid value (an unbounded side excludes it otherwise).
      choices: the valid values, or a function returning them (names from `jaxopt_lab.registry`).
      seed: the value is a 32-bit seed (`check_seed`).
      traceable: numeric and may be swept without recompiling (a traced scalar in `hparams`).
      switchable: its code is compiled in only when the config turns it on (nonzero) or a sweep
        varies it: on tiny models every extra op per step costs time.
      random: it draws fresh randomness at every update (the step then derives per-update keys).
    """

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False
    choices: tuple[str, ...] | Callable[[], Sequence[str]] | None = None
    seed: bool = False
    traceable: bool = False
    switchable: bool = False
    random: bool = False

    def valid_choices(self) -> list[str] | None:
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)

    def range_text(self) -> str:
        """The valid range as written in error messages, or '' when the key has none. An unbounded
        side is open (infinity is not a valid value) unless `allow_inf`."""
        if self.seed:
            return f"[0, {SEED_MAX}]"
        if self.low is None and self.high is None:
            return ""
        lb = "(" if self.low_open or (self.low is None and not self.allow_inf) else "["
        hb = ")" if self.high_open or (self.high is None and not self.allow_inf) else "]"
        return f"{lb}{'-inf' if self.low is None else self.low}, {'inf' if self.high is None else self.high}{hb}"

    def in_range(self, value: float) -> bool:
        ok = not math.isnan(value) and (self.allow_inf or math.isfinite(value))
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        return ok

    def check(self, key: str, value: Any) -> None:
        """`ConfigError` naming `key` unless `value` (each entry, for a list) is valid."""
        if value is None:
            return
        if self.seed:
            check_seed(key, value)
            return
        valid = self.valid_choices()
        if valid is not None and value not in valid:
            raise choices_error(key, value, valid)
        if self.low is None and self.high is None:
            return
        for v in value if isinstance(value, tuple) else (value,):
            try:
                number = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{key} = {v!r} must be a number") from None
            if not self.in_range(number):
                raise ConfigError(f"{key} = {v!r} is out of range; valid range: {self.range_text()}")


def option(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
           **spec: Any) -> Any:
    """A config dataclass field with its `KeySpec` (keywords of `KeySpec`)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"spec": KeySpec(help=help, **spec)})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = option("moons", choices=registry.dataset_names, help=(
        "`jaxopt-lab list` shows all. digits, breast_cancer, wine, iris and diabetes (regression) are read from "
        "scikit-learn's installed copy (`pip install 'jaxopt-lab[data]'`)"))
    n_samples: int = option(500, low=2, help="generator size (generators that take it)")
    noise: float = option(0.25, low=0, help="generator noise (generators that take it)")
    random_state: int = option(7, seed=True, help="seed of the data generator **and** of the "
                               "train/validation/test split")
    val_fraction: float = option(0.2, low=0, high=1, high_open=True, help=(
        "validation fraction; 0 disables it: validation metrics are then empty in `runs.csv` and early stopping "
        "monitors the training loss"))
    test_fraction: float = option(0.0, low=0, high=1, high_open=True, help="test fraction; 0 disables it")
    stratify: bool = option(True, help="keep class proportions in every part")
    standardize: bool = option(False, help="standardize features with statistics of the training rows only")
    path: str | None = option(None, help=(
        "the file, for `dataset = \"csv\"` or `\"npz\"` (an archive saved by `np.savez(path, x=..., y=...)`, "
        "or an `.npy` file of the features with `y_path`). Features are rows `(n, d)` or images `(n, H, W[, C])` "
        "(flattened row-major); pickled objects are refused, never loaded"))
    label_column: str | None = option(None, help="for `dataset = \"csv\"`: the label column")
    x_key: str = option("x", help="for `dataset = \"npz\"`: the features' array in the archive")
    y_key: str = option("y", help="for `dataset = \"npz\"`: the labels' array in the archive")
    y_path: str | None = option(None, help="for `dataset = \"npz\"` from two `.npy` files (`np.save`): the labels")
    task: str | None = option(None, choices=("classification", "regression"), help=(
        "the data set's own by default; `\"classification\"` (labels, integers or strings, mapped to `0..k-1` in "
        "sorted order) or `\"regression\"` (finite float targets), for `npz` and `csv`"))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    kind: str = option("mlp", choices=("mlp", "cnn"), help=(
        "`\"cnn\"`: conv layers (NHWC, padding \"SAME\", `activation` after each) on each row reshaped to "
        "`image_shape`, then `pool`, then the dense layers `hidden`, then the output layer (`jaxopt_lab.nn.cnn`); "
        "`norm` must be `\"none\"`, `dropout` acts on the dense layers. Example: `examples/digits_cnn.toml`"))
    channels: tuple[int, ...] = option((8, 16), low=1, help="for `cnn`: output channels per conv layer")
    kernels: tuple[int, ...] = option((3, 3), low=1, help="for `cnn`: square kernel size per conv layer")
    strides: tuple[int, ...] = option((1, 2), low=1, help=(
        "for `cnn`: stride per conv layer (the output has `ceil(size / stride)` rows and columns)"))
    image_shape: tuple[int, ...] = option((), low=1, help=(
        "for `cnn`: `[height, width]` or `[height, width, channels]` of one row, e.g. `[8, 8, 1]` for the digits; "
        "the product must equal the number of features"))
    pool: str = option("flatten", choices=("avg", "flatten"), help=(
        "for `cnn`: `\"flatten\"` the last feature maps row-major, or `\"avg\"`: global average pooling (fewer "
        "parameters; on the 8x8 digits 0.908 validation accuracy against 0.975 flattened, one run of the example "
        "each)"))
    hidden: tuple[int, ...] = option((20,), low=1, high=MAX_WIDTH, help="hidden widths")
    activation: str = option("relu", choices=registry.activation_names, help="any of `jaxopt-lab list`'s activations")
    init: str = option("he_normal", help=(
        "initializer name (`\"normal:0.3\"` for a std), or `\"auto\"`: the lectures' recommendation for the "
        "activation (Glorot for tanh/sigmoid, He for ReLU family, LeCun for SELU)"))
    init_scale: float = option(1.0, low=0, traceable=True, help="multiplies the initial weights")
    dropout: float = option(0.0, low=0, high=1, high_open=True, traceable=True, switchable=True, random=True,
                            help="inverted dropout on hidden activations, training only")
    norm: str = option("none", choices=("none", "batch", "layer"), help=(
        "`\"batch\"` or `\"layer\"` after each hidden dense layer"))
    bn_momentum: float = option(0.9, low=0, high=1, traceable=True, help=(
        "weight of the old running averages of batch norm"))
    factory: str | None = option(None, help=(
        "`\"package.module:function\"` returning your own model (below); resolved from the working directory and "
        "the Python path"))
    kwargs: Mapping[str, Any] = option(default_factory=dict, help="`[model.kwargs]`: keyword arguments of `factory`")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    loss: str = option("cross_entropy", choices=registry.loss_names, help="the training loss")
    epochs: int = option(400, low=1, high=MAX_EPOCHS, help="epoch budget")
    batch_size: int = option(0, low=0, help=(
        "0 full batch, 1 SGD, n mini-batches of n (the last partial batch padded and masked)"))
    drop_last: bool = option(False, help="drop the partial last batch instead")
    early_stopping_patience: int = option(0, low=0, traceable=True, switchable=True, help=(
        "stop after this many epochs without improvement of the validation loss by more than `min_delta` (0: "
        "off); the best epoch's parameters are restored (`restore_best`)"))
    min_delta: float = option(0.0, low=0, traceable=True, help="the improvement early stopping asks for")
    restore_best: bool = option(True, help="with early stopping, end at the best epoch's parameters")
    l1: float = option(0.0, low=0, traceable=True, switchable=True, help=(
        "coupled penalty `l1 * sum|w|` on weight matrices (biases and norm parameters excluded)"))
    l2: float = option(0.0, low=0, traceable=True, switchable=True, help=(
        "coupled penalty `l2 * 0.5 * sum w^2` on weight matrices (biases and norm parameters excluded)"))
    weight_decay: float = option(0.0, low=0, traceable=True, switchable=True, help=(
        "decoupled weight decay: `w -= lr_t * weight_decay * w` after the optimizer's update (AdamW-style for any "
        "optimizer)"))
    clip_norm: float = option(0.0, low=0, traceable=True, switchable=True, help=(
        "clip gradients by global norm (0: off)"))
    input_noise: float = option(0.0, low=0, traceable=True, switchable=True, random=True, help=(
        "Gaussian input noise (augmentation) with this std"))
    grad_noise: float = option(0.0, low=0, traceable=True, switchable=True, random=True, help=(
        "Gaussian noise with this std added to every gradient entry after clipping, fresh at each update "
        "(Neelakantan et al., 2015, with a constant scale)"))
    precision: str = option("float32", choices=("float32", "float64"), help=(
        "or `\"float64\"` (the CLI turns on 64-bit JAX for it)"))
    shuffle_seed: int | None = option(None, seed=True, help=(
        "set it to give every run the same mini-batch order and dropout masks (common random numbers for paired "
        "comparisons); by default each run's seed draws its own"))
    divergence_threshold: float = option(1e6, low=0, low_open=True, allow_inf=True, traceable=True, help=(
        "a loss above it counts as divergence, like a non-finite one"))


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant"
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PlateauConfig:
    """Performance scheduling: `reduce_on_plateau` fed the validation loss per epoch."""

    factor: float = option(0.5, low=0, high=1, low_open=True, traceable=True, help=(
        "the learning rate's scale is multiplied by it after a plateau"))
    patience: int = option(10, low=0, traceable=True, help="epochs without improvement that make a plateau")
    rtol: float = option(1e-4, traceable=True, help="relative improvement that counts")
    atol: float = option(0.0, traceable=True, help="absolute improvement that counts")
    cooldown: int = option(0, traceable=True, help="epochs after a reduction before the next can start")
    min_scale: float = option(0.0, traceable=True, help="the scale never goes below it")


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


#: The sections whose keys carry a `KeySpec`, by the dotted prefix a sweep and an error message use.
SPEC_SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "train": TrainConfig, "optimizer.plateau": PlateauConfig,
}


def key_specs(section: str | None = None) -> dict[str, KeySpec]:
    """Every specified key (``"train.l2"``) and its `KeySpec`, in declaration order; one section's
    keys with `section`."""
    sections = SPEC_SECTIONS if section is None else {section: SPEC_SECTIONS[section]}
    return {f"{name}.{f.name}": f.metadata["spec"] for name, cls in sections.items() for f in dataclasses.fields(cls)}


def _keys_with(flag: str) -> tuple[str, ...]:
    # The plateau's keys are traced only when a plateau rule exists (the engine adds them then).
    return tuple(k for k, spec in key_specs().items() if getattr(spec, flag) and not k.startswith("optimizer."))


#: Hyperparameters a sweep may vary without recompiling (besides every numeric keyword of the
#: optimizer, its schedule and its plateau rule).
TRACEABLE_KEYS = _keys_with("traceable")
#: Traceable keys whose code is compiled in only when the config turns them on or a sweep varies them.
SWITCHABLE_KEYS = _keys_with("switchable")
#: Keys that draw randomness at every update (the step derives per-update keys when one is on).
RANDOM_KEYS = _keys_with("random")



def _field_types(cls: type) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: Annotation prefix -> (accepts a TOML value, what it must be, conversion).
_SCALAR_TYPES: dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    "bool": (lambda v: isinstance(v, bool), "true or false", bool),
    "int": (_is_int, "an integer", int),
    "float": (lambda v: _is_int(v) or isinstance(v, float), "a number", float),
    "Mapping": (lambda v: isinstance(v, Mapping), "a table ([{key}])", dict),
    "str": (lambda v: isinstance(v, str), "a string", str),
}


def _coerce(key: str, value: Any, annotation: str, default: Any) -> Any:
    """Check a TOML value against a dataclass field's annotation (as written in this module)."""
    ann = annotation.replace(" ", "")
    optional = "None" in ann
    if value is None and optional:
        return None
    if ann.startswith("tuple"):
        if _is_int(value):
            value = [value]
        # A tuple too: `to_dict` hands the config's own tuples back through here.
        if not isinstance(value, list | tuple) or not all(_is_int(v) for v in value):
            raise ConfigError(f"{key} = {value!r} must be a list of integers")
        return tuple(value)
    for prefix, (accepts, kind, convert) in _SCALAR_TYPES.items():
        if ann.startswith(prefix):
            if not accepts(value):
                raise ConfigError(f"{key} = {value!r} must be {kind.format(key=key)}")
            return convert(value)
    return value


def _section(name: str, raw: Mapping[str, Any]) -> Any:
    """The dataclass of section `name` (``"train"``, ``"optimizer.plateau"``) from its TOML table."""
    cls = SPEC_SECTIONS[name]
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
        plat_cfg = _section("optimizer.plateau", plateau)
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
    for name in ("data", "model", "train"):
        if name in raw:
            kwargs[name] = _section(name, raw[name])
    if "optimizer" in raw:
        kwargs["optimizer"] = _optimizer_section(raw["optimizer"])
    if "sweep" in raw:
        kwargs["sweep"] = dict(raw["sweep"])
    return Config(**kwargs)


def apply_overrides(cfg: Config, overrides: Mapping[str, Any]) -> Config:
    """`cfg` with dotted keys set to new values (types checked like the TOML input)."""
    raw = to_dict(cfg)
    for key, value in overrides.items():
        parts = key.split(".")
        node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = list(value) if isinstance(value, tuple) else value
    return from_dict(raw)


def to_dict(cfg: Config) -> dict[str, Any]:
    """A config as the TOML-shaped mapping it came from (round-trips through `from_dict`)."""
    out: dict[str, Any] = {}
    for section in ("data", "model", "train"):
        d = dataclasses.asdict(getattr(cfg, section))
        if section == "model":
            d["hidden"] = list(d["hidden"])
        out[section] = {k: v for k, v in d.items() if v is not None}
    o = cfg.optimizer
    opt: dict[str, Any] = {"name": o.name, **dict(o.kwargs)}
    if o.schedule is not None:
        opt["schedule"] = {"name": o.schedule.name, **dict(o.schedule.kwargs)}
    if o.plateau is not None:
        opt["plateau"] = dataclasses.asdict(o.plateau)
    out["optimizer"] = opt
    if cfg.sweep:
        out["sweep"] = dict(cfg.sweep)
    return out


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




def check_seed(key: str, value: Any) -> None:
    """`ConfigError` unless `value` is an integer seed in [0, `SEED_MAX`]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= SEED_MAX:
        raise ConfigError(f"{key} = {value!r} is out of range: seeds are integers in [0, {SEED_MAX}] (2**32 - 1)")


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


def check_section(section: str, values: Any) -> None:
    """Each key of a `[section]` dataclass against its `KeySpec` (range, choices, seed), in
    declaration order."""
    for f in dataclasses.fields(values):
        f.metadata["spec"].check(f"{section}.{f.name}", getattr(values, f.name))


def _validate_data(d: DataConfig) -> None:
    check_section("data", d)
    if d.val_fraction + d.test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {d.val_fraction + d.test_fraction!r} must be below 1"
        )
    if d.dataset == "csv" and (d.path is None or d.label_column is None):
        raise ConfigError("data.dataset = 'csv' needs data.path and data.label_column")
    if d.dataset == "npz" and d.path is None:
        raise ConfigError("data.dataset = 'npz' needs data.path (an .npz file, or an .npy file of x with data.y_path)")


def _validate_model_train(cfg: Config) -> None:
    m = cfg.model
    check_section("model", m)
    _validate_cnn(m)
    _validate_init(m.init)
    if m.factory is not None:
        module, sep, attr = m.factory.partition(":")
        if not (sep and module and attr):
            raise ConfigError(f"model.factory = {m.factory!r} must be 'package.module:function'")
    check_section("train", cfg.train)


def _validate_init(init: str) -> None:
    """`model.init`: an initializer's name, "auto", or a name with its argument ("normal:0.3")."""
    names = registry.initializer_names()
    if init == "auto" or init in names:
        return
    if init.split(":")[0] not in names:
        raise choices_error("model.init", init, [*names, "auto"])

    try:  # the argument after ':' ("normal:0.3"): a number in range
        get_initializer(init)
    except ValueError as e:
        raise ConfigError(f"model.{e}") from None


def _validate_cnn(m: ModelConfig) -> None:
    """For `model.kind = "cnn"`: one entry per conv layer in each list, and the image shape."""
    if m.kind != "cnn":
        return
    if not m.channels or len(m.kernels) != len(m.channels) or len(m.strides) != len(m.channels):
        raise ConfigError(
            f"model.channels, model.kernels and model.strides need one entry per conv layer, at least one: "
            f"got {len(m.channels)}, {len(m.kernels)} and {len(m.strides)} entries"
        )
    if len(m.image_shape) not in (2, 3):
        raise ConfigError(
            f"model.image_shape = {list(m.image_shape)!r}: model.kind = 'cnn' needs [height, width] or "
            "[height, width, channels], e.g. [8, 8, 1] for the digits"
        )
    if m.norm != "none":
        raise ConfigError(f"model.norm = {m.norm!r}: model.kind = 'cnn' has no normalization layers; use 'none'")


def validate_optimizer(o: OptimizerConfig) -> None:
    """The optimizer's name, its keywords (those its factory takes) and their ranges."""
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
        check_section("optimizer.plateau", o.plateau)


def _check_schedule_values(o: OptimizerConfig) -> None:
    """Each schedule keyword of the type its schedule takes (a string only where the default is one,
    numbers finite), and the schedule buildable from them."""
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


# ----------------------------------------------------------------------------- the keys' documentation


def _toml_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        return f"`[{', '.join(str(v) for v in value)}]`"
    if isinstance(value, Mapping):
        return "`{}`"
    return repr(value)


def _default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _valid_text(spec: KeySpec) -> str:
    if callable(spec.choices):
        return "`jaxopt-lab list`"
    if spec.choices is not None:
        return ", ".join(f'`"{c}"`' for c in spec.choices)
    return f"`{spec.range_text()}`" if spec.range_text() else ""


def key_table(section: str) -> str:
    """The markdown table of a section's keys (docs/guide.md): default, valid values, whether a
    sweep traces it, and what it does; from the `KeySpec`s, so it cannot drift from the code."""
    rows = ["| key | default | valid | traced | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in dataclasses.fields(SPEC_SECTIONS[section]):
        spec = f.metadata["spec"]
        traced = "yes, compiled in when on" if spec.switchable else "yes" if spec.traceable else ""
        help_text = spec.help.replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_toml_value(_default_of(f))} | {_valid_text(spec)} | {traced} | {help_text} |")
    return "\n".join(rows)


def key_lines() -> list[str]:
    """One line per specified key, for `jaxopt-lab list keys`."""
    lines = []
    for section, cls in SPEC_SECTIONS.items():
        for f in dataclasses.fields(cls):
            spec = f.metadata["spec"]
            valid = ", ".join(spec.valid_choices() or []) or spec.range_text()
            traced = "  traced" if spec.traceable else ""
            default = "none" if _default_of(f) is None else _toml_value(_default_of(f)).strip("`")
            lines.append(f"{section}.{f.name} = {default}"
                         f"{'  ' + valid if valid else ''}{traced}")
    return lines


def _table_markers(section: str) -> tuple[str, str]:
    return f"<!-- keys: {section} (generated from jaxopt_lab/config.py by config.update_key_tables) -->", \
        "<!-- /keys -->"


def update_key_tables(text: str) -> str:
    """`text` (docs/guide.md) with every generated key table between its markers replaced by
    `key_table` of its section."""
    for section in SPEC_SECTIONS:
        begin, end = _table_markers(section)
        i = text.find(begin)
        if i < 0:
            continue
        j = text.index(end, i)
        text = text[: i + len(begin)] + "\n" + key_table(section) + "\n" + text[j:]
    return text
