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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxopt_lab import _cache, _io
from jaxopt_lab.config import ConfigError

RunFn = Callable[[jax.Array, Mapping[str, jax.Array]], Any]

#: Default memory budget for one chunk's live data, in bytes (inputs, outputs and
#: the per-run working set of the runs that execute at once).
DEFAULT_CHUNK_BUDGET = 1 << 30


@dataclass
class Group:
    """Runs sharing one compiled function.

    Attributes:
      fn: `fn(seed, hparams) -> pytree`: one run, pure and traceable; `seed` is an int32 scalar.
        With `data`, `fn(seed, hparams, data) -> pytree`.
      indices: the runs' positions in the whole sweep.
      seeds: int seeds, one per run.
      hparams: numeric hyperparameters, one array per key, one value per run.
      label: the group's categorical values, for progress lines and reports.
      cache_key: identifies the compiled program across sweeps (same key, same program).
      stepper: the run split into epochs (`adaptive.Stepper`), for ``execution="refill"``.
      data: arrays every run of the group reads (a trainer's `data_arrays`), or None. They
        enter the compiled program as one replicated argument, not as constants.
      lanes_pay: the runs batch well in vmapped lanes on CPU (mini-batch training of a small dense
        model, `Trainer.lanes_pay`): ``execution="auto"`` then uses lanes (`auto_execution`).
      batch_bytes: bytes of one update's input batch, when known (bounds the lanes' width).
    """

    fn: RunFn
    indices: np.ndarray
    seeds: np.ndarray
    hparams: dict[str, np.ndarray]
    label: dict[str, Any] = field(default_factory=dict)
    cache_key: Any = None
    stepper: Any = None
    data: Any = None
    lanes_pay: bool = False
    batch_bytes: int | None = None

    def data_args(self) -> tuple:
        """`(data,)` when the group's runs take data, else `()`: the runs' trailing arguments."""
        return () if self.data is None else (self.data,)


@dataclass
class ExecutionStats:
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


# Compiled chunk programs, reused by later sweeps in this process: a second sweep of
# the same shapes with new values does not recompile.
_COMPILED = _cache.BoundedCache("sweep programs", 64)


#: XLA options for CPU programs: the classic elemental emitters instead of the newer fusion
#: emitters, and LLVM optimization level 2, compile this package's training programs about
#: twice as fast at the same run time (moons sweep of 128 runs on 2 busy cores: compile
#: 6.2-7.8 s -> 2.2-4.0 s; runs/s equal within noise; identical results).
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 2, "xla_cpu_use_fusion_emitters": False}


def compile_lowered(lowered: Any) -> Any:
    """Compile a lowered program, with `CPU_COMPILER_OPTIONS` on CPU.

    A JAX/XLA version that does not know an option compiles with its defaults.
    """
    if jax.default_backend() == "cpu" and CPU_COMPILER_OPTIONS:
        try:
            return lowered.compile(compiler_options=CPU_COMPILER_OPTIONS)
        except Exception:  # noqa: BLE001 - unknown options surface as generic XLA errors
            pass
    return lowered.compile()


EXECUTIONS = ("map", "vmap", "refill")


def default_execution() -> str:
    return "map" if jax.default_backend() == "cpu" else "vmap"


#: Runs batched per step of `lax.map` in the mini-batch groups `execution="auto"` vectorizes on
#: CPU. Fixed (not derived from the device count), so that a run's arithmetic, and so runs.csv,
#: does not depend on how many devices share the sweep.
AUTO_LANE_WIDTH = 32

#: At most this many bytes of mini-batch inputs gathered at once by the lanes of one `lax.map` step:
#: each vmapped run gathers its own shuffled batch, so wide lanes over large batches would hold
#: lanes x batch bytes (a 6,000 x 784 float32 batch is 19 MB).
AUTO_LANE_BYTES = 64 << 20


def auto_execution(group: Group) -> tuple[str, int]:
    """(execution, map batch size) of a group under ``execution="auto"``.

    On accelerators every group is batched (`vmap`). On CPU a group of mini-batch runs of a small
    dense model (`Group.lanes_pay`) runs as `lax.map` over lanes of `AUTO_LANE_WIDTH` vmapped runs:
    its many tiny updates are dominated by per-op overhead, which batching amortizes (2.02x
    hand-written `jit(vmap)` against 1.26x for one run at a time, BENCHMARKS.md section 8.1).
    Everything else runs one at a time: full-batch groups (1.7-2x faster there than any batching)
    and convolutional or foreign models (the digits CNN batched in lanes ran 25x slower).
    """
    if jax.default_backend() != "cpu":
        return "vmap", 1
    if group.lanes_pay:
        per_run = max(int(group.batch_bytes or 0), 1)
        return "map", max(1, min(AUTO_LANE_WIDTH, AUTO_LANE_BYTES // per_run))
    return "map", 1


def chunk_plan(n_runs: int, n_devices: int, chunk_size: int | None, bytes_per_run: int | None = None,
               budget: int = DEFAULT_CHUNK_BUDGET) -> tuple[int, int]:
    """(chunk shape, number of chunks) for a group of `n_runs`.

    The chunk holds a multiple of the device count; chunks are balanced so the
    padding of the last one is below one device row per chunk.
    """
    if chunk_size is None:
        per_run = max(bytes_per_run or 0, 1)
        chunk_size = max(n_devices, min(4096, budget // per_run))
    chunk_size = max(1, int(chunk_size))
    n_chunks = max(1, math.ceil(n_runs / chunk_size))
    per_chunk = math.ceil(n_runs / n_chunks)
    per_chunk = math.ceil(per_chunk / n_devices) * n_devices
    return per_chunk, n_chunks


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


def _replicated(data: Any, mesh: Mesh, multi: bool) -> Any:
    """The group's data as one replicated copy on the mesh's devices (placed once per group)."""
    if multi:
        return jax.tree.map(lambda a: _global(np.asarray(a), mesh, replicated=True), data)
    return jax.device_put(data, jax.sharding.NamedSharding(mesh, PartitionSpec()))


def _fingerprint(groups: Sequence[Group], extra: Any) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for g in groups:
        h.update(np.asarray(g.indices, np.int64).tobytes())
        h.update(np.asarray(g.seeds, np.int64).tobytes())
        for k in sorted(g.hparams):
            h.update(k.encode())
            h.update(np.asarray(g.hparams[k], np.float64).tobytes())
        h.update(json.dumps(g.label, sort_keys=True, default=str).encode())
    return h.hexdigest()


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
) -> tuple[list[Any], ExecutionStats]:
    """Run every group in chunks; returns (per-run outputs as host numpy pytrees, stats).

    With ``execution="refill"`` (implied by `halving`, an `adaptive.Halving`) each
    chunk runs in `lanes` recycled lanes (default `adaptive.default_lanes`), and
    each run's output is `(fn's output, adaptive.LaneInfo)`.

    `on_chunk(indices, chunk_outputs)` is called on the writing process after each chunk
    (computed or resumed) with the run indices and their host outputs (leading axis over
    those runs): loggers write from there, outside any compiled program.
    """
    auto = execution == "auto" and halving is None
    if execution == "auto":
        execution = "refill" if halving is not None else default_execution()
    if execution not in EXECUTIONS:
        raise ValueError(f"execution={execution!r} is not a valid choice; valid choices: auto, {', '.join(EXECUTIONS)}")
    if halving is not None and execution != "refill":
        raise ValueError(f"halving needs execution='refill' (lanes that take new runs), not {execution!r}")
    if lanes is not None and (isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1):
        raise ValueError(f"lanes={lanes!r} is out of range: valid range is [1, inf)")
    if execution == "refill":
        missing = [_label(g.label) or "(the only group)" for g in groups if g.stepper is None]
        if missing:
            raise ValueError(
                "execution='refill' needs runs split into epochs (a Stepper: config sweeps and make_train "
                f"trainers have one); these groups have none: {'; '.join(missing)}"
            )
    if map_batch_size < 1:
        raise ValueError(f"map_batch_size={map_batch_size!r} is out of range: valid range is [1, inf)")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} is out of range: valid range is [1, inf)")
    multi = jax.process_count() > 1
    if devices is None:
        devices = jax.devices() if multi else jax.local_devices()
    devices = list(devices)
    mesh = Mesh(np.array(devices), ("runs",))
    # Several processes (jax.distributed): every process runs this same loop over the same
    # chunks; each computes the shards of its own devices, and the outputs are gathered to all.
    writer = jax.process_index() == 0
    n_dev = len(devices)
    stats = ExecutionStats(runs=n_runs, devices=n_dev, execution=execution)
    outputs: list[Any] = [None] * n_runs
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if execution == "refill":
        # Halving decisions depend on the lanes and rungs: checkpoints of another setting do not fit.
        fingerprint_extra = [fingerprint_extra, execution, lanes, halving and [halving.min_epochs, halving.eta]]
    fp = _fingerprint(groups, fingerprint_extra)
    if ckpt is not None and writer:
        prepare_checkpoints(ckpt, fp, resume)
    prog = Progress(n_runs, progress if writer else False)
    t_start = time.perf_counter()
    try:
        for gi, g in enumerate(groups):
            keys = sorted(g.hparams)
            # One decision per group: how its runs execute inside a device's shard.
            execution, map_batch_size = auto_execution(g) if auto else (execution, map_batch_size)
            n = len(g.indices)
            out_shape = jax.eval_shape(
                g.fn, jax.ShapeDtypeStruct((), jnp.int32),
                {k: jax.ShapeDtypeStruct((), _float_dtype()) for k in keys}, *g.data_args(),
            )
            data_args = None  # placed on the devices when the first chunk runs
            if execution == "refill":
                from jaxopt_lab.sweep import adaptive

                out_shape = (out_shape, adaptive.LaneInfo(jax.ShapeDtypeStruct((), jnp.bool_),
                                                          jax.ShapeDtypeStruct((), jnp.int32)))
            per_run = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(out_shape))
            # In vmap mode every run of the chunk is live at once; in map mode only map_batch_size
            # per device, so the budget then only bounds the chunk's outputs.
            per_run_live = per_run * (8 if execution == "vmap" else 2)
            if execution == "refill":
                # The queue is replicated and every device keeps a results buffer for all of it.
                size, n_chunks = chunk_plan(n, 1, chunk_size, per_run * 2 * n_dev, chunk_budget)
                n_lanes = _refill_lanes(lanes, size, n_dev)
                rungs = halving.rungs(g.stepper.max_epochs) if halving is not None else ()
                stats.lanes = n_lanes
            else:
                size, n_chunks = chunk_plan(n, n_dev, chunk_size, per_run_live, chunk_budget)
            if execution == "map":
                # Every device's shard is whole lanes: a partial last lane would be vmapped at another
                # width, and XLA's batched arithmetic rounds differently at different widths.
                size = math.ceil(size / (n_dev * map_batch_size)) * n_dev * map_batch_size
            program = None
            for ci in range(n_chunks):
                lo, hi = ci * size, min((ci + 1) * size, n)
                if lo >= n:
                    break
                idx = g.indices[lo:hi]
                path = ckpt / f"group{gi:03d}_chunk{ci:05d}.ckpt" if ckpt is not None else None
                t0 = time.perf_counter()
                if path is not None and resume and path.exists():
                    from jaxopt_lab import checkpoint

                    # `like` restores the outputs' structure (NamedTuples come back as dicts without it).
                    like = _stacked_like(out_shape, len(idx))
                    meta = checkpoint.load_metadata(path)
                    # Another device count may round differently (batched executions do): refused, not mixed.
                    if (meta.get("fingerprint") != fp or list(meta.get("indices", [])) != [int(i) for i in idx]
                            or meta.get("devices", n_dev) != n_dev):
                        raise ConfigError(
                            f"--resume: checkpoint {path} holds other runs (another config, --chunk-size, "
                            "--devices or --execution): resume with the arguments of the interrupted sweep, "
                            "or remove it and drop --resume")
                    tree, meta = checkpoint.load(path, like=like)
                    chunk_out = jax.tree.map(np.asarray, tree)
                    _scatter(outputs, idx, chunk_out, out_shape)
                    if on_chunk is not None and writer:
                        on_chunk(idx, chunk_out)
                    stats.chunks_resumed += 1
                    prog.update(len(idx), False, time.perf_counter() - t0, _label(g.label))
                    continue
                seeds = _pad(np.asarray(g.seeds[lo:hi], np.int32), size)
                hp = {k: _pad(np.asarray(g.hparams[k][lo:hi], _float_dtype()), size) for k in keys}
                args: tuple = (seeds, hp)
                if execution == "refill":
                    n_valid = np.asarray(hi - lo, np.int32)
                    args = (seeds, hp, n_valid)
                    if multi:
                        args = jax.tree.map(lambda a: _global(a, mesh, replicated=True), args)
                elif multi:
                    args = (_global(seeds, mesh), {k: _global(v, mesh) for k, v in hp.items()})
                if data_args is None:
                    data_args = tuple(_replicated(d, mesh, multi) for d in g.data_args())
                args = (*args, *data_args)
                if program is None:
                    variant = (execution, map_batch_size) if execution != "refill" else (execution, n_lanes, rungs,
                                                                                         halving and halving.eta)
                    cache_key = (
                        g.cache_key if g.cache_key is not None else id(g.fn),
                        tuple(keys), size, variant, tuple(str(d) for d in devices), str(_float_dtype()),
                        _shapes(g.data),
                    )
                    program = _COMPILED.get(cache_key)
                    if program is None:
                        tc = time.perf_counter()
                        if execution == "refill":
                            jitted = _refill_program(g.stepper, keys, mesh, size, n_lanes, rungs,
                                                     halving.eta if halving is not None else 3.0,
                                                     with_data=g.data is not None)
                        else:
                            jitted = _program(g.fn, keys, mesh, execution, map_batch_size,
                                              with_data=g.data is not None)
                        program = compile_lowered(jitted.lower(*args))
                        stats.compile_seconds += time.perf_counter() - tc
                        stats.compilations += 1
                        _COMPILED[cache_key] = (program, g.fn)
                    else:
                        program = program[0]
                    t0 = time.perf_counter()
                result = program(*args)
                if multi:
                    from jax.experimental import multihost_utils

                    result = multihost_utils.process_allgather(result, tiled=True)
                if execution == "refill":
                    from jaxopt_lab.sweep import adaptive

                    buf, written = jax.device_get(result)
                    chunk_out = adaptive.combine(buf, written, n_dev, hi - lo)
                else:
                    chunk_out = jax.tree.map(lambda a, m=hi - lo: np.asarray(a)[:m], jax.device_get(result))
                if path is not None and writer:
                    from jaxopt_lab import checkpoint

                    checkpoint.save(path, chunk_out, {"fingerprint": fp, "indices": [int(i) for i in idx],
                                                     "devices": n_dev})
                _scatter(outputs, idx, chunk_out, out_shape)
                if on_chunk is not None and writer:
                    on_chunk(idx, chunk_out)
                stats.chunks += 1
                prog.update(len(idx), True, time.perf_counter() - t0, _label(g.label))
    except KeyboardInterrupt:
        raise SweepInterrupted(
            "sweep interrupted: finished chunks are saved" + (f" in {ckpt}; rerun with --resume" if ckpt else "")
        ) from None
    stats.wall_seconds = time.perf_counter() - t_start
    return outputs, stats


def _global(a: np.ndarray, mesh: Mesh, replicated: bool = False) -> jax.Array:
    """A host array (the same on every process) as a global array sharded over the runs axis
    (or replicated on every device)."""
    sharding = jax.sharding.NamedSharding(mesh, PartitionSpec() if replicated else PartitionSpec("runs"))
    return jax.make_array_from_callback(np.shape(a), sharding, lambda idx: np.asarray(a)[idx])


def _refill_lanes(lanes: int | None, size: int, n_dev: int) -> int:
    from jaxopt_lab.sweep import adaptive

    if lanes is None:
        return adaptive.default_lanes(size, n_dev)
    return max(n_dev, math.ceil(min(lanes, max(size, 1)) / n_dev) * n_dev)


def _refill_program(stepper: Any, keys: Sequence[str], mesh: Mesh, size: int, n_lanes: int,
                    rungs: Sequence[int], eta: float, with_data: bool = False):
    """jit(shard_map(refill lanes)): the queue replicated, the lanes split over devices."""
    from jaxopt_lab.sweep import adaptive

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


def _stacked_like(out_shape: Any, n: int) -> Any:
    """Zeros shaped like `n` runs' outputs stacked: the structure a chunk's checkpoint must have."""
    return jax.tree.map(lambda a: np.zeros((n, *a.shape), a.dtype), out_shape)


def _float_dtype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _label(label: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in label.items())


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    """Pad the run axis to `size` by repeating the last run (its results are dropped)."""
    if len(a) == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])


def _scatter(outputs: list[Any], idx: np.ndarray, chunk_out: Any, out_shape: Any) -> None:
    leaves, treedef = jax.tree.flatten(chunk_out)
    for j, i in enumerate(idx):
        outputs[int(i)] = jax.tree.unflatten(treedef, [leaf[j] for leaf in leaves])


def prepare_checkpoints(ckpt: Path, fp: str, resume: bool) -> None:
    """Claim the checkpoint folder `ckpt` for the sweep of fingerprint `fp` (its manifest, written
    atomically); an earlier sweep's folder is refused without `resume`, another sweep's always."""
    manifest = ckpt / "sweep.json"
    if ckpt.exists() and any(ckpt.iterdir()):
        if not resume:
            raise ValueError(
                f"{ckpt} holds checkpoints of an earlier sweep: pass --resume to continue it, or remove it"
            )
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint")
            except (ValueError, AttributeError):
                raise ConfigError(f"--resume: {manifest} is corrupt (not the JSON jaxopt_lab wrote): remove "
                                  f"{ckpt} and drop --resume") from None
            if old != fp:
                raise ConfigError(
                    f"--resume: the checkpoints in {ckpt} belong to a different sweep (config or space changed)"
                )
    ckpt.mkdir(parents=True, exist_ok=True)
    _io.atomic_write_text(manifest, json.dumps({"fingerprint": fp}))


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
    stepper = None
    if execution == "refill" or halving is not None:
        from jaxopt_lab.sweep import adaptive

        if isinstance(train_fn, adaptive.Stepper):
            stepper = train_fn
        elif hasattr(train_fn, "init_state") and hasattr(train_fn, "finalize"):
            stepper = adaptive.stepper_from_trainer(train_fn)
        else:
            raise ValueError(
                "execution='refill' needs train_fn split into epochs: pass a trainer from make_train or an "
                f"adaptive.Stepper, not {type(train_fn).__name__}"
            )
    groups = []
    for label, idx in group_points(points, set(categorical)):
        num_keys = [k for k in points[idx[0]] if k != "seed" and k not in label]
        hp = {k: np.asarray([points[i][k] for i in idx], np.float64) for k in num_keys}

        def fn(seed, h, *data, label=label):
            if train_fn is stepper:  # a Stepper given directly: its whole run
                from jaxopt_lab.sweep import adaptive

                return adaptive.run_alone(adaptive.bind_data(stepper, *data), seed, h)
            return train_fn(jax.random.PRNGKey(seed), {**h, **label}, *data)

        if stepper is not None and label:
            raise ValueError(
                f"execution='refill' runs one compiled program per sweep: categorical keys {sorted(label)} "
                "cannot vary; run one sweep per value"
            )
        groups.append(Group(
            fn=fn, indices=np.asarray(idx), seeds=np.asarray([int(points[i]["seed"]) for i in idx]), hparams=hp,
            label=label, cache_key=(id(train_fn), json.dumps(label, sort_keys=True, default=str)),
            stepper=stepper, data=_data_of(train_fn), lanes_pay=_lanes_pay(train_fn),
            batch_bytes=_batch_bytes_of(train_fn),
        ))
    if halving is not None and getattr(halving, "brackets", None) is not None:
        from jaxopt_lab.sweep import adaptive

        # Hyperband: synchronous stages ranked across chunks (a configuration = runs sharing every value but seed).
        ids: dict[str, int] = {}
        config_of = [ids.setdefault(json.dumps({k: v for k, v in p.items() if k != "seed"}, sort_keys=True,
                                               default=str), len(ids)) for p in points]
        outputs, stats = adaptive.run_hyperband(groups, len(points), halving, config_of, chunk_size=chunk_size,
                                                execution="auto" if execution == "refill" else execution,
                                                devices=devices, progress=progress)
        info = stack_outputs([o[1] for o in outputs])
        return SweepResult(points=points, outputs=stack_outputs([o[0] for o in outputs]), stats=stats,
                           keys=tuple(points[0]), lane_info=info)
    ckpt = Path(out) / "checkpoints" if out is not None else None
    outputs, stats = execute(
        groups, len(points), chunk_size=chunk_size, execution=execution, map_batch_size=map_batch_size,
        devices=devices, checkpoint_dir=ckpt, resume=resume, progress=progress,
        fingerprint_extra={"fn": getattr(train_fn, "__qualname__", type(train_fn).__name__)},
        lanes=lanes, halving=halving,
    )
    keys = tuple(points[0])
    info = None
    if stats.execution == "refill":
        info = stack_outputs([o[1] for o in outputs])
        outputs = [o[0] for o in outputs]
    return SweepResult(points=points, outputs=stack_outputs(outputs), stats=stats, keys=keys, lane_info=info)





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
