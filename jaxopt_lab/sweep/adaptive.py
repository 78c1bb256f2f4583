"""Adaptive execution of a sweep's runs: lanes that refill, and successive halving.

A vectorized sweep runs a batch of runs in *lanes* (the rows of a `vmap`).
Runs stop at different epochs (early stopping, divergence, their budget), and
in plain `vmap` a stopped run's lane computes masked no-ops until the slowest
run of the batch ends. Here the epoch loop is written over lanes instead of
runs: after every epoch each lane whose run has finished writes that run's
outputs to a results buffer and is reset in place with the next pending
configuration of the queue (parameters re-initialized, optimizer state,
schedule step and history fresh), so every lane does useful work until the
queue is empty. The same idea resets finished inner problems in
learned_optimization's truncated training (Metz et al. 2022).

Each configuration goes through exactly the steps it would go through alone
(`init`, `step` until `finished`, `finalize`), so its outputs equal those of
the run alone, up to the floating-point rounding `vmap` itself may introduce.

**Successive halving** (`Halving`) adds *rungs*: at epochs ``r, r*eta,
r*eta^2, ...`` (below the budget) a run is continued only when its monitored
loss (validation loss, else training loss) is in the best ``1/eta`` of the
losses recorded at that rung so far; otherwise it is halted there and its lane
refilled. This is the stopping variant of ASHA (Li et al. 2020, "A System for
Massively Parallel Hyperparameter Tuning"; Jamieson & Talwalkar 2016 for the
synchronous original): the first `lanes` runs reach the first rung together and
are ranked as one batch (synchronous halving), later arrivals are ranked
against everything recorded before them. A halted run's outputs equal those
of the run alone trained for the rung's number of epochs.

Across devices (the runner's `runs` mesh axis), without halving each device
works through its own share of the queue (every `n_devices`-th configuration)
and never waits for the others: a run's result does not depend on its lane.
With halving the queue and the rung records are global: the lanes are split
over the devices, one collective per epoch shares which lanes finished and what
reached a rung, and each finished lane takes the next configuration in global
lane order. So every halving decision depends on the number of lanes but not on
the number of devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import checkpoint
from jaxopt_lab.train.state import HISTORY_KEYS

Array = jax.Array
PyTree = Any


class Stepper(NamedTuple):
    """One run split into epochs, so a lane can be refilled between them.

    Fields:
      init: `init(seed, hparams) -> state`: a fresh run (`seed` an int32 scalar).
      step: `step(state, hparams) -> state`: one more epoch.
      finished: `finished(state, hparams) -> bool`: the run has stopped (early
        stopping, divergence, or its epoch budget spent).
      epoch: `epoch(state) -> int`: epochs completed.
      monitor: `monitor(state) -> float`: the loss halving ranks by after the last
        epoch (lower is better; NaN counts as +inf).
      finalize: `finalize(state, hparams) -> pytree`: the run's outputs.
      max_epochs: the epoch budget of every run (rungs lie below it).
      data: arrays the run reads, passed to compiled programs as an argument (a
        trainer's `data_arrays`), or None.
      takes_data: `init`, `step`, `finished` and `finalize` take `data` as a last
        argument (`bind_data` fixes it inside a traced program).
    """

    init: Callable[[Array, Mapping[str, Array]], PyTree]
    step: Callable[[PyTree, Mapping[str, Array]], PyTree]
    finished: Callable[[PyTree, Mapping[str, Array]], Array]
    epoch: Callable[[PyTree], Array]
    monitor: Callable[[PyTree], Array]
    finalize: Callable[[PyTree, Mapping[str, Array]], PyTree]
    max_epochs: int
    data: Any = None
    takes_data: bool = False


def float_dtype():
    """The float dtype of the values a sweep traces (hyperparameters, the losses halving ranks):
    float64 when JAX runs in 64-bit mode, else float32."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def bind_data(stepper: Stepper, *data: Any) -> Stepper:
    """`stepper` with its data fixed to `data` (the program's data argument, traced), as the
    two-argument Stepper the lanes run; a stepper that takes no data is returned as it is."""
    if not stepper.takes_data:
        return stepper
    (arrays,) = data if data else (stepper.data,)
    return stepper._replace(
        init=lambda seed, hp: stepper.init(seed, hp, arrays),
        step=lambda state, hp: stepper.step(state, hp, arrays),
        finished=lambda state, hp: stepper.finished(state, hp, arrays),
        finalize=lambda state, hp: stepper.finalize(state, hp, arrays),
        data=None, takes_data=False,
    )


def stepper_from_trainer(trainer: Any, summarize: Callable[[Any], PyTree] | None = None) -> Stepper:
    """The `Stepper` of a `jaxopt_lab.train.Trainer` (from `make_train`).

    `summarize(TrainResult) -> pytree` picks the outputs (default: the result itself).
    """
    epochs = int(trainer.config.train.epochs)
    col = HISTORY_KEYS.index("val_loss" if trainer.has_val else "train_loss")
    summarize = summarize or (lambda result: result)

    def init(seed, hp, data):
        return trainer.init_state(jax.random.PRNGKey(seed), hp)

    def step(state, hp, data):
        return trainer.step_epoch(state, hp, data)

    def finished(state, hp, data):
        return state.stopped | state.diverged | (state.epoch >= epochs)

    def monitor(state):
        row = jnp.maximum(state.epoch - 1, 0)
        value = state.history[row, col]
        return jnp.where(state.diverged | (state.epoch == 0), jnp.inf, value)

    def finalize(state, hp, data):
        return summarize(trainer.finalize(state, hp, data))

    return Stepper(init=init, step=step, finished=finished, epoch=lambda s: s.epoch, monitor=monitor,
                   finalize=finalize, max_epochs=epochs, data=trainer.data_arrays, takes_data=True)


def run_alone(stepper: Stepper, seed: Array, hparams: Mapping[str, Array], until: Any = None) -> PyTree:
    """One configuration on its own: `init`, `step` until `finished` (or `until` epochs), `finalize`.

    This is the reference a lane's result equals (and what a halted run equals with
    `until` set to its rung).
    """
    stepper = bind_data(stepper)
    state = stepper.init(seed, hparams)
    limit = stepper.max_epochs if until is None else until

    def cond(s):
        return ~stepper.finished(s, hparams) & (stepper.epoch(s) < limit)

    state = jax.lax.while_loop(cond, lambda s: stepper.step(s, hparams), state)
    return stepper.finalize(state, hparams)


@dataclass(frozen=True)
class Halving:
    """Successive-halving rungs: at epochs ``min_epochs * eta**k`` below the budget a run
    continues only if its monitored loss is in the best ``1/eta`` recorded at that rung.

    Attributes:
      min_epochs: epochs of the first rung (>= 1).
      eta: reduction factor (> 1): about ``1/eta`` of the runs reaching a rung pass it.
      brackets: None for ASHA in refilling lanes (ranked per chunk); an integer ``K >= 1`` for
        Hyperband's ``K`` most aggressive brackets, each a synchronous successive halving ranked
        across every chunk of the group (`run_hyperband`; ``K = 1`` is plain synchronous halving).
    """

    min_epochs: int
    eta: float = 3.0
    brackets: int | None = None

    def __post_init__(self):
        if isinstance(self.min_epochs, bool) or not isinstance(self.min_epochs, (int, np.integer)) \
                or self.min_epochs < 1:
            raise ValueError(f"halving.min_epochs = {self.min_epochs!r} is out of range: valid range is [1, inf)")
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) or not self.eta > 1:
            raise ValueError(f"halving.eta = {self.eta!r} is out of range: valid range is (1, inf)")
        b = self.brackets
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1):
            raise ValueError(f"halving.brackets = {b!r} is out of range: valid range is [1, inf)")

    def rungs(self, max_epochs: int) -> tuple[int, ...]:
        """The rung epochs below `max_epochs` (distinct, increasing)."""
        out: list[int] = []
        k = 0
        while True:
            r = int(round(self.min_epochs * self.eta**k))
            if r >= max_epochs:
                return tuple(out)
            if not out or r > out[-1]:
                out.append(r)
            k += 1

    @classmethod
    def from_config(cls, table: Any) -> Halving:
        """From a config's `[sweep.halving]` table (`min_epochs`, `eta`, `brackets`)."""
        if not isinstance(table, Mapping):
            raise ValueError(f"sweep.halving must be a table with min_epochs and eta, not {table!r}")
        valid = ("min_epochs", "eta", "brackets")
        for key in table:
            if key not in valid:
                raise ValueError(f"unknown key sweep.halving.{key}; valid keys: {', '.join(valid)}")
        if "min_epochs" not in table:
            raise ValueError("sweep.halving.min_epochs is required: the epochs of the first rung")
        return cls(min_epochs=table["min_epochs"], eta=table.get("eta", 3.0), brackets=table.get("brackets"))

    def bracket_rungs(self, max_epochs: int) -> list[tuple[int, ...]]:
        """The rungs of each of Hyperband's `brackets` brackets, most aggressive first.

        With ``s_max`` = ``len(rungs(max_epochs))``, bracket ``s`` (``s_max, s_max - 1, ...``) starts
        its runs at rung ``s_max - s`` and halves at the ``s`` rungs from there (bracket 0 trains every
        run for the whole budget: random search). Li et al. 2018, "Hyperband: A Novel Bandit-Based
        Approach to Hyperparameter Optimization" (JMLR).
        """
        rungs = self.rungs(max_epochs)
        k = 1 if self.brackets is None else int(self.brackets)
        if k > len(rungs) + 1:
            raise ValueError(f"halving.brackets = {k} is out of range for {max_epochs} epochs: the rungs "
                             f"{list(rungs)} allow at most {len(rungs) + 1} brackets")
        return [rungs[len(rungs) - s:] for s in range(len(rungs), len(rungs) - k, -1)]

    def bracket_sizes(self, n_configs: int, max_epochs: int) -> list[int]:
        """Configurations per bracket: Hyperband's ``n_s`` proportional to ``eta**s / (s + 1)`` (its
        brackets then spend about the same epochs each), split by largest remainders, at least one each."""
        rungs = self.bracket_rungs(max_epochs)
        k = len(rungs)
        if n_configs < k:
            raise ValueError(f"halving.brackets = {k} needs at least {k} configurations; the sweep has {n_configs}")
        w = np.asarray([self.eta ** len(r) / (len(r) + 1) for r in rungs], np.float64)
        extra = (n_configs - k) * w / w.sum()
        sizes = 1 + np.floor(extra).astype(int)
        order = np.argsort(-(extra - np.floor(extra)), kind="stable")
        sizes[order[: n_configs - int(sizes.sum())]] += 1
        return [int(x) for x in sizes]


#: Extra outputs of every run executed by `refill_shard`.
class LaneInfo(NamedTuple):
    """Fields:
      halted: the run was stopped by a halving rung.
      rungs_passed: rungs the run was promoted past.
    """

    halted: Array
    rungs_passed: Array


def _where(pred: Array, a: PyTree, b: PyTree) -> PyTree:
    """Per lane: `a` where `pred` else `b` (`pred` has the lane axis only)."""

    def sel(x, y):
        p = jnp.reshape(pred, pred.shape + (1,) * (x.ndim - pred.ndim))
        return jnp.where(p, x, y)

    return jax.tree.map(sel, a, b)


class _LaneLayout(NamedTuple):
    """The static shape of a refilling chunk, fixed when its program is built."""

    stepper: Stepper
    lanes_per_device: int
    n_devices: int
    queue_size: int
    write_batch: int  # finished lanes finalized and re-initialized at a time
    rungs: tuple[int, ...]
    eta: float
    axis: str
    coordinated: bool  # rungs over several devices: one global queue, lanes shared by all devices
    n_lanes: int  # lanes that share one queue

    @property
    def n_rungs(self) -> int:
        return len(self.rungs)


class _Queue(NamedTuple):
    """This device's view of the chunk's queue (traced): the whole queue's seeds and values, how many
    positions of it are this device's, its lanes' global numbers, and position -> configuration."""

    seeds: Array  # (queue_size,): the whole queue's, replicated
    hparams: Mapping[str, Array]  # each (queue_size,)
    n_queue: Array  # queue positions this device's lanes work through
    mine: Array  # this device's lanes, numbered among the lanes sharing the queue
    offset: Any  # the configuration of position 0 (this device's index when each device has a share)
    stride: int  # configurations between positions (the device count when each device has a share)

    def config_of(self, pos: Array) -> Array:
        """Queue position -> configuration index."""
        return (self.offset + pos * self.stride).astype(jnp.int32)


class _Lanes(NamedTuple):
    """The loop state of a refilling chunk, carried from epoch to epoch."""

    state: PyTree  # the runs' states, one per lane of this device
    cfg: Array  # the configuration each lane runs
    active: Array  # the lane runs a configuration
    halted: Array  # the lane's run was stopped by a rung
    passed: Array  # rungs the lane's run passed
    next_pos: Array  # the next queue position to hand out
    n_active: Array  # lanes still running over all devices of the queue
    buf: PyTree  # outputs per configuration
    written: Array  # the configuration's outputs are in `buf`
    rung_loss: Array  # (rungs, configurations): losses recorded at each rung
    rung_rec: Array  # (rungs, configurations): the configuration reached the rung


def _at(hp: Mapping[str, Array], idx: Array) -> dict[str, Array]:
    return {k: v[idx] for k, v in hp.items()}


def refill_shard(
    stepper: Stepper,
    *,
    lanes_per_device: int,
    n_devices: int,
    queue_size: int,
    rungs: Sequence[int] = (),
    eta: float = 3.0,
    axis: str = "runs",
    write_batch: int | None = None,
) -> Callable[[Array, Mapping[str, Array], Array], tuple[PyTree, Array]]:
    """The per-device program of a refilling (and optionally halving) chunk.

    Returns `shard(seeds, hparams, n_valid) -> ((outputs, LaneInfo), written)` to run
    inside `shard_map` over `axis`: `seeds` (queue_size,) and `hparams` (each
    (queue_size,)) are the whole queue, replicated on every device; configurations
    `0..n_valid-1` are run (the rest is padding). `outputs` has a leading
    `queue_size` axis; a device fills the entries of the configurations its lanes
    ran and marks them in `written`. Finished lanes are finalized and re-initialized
    `write_batch` at a time (default: an eighth of a device's lanes).

    Without rungs a run's result does not depend on which lane runs it, so each
    device takes every `n_devices`-th configuration and never waits for the others
    (a collective per epoch costs more than a small model's epoch on CPU devices).
    With rungs over several devices the lanes are global: one `all_gather` per epoch
    shares which lanes finished and what reached a rung, and every device keeps the
    same queue position, lane assignment and rung records.
    """
    lp, n_dev = int(lanes_per_device), int(n_devices)
    rungs = tuple(int(r) for r in rungs)
    coordinated = len(rungs) > 0 and n_dev > 1
    layout = _LaneLayout(
        stepper=stepper, lanes_per_device=lp, n_devices=n_dev, queue_size=int(queue_size),
        write_batch=max(1, math.ceil(lp / 8)) if write_batch is None else max(1, min(lp, int(write_batch))),
        rungs=rungs, eta=eta, axis=axis, coordinated=coordinated, n_lanes=lp * n_dev if coordinated else lp,
    )

    def shard(seeds, hp, n_valid):
        queue = _device_queue(layout, seeds, hp, n_valid)
        lanes = jax.lax.while_loop(lambda c: c.n_active > 0, lambda c: _epoch(layout, queue, c),
                                   _start_lanes(layout, queue))
        return lanes.buf, lanes.written

    return shard


def _device_queue(layout: _LaneLayout, seeds: Array, hp: Mapping[str, Array], n_valid: Array) -> _Queue:
    """Which part of the queue this device works through: all of it when it is alone or the lanes
    are coordinated, else every `n_devices`-th configuration from its own index."""
    lp, n_dev = layout.lanes_per_device, layout.n_devices
    dev = jax.lax.axis_index(layout.axis) if n_dev > 1 else 0
    n_valid = jnp.asarray(n_valid, jnp.int32)
    lanes = jnp.arange(lp, dtype=jnp.int32)
    if layout.coordinated or n_dev == 1:
        return _Queue(seeds, hp, n_queue=n_valid, mine=dev * lp + lanes if layout.coordinated else lanes,
                      offset=0, stride=1)
    n_queue = jnp.maximum(n_valid - dev + n_dev - 1, 0) // n_dev
    return _Queue(seeds, hp, n_queue=n_queue, mine=lanes, offset=dev, stride=n_dev)


def _start_lanes(layout: _LaneLayout, queue: _Queue) -> _Lanes:
    """Every lane started on its first queue position; empty outputs and rung records."""
    stepper, lp, n_q = layout.stepper, layout.lanes_per_device, layout.queue_size
    pos = queue.mine
    active = pos < queue.n_queue
    cfg = jnp.where(active, queue.config_of(pos), 0)
    state = jax.vmap(stepper.init)(queue.seeds[cfg], _at(queue.hparams, cfg))
    out_shape = jax.eval_shape(
        lambda s, h: (stepper.finalize(s, h), LaneInfo(jnp.bool_(False), jnp.int32(0))),
        jax.tree.map(lambda x: x[0], state), _at(queue.hparams, 0),
    )
    buf = jax.tree.map(lambda s: jnp.zeros((n_q, *s.shape), s.dtype), out_shape)
    if layout.n_rungs:
        rung_loss = jnp.full((layout.n_rungs, n_q), jnp.inf, float_dtype())
        rung_rec = jnp.zeros((layout.n_rungs, n_q), bool)
    else:
        rung_loss = rung_rec = jnp.zeros((0,), bool)
    next_pos = jnp.minimum(jnp.asarray(layout.n_lanes, jnp.int32), queue.n_queue)
    return _Lanes(state=state, cfg=cfg, active=active, halted=jnp.zeros((lp,), bool),
                  passed=jnp.zeros((lp,), jnp.int32), next_pos=next_pos, n_active=next_pos, buf=buf,
                  written=jnp.zeros((n_q,), bool), rung_loss=rung_loss, rung_rec=rung_rec)


def _epoch(layout: _LaneLayout, queue: _Queue, c: _Lanes) -> _Lanes:
    """One epoch of every active lane, then its rung decisions, the finished lanes' outputs written,
    and those lanes refilled from the queue."""
    stepper = layout.stepper
    hp_l = _at(queue.hparams, c.cfg)
    state = _where(c.active, jax.vmap(stepper.step)(c.state, hp_l), c.state)
    fin = c.active & jax.vmap(stepper.finished)(state, hp_l)
    c = c._replace(state=state)
    if layout.n_rungs:
        c, fin, fin_g = _apply_rungs(layout, queue, c, fin)
    else:
        fin_g = fin
    buf, written = jax.lax.cond(jnp.any(fin), lambda a: _write_finished(layout, c, hp_l, fin, *a),
                                lambda a: a, (c.buf, c.written))
    return _refill(layout, queue, c._replace(buf=buf, written=written), fin, fin_g)


def _apply_rungs(layout: _LaneLayout, queue: _Queue, c: _Lanes, fin: Array) -> tuple[_Lanes, Array, Array]:
    """Record the losses of the runs that just reached a rung (every device alike), then continue
    each only if it ranks in the best 1/eta recorded there. Returns the lanes, `fin` with the halted
    runs, and the same over the queue's lanes of all devices."""
    stepper, n_rungs, n_q = layout.stepper, layout.n_rungs, layout.queue_size
    ldt = float_dtype()
    epoch = jax.vmap(stepper.epoch)(c.state)
    rung_epochs = jnp.asarray(layout.rungs, jnp.int32)
    at_rung = c.active & ~fin & (epoch[None, :] == rung_epochs[:, None])  # (R, lp)
    loss = jax.vmap(stepper.monitor)(c.state)
    loss = jnp.where(jnp.isnan(loss), jnp.inf, loss).astype(ldt)
    # One collective: finished flags, rung arrivals, losses and configurations.
    packed = _gather(layout, jnp.concatenate([fin[None].astype(ldt), at_rung.astype(ldt), loss[None],
                                              c.cfg[None].astype(ldt)]))
    fin_g, at_g = packed[0] > 0, packed[1:1 + n_rungs] > 0
    loss_g, cfg_g = packed[1 + n_rungs], packed[2 + n_rungs].astype(jnp.int32)

    def record(tables):
        rung_loss, rung_rec = tables
        rows = jnp.broadcast_to(jnp.arange(n_rungs)[:, None], at_g.shape)
        cols = jnp.where(at_g, cfg_g[None, :], n_q)
        rung_loss = rung_loss.at[rows, cols].set(jnp.broadcast_to(loss_g, at_g.shape), mode="drop")
        rung_rec = rung_rec.at[rows, cols].set(True, mode="drop")
        return rung_loss, rung_rec, _stopped_at_rung(rung_loss, rung_rec, at_g, loss_g, cfg_g, layout.eta, n_q)

    def skip(tables):
        return (*tables, jnp.zeros(at_g.shape[1:], bool))

    rung_loss, rung_rec, stop_g = jax.lax.cond(jnp.any(at_g), record, skip, (c.rung_loss, c.rung_rec))
    stop = stop_g[queue.mine] if layout.coordinated else stop_g
    c = c._replace(passed=c.passed + (jnp.any(at_rung, axis=0) & ~stop).astype(jnp.int32),
                   halted=c.halted | stop, rung_loss=rung_loss, rung_rec=rung_rec)
    return c, fin | stop, fin_g | stop_g


def _gather(layout: _LaneLayout, x: Array) -> Array:
    """A per-lane array of this device -> the queue's lanes (all devices' when coordinated)."""
    return jax.lax.all_gather(x, layout.axis, axis=x.ndim - 1, tiled=True) if layout.coordinated else x


def _write_finished(layout: _LaneLayout, c: _Lanes, hp_l: Mapping[str, Array], fin: Array, buf: PyTree,
                    written: Array) -> tuple[PyTree, Array]:
    """The outputs of the finished lanes into `buf`, `write_batch` lanes at a time: finalizing (and
    re-initializing) every lane whenever one finishes would cost a pass over the data per finished run."""
    batch, n_q = layout.write_batch, layout.queue_size

    def body(carry):
        buf, written, pending = carry
        idx = jnp.argsort(~pending, stable=True)[:batch]
        sel = pending[idx]
        sub = jax.tree.map(lambda x: x[idx], c.state)
        out = jax.vmap(layout.stepper.finalize)(sub, {k: v[idx] for k, v in hp_l.items()})
        slot = jnp.where(sel, c.cfg[idx], n_q)
        new = (out, LaneInfo(c.halted[idx], c.passed[idx]))
        buf = jax.tree.map(lambda b, o: b.at[slot].set(o, mode="drop"), buf, new)
        return buf, written.at[slot].set(True, mode="drop"), pending.at[idx].set(False)

    return jax.lax.while_loop(lambda carry: jnp.any(carry[2]), body, (buf, written, fin))[:2]


def _refill(layout: _LaneLayout, queue: _Queue, c: _Lanes, fin: Array, fin_g: Array) -> _Lanes:
    """Finished lanes take the next queue positions in lane order (re-initialized `write_batch` at a
    time); lanes left without a position stop."""
    batch = layout.write_batch
    order_g = jnp.cumsum(fin_g, dtype=jnp.int32) - 1
    new_pos_g = c.next_pos + order_g
    take_g = fin_g & (new_pos_g < queue.n_queue)
    new_pos = new_pos_g[queue.mine] if layout.coordinated else new_pos_g
    take = take_g[queue.mine] if layout.coordinated else take_g
    new_cfg = queue.config_of(new_pos)

    def refill(state):
        def body(carry):
            state, pending = carry
            idx = jnp.argsort(~pending, stable=True)[:batch]
            sel = pending[idx]
            q = jnp.where(sel, new_cfg[idx], 0)
            fresh = jax.vmap(layout.stepper.init)(queue.seeds[q], _at(queue.hparams, q))
            state = jax.tree.map(lambda s, f: s.at[idx].set(_where(sel, f, s[idx])), state, fresh)
            return state, pending.at[idx].set(False)

        return jax.lax.while_loop(lambda carry: jnp.any(carry[1]), body, (state, take))[0]

    state = jax.lax.cond(jnp.any(take), refill, lambda s: s, c.state)
    n_fin = jnp.sum(fin_g, dtype=jnp.int32)
    # Lanes still running, counted the same way on every device (no collective needed):
    # those that were running and did not finish, plus those that took a new run.
    n_active_next = c.n_active - n_fin + jnp.sum(take_g, dtype=jnp.int32)
    return c._replace(
        state=state, cfg=jnp.where(take, new_cfg, c.cfg), active=jnp.where(fin, take, c.active),
        halted=jnp.where(take, False, c.halted), passed=jnp.where(take, 0, c.passed),
        next_pos=jnp.minimum(c.next_pos + n_fin, queue.n_queue).astype(jnp.int32), n_active=n_active_next,
    )


def _stopped_at_rung(rung_loss: Array, rung_rec: Array, at_g: Array, loss_g: Array, cfg_g: Array, eta: float,
                     n_q: int) -> Array:
    """Per lane of all devices: reached a rung this epoch and ranks outside the best 1/eta there."""
    k = jnp.argmax(at_g, axis=0)
    rec, row = rung_rec[k], rung_loss[k]
    ids = jnp.arange(n_q)[None, :]
    better = rec & ((row < loss_g[:, None]) | ((row == loss_g[:, None]) & (ids < cfg_g[:, None])))
    keep = jnp.sum(better, axis=1) < jnp.ceil(jnp.sum(rec, axis=1) / eta)
    return jnp.any(at_g, axis=0) & ~keep


def combine(outputs: PyTree, written: np.ndarray, n_devices: int, n_valid: int) -> PyTree:
    """Host side: merge the per-device buffers `refill_shard` returns (stacked over devices)
    into one entry per configuration."""
    written = np.asarray(written).reshape(n_devices, -1)[:, :n_valid]
    missing = ~written.any(axis=0)
    if missing.any():
        raise RuntimeError(f"refill: configurations {np.flatnonzero(missing)[:10].tolist()} were never run")
    owner = written.argmax(axis=0)
    cols = np.arange(n_valid)

    def pick(leaf):
        leaf = np.asarray(leaf)
        return leaf.reshape(n_devices, -1, *leaf.shape[1:])[owner, cols]

    return jax.tree.map(pick, outputs)


def default_lanes(queue_size: int, n_devices: int) -> int:
    """Lanes for a refilling chunk: every run at once on an accelerator; on CPU a batch
    big enough for vmap to pay and small enough that refilling has work to hand out."""
    if jax.default_backend() == "cpu":
        want = min(queue_size, max(8, math.ceil(queue_size / 4)), 128 * n_devices)
    else:
        want = queue_size
    return max(n_devices, math.ceil(want / n_devices) * n_devices)


# ----------------------------------------------------------------------------- Hyperband


class BracketInfo(NamedTuple):
    """Per run of `run_hyperband`. Fields:
      halted: stopped by a rung of its bracket.
      rungs_passed: rungs of its bracket it was promoted past.
      bracket: Hyperband's ``s`` of its bracket (its number of rungs).
      epochs_computed: epochs trained for it, counting the retraining of each stage.
    """

    halted: bool
    rungs_passed: int
    bracket: int
    epochs_computed: int


UNTIL_KEY = "__until__"


def stage_fn(stepper: Stepper) -> Callable[[Array, Mapping[str, Array]], PyTree]:
    """`fn(seed, hparams)`: the run trained until it finishes or reaches ``hparams[UNTIL_KEY]`` epochs
    (traced, so one program serves every rung), with the monitored loss, epoch and finished flag."""

    def fn(seed, hp, *data):
        st = bind_data(stepper, *data)
        until = jnp.asarray(hp[UNTIL_KEY]).astype(jnp.int32)
        h = {k: v for k, v in hp.items() if k != UNTIL_KEY}
        state = st.init(seed, h)
        state = jax.lax.while_loop(lambda s: ~st.finished(s, h) & (st.epoch(s) < until),
                                   lambda s: st.step(s, h), state)
        return {"out": st.finalize(state, h), "monitor": st.monitor(state),
                "epoch": st.epoch(state), "finished": st.finished(state, h)}

    return fn


def rung_survivors(runs: Sequence[int], losses: Sequence[float], eta: float) -> set[int]:
    """The runs that pass a rung: the best ``ceil(n / eta)`` of the `n` that reached it (NaN as +inf,
    ties to the lower run index) -- the rule of `_stopped_at_rung`, over every run at once."""
    key = [(math.inf if not math.isfinite(v) else v, i) for v, i in zip(losses, runs, strict=True)]
    keep = math.ceil(len(runs) / eta)
    return {i for _, i in sorted(key)[:keep]}


def run_hyperband(groups: Sequence[Any], n_runs: int, halving: Halving, config_of: Sequence[int], *,
                  chunk_size: int | None = None, execution: str = "auto", devices: Sequence[Any] | None = None,
                  progress: bool | None = None, checkpoint_dir: Any = None, resume: bool = False,
                  fingerprint: str = "") -> tuple[list[Any], Any]:
    """Hyperband over the runs of `groups` (runner `Group`s with a `Stepper`); returns per-run
    ``(outputs, BracketInfo)`` and the summed `ExecutionStats`.

    Per group, its configurations (runs sharing ``config_of[run]``: a configuration's seeds stay
    together) are split in order into the brackets of `Halving.bracket_sizes`. Each bracket is
    synchronous successive halving: every run still in it trains to the next rung (from scratch: the
    runner's programs take seeds and hyperparameters only, so each stage retrains, which costs up to
    ``1 + 1/(eta - 1)`` times the epochs of continuing; `BracketInfo.epochs_computed` counts them),
    the runs that reached the rung are ranked together, across every chunk, and the best
    ``ceil(n / eta)`` go on. A run that stops early is done where it stopped; a halted run's outputs are
    those of the run alone trained for the rung's epochs, a promoted one's of the full run. The
    decisions therefore do not depend on the chunk size, the lanes or the device count.

    Every stage of every bracket runs through one compiled program per group: the rung epoch is a
    traced argument and each stage is padded, with runs that train for 0 epochs, to whole chunks of
    one shape.

    With `checkpoint_dir` every stage's outputs are saved atomically as it ends; `resume` loads the
    stages found there (they must carry the same `fingerprint`) instead of running them, and ends
    with the same results as an uninterrupted run, since every decision follows from the outputs.
    """
    from jaxopt_lab.sweep import runner  # here, not at the top: the runner imports this module

    stats = runner.ExecutionStats(runs=n_runs)
    folder = _stage_folder(checkpoint_dir, resume)
    outputs: list[Any] = [None] * n_runs
    for gi, g in enumerate(groups):
        if g.stepper is None:
            raise ValueError("Hyperband needs runs split into epochs (a Stepper)")
        max_epochs = g.stepper.max_epochs
        configs = _configurations(g.indices, config_of)
        stage = _group_stages(g, gi, folder, resume, fingerprint, stats, chunk_size=chunk_size,
                              execution=execution, devices=devices, progress=progress)
        start = 0
        for rungs, n_cfg in zip(halving.bracket_rungs(max_epochs), halving.bracket_sizes(len(configs), max_epochs),
                                strict=True):
            _run_bracket(stage, [r for c in configs[start:start + n_cfg] for r in c], rungs, max_epochs,
                         halving.eta, outputs)
            start += n_cfg
    return outputs, stats


def _stage_folder(checkpoint_dir: Any, resume: bool) -> Path | None:
    """The folder Hyperband's stages are saved in (created), or None; an earlier sweep's stages
    there are refused without `resume`."""
    if checkpoint_dir is None:
        return None
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not resume and any(folder.glob("hyperband_*.ckpt")):
        raise ValueError(f"{folder} holds the stages of an earlier Hyperband sweep: resume it, or remove it")
    return folder


def _configurations(indices: Sequence[int], config_of: Sequence[int]) -> list[list[int]]:
    """The group's runs as configurations in order: consecutive runs of one configuration together."""
    configs: list[list[int]] = []
    for run in (int(i) for i in indices):
        if configs and config_of[configs[-1][-1]] == config_of[run]:
            configs[-1].append(run)
        else:
            configs.append([run])
    return configs


def _group_stages(g: Any, gi: int, folder: Path | None, resume: bool, fingerprint: str, stats: Any, *,
                  chunk_size: int | None, execution: str, devices: Sequence[Any] | None,
                  progress: bool | None) -> Callable[[list[int], int], dict[int, Any]]:
    """`stage(runs, until) -> {run: outputs of stage_fn}` for group `gi`: runs trained to `until`
    epochs in chunks of one shape, loaded from `folder` when resuming and saved there."""
    idx = [int(i) for i in g.indices]
    pos = {run: j for j, run in enumerate(idx)}
    fn = stage_fn(g.stepper)
    n_dev = len(devices) if devices is not None else len(jax.local_devices())
    size = int(chunk_size) if chunk_size is not None else min(len(idx), 256)
    size = max(n_dev, math.ceil(size / n_dev) * n_dev)

    def stage(runs: list[int], until: int) -> dict[int, Any]:
        path = folder / f"hyperband_g{gi:03d}_until{until:05d}_first{runs[0]:07d}.ckpt" if folder else None
        meta = {"fingerprint": fingerprint, "runs": [int(r) for r in runs], "until": int(until)}
        return _cached_stage(path, meta, resume, lambda: _run_stage(
            g, fn, pos, size, runs, until, stats, execution=execution, devices=devices, progress=progress))

    return stage


def _run_bracket(stage: Callable[[list[int], int], dict[int, Any]], runs: list[int], rungs: Sequence[int],
                 max_epochs: int, eta: float, outputs: list[Any]) -> None:
    """One bracket: synchronous successive halving of `runs` at `rungs`, every run's
    ``(outputs, BracketInfo)`` set in `outputs` where it ends (stopped early, halted, or the budget)."""
    alive, passed = list(runs), dict.fromkeys(runs, 0)
    computed = dict.fromkeys(runs, 0)
    for k, r_epochs in enumerate(rungs):
        res = stage(alive, r_epochs)
        reached = []
        for run in alive:
            o = res[run]
            computed[run] += int(o["epoch"])
            if bool(o["finished"]) or int(o["epoch"]) < r_epochs:
                outputs[run] = (o["out"], BracketInfo(False, k, len(rungs), computed[run]))
            else:
                reached.append(run)
        keep = rung_survivors(reached, [float(res[run]["monitor"]) for run in reached], eta)
        for run in reached:
            if run not in keep:
                outputs[run] = (res[run]["out"], BracketInfo(True, k, len(rungs), computed[run]))
        alive = [run for run in reached if run in keep]
        for run in alive:
            passed[run] = k + 1
    if alive:
        res = stage(alive, max_epochs)
        for run in alive:
            computed[run] += int(res[run]["epoch"])
            outputs[run] = (res[run]["out"], BracketInfo(False, passed[run], len(rungs), computed[run]))


def _run_stage(g: Any, fn: Callable, pos: Mapping[int, int], size: int, runs: list[int], until: int, stats: Any, *,
               execution: str, devices: Sequence[Any] | None, progress: bool | None) -> dict[int, Any]:
    """One stage of a bracket: `runs` trained to `until` epochs, padded to whole chunks of `size` with
    runs that train 0 epochs (one program shape for every stage); adds to `stats`."""
    from jaxopt_lab.sweep import runner  # here, not at the top: the runner imports this module

    n = math.ceil(len(runs) / size) * size
    padded = runs + [runs[0]] * (n - len(runs))
    hp = {k: np.asarray([g.hparams[k][pos[r]] for r in padded]) for k in g.hparams}
    hp[UNTIL_KEY] = np.asarray([until] * len(runs) + [0] * (n - len(runs)), np.float64)
    sub = runner.Group(fn=fn, indices=np.arange(n), seeds=np.asarray([g.seeds[pos[r]] for r in padded]),
                       hparams=hp, label=g.label, cache_key=("hyperband-stage", g.cache_key or id(g.fn)),
                       data=g.data if g.stepper.takes_data else None)
    outs, st = runner.execute([sub], n, chunk_size=size, execution=execution, devices=devices, progress=progress)
    stats.devices, stats.execution = st.devices, st.execution
    stats.wall_seconds += st.wall_seconds
    stats.compile_seconds += st.compile_seconds
    stats.chunks += st.chunks
    stats.compilations += st.compilations
    return {r: outs[j] for j, r in enumerate(runs)}


def _cached_stage(path: Any, meta: Mapping[str, Any], resume: bool, run: Callable[[], dict[int, Any]]
                  ) -> dict[int, Any]:
    """A stage's per-run outputs: loaded from `path` when resuming and it holds this stage (same
    fingerprint and runs), else computed by `run()` and saved to `path` (atomically)."""
    runs = list(meta["runs"])
    if path is not None and resume and path.exists():
        saved = checkpoint.load_metadata(path)
        if saved.get("fingerprint") != meta["fingerprint"] or saved.get("runs") != runs:
            raise ValueError(f"--resume: the stage saved in {path} belongs to another sweep; remove it")
        tree, _ = checkpoint.load(path)
        return {r: jax.tree.map(lambda a, j=j: np.asarray(a)[j], tree) for j, r in enumerate(runs)}
    out = run()
    if path is not None:
        from jaxopt_lab.sweep import runner  # here, not at the top: the runner imports this module

        checkpoint.save(path, runner.stack_outputs([out[r] for r in runs]), dict(meta))
    return out
