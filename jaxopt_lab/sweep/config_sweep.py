"""Sweeps of a config file: the space of `[sweep]`, one training engine per group, the results folder.

The runs of a config sweep are split into groups by every key that changes the
compiled program (optimizer name, activation, data set, batch size, epochs,
hidden sizes, ...: anything that is not a numeric hyperparameter the training
engine takes as a traced value). Within a group every traceable value, swept or
not, is passed in as an array, so the compiled program depends on the
structure alone and is reused by later sweeps of the same structure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxopt_lab import _cache, _io, registry
from jaxopt_lab import config as config_mod
from jaxopt_lab.config import Config, ConfigError, apply_overrides, to_dict
from jaxopt_lab.sweep import adaptive, records, runner, tracking
from jaxopt_lab.sweep import report as report_mod
from jaxopt_lab.sweep import space as space_mod
from jaxopt_lab.sweep.records import RESULT_COLUMNS
from jaxopt_lab.train import SWITCHABLE_KEYS, TRACEABLE_KEYS, Trainer, make_train, state

#: The metric columns of runs.csv (docs/guide.md, "Outputs of `jaxopt-lab sweep`").
METRIC_COLUMNS = RESULT_COLUMNS


#: Keys of `[sweep]` besides the space: the chunk size, a target for steps-to-target
#: (`target_metric` one of val_accuracy, val_loss, train_accuracy, train_loss; `target_value`),
#: lane recycling (`refill`, `lanes`), successive halving (`[sweep.halving]`) and a
#: benchmark protocol (`protocol` with its options in `[sweep.protocol_options]`) and logging
#: (`[sweep.log]`, `jaxopt_lab.sweep.tracking`).
SWEEP_OPTIONS = (
    "chunk_size", "target_metric", "target_value", "refill", "lanes", "halving", "protocol", "protocol_options",
    "log", "adaptive", "pbt", "compare_search",
)
#: Parts of `[sweep]` that choose the runs themselves: an adaptive search proposes its own.
_SPACE_PARTS = ("grid", "random", "quasirandom")
TARGET_METRICS = state.TARGET_METRICS


def _target(cfg: Config) -> tuple[str, float, str] | None:
    metric, value = cfg.sweep.get("target_metric"), cfg.sweep.get("target_value")
    if metric is None and value is None:
        return None
    if metric not in TARGET_METRICS:
        raise config_mod.choices_error("sweep.target_metric", metric, TARGET_METRICS)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"sweep.target_value = {value!r} must be a number (with sweep.target_metric)")
    return metric, float(value), TARGET_METRICS[metric]


MAX_RUNS = 1_000_000
"""The most runs one sweep may plan (docs/guide.md): a larger space is refused before it is expanded."""


def _node(table: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(table, Mapping) or part not in table:
            return None
        table = table[part]
    return table


def swept_values(cfg: Config, key: str) -> list[Any]:
    """The values `[sweep.grid]` lists and `[sweep.random]` may choose for `key` (``train.precision``)."""
    values: list[Any] = []
    grid = _node(cfg.sweep.get("grid"), key)
    if isinstance(grid, list):
        values += grid
    rand = _node(cfg.sweep.get("random"), key)
    if isinstance(rand, Mapping) and isinstance(rand.get("choice"), list):
        values += rand["choice"]
    return values


def _grid_size(table: Any) -> int:
    if isinstance(table, list):
        return max(1, len(table))
    if isinstance(table, Mapping):
        return math.prod(_grid_size(v) for v in table.values())
    return 1


def _check_planned_size(sweep: Mapping[str, Any]) -> None:
    """Refuse a space beyond `MAX_RUNS` runs from the sizes the table states, before any point exists."""
    parts = []
    if isinstance(sweep.get("grid"), Mapping):
        parts.append(("sweep.grid", _grid_size(sweep["grid"])))
    trials = _node(sweep.get("random"), "trials")
    if isinstance(trials, int) and not isinstance(trials, bool) and trials > 0:
        parts.append(("sweep.random.trials", trials))
    seeds = sweep.get("seeds")
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        parts.append(("sweep.seeds", seeds))
    elif isinstance(seeds, list):
        parts.append(("sweep.seeds", max(1, len(seeds))))
    total = math.prod(n for _, n in parts)
    if total > MAX_RUNS:
        what = " x ".join(f"{name} = {n}" for name, n in parts)
        biggest = max(parts, key=lambda p: p[1])[0]
        raise ConfigError(
            f"sweep: {what} plans up to {total} runs, beyond the limit of {MAX_RUNS} runs per sweep; "
            f"reduce {biggest} or split the sweep"
        )


def space_of(cfg: Config) -> space_mod.Space:
    """The runs of `cfg`'s `[sweep]` section (seed 0 alone without one), keys checked."""
    if not cfg.sweep:
        return space_mod.seeds([0])
    _check_planned_size(cfg.sweep)
    try:
        sp = space_mod.from_config(cfg.sweep, other_keys=SWEEP_OPTIONS)
    except ValueError as e:
        raise ConfigError(f"sweep: {e}") from None
    for method in ("adaptive", "pbt", "compare_search"):
        given = [k for k in _SPACE_PARTS if k in cfg.sweep]
        if method in cfg.sweep and given:
            raise ConfigError(f"sweep.{given[0]} cannot go with sweep.{method}: it chooses the configurations "
                              f"itself (its distributions go under [sweep.{method}.SECTION])")
    check_space_keys(cfg, sp)
    return sp


def check_space_keys(cfg: Config, sp: space_mod.Space) -> None:
    """Every key of `sp` must be a config key (or ``seed``); `ConfigError` names the first that is not."""
    sweepable = sweepable_keys(cfg)
    for key in sp.keys:
        if key == "seed":
            continue
        section = key.split(".", 1)[0]
        if key not in sweepable and not (section == "optimizer" and key.count(".") == 1):
            valid = sorted(sweepable)
            raise ConfigError(
                f"sweep key {key!r} is not a config key{config_mod.closest(key, valid)}; valid keys: "
                + ", ".join(valid)
            )


def sweepable_keys(cfg: Config) -> set[str]:
    keys = set()
    for section in ("data", "model", "train"):
        for f in dataclasses.fields(getattr(cfg, section)):
            keys.add(f"{section}.{f.name}")
    keys.add("optimizer.name")
    keys |= {f"optimizer.{k}" for k in cfg.optimizer.kwargs}
    keys |= {f"optimizer.plateau.{f.name}" for f in dataclasses.fields(config_mod.PlateauConfig)}
    if cfg.optimizer.schedule is not None:
        keys |= {f"optimizer.schedule.{k}" for k in cfg.optimizer.schedule.kwargs}
        keys.add("optimizer.schedule.name")
    return keys


def _is_traceable(key: str, optimizers: Sequence[str] = ()) -> bool:
    """Whether `key` may be a traced value; an optimizer keyword only where every optimizer in
    `optimizers` that takes it traces it (`registry.numeric_keywords`), else it splits groups."""
    if key in TRACEABLE_KEYS:
        return True
    parts = key.split(".")
    if parts[0] != "optimizer" or parts[-1] == "name":
        return False
    if len(parts) == 2:
        takers = [n for n in optimizers if n in registry.optimizers() and parts[1] in registry.optimizer_keywords(n)]
        return all(parts[1] in registry.numeric_keywords(n) for n in takers)
    return True


# Each trainer holds its device copy of the data: few are kept.
_TRAINERS = _cache.BoundedCache("config trainers", 8)


def _structure_key(cfg: Config, hp_keys: Sequence[str]) -> str:
    raw = to_dict(cfg.replace(sweep={}))
    for key in hp_keys:
        parts = key.split(".")
        node = raw
        for p in parts[:-1]:
            node = node.get(p, {})
        if parts[-1] in node:
            node[parts[-1]] = "<traced>"
    return json.dumps({"config": raw, "hp": sorted(hp_keys)}, sort_keys=True, default=str)


def _outputs(result: Any) -> dict[str, Any]:
    return {"metrics": result.metrics, "history": result.history}


def _summarize(trainer: Trainer):
    def fn(seed, hp, data):
        return _outputs(trainer(jax.random.PRNGKey(seed), hp, data))

    return fn


def adaptive_options(cfg: Config) -> tuple[bool, int | None, adaptive.Halving | None]:
    """(refill, lanes, halving) from `[sweep]`'s `refill`, `lanes` and `[sweep.halving]`, checked."""
    refill = cfg.sweep.get("refill", False)
    if not isinstance(refill, bool):
        raise ConfigError(f"sweep.refill = {refill!r} must be true or false")
    lanes = cfg.sweep.get("lanes")
    if lanes is not None and (isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1):
        raise ConfigError(f"sweep.lanes = {lanes!r} must be a positive integer (lanes of a refilling sweep)")
    halving = None
    if "halving" in cfg.sweep:
        try:
            halving = adaptive.Halving.from_config(cfg.sweep["halving"])
        except ValueError as e:
            raise ConfigError(str(e)) from None
    # ASHA (no brackets) runs in refilling lanes; Hyperband's brackets run synchronous stages.
    return refill or (halving is not None and halving.brackets is None), lanes, halving


@dataclasses.dataclass
class ConfigSweep:
    """A config sweep, planned: its runs, groups and per-group trainers."""

    config: Config
    space: space_mod.Space
    points: list[dict[str, Any]]
    groups: list[runner.Group]
    swept_keys: list[str]


def plan(cfg: Config, space: space_mod.Space | None = None) -> ConfigSweep:
    """Expand and check every run of `cfg`'s sweep (or of `space`, runs chosen elsewhere, such as an
    adaptive search's round) before anything is compiled."""
    if space is None:
        sp = space_of(cfg)
    else:
        sp = space
        check_space_keys(cfg, sp)
    _target(cfg)
    _, _, halving = adaptive_options(cfg)
    if halving is not None and halving.brackets is not None:
        try:
            halving.bracket_rungs(cfg.train.epochs)
        except ValueError as e:
            raise ConfigError(f"sweep.{e}") from None
    tracking.options(cfg.sweep)
    if "protocol_options" in cfg.sweep and "protocol" not in cfg.sweep:
        raise ConfigError("sweep.protocol_options is set but sweep.protocol is not: name the protocol "
                          "(sweep.protocol or --protocol) or remove the options")
    chunk = cfg.sweep.get("chunk_size")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(f"sweep.chunk_size = {chunk!r} must be a positive integer")
    points = [dict(p) for p in sp.points()]
    for p in points:
        p.setdefault("seed", 0)
        config_mod.check_seed("sweep seed", p["seed"])
    swept = [k for k in sp.keys if k != "seed"]
    names = sorted({str(p.get("optimizer.name", cfg.optimizer.name)) for p in points})
    structural = [
        k for k in swept if not _is_traceable(k, names) or not all(runner._is_number(p[k]) for p in points)
    ]
    by_structure: dict[str, tuple[dict, list[int]]] = {}
    for i, p in enumerate(points):
        label = {k: p[k] for k in structural}
        by_structure.setdefault(json.dumps(label, sort_keys=True, default=str), (label, []))[1].append(i)
    groups = []
    for label, idx in by_structure.values():
        gcfg = apply_overrides(_base_for(cfg, label), label) if label else cfg
        try:
            config_mod.validate(gcfg)
        except ConfigError as e:
            where = ", ".join(f"{k}={v!r}" for k, v in label.items())
            raise ConfigError(f"{e} (in the sweep's group {where})" if where else str(e)) from None
        numeric_swept = [k for k in swept if k not in label]
        _check_swept_values(gcfg, numeric_swept, [points[i] for i in idx], label)
        probe = _trainer_for(gcfg, None)
        valid = set(probe.traceable_keys())
        for k in numeric_swept:
            if k not in valid:
                raise ConfigError(
                    f"sweep key {k!r} is not a numeric hyperparameter of optimizer {gcfg.optimizer.name!r}"
                    f"{config_mod.closest(k, valid)}; valid keys: {', '.join(sorted(valid))}"
                )
        hp_keys = sorted(set(numeric_swept) | {k for k, v in probe.defaults.items() if v != 0 or not _switch(k)})
        trainer = _trainer_for(gcfg, hp_keys)
        hp = {}
        for k in hp_keys:
            if k in numeric_swept:
                hp[k] = np.asarray([points[i][k] for i in idx], np.float64)
            else:
                hp[k] = np.full(len(idx), probe.defaults[k], np.float64)
        groups.append(runner.Group(
            fn=_summarize(trainer), indices=np.asarray(idx), seeds=np.asarray([int(points[i]["seed"]) for i in idx]),
            hparams=hp, label=label, cache_key=_structure_key(gcfg, hp_keys),
            stepper=adaptive.stepper_from_trainer(trainer, _outputs), data=trainer.data_arrays,
            lanes_pay=trainer.lanes_pay(), batch_bytes=trainer.batch_bytes(),
        ))
    return ConfigSweep(config=cfg, space=sp, points=points, groups=groups, swept_keys=swept)


def _check_swept_values(gcfg: Config, keys: Sequence[str], points: Sequence[Mapping[str, Any]],
                        label: Mapping[str, Any]) -> None:
    """Check every value the sweep draws for `keys` against the range the same value gets in the config.

    Valid ranges are intervals, so the smallest and the largest value of each key stand for all of
    them; a NaN is refused outright. Runs before anything is compiled or written.
    """
    where = ", ".join(f"{k}={v!r}" for k, v in label.items())
    for key in keys:
        values = np.asarray([p[key] for p in points], np.float64)
        if np.isnan(values).any():
            raise ConfigError(f"sweep value {key} = nan is not a number")
        for v in {float(values.min()), float(values.max())}:
            value = int(v) if all(isinstance(p[key], int) for p in points) else v
            try:
                config_mod.validate(apply_overrides(gcfg, {key: value}))
            except ConfigError as e:
                group = f" in the sweep's group {where}" if where else ""
                raise ConfigError(f"sweep value {e}{group}") from None


def _base_for(cfg: Config, label: Mapping[str, Any]) -> Config:
    """The base config for a group: when the optimizer's name is swept, the base config's
    optimizer keywords that this group's optimizer does not take are dropped (they belong to
    another optimizer); swept keywords are still checked against it."""
    name = label.get("optimizer.name")
    if name is None:
        return cfg

    if name not in registry.optimizers():
        return cfg
    accepted = registry.optimizer_keywords(name)
    kwargs = {k: v for k, v in cfg.optimizer.kwargs.items() if k in accepted}
    return cfg.replace(optimizer=dataclasses.replace(cfg.optimizer, kwargs=kwargs))


def _switch(key: str) -> bool:
    return key in SWITCHABLE_KEYS


def _trainer_for(cfg: Config, hp_keys: Sequence[str] | None) -> Trainer:
    """One Trainer per structure: configs differing only in traced values share it."""
    key = _structure_key(cfg, hp_keys or [])
    if hp_keys is None:
        return make_train(cfg)
    trainer = _TRAINERS.get(key)
    if trainer is None:
        trainer = _TRAINERS[key] = make_train(cfg)
    return trainer


@dataclasses.dataclass
class ConfigSweepResult:
    plan: ConfigSweep
    rows: list[dict[str, Any]]
    histories: dict[str, np.ndarray]
    stats: runner.ExecutionStats
    #: More entries for summary.json (e.g. an adaptive search's), merged over the usual ones.
    extra_summary: dict[str, Any] | None = None


def run_sweep(
    cfg: Config,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
    execution: str = "auto",
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    map_batch_size: int = 1,
    sweep_plan: ConfigSweep | None = None,
    lanes: int | None = None,
) -> ConfigSweepResult:
    """Run every run of `cfg`'s sweep; rows follow the `runs.csv` columns of docs/guide.md.

    `[sweep] refill = true` (or `execution="refill"`) recycles the lanes of finished runs;
    `[sweep.halving]` adds successive-halving rungs, and the rows then also say whether
    the run was `halted` by a rung and how many rungs it passed (`rungs_passed`).
    """
    sp = sweep_plan or plan(cfg)
    chunk = chunk_size if chunk_size is not None else cfg.sweep.get("chunk_size")
    refill, cfg_lanes, halving = adaptive_options(cfg)
    if execution == "auto" and refill:
        execution = "refill"
    if halving is not None and halving.brackets is not None:
        return _run_hyperband(cfg, sp, halving, chunk=chunk, execution=execution, devices=devices,
                              progress=progress, resume=resume, checkpoint_dir=checkpoint_dir)
    if halving is not None and execution != "refill":
        raise ConfigError(f"sweep.halving needs lanes that take new runs: execution {execution!r} cannot halve; "
                          "use execution 'auto' or 'refill'")
    log = tracking.options(cfg.sweep)
    logger = tracking.SweepLogger(log, sp.points, to_dict(cfg)) if log.enabled else None
    outputs, stats = runner.execute(
        sp.groups, len(sp.points), chunk_size=chunk, execution=execution, map_batch_size=map_batch_size,
        devices=devices, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress,
        # Where the logs go does not change the results: a resumed sweep may log elsewhere.
        fingerprint_extra=to_dict(cfg.replace(sweep={k: v for k, v in cfg.sweep.items() if k != "log"})),
        lanes=lanes if lanes is not None else cfg_lanes, halving=halving,
        on_chunk=logger.on_chunk if logger is not None else None,
    )
    info = None
    if stats.execution == "refill":
        info = runner.stack_outputs([o[1] for o in outputs])
        outputs = [o[0] for o in outputs]
    stacked = runner.stack_outputs(outputs)
    rows = []
    for i, p in enumerate(sp.points):
        row: dict[str, Any] = {"run": i}
        for k in sp.swept_keys:
            row[k] = p[k]
        row["seed"] = p["seed"]
        for name, arr in stacked["metrics"].items():
            row[name] = _cell(name, arr[i])
        if halving is not None:
            row["halted"] = bool(info.halted[i])
            row["rungs_passed"] = int(info.rungs_passed[i])
        rows.append(row)
    return _result(cfg, sp, rows, stacked, stats)


def _result(cfg: Config, sp: ConfigSweep, rows: list[dict[str, Any]], stacked: Any, stats: Any) -> ConfigSweepResult:
    """The sweep's result, each row with its ``epochs_to_target`` when the config sets a target."""
    target = _target(cfg)
    if target is not None:
        metric, value, mode = target
        epochs = records.steps_to_target(stacked["history"][metric], value, mode)
        for row, e in zip(rows, np.atleast_1d(epochs), strict=True):
            row["epochs_to_target"] = float(e)
    return ConfigSweepResult(plan=sp, rows=rows, histories=dict(stacked["history"]), stats=stats)


def _run_hyperband(cfg: Config, sp: ConfigSweep, halving: adaptive.Halving, *, chunk: int | None, execution: str,
                   devices: Sequence[Any] | None, progress: bool | None, resume: bool,
                   checkpoint_dir: Any = None) -> ConfigSweepResult:
    """`[sweep.halving] brackets = K`: Hyperband's brackets of synchronous halving (`adaptive.run_hyperband`)."""
    if execution == "refill":
        raise ConfigError("sweep.halving.brackets runs synchronous stages ranked across chunks: use execution "
                          "'auto', 'map' or 'vmap', not 'refill'")
    ids: dict[str, int] = {}
    config_of = [ids.setdefault(json.dumps([p[k] for k in sp.swept_keys], default=str), len(ids)) for p in sp.points]
    try:
        fingerprint = hashlib.sha256(json.dumps([to_dict(cfg), chunk, execution], sort_keys=True,
                                                default=str).encode()).hexdigest()
        outputs, stats = adaptive.run_hyperband(sp.groups, len(sp.points), halving, config_of, chunk_size=chunk,
                                                execution=execution, devices=devices, progress=progress,
                                                checkpoint_dir=checkpoint_dir, resume=resume, fingerprint=fingerprint)
    except ValueError as e:
        raise ConfigError(f"sweep.{e}" if str(e).startswith("halving.") else str(e)) from None
    stacked = runner.stack_outputs([o[0] for o in outputs])
    rows = []
    for i, p in enumerate(sp.points):
        row: dict[str, Any] = {"run": i, **{k: p[k] for k in sp.swept_keys}, "seed": p["seed"]}
        for name, arr in stacked["metrics"].items():
            row[name] = _cell(name, arr[i])
        info = outputs[i][1]
        row.update(halted=bool(info.halted), rungs_passed=int(info.rungs_passed), bracket=int(info.bracket),
                   epochs_computed=int(info.epochs_computed))
        rows.append(row)
    return _result(cfg, sp, rows, stacked, stats)


def _cell(name: str, value: Any) -> Any:
    v = np.asarray(value).item()
    if name == "diverged":
        return bool(v)
    if name in ("best_epoch", "epochs_run"):
        return int(v)
    v = float(v)
    return None if math.isnan(v) else v


def best_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The best non-diverged run: lowest best validation loss, else lowest final training loss.

    With successive halving, runs halted at a rung (trained for fewer epochs) are only
    considered when no run went the full budget."""
    ok = [r for r in rows if not r.get("diverged")]
    full = [r for r in ok if not r.get("halted")]
    ok = full or ok
    for metric in ("best_val_loss", "final_train_loss"):
        cands = [r for r in ok if r.get(metric) is not None]
        if cands:
            return min(cands, key=lambda r: r[metric])
    return None


def write_results(out: str | os.PathLike, result: ConfigSweepResult, *, report: bool = True,
                  drop: Sequence[str] = (), extra: Any = None) -> Path:
    """Write runs.csv, summary.json, config.json, histories.npz (and the report) atomically into `out`.

    Everything is written into a staging folder beside `out` first and published
    all at once (`records.staged_folder`), so a crash never leaves half-written
    results and nothing the user keeps in `out` is replaced; `drop` names entries
    jaxopt_lab wrote that go with the publish (the sweep's ``checkpoints``).
    `extra(folder)` writes a search method's own records (such as trials.csv) there too.
    """

    out = Path(out)
    with records.staged_folder(out, drop=drop) as tmp:
        records.write_runs_csv(tmp / "runs.csv", result.rows, result.plan.swept_keys)
        np.savez(tmp / "histories.npz", run=np.arange(len(result.rows)), **result.histories)
        by = [k for k in result.plan.swept_keys]
        if by and len({r["seed"] for r in result.rows}) > 1:
            metrics = [m for m in (*METRIC_COLUMNS[:5], "epochs_run", "epochs_to_target") if m in result.rows[0]]
            agg = records.aggregate(result.rows, by, metrics)
            _io.write_dict_csv(tmp / "aggregate.csv", agg)
        summary = summary_of(result)
        records.write_summary_json(tmp / "summary.json", summary)
        # The config the runs came from, so the folder can be analysed and re-reported alone.
        records.write_summary_json(tmp / "config.json", to_dict(result.plan.config))
        if extra is not None:
            extra(tmp)
        if report:
            report_mod.sweep_report(tmp, report_data(result))
    return out


def report_data(result: ConfigSweepResult) -> report_mod.SweepData:
    """What the sweep report draws, from a sweep that just ran."""
    return report_mod.SweepData([dict(r) for r in result.rows], list(result.plan.swept_keys),
                                {k: np.asarray(v) for k, v in result.histories.items()}, summary_of(result),
                                report_mod.as_toml(to_dict(result.plan.config)))


def summary_of(result: ConfigSweepResult) -> dict[str, Any]:
    st = result.stats
    best = best_row(result.rows)
    best_cfg = None
    if best is not None:
        overrides = {k: best[k] for k in result.plan.swept_keys}
        best_cfg = to_dict(apply_overrides(result.plan.config.replace(sweep={}), overrides))
        best_cfg["seed"] = best["seed"]
    return {
        "runs": len(result.rows),
        "devices": st.devices,
        "execution": st.execution,
        "wall_seconds": st.wall_seconds,
        "compile_seconds": st.compile_seconds,
        "runs_per_second": st.runs_per_second,
        "compilations": st.compilations,
        "chunks": st.chunks,
        "chunks_resumed": st.chunks_resumed,
        "groups": [g.label for g in result.plan.groups],
        "diverged": sum(bool(r["diverged"]) for r in result.rows),
        "epochs_total": sum(int(r["epochs_run"]) for r in result.rows),
        **({"lanes": st.lanes} if st.execution == "refill" else {}),
        **({"halving": halving_summary(result)} if result.rows and "halted" in result.rows[0] else {}),
        "swept_keys": result.plan.swept_keys,
        "best": None if best is None else {"run": best["run"], "config": best_cfg,
                                           "metrics": {k: best.get(k) for k in METRIC_COLUMNS}},
        **(result.extra_summary or {}),
    }


def halving_summary(result: ConfigSweepResult) -> dict[str, Any]:
    """What successive halving did: rungs, runs reaching and passing each, the runs that
    went through every rung, and the epochs spent (the compute a plain search would spend
    is `runs x train.epochs`)."""
    _, _, halving = adaptive_options(result.plan.config)
    epochs = result.plan.config.train.epochs
    if halving.brackets is not None:
        return hyperband_summary(result, halving)
    rungs = halving.rungs(epochs)
    rows = result.rows
    per_rung = []
    for k, r in enumerate(rungs):
        reached = [row for row in rows if row["epochs_run"] >= r and (row["rungs_passed"] >= k)]
        passed = [row for row in rows if row["rungs_passed"] > k]
        per_rung.append({"rung": k, "epoch": r, "reached": len(reached), "passed": len(passed)})
    finalists = [row["run"] for row in rows if row["rungs_passed"] == len(rungs) and not row["diverged"]]
    return {
        "min_epochs": halving.min_epochs, "eta": halving.eta, "rungs": list(rungs), "per_rung": per_rung,
        "promoted_to_last_rung": finalists, "halted": sum(bool(row["halted"]) for row in rows),
        "epochs_spent": sum(int(row["epochs_run"]) for row in rows), "epochs_without_halving": len(rows) * epochs,
    }


def hyperband_summary(result: ConfigSweepResult, halving: adaptive.Halving) -> dict[str, Any]:
    """What Hyperband did, bracket by bracket: its rungs, configurations and runs, how many runs reached
    and passed each rung, the epochs the runs' results stand for (`epochs_run`) and the epochs computed
    (each stage retrains its runs from the start), against `runs x train.epochs` without halving."""
    epochs = result.plan.config.train.epochs
    brackets = []
    for rungs in halving.bracket_rungs(epochs):
        rows = [r for r in result.rows if r["bracket"] == len(rungs)]
        per_rung = [{"rung": k, "epoch": e, "reached": sum(r["rungs_passed"] > k or
                                                           (r["rungs_passed"] == k and r["halted"]) for r in rows),
                     "passed": sum(r["rungs_passed"] > k for r in rows)} for k, e in enumerate(rungs)]
        brackets.append({"s": len(rungs), "rungs": list(rungs), "runs": len(rows), "per_rung": per_rung,
                         "epochs_run": sum(int(r["epochs_run"]) for r in rows),
                         "epochs_computed": sum(int(r["epochs_computed"]) for r in rows)})
    rows = result.rows
    return {
        "method": "hyperband", "min_epochs": halving.min_epochs, "eta": halving.eta, "brackets": brackets,
        "halted": sum(bool(r["halted"]) for r in rows),
        "epochs_spent": sum(int(r["epochs_computed"]) for r in rows),
        "epochs_run": sum(int(r["epochs_run"]) for r in rows), "epochs_without_halving": len(rows) * epochs,
    }
