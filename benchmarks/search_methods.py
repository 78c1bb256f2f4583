"""Search methods at equal compute: random, quasi-random, TPE, successive halving and Hyperband.

    python benchmarks/search_methods.py [--seeds 10] [--batch-size 32] [--out results.json] [--figure PATH]

Problem: moons (400 rows, noise 0.3, validation 0.3), MLP 2-16-2, SGD on mini-batches of 32 for 27 epochs,
searching the learning rate (log-uniform 1e-3..10) and the momentum (1 - momentum log-uniform
1e-2..1). Budget per search: 32 x 27 = 864 epochs. Each method runs once per search seed
(the seed of its space or sampler; training seed 0):

* ``random``: `[sweep.random]`, 32 trials;
* ``quasirandom``: `[sweep.quasirandom]`, 32 trials (scrambled Halton);
* ``tpe``, ``cmaes``: `[sweep.adaptive]`, TPE or CMA-ES, 4 rounds of 8 trials;
* ``pbt``: `[sweep.pbt]`, a population of 32 for the 27 epochs (the same 864), exploiting every 3
  epochs (quantile 0.25, perturb 0.8/1.2, resample probability 0.25);
* ``halving``: `[sweep.halving] brackets = 1` (synchronous successive halving, min_epochs 3,
  eta 3) over as many random configurations as fit the budget *counting the epochs its stages
  recompute*;
* ``hyperband``: `brackets = 3` (all of Hyperband's brackets at these rungs), sized the same way.

Score of a search: the lowest validation loss any of its runs reached (`best_val_loss`, diverged
runs excluded). Reported per method: the mean and a 95% confidence interval (t) over search seeds,
the epochs actually computed, and for the non-halving methods the best-so-far curve against
epochs spent (mean and the band). Everything runs in this process; programs are compiled once
per method and reused across seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EPOCHS, TRIALS = 27, 32
BUDGET = EPOCHS * TRIALS
BASE = {
    "data": {"dataset": "moons", "n_samples": 400, "noise": 0.3, "random_state": 0, "val_fraction": 0.3},
    "model": {"hidden": [16]},
    "train": {"loss": "cross_entropy", "epochs": EPOCHS, "batch_size": 32},
    "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5},
}
SPACE = {"learning_rate": {"loguniform": [1e-3, 10.0]}, "momentum": {"one_minus_loguniform": [1e-2, 1.0]}}
METHODS = ("random", "quasirandom", "tpe", "cmaes", "halving", "hyperband", "pbt")


def halving_cost(n: int, brackets: int, min_epochs: int = 3, eta: float = 3.0) -> int:
    """Epochs `run_hyperband` computes for `n` configurations when no run stops early: each stage
    retrains its runs from the start (`adaptive.run_hyperband`)."""
    from jaxopt_lab.sweep.adaptive import Halving

    h = Halving(min_epochs=min_epochs, eta=eta, brackets=brackets)
    total = 0
    for rungs, size in zip(h.bracket_rungs(EPOCHS), h.bracket_sizes(n, EPOCHS), strict=True):
        alive = size
        for r in rungs:
            total += alive * r
            alive = math.ceil(alive / eta)
        total += alive * EPOCHS
    return total


def configs_within_budget(brackets: int) -> int:
    n = brackets
    while halving_cost(n + 1, brackets) <= BUDGET:
        n += 1
    return n


def sweep_table(method: str, seed: int) -> dict:
    space = {"optimizer": SPACE}
    if method in ("random", "quasirandom"):
        return {"seeds": [0], method: {"trials": TRIALS, "seed": seed, **space}}
    if method in ("tpe", "cmaes"):
        return {"seeds": [0], "adaptive": {"sampler": method, "rounds": 4, "batch": 8, "seed": seed, **space}}
    if method == "pbt":
        return {"pbt": {"population": TRIALS, "interval": 3, "quantile": 0.25, "seed": seed, **space}}
    brackets = 1 if method == "halving" else 3
    return {"seeds": [0], "random": {"trials": configs_within_budget(brackets), "seed": seed, **space},
            "halving": {"min_epochs": 3, "eta": 3, "brackets": brackets}}


def run_method(method: str, seed: int) -> dict:
    from jaxopt_lab.config import from_dict
    from jaxopt_lab.sweep import config_sweep, search

    cfg = from_dict({**BASE, "sweep": sweep_table(method, seed)})
    if method in ("tpe", "cmaes"):
        result, _ = search.run_config_search(cfg, progress=False)
    elif method == "pbt":
        from jaxopt_lab.sweep import pbt

        result, _ = pbt.run_config_pbt(cfg)
    else:
        result = config_sweep.run_sweep(cfg, progress=False)
    rows = result.rows
    ok = [r for r in rows if not r["diverged"] and r["best_val_loss"] is not None]
    best = min(r["best_val_loss"] for r in ok) if ok else math.inf
    computed = sum(int(r.get("epochs_computed", r["epochs_run"])) for r in rows)
    curve = None
    if method in ("random", "quasirandom", "tpe", "cmaes"):  # best so far, run by run (trial order)
        spent, so_far, curve = 0, math.inf, []
        for r in rows:
            spent += int(r["epochs_run"])
            if not r["diverged"] and r["best_val_loss"] is not None:
                so_far = min(so_far, r["best_val_loss"])
            curve.append((spent, so_far))
    return {"best": best, "epochs_computed": computed, "configs": len(rows), "curve": curve,
            "diverged": sum(bool(r["diverged"]) for r in rows), "compilations": result.stats.compilations}


def ci95(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    v = np.asarray(values, np.float64)
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return float(v.mean()), float(half)


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    grid = np.arange(EPOCHS, BUDGET + 1, EPOCHS)
    for method, runs in results.items():
        if runs[0]["curve"] is not None:
            ys = []
            for r in runs:
                spent = np.asarray([c[0] for c in r["curve"]])
                best = np.asarray([c[1] for c in r["curve"]])
                ys.append([best[spent <= g].min() if (spent <= g).any() else np.nan for g in grid])
            ys = np.asarray(ys)
            mean = np.nanmean(ys, axis=0)
            half = 1.96 * np.nanstd(ys, axis=0, ddof=1) / math.sqrt(len(runs))
            ax.plot(grid, mean, label=method)
            ax.fill_between(grid, mean - half, mean + half, alpha=0.2)
        else:
            m, h = ci95([r["best"] for r in runs])
            x = np.mean([r["epochs_computed"] for r in runs])
            ax.errorbar([x], [m], yerr=[h], fmt="o", capsize=4, label=f"{method} (end of search)")
    ax.set_xlabel("epochs computed")
    ax.set_ylabel("best validation loss so far")
    ax.set_title(f"Search methods at equal compute, moons ({len(next(iter(results.values())))} search seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--out", default="search_methods.json")
    p.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "search_methods_moons.png"))
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (0: full batch, one step per epoch)")
    args = p.parse_args()
    BASE["train"]["batch_size"] = args.batch_size
    methods = args.methods.split(",")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for m in methods:
            results[m].append(run_method(m, seed))
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    summary = {}
    for m, runs in results.items():
        mean, half = ci95([r["best"] for r in runs])
        summary[m] = {"best_val_loss_mean": mean, "ci95_half_width": half,
                      "epochs_computed_mean": float(np.mean([r["epochs_computed"] for r in runs])),
                      "configs": runs[0]["configs"], "diverged_mean": float(np.mean([r["diverged"] for r in runs])),
                      "per_seed": [r["best"] for r in runs]}
        print(f"{m:12s} best val loss {mean:.4f} ± {half:.4f}  epochs {summary[m]['epochs_computed_mean']:.0f}  "
              f"configs {runs[0]['configs']}")
    Path(args.out).write_text(json.dumps({"budget_epochs": BUDGET, "seeds": args.seeds,
                                          "batch_size": args.batch_size, "summary": summary,
                                          "runs": results}, indent=1, default=float))
    figure(results, Path(args.figure))
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
