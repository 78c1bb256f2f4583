"""The lectures' experiments, one module per topic.

Each module has `run(out: Path, size: str = "demo") -> jaxopt_lab.report_page.Section`:
it writes its PNG figures into `out` and returns a report section whose text
states the findings with the numbers it measured. `size="tiny"` runs in seconds
(tests), `size="demo"` is what `jaxopt-lab demo` runs. The scripts in the
repository's `experiments/` folder run each one on its own (`script.py`); steps that
several experiments draw alike live in shared modules (`curve_bands.py`).
"""

import importlib

import jax

from jaxopt_lab import _xla
from jaxopt_lab.config import Config, closest, to_dict

#: Experiment name -> its module in this package, in report order. The names are what the user sees (the
#: demo report's folders, the scripts' default output folders); the modules are named for what they hold and
#: so never share a name with a library module (`optimizer_comparison`, not `optimizers`).
MODULES = {
    "moons_sgd_vs_adam": "moons_sgd_vs_adam",
    "quartic": "quartic",
    "optimizers": "optimizer_comparison",
    "learning_rate": "learning_rate",
    "schedules": "schedule_comparison",
    "regularization": "regularization_comparison",
    "initialization": "init_comparison",
    "normalization": "normalization_comparison",
    "search": "search_comparison",
    "splits": "split_comparison",
    "hypergradients": "hypergradients",
}
#: Experiment names in report order.
EXPERIMENTS = tuple(MODULES)


def experiment_module(name: str):
    """The module that runs experiment `name` (one of `EXPERIMENTS`); imported on first use."""
    return importlib.import_module(f"{__name__}.{MODULES[name]}")


def check_size(size: str, sizes: dict) -> None:
    """`ValueError` naming `size`, the valid choices and the closest one, unless `size` is in `sizes`."""
    if size not in sizes:
        valid = ", ".join(sizes)
        raise ValueError(f"size={size!r} is not a valid choice{closest(size, sizes)}; valid choices: {valid}")


def run_once(fn, *args, mode: str = "fast"):
    """`jax.jit(fn)` compiled for `args` with `_xla.COMPILER_OPTIONS[mode]` (on CPU), run once; numpy results."""
    return jax.device_get(_xla.compile_lowered(jax.jit(fn).lower(*args), mode)(*args))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v) if v == v and abs(v) != float("inf") else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    return str(v)


def config_toml(config) -> str:
    """The TOML lines of `config` that differ from `Config()`'s (the rest are the defaults):
    `jaxopt-lab train FILE --seed S` on them reproduces an experiment's run of seed `S`."""
    raw, default = to_dict(config), to_dict(Config())
    lines: list[str] = []

    def emit(name: str, table: dict, base: dict) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and base.get(k, object()) != v}
        if name == "optimizer" and "name" in table:
            scalars = {"name": table["name"], **scalars}
        if scalars:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
        for k, v in table.items():
            if isinstance(v, dict) and v:
                emit(f"{name}.{k}", v, base.get(k, {}) if isinstance(base.get(k), dict) else {})

    for section in ("data", "model", "train", "optimizer"):
        emit(section, raw.get(section, {}), default.get(section, {}))
    return "\n".join(lines)


def reproduce_text(configs: dict, seeds: int) -> str:
    """Report text: the `jaxopt-lab train` configs that reproduce the named runs, as TOML blocks."""
    parts = [
        f"Reproduce a run with `jaxopt-lab train CONFIG.toml --seed S` (S = 0..{seeds - 1}) on the config "
        "below (keys not shown keep their defaults); its metrics.json holds the run's final metrics."
    ]
    for label, cfg in configs.items():
        parts.append(f"{label}:\n\n```toml\n{config_toml(cfg)}\n```")
    return "\n\n".join(parts)
