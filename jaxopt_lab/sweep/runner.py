"""The vectorized sweep runner: chunks of runs, compiled once per group, sharded over devices.

A sweep is a list of *groups*: runs that share one compiled program (the same
categorical choices) and differ only in numeric hyperparameters and seeds. Each
group runs in chunks of equal shape (so one compilation serves every chunk, the
last one padded), and every chunk is sharded over all local devices along a
`runs` mesh axis with `shard_map`.

Inside a device's shard the runs execute either

* ``"map"``: one after another inside one program (`lax.map`), which on a CPU
  beats batching: XLA's batched small matrix products are slower there than the
  runs in sequence, and each run's arithmetic is then exactly its own
  (BENCHMARKS.md section 1.5: 112 runs/s against 50.7 for `jit(vmap)` on the moons sweep, 2 cores);
* ``"vmap"``: batched (`jax.vmap`), which pays on GPUs and TPUs where a tiny
  model alone leaves the device idle.

``execution="auto"`` picks ``"vmap"`` on accelerators; on CPU it chooses per group
(`auto_execution`): ``"map"`` for full-batch groups, ``"map"`` over vmapped lanes of a fixed
width for mini-batch groups.

* ``"refill"``: batched over *lanes* that are reset with the next pending run as
  soon as theirs stops (early stopping, divergence, budget), optionally with
  successive-halving rungs (`jaxopt_lab.sweep.adaptive`). It needs groups that
  carry a `Stepper` (config sweeps and `make_train` trainers do).

After each chunk its outputs come to the host and, when a checkpoint folder is
given, are saved atomically; a resumed sweep loads finished chunks instead of
running them, so it ends with the same outputs as an uninterrupted one.

`execute` goes through four steps, each in one place: *plan* (`jaxopt_lab.sweep.plan`: which
execution, chunk shape and lanes per group), *compile* (`compiled_program`, through a bounded,
clearable program cache a caller may pass in), *run one chunk* (`_chunk_args`, `_run_chunk`:
the chunk's arguments placed on the mesh, its outputs gathered to the host) and *resume*
(`jaxopt_lab.sweep.chunks`: the checkpoint folder, saving and loading chunks).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, PartitionSpec

from jaxopt_lab import _cache, _xla
from jaxopt_lab.sweep import adaptive, chunks
from jaxopt_lab.sweep.chunks import prepare_checkpoints  # noqa: F401 - re-exported: a public name of the runner
from jaxopt_lab.sweep.plan import (  # noqa: F401 - re-exported: the runner's public names
    AUTO_LANE_BYTES,
    AUTO_LANE_WIDTH,
    DEFAULT_CHUNK_BUDGET,
    EXECUTIONS,
    Group,
    GroupPlan,
    RunFn,
    auto_execution,
    chunk_plan,
    default_execution,
    plan_group,
    resolve_execution,
)
from jaxopt_lab.sweep.plan import label_text as _label

_float_dtype = adaptive.float_dtype  # the name other modules of the package read

#: What `execute` keeps compiled chunk programs in (`program_cache`): bounded and clearable.
ProgramCache = _cache.BoundedCache


@dataclass
class ExecutionStats:
    """How a sweep executed: runs, devices, the execution (and refill lanes), seconds in all and
    compiling, chunks run and loaded from checkpoints, and programs compiled (0 when every one came
    from the program cache)."""

    runs: int = 0
    devices: int = 1
    execution: str = "map"
    lanes: int | None = None
    wall_seconds: float = 0.0
    compile_seconds: float = 0.0
    chunks: int = 0
    chunks_resumed: int = 0
    compilations: int = 0

    @property
    def runs_per_second(self) -> float:
        run_time = self.wall_seconds - self.compile_seconds
        return self.runs / run_time if run_time > 0 else float("nan")


class SweepInterrupted(Exception):
    """Raised after Ctrl-C once the finished chunks are saved."""


# ----------------------------------------------------------------------------- compile


# Compiled chunk programs, reused by later sweeps in this process: a second sweep of the same
# shapes with new values does not recompile. The default of `execute`'s `program_cache`;
# `jaxopt_lab.sweep.clear_caches` empties it.
_COMPILED = _cache.BoundedCache("sweep programs", 64)


#: The sweep's programs compile with `_xla.COMPILER_OPTIONS["balanced"]` on CPU.
compile_lowered = _xla.compile_lowered


def _program(fn: RunFn, keys: Sequence[str], mesh: Mesh, execution: str, map_batch_size: int,
             with_data: bool = False):
    """jit(shard_map(map-or-vmap(fn))) over (seeds, hparams) arrays, and the group's data
    (replicated on every device) when `with_data`."""

    def shard(seeds, hp, *data):
        def one(seed, h):
            return fn(seed, h, *data)

        if execution == "vmap":
            return jax.vmap(one)(seeds, hp)
        return jax.lax.map(lambda a: one(*a), (seeds, hp), batch_size=map_batch_size)

    spec = PartitionSpec("runs")
    in_specs = (spec, {k: spec for k in keys}) + ((PartitionSpec(),) if with_data else ())
    sharded = jax.shard_map(shard, mesh=mesh, in_specs=in_specs, out_specs=spec, check_vma=False)
    return jax.jit(sharded)


def _refill_program(stepper: Any, keys: Sequence[str], mesh: Mesh, size: int, n_lanes: int,
                    rungs: Sequence[int], eta: float, with_data: bool = False):
    """jit(shard_map(refill lanes)): the queue replicated, the lanes split over devices."""
    n_dev = mesh.devices.size

    def shard(seeds, hp, n_valid, *data):
        lanes = adaptive.refill_shard(
            adaptive.bind_data(stepper, *data), lanes_per_device=n_lanes // n_dev, n_devices=n_dev,
            queue_size=size, rungs=rungs, eta=eta,
        )
        return lanes(seeds, hp, n_valid)

    rep = PartitionSpec()
    sharded = jax.shard_map(
        shard, mesh=mesh, in_specs=(rep, {k: rep for k in keys}, rep) + ((rep,) if with_data else ()),
        out_specs=PartitionSpec("runs"), check_vma=False,
    )
    return jax.jit(sharded)


def _shapes(tree: Any) -> Any:
    return tuple((tuple(np.shape(a)), str(np.asarray(a).dtype) if not hasattr(a, "dtype") else str(a.dtype))
                 for a in jax.tree.leaves(tree))


def program_key(group: Group, plan: GroupPlan, devices: Sequence[Any]) -> tuple:
    """What identifies a group's compiled chunk program across sweeps: the run function (its
    `cache_key`), the hyperparameters' names, the chunk shape, the execution variant, the devices,
    the float dtype and the shapes of the group's data."""
    return (
        group.cache_key if group.cache_key is not None else id(group.fn),
        plan.keys, plan.size, plan.variant, tuple(str(d) for d in devices), str(_float_dtype()),
        _shapes(group.data),
    )


def compiled_program(group: Group, plan: GroupPlan, mesh: Mesh, args: tuple, cache: ProgramCache,
                     stats: ExecutionStats) -> Any:
    """The group's chunk program for arguments like `args`: from `cache` when it holds it, else
    compiled (counted in `stats`) and stored there."""
    key = program_key(group, plan, list(mesh.devices.flat))
    hit = cache.get(key)
    if hit is not None:
        return hit[0]
    t0 = time.perf_counter()
    if plan.execution == "refill":
        jitted = _refill_program(group.stepper, plan.keys, mesh, plan.size, plan.n_lanes, plan.rungs,
                                 plan.eta if plan.eta is not None else 3.0, with_data=group.data is not None)
    else:
        jitted = _program(group.fn, plan.keys, mesh, plan.execution, plan.map_batch_size,
                          with_data=group.data is not None)
    program = compile_lowered(jitted.lower(*args))
    stats.compile_seconds += time.perf_counter() - t0
    stats.compilations += 1
    # The run function stays alive with its program: a key holding `id(group.fn)` must not match
    # another function that later reuses a freed one's id.
    cache[key] = (program, group.fn)
    return program


# ----------------------------------------------------------------------------- run one chunk


def _global(a: np.ndarray, mesh: Mesh, replicated: bool = False) -> jax.Array:
    """A host array (the same on every process) as a global array sharded over the runs axis
    (or replicated on every device)."""
    sharding = jax.sharding.NamedSharding(mesh, PartitionSpec() if replicated else PartitionSpec("runs"))
    return jax.make_array_from_callback(np.shape(a), sharding, lambda idx: np.asarray(a)[idx])


def _replicated(data: Any, mesh: Mesh, multi: bool) -> Any:
    """The group's data as one replicated copy on the mesh's devices (placed once per group)."""
    if multi:
        return jax.tree.map(lambda a: _global(np.asarray(a), mesh, replicated=True), data)
    return jax.device_put(data, jax.sharding.NamedSharding(mesh, PartitionSpec()))


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    """Pad the run axis to `size` by repeating the last run (its results are dropped)."""
    if len(a) == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])


def _chunk_args(group: Group, plan: GroupPlan, lo: int, hi: int, mesh: Mesh, multi: bool) -> tuple:
    """Runs `lo:hi` of the group as the program's (seeds, hparams[, n_valid]), padded to the chunk
    shape and, on several processes, as global arrays over the mesh."""
    seeds = _pad(np.asarray(group.seeds[lo:hi], np.int32), plan.size)
    hp = {k: _pad(np.asarray(group.hparams[k][lo:hi], _float_dtype()), plan.size) for k in plan.keys}
    if plan.execution == "refill":
        args = (seeds, hp, np.asarray(hi - lo, np.int32))
        # The refill queue is replicated: every device draws its runs from all of it.
        return jax.tree.map(lambda a: _global(a, mesh, replicated=True), args) if multi else args
    if multi:
        return (_global(seeds, mesh), {k: _global(v, mesh) for k, v in hp.items()})
    return (seeds, hp)


def _run_chunk(program: Any, args: tuple, plan: GroupPlan, n_valid: int, n_devices: int, multi: bool) -> Any:
    """One chunk run; the outputs of its first `n_valid` runs (the rest is padding) as host numpy,
    with a leading axis over those runs. On several processes each computed the shards of its own
    devices: the outputs are gathered to all."""
    result = program(*args)
    if multi:
        result = multihost_utils.process_allgather(result, tiled=True)
    if plan.execution == "refill":
        buf, written = jax.device_get(result)
        return adaptive.combine(buf, written, n_devices, n_valid)
    return jax.tree.map(lambda a: np.asarray(a)[:n_valid], jax.device_get(result))


# ----------------------------------------------------------------------------- the whole sweep


class Progress:
    """Runs done, runs/s and ETA: a bar on a terminal, plain lines otherwise (stderr)."""

    def __init__(self, total: int, enabled: bool | None = None, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = True if enabled is None else enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.t0 = time.perf_counter()
        self.run_time = 0.0
        self.ran = 0

    def update(self, n: int, ran: bool, seconds: float, label: str = "") -> None:
        self.done += n
        if ran:
            self.ran += n
            self.run_time += seconds
        if not self.enabled:
            return
        rate = self.ran / self.run_time if self.run_time > 0 else float("nan")
        left = self.total - self.done
        eta = left / rate if rate and rate == rate and rate > 0 else float("nan")
        eta_s = f"{eta:5.0f}s" if eta == eta else "    ?"
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} runs  {rate:7.1f} runs/s  ETA {eta_s} {label}")
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(
                f"sweep: {self.done}/{self.total} runs done, {rate:.1f} runs/s, ETA {eta_s.strip()} {label}\n"
            )
        self.stream.flush()


@dataclass
class _Sweep:
    """What every chunk of one `execute` call shares."""

    mesh: Mesh
    multi: bool  # several processes (jax.distributed) share the mesh
    writer: bool  # this process saves checkpoints and calls `on_chunk`
    ckpt: Path | None
    resume: bool
    fingerprint: str
    cache: ProgramCache
    stats: ExecutionStats
    outputs: list[Any]
    progress: Progress
    on_chunk: Callable[[np.ndarray, Any], None] | None

    @property
    def n_devices(self) -> int:
        return self.mesh.devices.size


def _mesh(devices: Sequence[Any] | None) -> tuple[Mesh, bool]:
    """The `runs` mesh over `devices` (default: all devices, of every process when several share
    the sweep), and whether several processes do."""
    multi = jax.process_count() > 1
    if devices is None:
        devices = jax.devices() if multi else jax.local_devices()
    return Mesh(np.array(list(devices)), ("runs",)), multi


def execute(
    groups: Sequence[Group],
    n_runs: int,
    *,
    chunk_size: int | None = None,
    execution: str = "auto",
    map_batch_size: int = 1,
    devices: Sequence[Any] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    fingerprint_extra: Any = None,
    progress: bool | None = None,
    chunk_budget: int = DEFAULT_CHUNK_BUDGET,
    lanes: int | None = None,
    halving: Any = None,
    on_chunk: Callable[[np.ndarray, Any], None] | None = None,
    program_cache: ProgramCache | None = None,
) -> tuple[list[Any], ExecutionStats]:
    """Run every group in chunks; returns (per-run outputs as host numpy pytrees, stats).

    With ``execution="refill"`` (implied by `halving`, an `adaptive.Halving`) each
    chunk runs in `lanes` recycled lanes (default `adaptive.default_lanes`), and
    each run's output is `(fn's output, adaptive.LaneInfo)`.

    `on_chunk(indices, chunk_outputs)` is called on the writing process after each chunk
    (computed or resumed) with the run indices and their host outputs (leading axis over
    those runs): loggers write from there, outside any compiled program.

    `program_cache` (a `jaxopt_lab._cache.BoundedCache`) keeps the compiled chunk programs; by
    default the process-wide one, so a later sweep of the same shapes does not recompile.
    """
    execution, auto = resolve_execution(groups, execution, halving, lanes, map_batch_size, chunk_size)
    mesh, multi = _mesh(devices)
    # Several processes (jax.distributed): every process runs this same loop over the same
    # chunks; each computes the shards of its own devices, and the outputs are gathered to all.
    writer = jax.process_index() == 0
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if execution == "refill":
        # Halving decisions depend on the lanes and rungs: checkpoints of another setting do not fit.
        fingerprint_extra = [fingerprint_extra, execution, lanes, halving and [halving.min_epochs, halving.eta]]
    fp = chunks.fingerprint(groups, fingerprint_extra)
    if ckpt is not None and writer:
        prepare_checkpoints(ckpt, fp, resume)
    sweep = _Sweep(
        mesh=mesh, multi=multi, writer=writer, ckpt=ckpt, resume=resume, fingerprint=fp,
        cache=_COMPILED if program_cache is None else program_cache,
        stats=ExecutionStats(runs=n_runs, devices=mesh.devices.size, execution=execution),
        outputs=[None] * n_runs, progress=Progress(n_runs, progress if writer else False), on_chunk=on_chunk,
    )
    t_start = time.perf_counter()
    try:
        for gi, g in enumerate(groups):
            plan = plan_group(g, execution=execution, auto=auto, map_batch_size=map_batch_size,
                              chunk_size=chunk_size, chunk_budget=chunk_budget, n_devices=sweep.n_devices,
                              lanes=lanes, halving=halving)
            if plan.n_lanes is not None:
                sweep.stats.lanes = plan.n_lanes
            _execute_group(sweep, gi, g, plan)
    except KeyboardInterrupt:
        raise SweepInterrupted(
            "sweep interrupted: finished chunks are saved" + (f" in {ckpt}; rerun with --resume" if ckpt else "")
        ) from None
    sweep.stats.wall_seconds = time.perf_counter() - t_start
    return sweep.outputs, sweep.stats


def _execute_group(sweep: _Sweep, gi: int, group: Group, plan: GroupPlan) -> None:
    """Every chunk of group `gi`: loaded from its checkpoint when resuming, else run and saved."""
    program = data_args = None  # compiled, and the data placed, when the first chunk runs
    for ci, lo, hi in plan.chunk_bounds(len(group.indices)):
        idx = group.indices[lo:hi]
        path = chunks.checkpoint_path(sweep.ckpt, gi, ci)
        t0 = time.perf_counter()
        if path is not None and sweep.resume and path.exists():
            chunk_out = chunks.load(path, plan.out_shape, sweep.fingerprint, idx, sweep.n_devices)
            _finish_chunk(sweep, group, idx, chunk_out, ran=False, t0=t0)
            continue
        if data_args is None:
            data_args = tuple(_replicated(d, sweep.mesh, sweep.multi) for d in group.data_args())
        args = (*_chunk_args(group, plan, lo, hi, sweep.mesh, sweep.multi), *data_args)
        if program is None:
            program = compiled_program(group, plan, sweep.mesh, args, sweep.cache, sweep.stats)
            t0 = time.perf_counter()  # the run rate the progress line shows leaves compiling out
        chunk_out = _run_chunk(program, args, plan, hi - lo, sweep.n_devices, sweep.multi)
        if path is not None and sweep.writer:
            chunks.save(path, chunk_out, sweep.fingerprint, idx, sweep.n_devices)
        _finish_chunk(sweep, group, idx, chunk_out, ran=True, t0=t0)


def _finish_chunk(sweep: _Sweep, group: Group, idx: np.ndarray, chunk_out: Any, *, ran: bool, t0: float) -> None:
    """A finished chunk (run, or loaded when resuming) into the sweep's outputs, `on_chunk`, the
    stats and the progress line."""
    _scatter(sweep.outputs, idx, chunk_out)
    if sweep.on_chunk is not None and sweep.writer:
        sweep.on_chunk(idx, chunk_out)
    if ran:
        sweep.stats.chunks += 1
    else:
        sweep.stats.chunks_resumed += 1
    sweep.progress.update(len(idx), ran, time.perf_counter() - t0, _label(group.label))


def _scatter(outputs: list[Any], idx: np.ndarray, chunk_out: Any) -> None:
    """Each run's outputs of a chunk (leading axis over `idx`) into `outputs` at its index."""
    leaves, treedef = jax.tree.flatten(chunk_out)
    for j, i in enumerate(idx):
        outputs[int(i)] = jax.tree.unflatten(treedef, [leaf[j] for leaf in leaves])


# ----------------------------------------------------------------------------- results; sweeping a train function


def stack_outputs(outputs: Sequence[Any]) -> Any:
    """Per-run outputs -> one pytree of arrays with a leading run axis.

    Groups may give arrays of different lengths (histories of 3 and of 5
    epochs); shorter ones are padded at the end with NaN (0 for non-floats).
    """

    def stack(*xs):
        shapes = {np.shape(x) for x in xs}
        if len(shapes) == 1:
            return np.stack(xs)
        target = tuple(max(d) for d in zip(*shapes, strict=True))
        fill = np.nan if np.issubdtype(np.asarray(xs[0]).dtype, np.floating) else 0
        return np.stack([
            np.pad(np.asarray(x), [(0, t - d) for d, t in zip(np.shape(x), target, strict=True)],
                   constant_values=fill)
            for x in xs
        ])

    return jax.tree.map(stack, *outputs)


@dataclass
class SweepResult:
    """What `run` returns.

    Attributes:
      points: the space's points, in run order (each with its "seed").
      outputs: the train function's outputs stacked over runs (numpy, leading run axis).
      stats: timing and execution details.
      keys: the swept keys (the space's keys, "seed" included).
      lane_info: with ``execution="refill"``, `adaptive.LaneInfo` stacked over runs
        (`halted` by a halving rung, `rungs_passed`); None otherwise.
    """

    points: list[dict[str, Any]]
    outputs: Any
    stats: ExecutionStats
    keys: tuple[str, ...]
    lane_info: Any = None

    def table(self) -> list[dict[str, Any]]:
        """One row per run: `run`, the point's values, and every scalar output (by its key path)."""
        flat, _ = jax.tree_util.tree_flatten_with_path(self.outputs)
        scalars = [(jax.tree_util.keystr(p, simple=True, separator="."), a) for p, a in flat if a.ndim == 1]
        rows = []
        for i, point in enumerate(self.points):
            row: dict[str, Any] = {"run": i, **point}
            for name, arr in scalars:
                row[name.rsplit(".", 1)[-1] if name.startswith("metrics.") else name] = arr[i].item()
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """`table` as a pandas DataFrame, typed like `jaxopt_lab.results.load`'s ``runs``."""
        # Here, not at the top: `jaxopt_lab.results` reads finished sweeps' folders, a layer above the runner.
        from jaxopt_lab.results import frame

        return frame(self.table())


def _points(space: Any) -> list[dict[str, Any]]:
    pts = space.points() if hasattr(space, "points") else list(space)
    out = []
    for i, p in enumerate(pts):
        p = dict(p)
        p.setdefault("seed", 0)
        if out and p.keys() != out[0].keys():
            missing, extra = sorted(out[0].keys() - p.keys()), sorted(p.keys() - out[0].keys())
            raise ValueError(f"point {i} has different keys from point 0 (missing: {missing}, extra: {extra}); "
                             "every point of a sweep has the same keys")
        out.append(p)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def group_points(
    points: Sequence[Mapping[str, Any]], categorical: set[str] = frozenset()
) -> list[tuple[dict, list[int]]]:
    """Split runs into groups by the values of their categorical keys (first-appearance order).

    A key is categorical when it is named in `categorical` or any of its values is
    not a number (strings, booleans, lists).
    """
    keys = [k for k in (points[0] if points else {}) if k != "seed"]
    cat = [k for k in keys if k in categorical or not all(_is_number(p.get(k)) for p in points)]
    groups: dict[tuple, tuple[dict, list[int]]] = {}
    for i, p in enumerate(points):
        label = {k: p[k] for k in cat}
        sig = json.dumps(label, sort_keys=True, default=str)
        groups.setdefault(sig, (label, []))[1].append(i)
    return list(groups.values())


def run(
    train_fn: Callable[[jax.Array, Mapping[str, Any]], Any],
    space: Any,
    *,
    categorical: Sequence[str] = (),
    chunk_size: int | None = None,
    execution: str = "auto",
    map_batch_size: int = 1,
    devices: Sequence[Any] | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
    lanes: int | None = None,
    halving: Any = None,
) -> SweepResult:
    """Run `train_fn(key, hparams) -> pytree` once per point of `space`.

    `hparams` is a dict keyed like the space (without "seed"): numeric values
    arrive as traced scalars, so one compiled program serves every run of a
    group; categorical values (strings, booleans, and keys listed in
    `categorical`) arrive as Python values, one compiled program per
    combination. `key` is `jax.random.PRNGKey(seed)` of the point's "seed"
    (default 0).

    Runs go in chunks (`chunk_size` runs, or sized from a memory budget), each
    sharded over `devices` (default: all local devices). With `out`, finished
    chunks are checkpointed under `out/checkpoints/` and `resume=True` skips
    them. Outputs come back stacked over runs, in the space's order.

    ``execution="refill"`` (or `halving`, an `adaptive.Halving`) needs `train_fn` split
    into epochs: a trainer from `make_train` or an `adaptive.Stepper`. Finished runs'
    lanes then take the next runs (`lanes` of them per chunk), and halving stops the
    worst runs at its rungs. A `halving` with ``brackets`` runs Hyperband instead
    (`adaptive.run_hyperband`; `lane_info` is then `adaptive.BracketInfo` per run).
    """
    points = _points(space)
    if not points:
        raise ValueError("space is empty: it has no points to run")
    stepper = _stepper_of(train_fn) if execution == "refill" or halving is not None else None
    groups = _groups_of(train_fn, points, set(categorical), stepper)
    keys = tuple(points[0])
    if halving is not None and getattr(halving, "brackets", None) is not None:
        outputs, stats = adaptive.run_hyperband(
            groups, len(points), halving, _configurations(points), chunk_size=chunk_size,
            execution="auto" if execution == "refill" else execution, devices=devices, progress=progress)
        return SweepResult(points=points, outputs=stack_outputs([o[0] for o in outputs]), stats=stats,
                           keys=keys, lane_info=stack_outputs([o[1] for o in outputs]))
    ckpt = Path(out) / "checkpoints" if out is not None else None
    outputs, stats = execute(
        groups, len(points), chunk_size=chunk_size, execution=execution, map_batch_size=map_batch_size,
        devices=devices, checkpoint_dir=ckpt, resume=resume, progress=progress,
        fingerprint_extra={"fn": getattr(train_fn, "__qualname__", type(train_fn).__name__)},
        lanes=lanes, halving=halving,
    )
    info = None
    if stats.execution == "refill":
        info = stack_outputs([o[1] for o in outputs])
        outputs = [o[0] for o in outputs]
    return SweepResult(points=points, outputs=stack_outputs(outputs), stats=stats, keys=keys, lane_info=info)


def _stepper_of(train_fn: Any) -> adaptive.Stepper:
    """`train_fn` split into epochs, for refill and halving: a `Stepper` itself or a trainer's."""
    if isinstance(train_fn, adaptive.Stepper):
        return train_fn
    if hasattr(train_fn, "init_state") and hasattr(train_fn, "finalize"):
        return adaptive.stepper_from_trainer(train_fn)
    raise ValueError(
        "execution='refill' needs train_fn split into epochs: pass a trainer from make_train or an "
        f"adaptive.Stepper, not {type(train_fn).__name__}"
    )


def _groups_of(train_fn: Any, points: list[dict[str, Any]], categorical: set[str],
               stepper: adaptive.Stepper | None) -> list[Group]:
    """The sweep's runs as `Group`s, one per combination of categorical values."""
    groups = []
    for label, idx in group_points(points, categorical):
        if stepper is not None and label:
            raise ValueError(
                f"execution='refill' runs one compiled program per sweep: categorical keys {sorted(label)} "
                "cannot vary; run one sweep per value"
            )
        num_keys = [k for k in points[idx[0]] if k != "seed" and k not in label]
        groups.append(Group(
            fn=_run_fn(train_fn, label, stepper), indices=np.asarray(idx),
            seeds=np.asarray([int(points[i]["seed"]) for i in idx]),
            hparams={k: np.asarray([points[i][k] for i in idx], np.float64) for k in num_keys},
            label=label, cache_key=(id(train_fn), json.dumps(label, sort_keys=True, default=str)),
            stepper=stepper, data=_data_of(train_fn), lanes_pay=_lanes_pay(train_fn),
            batch_bytes=_batch_bytes_of(train_fn),
        ))
    return groups


def _run_fn(train_fn: Any, label: Mapping[str, Any], stepper: adaptive.Stepper | None) -> RunFn:
    """One run of a group as `fn(seed, hparams, *data)`: `train_fn` with the group's categorical values."""

    def fn(seed, h, *data):
        if train_fn is stepper:  # a Stepper given directly: its whole run
            return adaptive.run_alone(adaptive.bind_data(stepper, *data), seed, h)
        return train_fn(jax.random.PRNGKey(seed), {**h, **label}, *data)

    return fn


def _configurations(points: Sequence[Mapping[str, Any]]) -> list[int]:
    """Per run, its configuration's number: runs sharing every value but the seed share one
    (Hyperband ranks configurations, so a configuration's seeds stay together)."""
    ids: dict[str, int] = {}
    return [ids.setdefault(json.dumps({k: v for k, v in p.items() if k != "seed"}, sort_keys=True, default=str),
                           len(ids)) for p in points]


def _data_of(train_fn: Any) -> Any:
    """The data a run function reads as an argument: a trainer's `data_arrays` (a `Stepper`'s
    `data`), else None (the function closes over whatever it reads)."""
    data = getattr(train_fn, "data_arrays", None)
    if data is None and getattr(train_fn, "takes_data", False):
        data = train_fn.data
    return data


def _lanes_pay(train_fn: Any) -> bool:
    fn = getattr(train_fn, "lanes_pay", None)
    return bool(fn()) if callable(fn) else False


def _batch_bytes_of(train_fn: Any) -> int | None:
    fn = getattr(train_fn, "batch_bytes", None)
    return fn() if callable(fn) else None


def use_cpu_cores(n: int | None = None) -> int:
    """Expose `n` (default: all) CPU cores as separate JAX host devices, so sweeps use every core.

    XLA runs one small-op program on about one core; sharding runs over host
    devices uses them all. This only works before JAX initializes its backend
    (the first computation); afterwards it is a no-op. Returns the device count.
    """
    n = n or os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        pass  # backend already initialized: keep what it has
    return len(jax.local_devices())
