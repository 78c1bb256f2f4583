"""The sweeps a protocol runs: its prepared plan, the runner that stages every sweep, search then rerun.

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

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from jaxopt_lab.config import Config, apply_overrides, to_dict
from jaxopt_lab.protocols.ranking import resolve_metric
from jaxopt_lab.protocols.search_spaces import point_table, random_table, swept_point
from jaxopt_lab.sweep import config_sweep
from jaxopt_lab.sweep.records import best_run
from jaxopt_lab.sweep.runner import chunk_plan, default_execution

__all__ = ["Prepared", "SweepRecord", "SweepRunner", "Tuned", "search_and_rerun"]


@dataclasses.dataclass
class Prepared:
    """What a protocol's `prepare` checked and built before any run; its `run` takes it.

    Every protocol fills `options` (its parsed `[sweep.protocol_options]`) and `shape_hint`
    (the run count the chunk shape is sized for); the rest is what the protocol uses:
    `configs` (one per optimizer: deepobs, crowded_valley, choi), `spaces` (search spaces per
    optimizer: crowded_valley, choi, algoperf), `learning_rates` (deepobs' grid) and
    `problems` (algoperf's `Problem`s, each with its own configs).
    """

    options: dict[str, Any]
    shape_hint: int
    configs: dict[str, Config] = dataclasses.field(default_factory=dict)
    spaces: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    learning_rates: list[float] = dataclasses.field(default_factory=list)
    problems: list[Any] = dataclasses.field(default_factory=list)


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
        self.stage = stage
        self.execution = default_execution() if execution == "auto" else execution
        self.progress = progress
        self.chunk_size = chunk_size
        self.n_devices = len(jax.local_devices())
        d = self.n_devices
        self.shape = d if self.execution == "map" else math.ceil(max(shape_hint, 1) / d) * d
        self.records: list[SweepRecord] = []
        self.label = label

    def _chunk(self, n: int) -> int | None:
        if self.chunk_size is not None:
            return self.chunk_size
        for cs in range(self.shape, 0, -1):
            if chunk_plan(n, self.n_devices, cs)[0] == self.shape:
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
        return to_dict(apply_overrides(self.config, self.point))


def search_and_rerun(runner: SweepRunner, cfg: Config, name: str, space: Mapping[str, Mapping[str, list]], *,
                     trials: int, space_seed: int, tuning_seed: int, rerun_seeds: int, metric: str,
                     search: str = "random") -> Tuned:
    """A search of `trials` configurations (one seed), then the best rerun over seeds 0..n-1.

    `search` is the `[sweep]` table the trials come from: ``"random"`` or ``"quasirandom"``
    (both take the table `random_table` writes). Both sweeps share the config and the swept
    keys, so the rerun reuses the search's program.
    """
    table = {"seeds": [tuning_seed], search: random_table(space, trials, space_seed)}
    tuning = runner.run(cfg, table, f"tuning/{name}", kind="tuning", optimizer=name)
    column, mode, note = resolve_metric(metric, tuning.rows)
    row = best_run(tuning.rows, column, mode)
    point = rerun = None
    if row is not None:
        point = swept_point(row, tuning.plan.swept_keys)
        rerun = runner.run(cfg, point_table(point, range(rerun_seeds)), f"rerun/{name}", kind="rerun",
                           optimizer=name, best=point)
    return Tuned(name, cfg, tuning, column, mode, note, row, point, rerun)
