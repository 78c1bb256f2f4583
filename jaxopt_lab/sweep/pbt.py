"""Population-based training inside one compiled program (Jaderberg et al. 2017, "Population Based
Training of Neural Networks").

A population of ``population`` runs trains side by side (`jax.vmap` over the members). Every
``interval`` epochs the members are ranked by their monitored loss (validation loss, else training
loss; a diverged member ranks last) and the worst ``quantile`` of them *exploit*: each copies the
whole training state (parameters, optimizer state, early-stopping records, history, data-order key)
and the hyperparameters of a member drawn uniformly from the best ``quantile`` (truncation
selection). Then they *explore*: each evolving hyperparameter is resampled from its distribution
with probability ``resample_probability``, otherwise multiplied by a factor drawn from ``perturb``
(for ``one_minus_loguniform`` keys the factor scales ``1 - x``), and clipped to the distribution's
range. The initial hyperparameters are a quasi-random draw (`space.quasirandom`) of the
distributions; member ``i`` trains with seed ``i``.

The hyperparameters are traced values that every epoch reads afresh (the trainer builds its
optimizer from them each epoch), so changing them mid-run is exact: a member's trajectory equals a
single run fed the same hyperparameter schedule and the same copied states
(`tests/test_pbt.py` replays the recorded schedule run by run). The whole schedule -- every
interval, exploit and explore step -- runs through four compiled programs (start; train to the
next exploit epoch, a traced argument; exploit and explore; finish): the same four however many
exploit steps there are.

The population is split over the local devices (`jax.shard_map` over a ``runs`` axis, the data
replicated), and no program holds a collective: training (start, train, finish) is each member's
own work, so each device trains its members alone; the exploit step ranks the gathered scores in a
small program of its own on one device, and the states are copied (``state[source]``) on the host
between the programs. (An earlier version sharded the exploit step too: its collectives made XLA's
CPU runtime wait 40 s in one device for the other under load and abort the process.) The numbers
do not depend on the device count: the members run in lanes of a fixed width (`lane_width`, from
the population and the runner's lane width, never from the devices), a device's lanes one after
the other in a loop whose trip count is a program argument, and the population is padded to whole
lanes on every device with copies of the last member that are never ranked, copied or reported
(`tests/test_pbt.py`: 1, 2 and 3 CPU devices, float64 and float32, bit for bit). The population is
saved after every step (`run_pbt`'s `checkpoint_dir`; a save holds the real members only, whatever
the devices), and a run killed mid-way resumes to the same results.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxopt_lab import _cache, _io, checkpoint, plots
from jaxopt_lab.config import ConfigError
from jaxopt_lab.sweep import adaptive, config_sweep, runner
from jaxopt_lab.sweep import space as space_mod

#: Keys of ``[sweep.pbt]`` besides its distribution sections.
PBT_KEYS = ("population", "interval", "quantile", "perturb", "resample_probability", "keys", "seed")
#: Distributions PBT can perturb and resample inside the program (continuous ones).
PBT_DISTRIBUTIONS = ("uniform", "loguniform", "one_minus_loguniform")
#: The population is cut into this many lanes (fewer when it has fewer members, or when the lanes would
#: be wider than the runner's, `lane_width`): it splits over up to this many devices in whole lanes.
PBT_LANES = 4


@dataclasses.dataclass(frozen=True)
class PBTOptions:
    """The options of a PBT run, checked.

    Attributes:
      population: members (>= 2).
      interval: epochs between exploit steps (>= 1).
      quantile: fraction of the population replaced at each step, in (0, 0.5].
      perturb: factors an explored hyperparameter is multiplied by (one drawn uniformly).
      resample_probability: probability of resampling instead of perturbing, in [0, 1].
      keys: the hyperparameters that evolve (default: every distribution's key).
      seed: seed of the initial draw, the selection and the exploration.
    """

    population: int = 8
    interval: int = 2
    quantile: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.2)
    resample_probability: float = 0.25
    keys: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self):
        w = "sweep.pbt"
        for name, low in (("population", 2), ("interval", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{w}.{name} = {v!r} is out of range: valid range is [{low}, inf)")
        q = self.quantile
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q <= 0.5:
            raise ValueError(f"{w}.quantile = {q!r} is out of range: valid range is (0, 0.5]")
        p = self.resample_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"{w}.resample_probability = {p!r} is out of range: valid range is [0, 1]")
        f = self.perturb
        if (not isinstance(f, (list, tuple)) or not f or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                                              or not x > 0 or not math.isfinite(x) for x in f)):
            raise ValueError(f"{w}.perturb = {f!r} must be a non-empty list of positive factors, e.g. [0.8, 1.2]")
        if self.keys is not None and (not isinstance(self.keys, (list, tuple)) or not self.keys
                                      or not all(isinstance(k, str) for k in self.keys)):
            raise ValueError(f"{w}.keys = {self.keys!r} must be a non-empty list of keys")

    @property
    def n_replaced(self) -> int:
        """Members replaced at each exploit step: ``ceil(quantile * population)``, at most half."""
        return max(1, min(self.population // 2, math.ceil(self.quantile * self.population)))

    @classmethod
    def from_table(cls, table: Any) -> tuple[PBTOptions, dict[str, space_mod.Distribution]]:
        """The options and distributions of a config's ``[sweep.pbt]`` table."""
        space_mod.check_method_table(table, "sweep.pbt", PBT_KEYS)
        kw = {k: table[k] for k in PBT_KEYS if k in table}
        for name in ("perturb", "keys"):
            if isinstance(kw.get(name), list):
                kw[name] = tuple(kw[name])
        opts = cls(**kw)
        dists = space_mod.search_distributions(table, "sweep.pbt", PBT_KEYS)
        check_dists(opts, dists)
        return opts, dists


def check_dists(opts: PBTOptions, dists: Mapping[str, space_mod.Distribution]) -> None:
    """Evolving keys need a continuous distribution each; `ValueError` names the key."""
    for key in opts.keys or ():
        if key not in dists:
            raise ValueError(f"sweep.pbt.keys: {key!r} has no distribution{space_mod.closest(key, dists)}; give "
                             f"it one under [sweep.pbt.SECTION] (distributions: {', '.join(dists)})")
    for key, d in dists.items():
        if d.name not in PBT_DISTRIBUTIONS:
            raise ValueError(f"sweep.pbt.{key}: PBT perturbs continuous hyperparameters; {d.name} is not one of "
                             f"{', '.join(PBT_DISTRIBUTIONS)}")


def _from_unit(dist: space_mod.Distribution, u: jax.Array) -> jax.Array:
    """`Distribution.from_unit` in JAX, for the continuous distributions."""
    low, high = dist.args
    if dist.name == "uniform":
        return low + (high - low) * u
    x = jnp.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return 1.0 - x if dist.name == "one_minus_loguniform" else x


def _perturbed(dist: space_mod.Distribution, value: jax.Array, factor: jax.Array) -> jax.Array:
    """`value` scaled by `factor` in its distribution's natural variable, clipped to the range."""
    low, high = dist.args
    if dist.name == "one_minus_loguniform":
        return 1.0 - jnp.clip((1.0 - value) * factor, low, high)
    return jnp.clip(value * factor, low, high)


def exploit_explore(opts: PBTOptions, dists: Mapping[str, space_mod.Distribution], evolve: Sequence[str],
                    score: jax.Array, hp: Mapping[str, jax.Array], key: jax.Array
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """One PBT step on the population: ``(source of each member, new hyperparameters)``.

    `score`: each member's monitored loss (lower is better; NaN counts as +inf). The worst
    `n_replaced` members take the state of a member drawn uniformly from the best `n_replaced`
    (``source[i] = i`` for the others) and explore their `evolve` keys.
    """
    p, n = opts.population, opts.n_replaced
    score = jnp.where(jnp.isnan(score), jnp.inf, score)
    order = jnp.argsort(score, stable=True)  # best first; ties to the lower member index
    k_pick, k_res, k_fac, *k_unit = jax.random.split(key, 3 + len(evolve))
    best, worst = order[:n], order[p - n:]
    source = jnp.arange(p).at[worst].set(best[jax.random.randint(k_pick, (n,), 0, n)])
    replaced = jnp.zeros(p, bool).at[worst].set(True)
    factors = jnp.asarray(opts.perturb, score.dtype)
    new = {k: v[source] for k, v in hp.items()}
    resample = jax.random.uniform(k_res, (len(evolve), p)) < opts.resample_probability
    factor = factors[jax.random.randint(k_fac, (len(evolve), p), 0, len(opts.perturb))]
    for j, k in enumerate(evolve):
        d = dists[k]
        u = jax.random.uniform(k_unit[j], (p,), dtype=new[k].dtype)
        explored = jnp.where(resample[j], _from_unit(d, u), _perturbed(d, new[k], factor[j]))
        new[k] = jnp.where(replaced, explored.astype(new[k].dtype), new[k])
    return source, new


def exploit_epochs(opts: PBTOptions, max_epochs: int) -> list[int]:
    """The epochs after which the population exploits: every `interval` epochs, before the budget's end."""
    return list(range(opts.interval, max_epochs, opts.interval))


def lane_width(population: int, cap: int | None = None) -> int:
    """Members vmapped together in one lane: ``ceil(population / PBT_LANES)``, at most `cap` (the
    sweep runner's lane width for the group, `plan.auto_execution`; None: no cap), at least 1.

    It depends on neither the device count nor the devices: every member runs in a lane of this
    width whatever the split, so its numbers are the same on 1 device as on several."""
    width = math.ceil(population / PBT_LANES)
    return max(1, min(width, cap) if cap is not None else width)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the population lies on the devices: `devices` shards of `lanes` lanes of `width` members
    each; members past `population` are padding (copies of the last member that take no part in
    selection)."""

    population: int
    devices: int
    width: int

    @property
    def lanes(self) -> int:
        """Lanes per device."""
        return math.ceil(self.population / (self.devices * self.width))

    @property
    def padded(self) -> int:
        """Members over all devices, padding included."""
        return self.lanes * self.width * self.devices


def _in_lanes(fn: Any, width: int) -> Any:
    """``fn(*members) -> outputs`` (one member's work) over a device's shard: a loop over its lanes,
    each `width` members vmapped.

    The loop's trip count is an argument of the program (``lanes``), not a constant: XLA cannot
    unroll or inline a loop of one lane, so the lane's computation compiles the same however many
    lanes a device holds -- the same numbers on 1 device as on several."""

    def run(lanes, *members):
        n = jax.tree.leaves(members)[0].shape[0] // width
        stacked = jax.tree.map(lambda a: a.reshape(n, width, *a.shape[1:]), members)
        lane_fn = jax.vmap(fn)
        shapes = jax.eval_shape(lane_fn, *jax.tree.map(lambda a: a[0], stacked))
        out = jax.tree.map(lambda s: jnp.zeros((n, *s.shape), s.dtype), shapes)

        def body(i, out):
            lane = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), stacked)
            return jax.tree.map(lambda o, r: jax.lax.dynamic_update_index_in_dim(o, r, i, 0), out, lane_fn(*lane))

        out = jax.lax.fori_loop(0, lanes, body, out)
        return jax.tree.map(lambda a: a.reshape(n * width, *a.shape[2:]), out)

    return run


def make_programs(stepper: Any, opts: PBTOptions, dists: Mapping[str, space_mod.Distribution],
                  evolve: Sequence[str], mesh: Mesh | None = None, width: int = 1) -> dict[str, Any]:
    """The four programs of a PBT run, each to compile once (`jax.jit`):

    - ``init(lanes, seeds, hparams, *data) -> state``: the population's fresh runs;
    - ``train(lanes, state, hparams, limit, *data) -> (state, score)``: train every member to `limit`
      epochs (traced: one program serves every exploit step); `score`: each member's monitored loss;
    - ``exploit(score, hparams, key) -> (source, hparams)``: `exploit_explore` on the real members;
    - ``final(lanes, state, hparams, *data) -> outputs``: train to the budget and `finalize`.

    ``init``, ``train`` and ``final`` split the members over `mesh`'s ``runs`` axis (`jax.shard_map`,
    the data and scalars replicated) and hold no collective: each device trains its own members, in
    lanes of `width` (`lanes` per device, an argument). ``exploit`` is small and runs on one device;
    the copying of states (``state[source]``) happens between the programs (`run_pbt`).
    `data` is the stepper's data (a trainer's arrays), an argument of each program, not a constant.
    """

    mesh = mesh if mesh is not None else Mesh(np.array(jax.local_devices()[:1]), ("runs",))

    def advance(st, limit):
        def one(s, h):
            return jax.lax.while_loop(lambda c: ~st.finished(c, h) & (st.epoch(c) < limit),
                                      lambda c: st.step(c, h), s)

        return one

    def init(lanes, seeds, hp, *data):
        return _in_lanes(adaptive.bind_data(stepper, *data).init, width)(lanes, seeds, hp)

    def train(lanes, state, hp, limit, *data):
        st = adaptive.bind_data(stepper, *data)

        def one(s, h):
            s = advance(st, limit)(s, h)
            return s, st.monitor(s)

        return _in_lanes(one, width)(lanes, state, hp)

    def final(lanes, state, hp, *data):
        st = adaptive.bind_data(stepper, *data)
        return _in_lanes(lambda s, h: st.finalize(advance(st, st.max_epochs)(s, h), h), width)(lanes, state, hp)

    def sharded(fn, n_members, n_scalars=0):
        runs, rep = PartitionSpec("runs"), PartitionSpec()
        specs = (rep, *[runs] * n_members, *[rep] * n_scalars) + ((rep,) if stepper.takes_data else ())
        # The shardings are explicit in `jit` too: an argument a program does not read (a fixed
        # hyperparameter) would otherwise compile as replicated and refuse the sharded array.
        return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=runs, check_vma=False),
                       in_shardings=tuple(NamedSharding(mesh, s) for s in specs),
                       out_shardings=NamedSharding(mesh, runs))

    return {"init": sharded(init, 2), "train": sharded(train, 2, 1), "final": sharded(final, 2),
            "exploit": jax.jit(lambda score, hp, key: exploit_explore(opts, dists, evolve, score, hp, key))}


@dataclasses.dataclass
class PBTResult:
    """Outputs of `run_pbt`: the members' stacked outputs, the record of every exploit step
    (numpy: ``source``, ``score`` of shape (steps, population) and ``hp`` by key), the exploit
    epochs, the initial and final hyperparameters, the programs compiled, the exploit steps
    taken from a checkpoint and how the population lay on the devices."""

    outputs: Any
    record: dict[str, Any]
    epochs: list[int]
    initial: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    compilations: int
    steps_resumed: int = 0
    layout: Layout | None = None


_PROGRAMS = _cache.BoundedCache("PBT programs", 16)


def _step_path(folder: Path, step: int) -> Path:
    return folder / f"pbt_step_{step:05d}.ckpt"


def _members(tree: Any, index: np.ndarray) -> Any:
    """The members `index` of a host pytree stacked over members (a gather on the host: exact)."""
    return jax.tree.map(lambda a: np.asarray(a)[index], tree)


@jax.jit
def _take_members(tree: Any, index: jax.Array) -> Any:
    return jax.tree.map(lambda a: a[index], tree)


def _copied(state: Any, index: np.ndarray, runs: NamedSharding, n_devices: int) -> Any:
    """The population after the exploit step's copies (member i becomes member `index[i]`), on the devices.

    A gather is exact wherever it runs. On one device it stays there; over several it goes through the
    host, because an on-device gather across the sharded member axis would be a collective (see above).
    """
    if n_devices == 1:
        return _take_members(state, jnp.asarray(index))
    return jax.device_put(_members(jax.device_get(state), index), runs)


def _compile(fns: Mapping[str, Any], layout: Layout, seeds: np.ndarray, hp: Mapping[str, np.ndarray],
             data: tuple, key_shape: Any) -> dict[str, Any]:
    """The run's compiled programs (``exploit`` only when there are exploit steps), and the shapes of
    the population's state and of one step's record (to load checkpoints into)."""
    lanes = np.int32(layout.lanes)
    pad = np.minimum(np.arange(layout.padded), layout.population - 1)
    state = jax.eval_shape(fns["init"], lanes, seeds[pad], _members(hp, pad), *data)
    programs = {
        "init": runner.compile_lowered(fns["init"].lower(lanes, seeds[pad], _members(hp, pad), *data)),
        "train": runner.compile_lowered(fns["train"].lower(lanes, state, _members(hp, pad), jnp.int32(0), *data)),
        "final": runner.compile_lowered(fns["final"].lower(lanes, state, _members(hp, pad), *data)),
    }
    score = jax.ShapeDtypeStruct((layout.population,), jax.tree.leaves(hp)[0].dtype)
    programs["state_shape"] = jax.eval_shape(lambda s: jax.tree.map(lambda a: a[: layout.population], s), state)
    if key_shape is not None:
        programs["exploit"] = runner.compile_lowered(fns["exploit"].lower(score, hp, key_shape))
        source, new = jax.eval_shape(fns["exploit"], score, hp, key_shape)
        programs["row_shape"] = {"source": source, "score": score, "hp": new}
    return programs


def _latest_save(folder: Path, n_steps: int, resume: bool, programs: Mapping[str, Any], hp: Any,
                 options: str) -> tuple[Any, Any, list, int] | None:
    """``(state, hparams, rows, next step)`` of the latest step saved in `folder` (its real members, on
    the host), or None when it holds none; `ValueError` when it holds some and `resume` is false, or
    they are another run's."""
    folder.mkdir(parents=True, exist_ok=True)
    done = [s for s in range(n_steps) if _step_path(folder, s).exists()]
    if not done:
        return None
    if not resume:
        raise ValueError(f"{folder} holds the steps of an earlier PBT run: resume it, or remove it")
    like = {"state": programs["state_shape"], "hp": hp, "rows": [programs["row_shape"]] * (done[-1] + 1)}
    tree, meta = checkpoint.load(_step_path(folder, done[-1]), like=like)
    if meta.get("options") != options:
        raise ValueError(f"--resume: the PBT run saved in {folder} had other options")
    return tree["state"], tree["hp"], list(tree["rows"]), done[-1] + 1


def run_pbt(stepper: Any, opts: PBTOptions, dists: Mapping[str, space_mod.Distribution],
            fixed: Mapping[str, Any] | None = None, *, cache_key: Any = None, dtype: Any = None,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
            devices: Sequence[Any] | None = None, lane_cap: int | None = None) -> PBTResult:
    """Run PBT with `stepper` (an `adaptive.Stepper`, or a `make_train` trainer); `fixed` are the other
    traced hyperparameters (one value each, the same for every member).

    The members are split over `devices` (default: the local devices) in lanes of `lane_width`
    members (`lane_cap`: the widest lane that pays, `plan.auto_execution`); the results do not depend
    on the devices.

    With `checkpoint_dir`, the population (states, hyperparameters, the record so far) is saved
    atomically after every exploit step; `resume` continues from the latest step saved there and
    ends with the same results as an uninterrupted run (the keys of later steps do not depend on
    where it stopped, and a save does not depend on the devices).
    """

    if not hasattr(stepper, "max_epochs") and hasattr(stepper, "init_state"):
        stepper = adaptive.stepper_from_trainer(stepper)
    check_dists(opts, dists)
    devices = list(devices) if devices is not None else jax.local_devices()
    layout = Layout(opts.population, len(devices), lane_width(opts.population, lane_cap))
    mesh = Mesh(np.array(devices), ("runs",))
    runs, replicated = NamedSharding(mesh, PartitionSpec("runs")), NamedSharding(mesh, PartitionSpec())
    data = (jax.device_put(stepper.data, replicated),) if stepper.takes_data else ()
    evolve = list(opts.keys or dists)
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    init = space_mod.quasirandom(opts.population, opts.seed, dict(dists))
    hp = {k: np.asarray(init.values(k), dtype) for k in dists}
    for k, v in (fixed or {}).items():
        if k not in hp:
            hp[k] = np.full(opts.population, v, dtype)
    initial = {k: hp[k] for k in dists}
    seeds = np.arange(opts.population, dtype=np.int32)
    stops = exploit_epochs(opts, stepper.max_epochs)
    keys = jax.random.split(jax.random.PRNGKey(opts.seed), max(len(stops), 1))[: len(stops)]
    ck = (cache_key if cache_key is not None else id(stepper), opts, tuple(sorted(dists.items())),
          tuple(sorted(hp)), str(np.dtype(dtype)))
    # The seed only picks the initial draw and the step keys, which are arguments: the programs of one
    # population serve every seed (a comparison of search methods runs PBT once per search seed).
    programs_key = (ck[0], dataclasses.replace(opts, seed=0), *ck[2:], layout, tuple(str(d) for d in devices))
    programs = _PROGRAMS.get(programs_key)
    compilations = 0
    if programs is None:
        fns = make_programs(stepper, opts, dists, evolve, mesh, layout.width)
        key_shape = jax.ShapeDtypeStruct(keys.shape[1:], keys.dtype) if len(stops) else None
        programs = _compile(fns, layout, seeds, hp, data, key_shape)
        _PROGRAMS[programs_key] = programs
        compilations = 4 if len(stops) else 3
    # Padding members repeat the last one; they train (their lanes must be whole) but are never ranked,
    # copied from or reported.
    real, pad = np.arange(opts.population), np.minimum(np.arange(layout.padded), opts.population - 1)
    keep_padding = np.arange(opts.population, layout.padded)
    lanes = jax.device_put(np.int32(layout.lanes), replicated)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    saved = _latest_save(folder, len(stops), resume, programs, hp, repr(ck[1:])) if folder is not None else None
    state, rows, start = None, [], 0
    if saved is not None:
        state, hp, rows, start = saved
        state = jax.device_put(_members(state, pad), runs)
    else:
        state = programs["init"](lanes, jax.device_put(seeds[pad], runs), jax.device_put(_members(hp, pad), runs),
                                 *data)
    for step in range(start, len(stops)):
        state, score = programs["train"](lanes, state, jax.device_put(_members(hp, pad), runs),
                                         jax.device_put(np.int32(stops[step]), replicated), *data)
        score = np.asarray(jax.device_get(score))[: opts.population]
        # Selection and exploration on the real members only, on one device; then the copies, on the host.
        source, hp = jax.device_get(programs["exploit"](score, hp, keys[step]))
        rows.append({"source": source, "score": score, "hp": hp})
        state = _copied(state, np.concatenate([source, keep_padding]), runs, len(devices))
        if folder is not None:
            checkpoint.save(_step_path(folder, step),
                            {"state": _members(jax.device_get(state), real), "hp": hp, "rows": rows},
                            {"options": repr(ck[1:]), "step": step})
    outputs = _members(jax.device_get(programs["final"](lanes, state, jax.device_put(_members(hp, pad), runs),
                                                        *data)), real)
    record = {"source": np.asarray([r["source"] for r in rows]).reshape(len(rows), opts.population),
              "score": np.asarray([r["score"] for r in rows]).reshape(len(rows), opts.population),
              "hp": {k: np.asarray([r["hp"][k] for r in rows]).reshape(len(rows), opts.population) for k in dists}}
    final = {k: np.asarray(hp[k]) for k in dists}
    return PBTResult(outputs=outputs, record=record, epochs=stops, initial=initial, final=final,
                     compilations=compilations, steps_resumed=start, layout=layout)


# ----------------------------------------------------------------------------- config files


def check_config(cfg: Any) -> tuple[PBTOptions, dict[str, space_mod.Distribution], Any]:
    """The options, distributions and the runner group of `cfg`'s ``[sweep.pbt]``, checked before anything
    compiles (`ConfigError` names the key): every distribution's key must be a traced hyperparameter."""

    try:
        opts, dists = PBTOptions.from_table(cfg.sweep["pbt"])
    except ValueError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(("sweep.", "unknown key")) else f"sweep.pbt.{msg}") from None
    if "halving" in cfg.sweep or "adaptive" in cfg.sweep or "seeds" in cfg.sweep:
        other = next(k for k in ("halving", "adaptive", "seeds") if k in cfg.sweep)
        raise ConfigError(f"sweep.{other} cannot go with sweep.pbt: PBT's members train with seeds "
                          "0..population-1 and are selected by PBT itself")
    for key in dists:
        if not config_sweep._is_traceable(key):
            raise ConfigError(f"sweep.pbt.{key}: PBT evolves traced numeric hyperparameters only (this key changes "
                              "the compiled program)")
    init = space_mod.quasirandom(opts.population, opts.seed, dists)
    probe = space_mod.Space([{**p, "seed": i} for i, p in enumerate(init)])
    plan = config_sweep.plan(cfg, probe)
    structural = [k for g in plan.groups for k in g.label]
    if structural:
        raise ConfigError(f"sweep.pbt.{structural[0]}: PBT evolves traced numeric hyperparameters only (this key "
                          "changes the compiled program)")
    return opts, dists, plan


def run_config_pbt(cfg: Any, *, checkpoint_dir: Any = None, resume: bool = False,
                   devices: Sequence[Any] | None = None) -> tuple[Any, PBTResult]:
    """`cfg`'s PBT on `devices` (default: the local devices): the `ConfigSweepResult` (a row per member:
    its initial hyperparameters as the swept keys, its final ones as ``final_KEY``, ``origin``: the
    initial member its weights descend from) and the `PBTResult`."""

    opts, dists, plan = check_config(cfg)
    (g,) = plan.groups
    fixed = {k: float(v[0]) for k, v in g.hparams.items() if k not in dists}

    t0 = time.perf_counter()
    execution, width = runner.auto_execution(g)  # the runner's lanes for this group bound PBT's
    res = run_pbt(g.stepper, opts, dists, fixed, cache_key=g.cache_key, checkpoint_dir=checkpoint_dir,
                  resume=resume, devices=devices, lane_cap=width if execution == "map" else None)
    wall = time.perf_counter() - t0
    outputs = res.outputs
    origin = np.arange(opts.population)
    for source in res.record["source"]:
        origin = origin[np.asarray(source)]
    rows = []
    for i, p in enumerate(plan.points):
        row: dict[str, Any] = {"run": i, **{k: p[k] for k in dists}, "seed": i}
        for name, arr in outputs["metrics"].items():
            row[name] = config_sweep._cell(name, np.asarray(arr)[i])
        for k in dists:
            row[f"final_{k}"] = float(res.final[k][i])
        row["origin"] = int(origin[i])
        rows.append(row)
    stats = runner.ExecutionStats(runs=opts.population, devices=res.layout.devices, wall_seconds=wall, chunks=1,
                                  compilations=res.compilations, execution="map", chunks_resumed=res.steps_resumed)
    summary = {"pbt": {
        "population": opts.population, "interval": opts.interval, "quantile": opts.quantile,
        "replaced_per_step": opts.n_replaced, "perturb": list(opts.perturb),
        "resample_probability": opts.resample_probability, "keys": list(opts.keys or dists), "seed": opts.seed,
        "exploit_epochs": res.epochs, "compilations": res.compilations, "devices": res.layout.devices,
        "lane_width": res.layout.width,
    }}
    result = config_sweep.ConfigSweepResult(
        plan=dataclasses.replace(plan, swept_keys=list(dists)), rows=rows,
        histories={k: np.asarray(v) for k, v in outputs["history"].items()}, stats=stats, extra_summary=summary)
    return result, res


def write_pbt_csv(path: Any, res: PBTResult, keys: Sequence[str]) -> None:
    """``pbt.csv``: per exploit step and member: the epoch, the member it copied (``source``, itself when
    kept), its score before the step, whether it was replaced, and its hyperparameters after the step."""

    rows = []
    for s, epoch in enumerate(res.epochs):
        for m in range(len(res.record["source"][s])):
            src = int(res.record["source"][s][m])
            rows.append([s, epoch, m, src, float(res.record["score"][s][m]), src != m,
                         *(float(res.record["hp"][k][s][m]) for k in keys)])
    _io.write_csv(path, ["step", "epoch", "member", "source", "score", "replaced", *keys], rows)


def schedule_figure(path: Any, res: PBTResult, dists: Mapping[str, space_mod.Distribution], max_epochs: int) -> None:
    """Each member's hyperparameter schedule (one panel per key; log scale for log distributions)."""
    keys = list(dists)
    fig, axes = plots.new_figure(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    edges = [0, *res.epochs, max_epochs]
    for ax, k in zip(axes[0], keys, strict=True):
        values = np.vstack([res.initial[k][None, :], *(np.asarray(res.record["hp"][k]) if res.epochs else [])])
        for m in range(values.shape[1]):
            ax.step(edges, [*values[:, m], values[-1, m]], where="post", lw=1, alpha=0.8)
        if dists[k].name == "loguniform":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(k)
    fig.suptitle("PBT: each member's hyperparameters (a jump: exploit and explore)")
    plots.save(fig, path)


def write_config_pbt(out: Any, result: Any, res: PBTResult, *, report: bool = True) -> Any:
    """runs.csv, summary.json (with a ``pbt`` entry), histories.npz, pbt.csv, pbt_schedules.png (and the
    report), atomically."""

    opts, dists, _ = PBTOptions.from_table(result.plan.config.sweep["pbt"]) + (None,)
    keys = list(dists)

    def extra(folder):
        write_pbt_csv(folder / "pbt.csv", res, keys)
        schedule_figure(folder / "pbt_schedules.png", res, dists, result.plan.config.train.epochs)

    return config_sweep.write_results(out, result, report=report, extra=extra)
