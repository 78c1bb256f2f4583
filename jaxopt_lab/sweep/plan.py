"""Planning a sweep's execution: how each group's runs execute and in which chunks.

The first step of `runner.execute` (plan -> compile -> run chunk -> resume): it reads the
arguments once, checks them, and decides per group the execution inside a device's shard
(``"map"``, ``"vmap"`` or ``"refill"``), the chunk shape every chunk is padded to (one shape,
so one compiled program serves them all) and, for refill, the lanes and halving rungs. It
computes nothing on a device: the outputs' structure comes from `jax.eval_shape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab.sweep import adaptive

RunFn = Callable[[jax.Array, Mapping[str, jax.Array]], Any]

#: Default memory budget for one chunk's live data, in bytes (inputs, outputs and
#: the per-run working set of the runs that execute at once).
DEFAULT_CHUNK_BUDGET = 1 << 30

EXECUTIONS = ("map", "vmap", "refill")

#: Runs batched per step of `lax.map` in the mini-batch groups `execution="auto"` vectorizes on
#: CPU. Fixed (not derived from the device count), so that a run's arithmetic, and so runs.csv,
#: does not depend on how many devices share the sweep.
AUTO_LANE_WIDTH = 32

#: At most this many bytes of mini-batch inputs gathered at once by the lanes of one `lax.map` step:
#: each vmapped run gathers its own shuffled batch, so wide lanes over large batches would hold
#: lanes x batch bytes (a 6,000 x 784 float32 batch is 19 MB).
AUTO_LANE_BYTES = 64 << 20


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


def default_execution() -> str:
    return "map" if jax.default_backend() == "cpu" else "vmap"


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


def label_text(label: Mapping[str, Any]) -> str:
    """A group's categorical values as ``key=value`` words, for progress lines and messages."""
    return " ".join(f"{k}={v}" for k, v in label.items())


def resolve_execution(groups: list[Group] | tuple[Group, ...], execution: str, halving: Any, lanes: int | None,
                      map_batch_size: int, chunk_size: int | None) -> tuple[str, bool]:
    """Check `execute`'s arguments; returns (execution, auto): the execution with ``"auto"`` resolved
    to the backend's default, and whether each group may choose its own (`auto_execution`)."""
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
        missing = [label_text(g.label) or "(the only group)" for g in groups if g.stepper is None]
        if missing:
            raise ValueError(
                "execution='refill' needs runs split into epochs (a Stepper: config sweeps and make_train "
                f"trainers have one); these groups have none: {'; '.join(missing)}"
            )
    if map_batch_size < 1:
        raise ValueError(f"map_batch_size={map_batch_size!r} is out of range: valid range is [1, inf)")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} is out of range: valid range is [1, inf)")
    return execution, auto


@dataclass(frozen=True)
class GroupPlan:
    """How one group executes.

    Attributes:
      keys: the numeric hyperparameters' names, sorted (the programs' argument order).
      execution: ``"map"``, ``"vmap"`` or ``"refill"`` inside a device's shard.
      map_batch_size: runs vmapped per `lax.map` step (``"map"``).
      out_shape: one run's outputs as `jax.ShapeDtypeStruct`s (with `adaptive.LaneInfo` under refill).
      size: runs per chunk, padded (every chunk has this shape).
      n_chunks: chunks planned (fewer run when rounding `size` up covered the group sooner).
      n_lanes: refill lanes over all devices, else None.
      rungs: halving rung epochs (refill), else ().
      eta: the halving reduction factor, or None without halving.
    """

    keys: tuple[str, ...]
    execution: str
    map_batch_size: int
    out_shape: Any
    size: int
    n_chunks: int
    n_lanes: int | None = None
    rungs: tuple[int, ...] = ()
    eta: float | None = None

    @property
    def variant(self) -> tuple:
        """What, besides the group and the shapes, decides the compiled program."""
        if self.execution == "refill":
            return (self.execution, self.n_lanes, self.rungs, self.eta)
        return (self.execution, self.map_batch_size)

    def chunk_bounds(self, n_runs: int) -> Iterator[tuple[int, int, int]]:
        """(chunk index, first run, end run) of each chunk over the group's `n_runs` runs."""
        for ci in range(self.n_chunks):
            lo, hi = ci * self.size, min((ci + 1) * self.size, n_runs)
            if lo >= n_runs:
                return
            yield ci, lo, hi


def plan_group(group: Group, *, execution: str, auto: bool, map_batch_size: int, chunk_size: int | None,
               chunk_budget: int, n_devices: int, lanes: int | None, halving: Any) -> GroupPlan:
    """The `GroupPlan` of one group (`execution` already resolved by `resolve_execution`)."""
    keys = tuple(sorted(group.hparams))
    if auto:  # one decision per group: how its runs execute inside a device's shard
        execution, map_batch_size = auto_execution(group)
    out_shape = _run_output_shape(group, keys, execution)
    per_run = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(out_shape))
    n = len(group.indices)
    if execution == "refill":
        # The queue is replicated and every device keeps a results buffer for all of it.
        size, n_chunks = chunk_plan(n, 1, chunk_size, per_run * 2 * n_devices, chunk_budget)
        rungs = halving.rungs(group.stepper.max_epochs) if halving is not None else ()
        return GroupPlan(keys, execution, map_batch_size, out_shape, size, n_chunks,
                         n_lanes=refill_lanes(lanes, size, n_devices), rungs=tuple(rungs),
                         eta=halving.eta if halving is not None else None)
    # In vmap mode every run of the chunk is live at once; in map mode only map_batch_size
    # per device, so the budget then only bounds the chunk's outputs.
    per_run_live = per_run * (8 if execution == "vmap" else 2)
    size, n_chunks = chunk_plan(n, n_devices, chunk_size, per_run_live, chunk_budget)
    if execution == "map":
        # Every device's shard is whole lanes: a partial last lane would be vmapped at another
        # width, and XLA's batched arithmetic rounds differently at different widths.
        size = math.ceil(size / (n_devices * map_batch_size)) * n_devices * map_batch_size
    return GroupPlan(keys, execution, map_batch_size, out_shape, size, n_chunks)


def _run_output_shape(group: Group, keys: tuple[str, ...], execution: str) -> Any:
    """One run's outputs as shape structs; under refill paired with its `adaptive.LaneInfo`."""
    out_shape = jax.eval_shape(
        group.fn, jax.ShapeDtypeStruct((), jnp.int32),
        {k: jax.ShapeDtypeStruct((), adaptive.float_dtype()) for k in keys}, *group.data_args(),
    )
    if execution == "refill":
        out_shape = (out_shape, adaptive.LaneInfo(jax.ShapeDtypeStruct((), jnp.bool_),
                                                  jax.ShapeDtypeStruct((), jnp.int32)))
    return out_shape


def refill_lanes(lanes: int | None, size: int, n_dev: int) -> int:
    """Refill lanes over all devices: `lanes` (default `adaptive.default_lanes`) rounded up to a
    multiple of the device count, and no more than the chunk's runs need."""
    if lanes is None:
        return adaptive.default_lanes(size, n_dev)
    return max(n_dev, math.ceil(min(lanes, max(size, 1)) / n_dev) * n_dev)
