"""Search methods at equal compute: the best validation loss each reaches against the epochs it spends.

``[sweep.compare_search]`` runs several search methods over the same distributions, each under the
same budget of training epochs, once per search seed, on any config's problem::

    [sweep.compare_search]
    methods = ["random", "quasirandom", "tpe", "gp", "halving", "hyperband", "pbt"]
    search_seeds = 10          # seeds 0..9 (or a list)
    budget_epochs = 864        # epochs per search (default: 32 x train.epochs)

    [sweep.compare_search.optimizer]
    learning_rate = { loguniform = [1e-3, 10.0] }
    momentum = { one_minus_loguniform = [1e-2, 1.0] }

How each method spends the budget ``B`` (``E = train.epochs``, ``n = B // E`` configurations):

- ``random``, ``quasirandom``: ``[sweep.random]`` / ``[sweep.quasirandom]`` with ``n`` trials;
- ``tpe``, ``gp``, ``cmaes``: ``[sweep.adaptive]``, ``rounds`` rounds of ``n // rounds`` trials;
- ``pbt``: ``[sweep.pbt]``, a population of ``n`` for the ``E`` epochs, exploiting every ``interval``
  epochs (the worst ``quantile`` replaced at each step);
- ``halving``: ``[sweep.halving] brackets = 1`` (synchronous successive halving from ``min_epochs``,
  factor ``eta``), ``hyperband``: every bracket those rungs allow; each over as many random
  configurations as fit ``B`` *counting the epochs their stages retrain* (`halving_cost`).

Every trial trains with seed 0 (a PBT member ``i`` with seed ``i``), so the spread between search
seeds is the spread of the searches themselves. The score of a search is the lowest validation
loss any of its runs reached (``best_val_loss``, diverged runs excluded); its best-so-far curve
follows its runs in the order they were proposed (cumulative epochs run). PBT's curve has a point
per exploit step (the best validation loss the members had at that step: an upper bound of the best
so far) and one at the end; halving and Hyperband have a point per stage (`halving_curve`).
`run_comparison` returns a `ComparisonResult`; `write_comparison` writes the folder:
``runs.csv`` (one row per search: ``method``, ``seed`` = the search seed, ``best_val_loss``,
``epochs_computed``, ``configs``, ``seconds``, ``proposal_seconds``), ``curves.csv`` (method,
search seed, step, epochs spent, best validation loss so far), ``summary.json`` (a
``compare_search`` entry: per method the mean and 95% interval over search seeds and the costs),
``config.json`` and the sweep report, whose comparison section (`report.compare_search_section`)
draws the curves (mean and 95% band) and the table. docs/guide.md, "Comparing search methods".
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab.config import ConfigError, closest
from jaxopt_lab.sweep import config_sweep, pbt, records, search, search_curves
from jaxopt_lab.sweep import report as report_mod
from jaxopt_lab.sweep import space as space_mod
from jaxopt_lab.sweep.adaptive import Halving
from jaxopt_lab.sweep.stats import mean_interval

#: Methods a comparison can run (module docstring).
METHODS = ("random", "quasirandom", "tpe", "gp", "cmaes", "halving", "hyperband", "pbt")
#: Methods compared when ``methods`` is not given: every one but CMA-ES (it needs the ``cmaes`` package).
DEFAULT_METHODS = ("random", "quasirandom", "tpe", "gp", "halving", "hyperband", "pbt")
#: Methods run through `search.run_config_search` (an Optuna sampler each).
ADAPTIVE_METHODS = ("tpe", "gp", "cmaes")
#: Keys of ``[sweep.compare_search]`` besides its distribution sections.
COMPARE_KEYS = ("methods", "search_seeds", "budget_epochs", "rounds", "interval", "quantile", "min_epochs", "eta")
#: Configurations a search gets when ``budget_epochs`` is not given (``budget_epochs = 32 x train.epochs``).
DEFAULT_CONFIGS = 32
#: Where a comparison's options live in a config (error messages name keys under it).
ROOT = "sweep.compare_search"


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """The options of a comparison, checked (module docstring; ``epochs`` is ``train.epochs``)."""

    epochs: int
    methods: tuple[str, ...] = DEFAULT_METHODS
    search_seeds: tuple[int, ...] = tuple(range(10))
    budget_epochs: int | None = None
    rounds: int = 4
    interval: int | None = None
    quantile: float = 0.25
    min_epochs: int | None = None
    eta: float = 3.0

    def __post_init__(self):
        m = self.methods
        if not isinstance(m, (list, tuple)) or not m or not all(isinstance(x, str) for x in m):
            raise ValueError(f"{ROOT}.methods = {m!r} must be a non-empty list of methods; valid choices: "
                             f"{', '.join(METHODS)}")
        for x in m:
            if x not in METHODS:
                raise ValueError(f"{ROOT}.methods: {x!r} is not a valid choice{closest(x, METHODS)}; valid "
                                 f"choices: {', '.join(METHODS)}")
        if len(set(m)) != len(m):
            raise ValueError(f"{ROOT}.methods lists {next(x for x in m if m.count(x) > 1)!r} twice")
        s = self.search_seeds
        if not s or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in s):
            raise ValueError(f"{ROOT}.search_seeds = {list(s)!r} must be a count >= 1 or a list of seeds >= 0")
        if len(set(s)) != len(s):
            raise ValueError(f"{ROOT}.search_seeds lists {next(x for x in s if s.count(x) > 1)!r} twice")
        for name, low in (("rounds", 1), ("interval", 1), ("min_epochs", 1)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"{ROOT}.{name} = {v!r} is out of range: valid range is [{low}, inf)")
        q = self.quantile
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q <= 0.5:
            raise ValueError(f"{ROOT}.quantile = {q!r} is out of range: valid range is (0, 0.5]")
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) or not self.eta > 1:
            raise ValueError(f"{ROOT}.eta = {self.eta!r} is out of range: valid range is (1, inf)")
        b = self.budget_epochs
        if b is not None and (isinstance(b, bool) or not isinstance(b, int)):
            raise ValueError(f"{ROOT}.budget_epochs = {b!r} must be a whole number of epochs")
        if self.budget < 2 * self.epochs:
            raise ValueError(f"{ROOT}.budget_epochs = {self.budget} is too small: a search needs at least two "
                             f"full runs, 2 x train.epochs = {2 * self.epochs} epochs")
        if any(x in ADAPTIVE_METHODS for x in m) and self.rounds > self.configs:
            raise ValueError(f"{ROOT}.rounds = {self.rounds} is out of range: {ROOT}.budget_epochs = {self.budget} "
                             f"pays for {self.configs} runs of {self.epochs} epochs, at least one per round")

    @property
    def budget(self) -> int:
        """Epochs every search may spend."""
        return self.budget_epochs if self.budget_epochs is not None else DEFAULT_CONFIGS * self.epochs

    @property
    def configs(self) -> int:
        """Full-length runs the budget pays for: random and quasi-random trials, PBT's population."""
        return self.budget // self.epochs

    @property
    def batch(self) -> int:
        """Trials per round of an adaptive search."""
        return self.configs // self.rounds

    @property
    def pbt_interval(self) -> int:
        return self.interval if self.interval is not None else max(1, self.epochs // 9)

    @property
    def first_rung(self) -> int:
        return self.min_epochs if self.min_epochs is not None else max(1, self.epochs // 9)


def options(cfg: Any) -> tuple[CompareOptions, dict[str, Any], dict[str, space_mod.Distribution]]:
    """The checked options of `cfg`'s ``[sweep.compare_search]``, its distribution sections as written
    (copied into each method's table) and the distributions they describe (`ConfigError` names the key)."""

    table = cfg.sweep.get("compare_search")
    others = [k for k in cfg.sweep if k != "compare_search"]
    if others:
        raise ConfigError(f"sweep.{others[0]} cannot go with {ROOT}: the comparison builds each method's [sweep] "
                          f"itself (distributions go under [{ROOT}.SECTION])")
    try:
        space_mod.check_method_table(table, ROOT, COMPARE_KEYS)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    kw = {k: table[k] for k in COMPARE_KEYS if k in table}
    if "methods" in kw and isinstance(kw["methods"], list):
        kw["methods"] = tuple(kw["methods"])
    seeds = kw.get("search_seeds")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"{ROOT}.search_seeds = {seeds!r} is out of range: valid range is [1, inf)")
        kw["search_seeds"] = tuple(range(seeds))
    elif isinstance(seeds, list):
        kw["search_seeds"] = tuple(seeds)
    elif seeds is not None:
        raise ConfigError(f"{ROOT}.search_seeds = {seeds!r} must be a count >= 1 or a list of seeds >= 0")
    try:
        opts = CompareOptions(epochs=cfg.train.epochs, **kw)
        dists = space_mod.search_distributions(table, ROOT, COMPARE_KEYS)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for key in dists:
        if not config_sweep._is_traceable(key):
            raise ConfigError(f"{ROOT}.{key}: the methods compared propose traced numeric hyperparameters only "
                              "(this key changes the compiled program)")
    if cfg.data.val_fraction <= 0:
        raise ConfigError(f"{ROOT} compares the best validation loss: data.val_fraction = {cfg.data.val_fraction!r} "
                          "leaves no validation split (set it above 0)")
    sections = {k: v for k, v in table.items() if k not in COMPARE_KEYS}
    return opts, sections, dists


# ----------------------------------------------------------------------------- budgets


def halving_cost(n: int, opts: CompareOptions, brackets: int) -> int:
    """Epochs `adaptive.run_hyperband` computes for `n` configurations when no run stops early: each
    stage retrains its runs from the start."""

    h = Halving(min_epochs=opts.first_rung, eta=opts.eta, brackets=brackets)
    total = 0
    for rungs, size in zip(h.bracket_rungs(opts.epochs), h.bracket_sizes(n, opts.epochs), strict=True):
        alive = size
        for r in rungs:
            total += alive * r
            alive = math.ceil(alive / opts.eta)
        total += alive * opts.epochs
    return total


def halving_brackets(opts: CompareOptions, method: str) -> int:
    """1 for ``halving``; for ``hyperband`` every bracket the rungs below ``train.epochs`` allow."""

    rungs = Halving(min_epochs=opts.first_rung, eta=opts.eta).rungs(opts.epochs)
    if not rungs:
        raise ValueError(f"{ROOT}.min_epochs = {opts.first_rung} leaves no halving rung below train.epochs = "
                         f"{opts.epochs}: choose a smaller min_epochs (or leave out {method})")
    return 1 if method == "halving" else len(rungs) + 1


def halving_configs(opts: CompareOptions, method: str) -> int:
    """The most configurations `method` (halving or hyperband) can search within the budget."""
    brackets = halving_brackets(opts, method)
    if halving_cost(brackets, opts, brackets) > opts.budget:
        raise ValueError(f"{ROOT}.budget_epochs = {opts.budget} is too small for {method}: one configuration per "
                         f"bracket costs {halving_cost(brackets, opts, brackets)} epochs")
    n = brackets
    while halving_cost(n + 1, opts, brackets) <= opts.budget:
        n += 1
    return n


def method_table(opts: CompareOptions, sections: Mapping[str, Any], method: str, seed: int) -> dict[str, Any]:
    """The ``[sweep]`` table that runs one search of `method` with search seed `seed`."""
    sections = {k: dict(v) for k, v in sections.items()}
    if method in ("random", "quasirandom"):
        return {"seeds": [0], method: {"trials": opts.configs, "seed": seed, **sections}}
    if method in ADAPTIVE_METHODS:
        return {"seeds": [0], "adaptive": {"sampler": method, "rounds": opts.rounds, "batch": opts.batch,
                                           "seed": seed, **sections}}
    if method == "pbt":
        return {"pbt": {"population": opts.configs, "interval": opts.pbt_interval, "quantile": opts.quantile,
                        "seed": seed, **sections}}
    return {"seeds": [0], "random": {"trials": halving_configs(opts, method), "seed": seed, **sections},
            "halving": {"min_epochs": opts.first_rung, "eta": opts.eta,
                        "brackets": halving_brackets(opts, method)}}


def check_config(cfg: Any) -> tuple[CompareOptions, dict[str, Any], dict[str, space_mod.Distribution]]:
    """Everything a comparison needs, checked before anything trains: the options, and each method's own
    checks on the table it will run (`ConfigError` names the key; `search.MissingOptuna` the extra)."""

    opts, sections, dists = options(cfg)
    for method in opts.methods:
        try:
            mcfg = cfg.replace(sweep=method_table(opts, sections, method, opts.search_seeds[0]))
            if method in ADAPTIVE_METHODS:
                search.check_config(mcfg)
            elif method == "pbt":
                pbt.check_config(mcfg)
            else:
                config_sweep.plan(mcfg)
        except (ConfigError, ValueError) as e:
            raise ConfigError(_as_compare_error(str(e), method)) from None
    return opts, sections, dists


def _as_compare_error(msg: str, method: str) -> str:
    """A method's own error, naming the comparison's key (its table is built from `[sweep.compare_search]`)."""
    for part in ("adaptive", "pbt", "random", "quasirandom", "halving"):
        msg = msg.replace(f"sweep.{part}.", f"{ROOT}.")
    return msg if msg.startswith(ROOT) else f"{ROOT} (method {method}): {msg}"


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass
class SearchRecord:
    """One search: its method and seed, best validation loss (None: every run diverged), the epochs it
    computed, its configurations and diverged runs, its best-so-far curve ``[(epochs spent, best)]``,
    wall seconds (of which ``proposal_seconds`` in the sampler), and programs compiled."""

    method: str
    seed: int
    best: float | None
    epochs_computed: int
    configs: int
    diverged: int
    curve: list[tuple[int, float | None]]
    seconds: float
    proposal_seconds: float
    proposals: int
    compilations: int


def _best(rows: Sequence[Mapping[str, Any]]) -> float | None:
    ok = [float(r["best_val_loss"]) for r in rows
          if not r.get("diverged") and r.get("best_val_loss") is not None and math.isfinite(float(r["best_val_loss"]))]
    return min(ok) if ok else None


def sequential_curve(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, float | None]]:
    """Best validation loss so far after each run, in proposal order, against the epochs run so far."""
    spent, best, curve = 0, None, []
    for r in rows:
        spent += int(r["epochs_run"])
        b = _best([r])
        if b is not None and (best is None or b < best):
            best = b
        curve.append((spent, best))
    return curve


def pbt_curve(res: Any, population: int, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, float | None]]:
    """PBT's points: at each exploit step the population's best monitored (validation) loss so far against
    ``population x epoch``; at the end, the best validation loss of any member against the epochs run."""
    curve, best = [], None
    for epoch, scores in zip(res.epochs, np.asarray(res.record["score"]), strict=True):
        finite = scores[np.isfinite(scores)]
        if finite.size and (best is None or float(finite.min()) < best):
            best = float(finite.min())
        curve.append((population * int(epoch), best))
    end = _best(rows)
    if end is not None and (best is None or end < best):
        best = end
    curve.append((sum(int(r["epochs_run"]) for r in rows), best))
    return curve


def halving_curve(rows: Sequence[Mapping[str, Any]], val_loss: np.ndarray, opts: CompareOptions,
                  method: str) -> list[tuple[int, float | None]]:
    """Halving's or Hyperband's points, one per stage in the order `adaptive.run_hyperband` trains them
    (bracket by bracket, most aggressive first; rung by rung, then the survivors to the end): the epochs
    computed so far (each stage retrains its runs from the start) and the best validation loss its runs
    reached so far, read from their histories (a stage's run is the prefix of its later ones: retraining
    is deterministic). Diverged runs are left out, as from the search's score."""

    h = Halving(min_epochs=opts.first_rung, eta=opts.eta, brackets=halving_brackets(opts, method))
    curve: list[tuple[int, float | None]] = []
    spent, best = 0, None
    for rungs in h.bracket_rungs(opts.epochs):
        members = [i for i, r in enumerate(rows) if int(r["bracket"]) == len(rungs)]
        for k, until in enumerate([*rungs, opts.epochs]):
            alive = [i for i in members if int(rows[i]["rungs_passed"]) >= k]  # the runs stage k trained
            if not alive:
                break
            for i in alive:
                reached = min(until, int(rows[i]["epochs_run"]))
                spent += reached
                seen = np.asarray(val_loss[i, :reached], float)
                seen = seen[np.isfinite(seen)]
                if not rows[i]["diverged"] and seen.size and (best is None or float(seen.min()) < best):
                    best = float(seen.min())
            curve.append((spent, best))
    return curve


def run_search(cfg: Any, opts: CompareOptions, sections: Mapping[str, Any], method: str, seed: int) -> SearchRecord:
    """One search of `method` with search seed `seed` on `cfg`'s problem."""

    mcfg = cfg.replace(sweep=method_table(opts, sections, method, seed))
    t0 = time.perf_counter()
    proposal_seconds, proposals, curve = 0.0, 0, None
    if method in ADAPTIVE_METHODS:
        result, s = search.run_config_search(mcfg, progress=False)
        proposal_seconds, proposals = s.ask_seconds, s.proposals
    elif method == "pbt":
        result, res = pbt.run_config_pbt(mcfg)
        curve = pbt_curve(res, opts.configs, result.rows)
    else:
        result = config_sweep.run_sweep(mcfg, progress=False)
    seconds = time.perf_counter() - t0
    rows = result.rows
    computed = sum(int(r.get("epochs_computed", r["epochs_run"])) for r in rows)
    best = _best(rows)
    if curve is None and method in ("halving", "hyperband"):
        curve = halving_curve(rows, np.asarray(result.histories["val_loss"]), opts, method)
    elif curve is None:
        curve = sequential_curve(rows)
    return SearchRecord(method=method, seed=seed, best=best, epochs_computed=computed, configs=len(rows),
                        diverged=sum(bool(r["diverged"]) for r in rows), curve=curve, seconds=seconds,
                        proposal_seconds=proposal_seconds, proposals=proposals,
                        compilations=result.stats.compilations)


@dataclasses.dataclass
class ComparisonResult:
    """What `run_comparison` returns: the config, its options and one `SearchRecord` per method x seed."""

    config: Any
    options: CompareOptions
    records: list[SearchRecord]
    wall_seconds: float

    def rows(self) -> list[dict[str, Any]]:
        """runs.csv's rows: one per search."""
        return [{"run": i, "method": r.method, "seed": r.seed, "best_val_loss": r.best, "diverged": r.best is None,
                 "epochs_computed": r.epochs_computed, "configs": r.configs, "diverged_runs": r.diverged,
                 "seconds": r.seconds, "proposal_seconds": r.proposal_seconds, "proposals": r.proposals,
                 "compilations": r.compilations} for i, r in enumerate(self.records)]

    def method_summary(self) -> dict[str, dict[str, Any]]:
        """Per method: mean and 95% interval (Student t) of the best validation loss over search seeds, and
        its costs (means over seeds)."""

        out = {}
        for m in self.options.methods:
            recs = [r for r in self.records if r.method == m]
            mean, low, high = mean_interval([r.best for r in recs if r.best is not None])
            proposals = sum(r.proposals for r in recs)
            out[m] = {"best_val_loss_mean": mean, "ci95_low": low, "ci95_high": high,
                      "searches": len(recs), "failed_searches": sum(r.best is None for r in recs),
                      "per_seed": [r.best for r in recs],
                      "configs": float(np.mean([r.configs for r in recs])),
                      "epochs_computed_mean": float(np.mean([r.epochs_computed for r in recs])),
                      "diverged_runs_mean": float(np.mean([r.diverged for r in recs])),
                      "seconds_mean": float(np.mean([r.seconds for r in recs])),
                      "proposal_seconds_mean": float(np.mean([r.proposal_seconds for r in recs])),
                      "seconds_per_proposal": (sum(r.proposal_seconds for r in recs) / proposals
                                               if proposals else None)}
        return out

    def summary(self) -> dict[str, Any]:
        """summary.json: the usual keys a sweep report reads, and the ``compare_search`` entry."""

        o = self.options
        return {
            "runs": len(self.records), "swept_keys": ["method"], "wall_seconds": self.wall_seconds,
            "diverged": sum(r.best is None for r in self.records),
            "compilations": sum(r.compilations for r in self.records),
            "config": config_sweep.to_dict(self.config),
            "compare_search": {
                "methods": list(o.methods), "search_seeds": list(o.search_seeds), "budget_epochs": o.budget,
                "epochs": o.epochs, "configs": o.configs, "rounds": o.rounds, "batch": o.batch,
                "pbt_interval": o.pbt_interval, "quantile": o.quantile, "min_epochs": o.first_rung, "eta": o.eta,
                "objective": "best_val_loss", "by_method": self.method_summary(),
            },
        }


def run_comparison(cfg: Any, *, progress: bool = False) -> ComparisonResult:
    """Run `cfg`'s ``[sweep.compare_search]``: every method once per search seed (seeds outer, so a
    stopped comparison has every method at the same number of seeds). `progress`: a line per search on
    stderr."""
    opts, sections, _ = check_config(cfg)
    records = []
    t0 = time.perf_counter()
    for seed in opts.search_seeds:
        for method in opts.methods:
            rec = run_search(cfg, opts, sections, method, seed)
            records.append(rec)
            if progress:
                best = "-" if rec.best is None else f"{rec.best:.4g}"
                print(f"compare_search: {method} seed {seed}: best val loss {best}, {rec.epochs_computed} epochs, "
                      f"{rec.seconds:.1f}s", file=sys.stderr, flush=True)
    order = {m: i for i, m in enumerate(opts.methods)}
    records.sort(key=lambda r: (order[r.method], opts.search_seeds.index(r.seed)))
    return ComparisonResult(config=cfg, options=opts, records=records, wall_seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- the folder

#: The columns of ``curves.csv``.
def write_comparison(out: str | os.PathLike, result: ComparisonResult, *, report: bool = True) -> Path:
    """runs.csv, curves.csv, summary.json, config.json (and the report), published together into `out`
    (`records.staged_folder`: all or nothing)."""

    out = Path(out)
    with records.staged_folder(out) as tmp:
        records.write_runs_csv(tmp / "runs.csv", result.rows(), ["method"])
        search_curves.write_curves_csv(tmp / "curves.csv", result.records)
        records.write_summary_json(tmp / "summary.json", result.summary())
        records.write_summary_json(tmp / "config.json", config_sweep.to_dict(result.config))
        if report:
            report_mod.sweep_report(tmp)
    return out
