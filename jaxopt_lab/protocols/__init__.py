"""Optimizer-benchmark protocols: published comparison procedures run on the vectorized sweep engine.

    jaxopt-lab sweep CONFIG.toml --out DIR --protocol deepobs
    # or in the config: [sweep] protocol = "deepobs", options in [sweep.protocol_options]

The base config's `[data]`, `[model]`, `[train]` and `[optimizer]` define the problem; the protocol
decides which sweeps to run and writes the tables and figures its paper reports:

- ``deepobs``: Schneider, Balles & Hennig, "DeepOBS: A Deep Learning Optimizer Benchmark Suite", ICLR 2019.
- ``crowded_valley``: Schmidt, Schneider & Hennig, "Descending through a Crowded Valley -- Benchmarking
  Deep Learning Optimizers", ICML 2021.
- ``choi``: Choi, Shallue, Nado, Lee, Maddison & Dahl, "On Empirical Comparisons of Optimizers for Deep
  Learning", 2019 (arXiv:1910.05446).
- ``algoperf``: Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023 (arXiv:2306.07179).

`docs/protocols.md` describes each preset's options, outputs and small-scale deviations.

A preset is a module with ``NAME``, ``TITLE``, ``CITATION``, ``DESCRIPTION``, ``OPTIONS`` and two
functions: ``prepare(cfg, options) -> sweeps.Prepared`` checks everything before any run, and
``run(prepared, runner, stage) -> (report sections, summary)`` runs its sweeps through
`sweeps.SweepRunner`. The parts they share, one job per module:

- `options`: the option schema and its checks (``[sweep.protocol_options]``);
- `search_spaces`: search spaces and the `[sweep]` tables built from them;
- `optimizer_configs`: the config each compared optimizer trains with;
- `ranking`: the metric runs are ranked by, mean ± std over seeds;
- `sweeps`: `Prepared`, `SweepRunner`, search then rerun;
- `tables` and `figures`: the CSV tables, report cells and figures;
- `profiles`: AlgoPerf's performance profiles and benchmark score.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaxopt_lab import config as config_mod
from jaxopt_lab import report_page
from jaxopt_lab.config import Config, ConfigError
from jaxopt_lab.protocols import algoperf, choi, crowded_valley, deepobs
from jaxopt_lab.protocols.options import parse_options
from jaxopt_lab.protocols.sweeps import Prepared, SweepRunner
from jaxopt_lab.sweep.records import staged_folder, write_summary_json

#: The presets by name: modules with NAME, TITLE, CITATION, OPTIONS, prepare() and run().
PROTOCOLS = {m.NAME: m for m in (deepobs, crowded_valley, choi, algoperf)}

#: Keys of `[sweep]` a protocol accepts beside its name and options (the runs are the protocol's).
ALLOWED_SWEEP_KEYS = ("protocol", "protocol_options", "chunk_size")

__all__ = ["PROTOCOLS", "protocol_name", "prepare", "run_protocol"]


def protocol_name(cfg: Config, protocol: str | None = None) -> str | None:
    """The protocol to run: `protocol` (the command line's) or the config's `[sweep] protocol`; None for neither.

    Naming two different protocols is an error rather than a silent override.
    """
    in_cfg = cfg.sweep.get("protocol") if cfg.sweep else None
    if in_cfg is not None and not isinstance(in_cfg, str):
        raise ConfigError(f"sweep.protocol = {in_cfg!r} must be a string; valid choices: {', '.join(PROTOCOLS)}")
    if protocol is not None and in_cfg is not None and protocol != in_cfg:
        raise ConfigError(
            f"--protocol {protocol!r} conflicts with sweep.protocol = {in_cfg!r} in the config; give one of them"
        )
    name = protocol if protocol is not None else in_cfg
    if name is not None and name not in PROTOCOLS:
        raise config_mod.choices_error("sweep.protocol" if protocol is None else "--protocol", name, PROTOCOLS)
    return name


def prepare(cfg: Config, protocol: str | None = None,
            options: Mapping[str, Any] | None = None) -> tuple[Any, Prepared]:
    """Check everything about a protocol run before anything is computed: (module, prepared plan).

    `options` (Python callers) replace the config's `[sweep.protocol_options]`.
    """
    name = protocol_name(cfg, protocol)
    if name is None:
        raise ConfigError(f"no protocol given: set sweep.protocol or --protocol; valid choices: {', '.join(PROTOCOLS)}")
    for key in cfg.sweep or {}:
        if key not in ALLOWED_SWEEP_KEYS:
            raise ConfigError(
                f"sweep.{key} cannot be combined with protocol {name!r}: the protocol decides which runs to make "
                f"(its settings go in [sweep.protocol_options]); valid keys of [sweep] with a protocol: "
                + ", ".join(ALLOWED_SWEEP_KEYS)
            )
    chunk = (cfg.sweep or {}).get("chunk_size")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(f"sweep.chunk_size = {chunk!r} must be a positive integer")
    config_mod.validate(cfg.replace(sweep={}))
    module = PROTOCOLS[name]
    raw = options if options is not None else (cfg.sweep or {}).get("protocol_options", {})
    opts = parse_options(name, raw, module.OPTIONS, cfg)
    return module, module.prepare(cfg.replace(sweep={}), opts)


def run_protocol(
    cfg: Config,
    out: str | os.PathLike,
    *,
    protocol: str | None = None,
    options: Mapping[str, Any] | None = None,
    execution: str = "auto",
    progress: bool | None = None,
    chunk_size: int | None = None,
) -> Path:
    """Run a protocol on `cfg` and write its results folder `out`; returns `out`.

    Everything is checked first (`ConfigError` before any run or file); the results are
    built in a temporary folder beside `out` and moved in complete. `out` holds
    ``protocol.json`` (protocol, options, every sweep with its `[sweep]` table, best configs,
    scores), CSV tables, PNG figures, ``index.html`` and ``summary.md``, and one folder per
    underlying sweep (``runs.csv``, ``summary.json``, ``histories.npz``). `chunk_size`
    (default: the config's `[sweep] chunk_size`, else one chunk shape for every sweep) and
    `execution` go to the engine.
    """
    module, prepared = prepare(cfg, protocol, options)
    if chunk_size is None:
        chunk_size = (cfg.sweep or {}).get("chunk_size")
    with staged_folder(out) as stage:
        runner = SweepRunner(
            stage, execution=execution, progress=progress, chunk_size=chunk_size,
            shape_hint=prepared.shape_hint, label=f"protocol {module.NAME}",
        )
        sections, summary = module.run(prepared, runner, stage)
        record = {
            "protocol": module.NAME,
            "title": module.TITLE,
            "citation": module.CITATION,
            "options": prepared.options,
            "base_config": _config_dict(cfg),
            "devices": runner.n_devices,
            "execution": runner.execution,
            "compilations": sum(r.compilations for r in runner.records),
            "sweeps": [r.as_dict() for r in runner.records],
            **summary,
        }
        write_summary_json(stage / "protocol.json", record)
        intro = f"{module.TITLE}. Protocol of {module.CITATION}\n\n{module.DESCRIPTION}"
        report_page.write_report(stage, f"Protocol: {module.NAME}", sections, intro=intro)
    return Path(out)


def _config_dict(cfg: Config) -> dict[str, Any]:
    return config_mod.to_dict(cfg.replace(sweep={}))
