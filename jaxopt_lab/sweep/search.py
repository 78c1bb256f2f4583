"""Adaptive batched search: Optuna's samplers propose each round's trials, one compiled chunk runs them.

A search of ``rounds`` rounds asks the sampler for ``batch`` trials (ask-and-tell:
``study.ask``), runs every trial for every training seed as one chunk of the sweep
runner (``batch x seeds`` runs of the same compiled program: the shapes and the
structure are the same every round, so the program compiled for round 0 serves all
later rounds), and tells the sampler each trial's objective, the mean over its seeds
of a `runs.csv` column. A trial with a diverged (or non-finite) run is told as
``TrialState.FAIL``, not as a number: a sampler must not learn that a blown-up
configuration is merely "bad", which would distort its model of the good region.

Samplers (``sampler``; Optuna's, not a Bayesian optimizer of our own):

- ``"tpe"``: `optuna.samplers.TPESampler` (Bergstra et al. 2011) with ``constant_liar=True``,
  so the trials of one round, asked before any of them finished, spread out instead of
  piling on the same promising point;
- ``"gp"``: `optuna.samplers.GPSampler`, Gaussian-process Bayesian optimization with
  log expected improvement; it proposes a round's trials one after another;
- ``"cmaes"``: `optuna.samplers.CmaEsSampler` (Hansen 2016) with ``popsize = batch`` (at least
  CMA-ES's default ``4 + 3 ln(n)``), so one round is one generation (categorical keys fall back
  to random sampling);
- ``"random"``: `optuna.samplers.RandomSampler`, the baseline.

The model-based samplers start with ``startup_trials`` random trials (default: one round).

**Resuming.** After every round its trials, values and runs are saved atomically. A
resumed search replays the finished rounds into a fresh study seeded like the original:
it asks the same number of trials (a seeded sampler proposes the same parameters again,
which is checked) and tells the recorded values, so the sampler's history *and* its
random state are those of the uninterrupted search, and the next rounds propose the
same trials as an uninterrupted run. Should a sampler propose differently (another
Optuna version), the recorded trials are added to a fresh study as they are
(`study.add_trial`) and the search continues from them, with a note on stderr.

Bousquet et al. ("Critical Hyper-Parameters: No Random, No Cry", 2017) and the Deep
Learning Tuning Playbook recommend quasi-random search for exploration; adaptive search
pays when the budget is many rounds of a few trials each on a smooth objective.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import _io
from jaxopt_lab.config import ConfigError
from jaxopt_lab.sweep import config_sweep, runner
from jaxopt_lab.sweep import space as space_mod

SAMPLERS = ("tpe", "gp", "cmaes", "random")
DIRECTIONS = ("minimize", "maximize")
#: The extra that installs Optuna (and the one line printed without it).
INSTALL = "pip install 'jaxopt-lab[search]'"
#: Keys of ``[sweep.adaptive]`` besides its distribution sections.
ADAPTIVE_KEYS = ("sampler", "rounds", "batch", "objective", "direction", "seed", "startup_trials")


class MissingOptuna(ImportError):
    """Optuna is not installed: the message names the extra to install."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise MissingOptuna(f"adaptive search needs Optuna: {INSTALL}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """The options of an adaptive search, checked (see `optimize` for their meaning)."""

    sampler: str = "tpe"
    rounds: int = 4
    batch: int = 8
    objective: str = "best_val_loss"
    direction: str = "minimize"
    seed: int = 0
    startup_trials: int | None = None

    def __post_init__(self):
        where = "sweep.adaptive"
        if self.sampler not in SAMPLERS:
            raise ValueError(f"{where}.sampler = {self.sampler!r} is not a valid choice"
                             f"{space_mod.closest(self.sampler, SAMPLERS)}; valid choices: {', '.join(SAMPLERS)}")
        for name, low in (("rounds", 1), ("batch", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{where}.{name} = {v!r} is out of range: valid range is [{low}, inf)")
        s = self.startup_trials
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 0):
            raise ValueError(f"{where}.startup_trials = {s!r} is out of range: valid range is [0, inf)")
        if not isinstance(self.objective, str) or not self.objective:
            raise ValueError(f"{where}.objective = {self.objective!r} must be the name of a runs.csv column")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{where}.direction = {self.direction!r} is not a valid choice"
                             f"{space_mod.closest(str(self.direction), DIRECTIONS)}; valid choices: "
                             f"{', '.join(DIRECTIONS)}")

    @property
    def startup(self) -> int:
        return self.batch if self.startup_trials is None else self.startup_trials

    @classmethod
    def from_table(cls, table: Any) -> tuple[SearchOptions, dict[str, space_mod.Distribution]]:
        """The options and distributions of a config's ``[sweep.adaptive]`` table."""
        space_mod.check_method_table(table, "sweep.adaptive", ADAPTIVE_KEYS)
        opts = cls(**{k: table[k] for k in ADAPTIVE_KEYS if k in table})
        dists = space_mod.search_distributions(table, "sweep.adaptive", ADAPTIVE_KEYS)
        return opts, dists


# ----------------------------------------------------------------------------- the sampler's side


def _optuna_distribution(optuna: Any, dist: space_mod.Distribution) -> Any:
    """The Optuna distribution a `Distribution` is searched on (``one_minus_loguniform``: on ``1 - x``)."""
    d = optuna.distributions
    if dist.name == "uniform":
        return d.FloatDistribution(*dist.args)
    if dist.name in ("loguniform", "one_minus_loguniform"):
        return d.FloatDistribution(*dist.args, log=True)
    if dist.name == "randint":
        return d.IntDistribution(*dist.args)
    if dist.name == "int_loguniform":
        return d.IntDistribution(*dist.args, log=True)
    if dist.name == "choice":
        return d.CategoricalDistribution(list(dist.args))
    raise ValueError(f"unknown distribution {dist.name!r}")


def _to_value(dist: space_mod.Distribution, x: Any) -> Any:
    """A sampler's parameter as the hyperparameter's value (``1 - x`` for one_minus_loguniform)."""
    if dist.name == "one_minus_loguniform":
        return 1.0 - float(x)
    if isinstance(x, (np.generic,)):
        return x.item()
    return x


def make_sampler(opts: SearchOptions, n_dims: int = 1) -> Any:
    """The Optuna sampler `opts` names, seeded with ``opts.seed``, for `n_dims` hyperparameters."""
    optuna = _optuna()
    s = optuna.samplers
    if opts.sampler == "tpe":
        return s.TPESampler(seed=opts.seed, constant_liar=True, n_startup_trials=opts.startup)
    if opts.sampler == "gp":
        try:
            import torch  # noqa: F401 - Optuna's GPSampler computes with it
        except ImportError:
            raise MissingOptuna("sampler 'gp' needs PyTorch (Optuna's GPSampler uses it): pip install torch") from None
        return s.GPSampler(seed=opts.seed, n_startup_trials=opts.startup)
    if opts.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401 - Optuna's CmaEsSampler needs it
        except ImportError:
            raise MissingOptuna(f"sampler 'cmaes' needs the cmaes package: {INSTALL}") from None
        # One generation per round, but never below CMA-ES's default population 4 + 3 ln(n) (Hansen 2016),
        # under which its weights degenerate.
        popsize = max(opts.batch, 4 + int(3 * math.log(max(n_dims, 1))))
        return s.CmaEsSampler(seed=opts.seed, popsize=popsize, n_startup_trials=opts.startup)
    return s.RandomSampler(seed=opts.seed)


@dataclasses.dataclass
class Trial:
    """One proposed configuration: its round, Optuna trial number, values, objective and state."""

    round: int
    number: int
    params: dict[str, Any]
    value: float | None
    state: str


def trial_objective(rows: Sequence[Mapping[str, Any]], objective: str) -> float | None:
    """The mean of `objective` over a trial's runs (its seeds); None (a failed trial) when any run
    diverged or gave no finite value."""
    values = []
    for r in rows:
        v = r.get(objective)
        if r.get("diverged") or v is None or isinstance(v, bool) or not math.isfinite(float(v)):
            return None
        values.append(float(v))
    return float(np.mean(values))


class _Search:
    """The study, the rounds done and their records on disk."""

    def __init__(self, opts: SearchOptions, dists: Mapping[str, space_mod.Distribution], record_dir: Path | None):
        self.optuna = _optuna()
        self.opts = opts
        self.dists = dict(dists)
        self.odists = {k: _optuna_distribution(self.optuna, d) for k, d in self.dists.items()}
        direction = opts.direction
        self.study = self.optuna.create_study(sampler=make_sampler(opts, len(dists)), direction=direction)
        self.record_dir = record_dir
        self.trials: list[Trial] = []
        self.records: list[dict[str, Any]] = []
        self.stats: list[Any] = []  # the runner's ExecutionStats of each round run in this process
        #: Seconds the sampler spent in `ask` in this process (replayed rounds included): a model-based
        #: sampler's own cost, which the training time does not show (GP: about a second per proposal).
        self.ask_seconds = 0.0
        self.proposals = 0

    # -- proposals

    def ask(self) -> list[Any]:
        t0 = time.perf_counter()
        trials = [self.study.ask(self.odists) for _ in range(self.opts.batch)]
        self.ask_seconds += time.perf_counter() - t0
        self.proposals += len(trials)
        return trials

    def values_of(self, otrial: Any) -> dict[str, Any]:
        return {k: _to_value(self.dists[k], otrial.params[k]) for k in self.dists}

    def tell(self, rnd: int, otrials: Sequence[Any], values: Sequence[float | None]) -> None:
        state = self.optuna.trial.TrialState
        for t, v in zip(otrials, values, strict=True):
            if v is None:
                self.study.tell(t, state=state.FAIL)
            else:
                self.study.tell(t, v)
            self.trials.append(Trial(rnd, t.number, self.values_of(t), v, "COMPLETE" if v is not None else "FAIL"))

    # -- records

    def save_round(self, rnd: int, otrials: Sequence[Any], values: Sequence[float | None],
                   rows: list[dict[str, Any]], arrays: Mapping[str, np.ndarray]) -> None:
        record = {"round": rnd, "params": [{k: t.params[k] for k in self.dists} for t in otrials],
                  "values": list(values), "rows": rows}
        self.records.append({**record, "arrays": dict(arrays)})
        if self.record_dir is None:
            return
        base = self.record_dir / f"round_{rnd:05d}"
        tmp = base.with_suffix(".npz.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, base.with_suffix(".npz"))
        # The JSON is written last: a round counts as finished only once both files are complete.
        tmp = base.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, default=_json_default))
        os.replace(tmp, base.with_suffix(".json"))

    def resume(self) -> int:
        """Replay the finished rounds on disk; returns the first round still to run."""
        if self.record_dir is None:
            return 0
        done = []
        while (self.record_dir / f"round_{len(done):05d}.json").exists():
            base = self.record_dir / f"round_{len(done):05d}"
            record = json.loads(base.with_suffix(".json").read_text())
            with np.load(base.with_suffix(".npz")) as z:
                record["arrays"] = {k: z[k] for k in z.files}
            done.append(record)
        if not done:
            return 0
        replayed = True
        for record in done:
            otrials = self.ask()
            if any(not _same_params(t.params, p) for t, p in zip(otrials, record["params"], strict=True)):
                replayed = False
                break
            self.tell(record["round"], otrials, record["values"])
            self.records.append(record)
        if not replayed:
            print("search: the sampler proposes differently from the recorded rounds (another Optuna version?); "
                  "continuing from the recorded trials, so later proposals may differ from an uninterrupted run",
                  file=sys.stderr)
            self.study = self.optuna.create_study(sampler=make_sampler(self.opts, len(self.dists)),
                                                  direction=self.opts.direction)
            self.trials, self.records = [], []
            state = self.optuna.trial.TrialState
            for record in done:
                for params, v in zip(record["params"], record["values"], strict=True):
                    frozen = self.optuna.trial.create_trial(
                        params=params, distributions=self.odists, value=v,
                        state=state.COMPLETE if v is not None else state.FAIL)
                    self.study.add_trial(frozen)
                    number = self.study.trials[-1].number
                    values = {k: _to_value(self.dists[k], params[k]) for k in self.dists}
                    self.trials.append(Trial(record["round"], number, values, v,
                                             "COMPLETE" if v is not None else "FAIL"))
                self.records.append(record)
        return len(done)

    def best(self) -> Trial | None:
        ok = [t for t in self.trials if t.value is not None]
        if not ok:
            return None
        sign = 1.0 if self.opts.direction == "minimize" else -1.0
        return min(ok, key=lambda t: (sign * t.value, t.number))


def _same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return set(a) == set(b) and all(a[k] == b[k] or (isinstance(a[k], float) and math.isclose(a[k], b[k],
                                                                                         rel_tol=1e-12))
                                    for k in a)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"{x!r} is not JSON-serializable")


def write_trials_csv(path: str | os.PathLike, trials: Sequence[Trial], keys: Sequence[str]) -> None:
    """``trials.csv``: round, trial (Optuna's number), each key's value, value (the objective), state."""
    _io.write_csv(path, ["round", "trial", *keys, "value", "state"],
                  ([t.round, t.number, *(t.params[k] for k in keys), t.value, t.state] for t in trials))


# ----------------------------------------------------------------------------- the loop


RoundRunner = Callable[[int, list[dict[str, Any]]], tuple[list[dict[str, Any]], dict[str, np.ndarray], Any]]


def search_loop(opts: SearchOptions, dists: Mapping[str, space_mod.Distribution], seeds: Sequence[int],
                run_round: RoundRunner, record_dir: Path | None = None, resume: bool = False) -> _Search:
    """Ask, run, tell for every round; `run_round(round, points)` runs ``points`` (each trial's values
    and seed, trial-major) and returns ``(rows, per-run arrays, stats)``, a row per point."""
    search = _Search(opts, dists, record_dir)
    if record_dir is not None:
        record_dir.mkdir(parents=True, exist_ok=True)
    start = search.resume() if resume else 0
    seeds = [int(s) for s in seeds]
    for rnd in range(start, opts.rounds):
        otrials = search.ask()
        points = [{**search.values_of(t), "seed": s} for t in otrials for s in seeds]
        rows, arrays, stats = run_round(rnd, points)
        search.stats.append(stats)
        per = len(seeds)
        values = [trial_objective(rows[i * per:(i + 1) * per], opts.objective) for i in range(len(otrials))]
        search.tell(rnd, otrials, values)
        search.save_round(rnd, otrials, values, rows, arrays)
    return search


# ----------------------------------------------------------------------------- Python API


@dataclasses.dataclass
class SearchResult:
    """What `optimize` returns.

    Attributes:
      trials: every trial in order (round, Optuna number, values, objective, state).
      best: the best completed trial (None when every trial failed).
      rows: one row per run (every trial x seed), like `SweepResult.table`, with ``round`` and ``trial``.
      study: the Optuna study (its trials are the search's).
      compilations: programs compiled over all rounds (1 per group when shapes stay fixed).
    """

    trials: list[Trial]
    best: Trial | None
    rows: list[dict[str, Any]]
    study: Any
    compilations: int


def optimize(
    train_fn: Callable[..., Any],
    dists: Mapping[str, space_mod.Distribution],
    *,
    sampler: str = "tpe",
    rounds: int = 4,
    batch: int = 8,
    objective: str = "best_val_loss",
    direction: str = "minimize",
    seeds: Sequence[int] = (0,),
    seed: int = 0,
    startup_trials: int | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    execution: str = "auto",
    progress: bool | None = False,
) -> SearchResult:
    """Adaptive batched search of `train_fn` over `dists` with an Optuna sampler.

    Args:
      train_fn: ``train_fn(key, hparams) -> pytree`` as for `sweep.run` (a `make_train` trainer works).
      dists: key -> `Distribution` (the same objects as `random` and `quasirandom` take); every key
        must be numeric and traced, so that one compiled program serves every round.
      sampler: ``"tpe"``, ``"gp"``, ``"cmaes"`` or ``"random"`` (see the module docstring).
      rounds: rounds of proposals (>= 1).
      batch: trials per round (>= 1); each round runs ``batch x len(seeds)`` runs as one chunk.
      objective: the scalar output ranked (a column of `SweepResult.table`, e.g. ``"best_val_loss"``).
      direction: ``"minimize"`` or ``"maximize"``.
      seeds: training seeds; a trial's objective is the mean over them.
      seed: the sampler's seed.
      startup_trials: random trials before a model-based sampler takes over (default: `batch`).
      out: a folder for the round records (`resume` continues from them) and ``trials.csv``.
      resume: continue the search recorded in `out`.

    Returns:
      A `SearchResult`.

    Raises:
      MissingOptuna: Optuna is not installed (the message names ``pip install 'jaxopt-lab[search]'``).
      ValueError: a bad option, naming it.
    """

    opts = SearchOptions(sampler=sampler, rounds=rounds, batch=batch, objective=objective, direction=direction,
                         seed=seed, startup_trials=startup_trials)
    _check_dists(dists)
    seeds = list(space_mod.seeds(list(seeds)).values("seed"))
    record_dir = Path(out) / "rounds" if out is not None else None
    if record_dir is not None and not resume and record_dir.exists() and any(record_dir.iterdir()):
        raise ValueError(f"{out} holds the rounds of an earlier search: pass resume=True to continue it")

    def run_round(rnd, points):
        res = runner.run(train_fn, points, chunk_size=len(points), execution=execution, progress=progress)
        rows = res.table()
        if rows and opts.objective not in rows[0]:
            cols = [k for k in rows[0] if k not in points[0] and k != "run"]
            raise ValueError(f"objective = {opts.objective!r} is not an output of train_fn"
                             f"{space_mod.closest(opts.objective, cols)}; scalar outputs: {', '.join(cols)}")
        return [{**r, "run": rnd * len(points) + r["run"]} for r in rows], {}, res.stats

    search = search_loop(opts, dists, seeds, run_round, record_dir, resume)
    rows = _rows_with_trials(search, len(seeds))
    if out is not None:
        write_trials_csv(Path(out) / "trials.csv", search.trials, list(dists))
    return SearchResult(trials=search.trials, best=search.best(), rows=rows, study=search.study,
                        compilations=sum(s.compilations for s in search.stats))


def _check_dists(dists: Mapping[str, space_mod.Distribution]) -> None:
    if not isinstance(dists, Mapping) or not dists:
        raise ValueError("adaptive search needs at least one distribution: a mapping of key -> Distribution")
    for key, d in dists.items():
        space_mod._check_key(key)
        if not isinstance(d, space_mod.Distribution):
            raise ValueError(f"{key}={d!r} is not a Distribution; use one of "
                             f"{', '.join(sorted(space_mod.DISTRIBUTIONS))}")
        if d.name == "choice" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in d.args):
            raise ValueError(f"{key}: adaptive search proposes numeric values only (a choice of {list(d.args)!r} "
                             "would change the compiled program from round to round); search it with a grid")


def _rows_with_trials(search: _Search, n_seeds: int) -> list[dict[str, Any]]:
    """Every round's rows with their ``round`` and ``trial`` (Optuna's number), in run order."""
    rows = []
    for record in search.records:
        rnd = record["round"]
        numbers = [t.number for t in search.trials if t.round == rnd]
        for i, r in enumerate(record["rows"]):
            rows.append({**r, "round": rnd, "trial": numbers[i // n_seeds]})
    return rows


# ----------------------------------------------------------------------------- config files


def config_options(cfg: Any) -> tuple[SearchOptions, dict[str, space_mod.Distribution]]:
    """The checked options and distributions of `cfg`'s ``[sweep.adaptive]`` (`ConfigError` names the key)."""

    try:
        opts, dists = SearchOptions.from_table(cfg.sweep["adaptive"])
        _check_dists(dists)
    except ValueError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith("sweep.") or msg.startswith("unknown key") else
                          f"sweep.adaptive.{msg}") from None
    target = config_sweep._target(cfg)
    columns = [c for c in config_sweep.METRIC_COLUMNS if c != "diverged"]
    if target is not None:
        columns.append("epochs_to_target")
    if opts.objective not in columns:
        raise ConfigError(f"sweep.adaptive.objective = {opts.objective!r} is not a runs.csv column"
                          f"{space_mod.closest(opts.objective, columns)}; valid columns: {', '.join(columns)}")
    if "halving" in cfg.sweep:
        raise ConfigError("sweep.halving cannot go with sweep.adaptive: the adaptive search runs every trial for "
                          "the full budget (use [sweep.halving] with a grid, random or quasi-random space)")
    return opts, dists


def _seeds(cfg: Any) -> list[int]:
    return [int(s) for s in config_sweep.space_of(cfg).values("seed")]


def check_config(cfg: Any) -> tuple[SearchOptions, dict[str, space_mod.Distribution], list[int]]:
    """Everything an adaptive config search needs, checked before anything runs: its options, that
    every distribution's key is a traced numeric hyperparameter (one program for all rounds), and
    that Optuna (and the sampler's own dependencies) are installed."""

    opts, dists = config_options(cfg)
    for key in dists:
        if not config_sweep._is_traceable(key):
            raise ConfigError(f"sweep.adaptive.{key}: adaptive search proposes traced numeric hyperparameters only "
                              "(this key changes the compiled program); sweep it with a grid")
    seeds = _seeds(cfg)
    probe = space_mod.Space([{**{k: d.from_unit(0.5) for k, d in dists.items()}, "seed": s} for s in seeds])
    p = config_sweep.plan(cfg, probe)
    structural = [k for g in p.groups for k in g.label]
    if structural:
        raise ConfigError(f"sweep.adaptive.{structural[0]}: adaptive search proposes traced numeric "
                          "hyperparameters only (this key changes the compiled program); sweep it with a grid")
    make_sampler(opts, len(dists))  # a missing Optuna or cmaes fails here, before anything is compiled
    return opts, dists, seeds


def run_config_search(cfg: Any, *, record_dir: str | os.PathLike | None = None, resume: bool = False,
                      execution: str = "auto", devices: Sequence[Any] | None = None,
                      progress: bool | None = None) -> tuple[Any, _Search]:
    """Run `cfg`'s ``[sweep.adaptive]`` search: returns the combined `ConfigSweepResult` of every
    round (runs.csv rows with ``round`` and ``trial`` columns) and the search."""

    opts, dists, seeds = check_config(cfg)
    record_dir = Path(record_dir) if record_dir is not None else None
    if record_dir is not None:
        record_dir.mkdir(parents=True, exist_ok=True)
        fp = json.dumps(config_sweep.to_dict(cfg), sort_keys=True, default=str)
        manifest = record_dir / "search.json"
        if resume and manifest.exists() and json.loads(manifest.read_text()).get("config") != fp:
            raise ConfigError(f"--resume: the search recorded in {record_dir} was made with another config")
        manifest.write_text(json.dumps({"config": fp}))
    keys = list(dists)
    plans = []

    def run_round(rnd, points):
        p = config_sweep.plan(cfg, space_mod.Space(points))
        plans.append(p)
        res = config_sweep.run_sweep(cfg, sweep_plan=p, chunk_size=len(points), execution=execution,
                                     devices=devices, progress=progress)
        rows = [{**r, "run": rnd * len(points) + r["run"]} for r in res.rows]
        return rows, res.histories, res.stats

    search = search_loop(opts, dists, seeds, run_round, record_dir, resume)
    rows = _rows_with_trials(search, len(seeds))
    histories = {k: np.concatenate([r["arrays"][k] for r in search.records]) for k in search.records[0]["arrays"]}
    stats = runner.ExecutionStats(runs=len(rows), devices=search.stats[0].devices if search.stats else 1,
                                  execution=search.stats[0].execution if search.stats else execution)
    for st in search.stats:
        stats.wall_seconds += st.wall_seconds
        stats.compile_seconds += st.compile_seconds
        stats.chunks += st.chunks
        stats.compilations += st.compilations
    stats.chunks_resumed = len(search.records) - len(search.stats)
    all_points = [{**{k: r[k] for k in keys}, "seed": r["seed"]} for r in rows]
    last = plans[-1] if plans else config_sweep.plan(cfg, space_mod.Space(all_points[: opts.batch * len(seeds)]))
    combined = config_sweep.ConfigSweep(config=cfg, space=space_mod.Space(all_points), points=all_points,
                                        groups=last.groups, swept_keys=keys)
    best = search.best()
    summary = {"search": {
        "method": "adaptive", "sampler": opts.sampler, "rounds": opts.rounds, "batch": opts.batch,
        "seeds": seeds, "objective": opts.objective, "direction": opts.direction, "sampler_seed": opts.seed,
        "startup_trials": opts.startup, "trials": len(search.trials),
        "failed": sum(t.state == "FAIL" for t in search.trials),
        "best_trial": None if best is None else {"round": best.round, "trial": best.number, "params": best.params,
                                                 "value": best.value},
        "best_value_by_round": _best_by_round(search),
        "proposals": search.proposals, "proposal_seconds": search.ask_seconds,
    }}
    result = config_sweep.ConfigSweepResult(plan=combined, rows=rows, histories=histories, stats=stats,
                                            extra_summary=summary)
    return result, search


def _best_by_round(search: _Search) -> list[float | None]:
    """The best objective found up to each round (None while every trial failed)."""
    sign = 1.0 if search.opts.direction == "minimize" else -1.0
    out, best = [], None
    for rnd in range(search.opts.rounds):
        for t in search.trials:
            if t.round == rnd and t.value is not None and (best is None or sign * t.value < sign * best):
                best = t.value
        out.append(best)
    return out


def write_config_search(out: str | os.PathLike, result: Any, search: _Search, *, report: bool = True) -> Path:
    """runs.csv, summary.json (with a ``search`` entry), histories.npz, trials.csv and the report, atomically."""

    keys = list(search.dists)
    return config_sweep.write_results(out, result, report=report,
                                      extra=lambda folder: write_trials_csv(folder / "trials.csv", search.trials,
                                                                            keys))
