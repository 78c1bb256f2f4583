"""Adaptive sweeps: lanes that refill against plain vmap, and successive halving against random search.

    python benchmarks/adaptive.py [--size tiny|small|full] [--out results.json] [--reps N]
                                  [--parts refill,halving] [--halving-problems moons,digits]

1. **Refill** (`--parts refill`): a random search where many runs stop early or diverge:
   SGD learning rates log-uniform over 1e-5..10 on the moons MLP 2-20-2 (validation 0.2,
   early stopping with patience), full batch and mini-batches of 32. Contenders, each
   timed on the same runs, compiled once beforehand, alternated per round:

   * ``vmap``: the runner's batched execution (every run of a device's shard in one
     `vmap`; a stopped run's lane idles until the shard's slowest run ends);
   * ``refill``: the same batch of lanes, reset with the next run as soon as theirs stops
     (`execution="refill"`, the runner's default lane count);
   * ``map``: the runner's CPU default, runs one after another inside each device's shard
     (never idle, never batched).

   Reported: runs/s (compile excluded), refill/vmap and refill/map ratios per round, the
   epochs actually needed (sum of `epochs_run`) against `runs x epochs`. Checked: every
   run's epochs, divergence flag and final losses agree between the three (float32
   rounding differs between batch widths; the check allows that, and says how much).

2. **Halving** (`--parts halving`): ASHA-style successive halving (`[sweep.halving]`,
   eta 3) against random search at equal compute, over several search seeds, on the problems
   of `--halving-problems` (`HALVING_PROBLEMS`): moons (1,000 rows, noise 0.35, validation
   0.3), MLP 2-32-32-2, SGD with learning rate log-uniform 1e-4..3 and momentum uniform
   0..0.99; digits, MLP 64-64-10, Adam with learning rate log-uniform 1e-5..1 and 1 - b1
   log-uniform 1e-2..1, a third of the epochs. For each seed, a random search of
   `random_trials` full runs gives the best-of-first-k curve (best validation accuracy
   of the first k configurations, compute k x epochs); halving over N configurations of
   the same distribution (several N) gives one point each (compute = its epochs spent,
   best = best final validation accuracy among the runs it trained to the full budget).
   The table compares, at halving's compute, the random search's best-of-k with the
   same compute (mean ± std over seeds).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SETTINGS = {
    "tiny": {"refill_runs": 16, "refill_epochs": 12, "patience": 2, "batch_sizes": [0],
             "halving_seeds": 2, "random_trials": 9, "halving_configs": [9], "halving_epochs": 9,
             "min_epochs": 1},
    "small": {"refill_runs": 256, "refill_epochs": 100, "patience": 5, "batch_sizes": [0, 32],
              "halving_seeds": 3, "random_trials": 64, "halving_configs": [27, 81], "halving_epochs": 81,
              "min_epochs": 3},
    "full": {"refill_runs": 1024, "refill_epochs": 200, "patience": 10, "batch_sizes": [0, 32],
             "halving_seeds": 5, "random_trials": 128, "halving_configs": [27, 81, 243], "halving_epochs": 81,
             "min_epochs": 3},
}
PARTS = ("refill", "halving")


def refill_config(s: dict[str, Any], batch_size: int) -> dict[str, Any]:
    return {
        "data": {"dataset": "moons", "n_samples": 500, "noise": 0.25, "random_state": 7, "val_fraction": 0.2},
        "model": {"hidden": [20], "activation": "relu", "init": "he_normal"},
        "train": {"epochs": s["refill_epochs"], "batch_size": batch_size, "early_stopping_patience": s["patience"]},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "sweep": {"random": {"trials": s["refill_runs"], "seed": 0,
                             "optimizer": {"learning_rate": {"loguniform": [1e-5, 10.0]}}}},
    }


def part_refill(s: dict[str, Any], reps: int, checks: common.Checks) -> list[dict[str, Any]]:
    from jaxopt_lab import config as config_mod
    from jaxopt_lab.sweep import config_sweep

    out = []
    for bs in s["batch_sizes"]:
        cfg = config_mod.from_dict(refill_config(s, bs))
        plan = config_sweep.plan(cfg)
        modes = ("vmap", "refill", "map")

        def sweep(mode, cfg=cfg, plan=plan):
            return config_sweep.run_sweep(cfg, execution=mode, progress=False, sweep_plan=plan)

        first = {m: sweep(m) for m in modes}  # compile every program before timing
        results: dict[str, Any] = {}

        def contender(mode):
            def call():
                res = sweep(mode)
                return {"__timing__": {"seconds": res.stats.wall_seconds - res.stats.compile_seconds}, "res": res}
            return call

        samples = common.alternate({m: contender(m) for m in modes}, reps,
                                   work={m: s["refill_runs"] for m in modes},
                                   on_result=lambda n, r, res, smp, keep=results: keep.__setitem__(n, res["res"]))
        rows_by = {m: results[m].rows for m in modes}
        n = len(rows_by["vmap"])
        epochs_needed = sum(r["epochs_run"] for r in rows_by["vmap"])
        stopped = sum(r["epochs_run"] < s["refill_epochs"] for r in rows_by["vmap"])
        diverged = sum(bool(r["diverged"]) for r in rows_by["vmap"])
        label = "full batch" if bs == 0 else f"mini-batch {bs}"
        print(f"\n## Refill — {label}: {n} runs, {s['refill_epochs']} epochs, {stopped} stopped early "
              f"({diverged} diverged); epochs needed {epochs_needed} of {n * s['refill_epochs']} "
              f"({epochs_needed / (n * s['refill_epochs']):.0%}); lanes {results['refill'].stats.lanes}")
        table = []
        for m in modes:
            table.append({
                "execution": m, "runs/s": common.rate_spread(samples[m]).fmt(3),
                "refill / this": common.ratio_spread(samples["refill"], samples[m]).fmt(3) if m != "refill" else "1",
                "compile s": f"{first[m].stats.compile_seconds:.1f}",
            })
        print(common.table(table))
        # Agreement: the same runs stop at the same epochs with the same losses.
        same_epochs = {m: sum(a["epochs_run"] == b["epochs_run"] and a["diverged"] == b["diverged"]
                              for a, b in zip(rows_by["vmap"], rows_by[m], strict=True)) for m in modes}
        diffs = {}
        for m in ("refill", "map"):
            d = []
            for a, b in zip(rows_by["vmap"], rows_by[m], strict=True):
                if a["epochs_run"] == b["epochs_run"] and not a["diverged"] and a["final_val_loss"] is not None:
                    d.append(abs(a["final_val_loss"] - b["final_val_loss"]) / max(1e-6, abs(a["final_val_loss"])))
            diffs[m] = max(d) if d else 0.0
        checks.add(f"refill {label}: same epochs and divergence as vmap", same_epochs["refill"] >= 0.98 * n,
                   f"{same_epochs['refill']}/{n} runs identical in epochs_run/diverged")
        checks.add(f"refill {label}: final val loss equals vmap's", diffs["refill"] < 1e-3,
                   f"max rel diff {diffs['refill']:.2e} over runs with equal epochs")
        checks.add(f"map {label}: same epochs and divergence as vmap", same_epochs["map"] >= 0.98 * n,
                   f"{same_epochs['map']}/{n}; max rel diff of final val loss {diffs['map']:.2e}")
        out.append({
            "batch_size": bs, "runs": n, "epochs": s["refill_epochs"], "stopped_early": stopped,
            "diverged": diverged, "epochs_needed": epochs_needed, "lanes": results["refill"].stats.lanes,
            "runs_per_second": {m: common.rate_spread(samples[m]).as_dict() for m in modes},
            "refill_over": {m: common.ratio_spread(samples["refill"], samples[m]).as_dict() for m in modes
                            if m != "refill"},
            "compile_seconds": {m: first[m].stats.compile_seconds for m in modes},
            "same_epochs": same_epochs, "max_rel_diff_final_val_loss": diffs,
        })
    return out


def halving_config(s: dict[str, Any], problem: str, trials: int, seed: int, halving: bool) -> dict[str, Any]:
    """The search of `problem` (see `HALVING_PROBLEMS`), with `[sweep.halving]` when `halving`."""
    epochs, min_epochs = halving_epochs(s, problem)
    if problem == "moons":
        dists = {"learning_rate": {"loguniform": [1e-4, 3.0]}, "momentum": {"uniform": [0.0, 0.99]}}
        base = {
            "data": {"dataset": "moons", "n_samples": 1000, "noise": 0.35, "random_state": 3, "val_fraction": 0.3},
            "model": {"hidden": [32, 32], "activation": "relu", "init": "he_normal"},
            "train": {"epochs": epochs, "batch_size": 0},
            "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5},
        }
    else:
        dists = {"learning_rate": {"loguniform": [1e-5, 1.0]}, "b1": {"one_minus_loguniform": [1e-2, 1.0]}}
        base = {
            "data": {"dataset": "digits", "val_fraction": 0.3, "random_state": 3, "standardize": True},
            "model": {"hidden": [64], "activation": "relu", "init": "he_normal"},
            "train": {"epochs": epochs, "batch_size": 128},
            "optimizer": {"name": "adam", "learning_rate": 0.001},
        }
    sweep: dict[str, Any] = {"random": {"trials": trials, "seed": seed, "optimizer": dists}}
    if halving:
        sweep["halving"] = {"min_epochs": min_epochs, "eta": 3}
    return {**base, "sweep": sweep}


#: Problems of the halving comparison: what each searches.
HALVING_PROBLEMS = {
    "moons": "moons (1,000 rows, noise 0.35, validation 0.3), MLP 2-32-32-2, full batch, SGD: learning rate "
             "log-uniform 1e-4..3, momentum uniform 0..0.99",
    "digits": "digits (validation 0.3, standardized), MLP 64-64-10, batches of 128, Adam: learning rate "
              "log-uniform 1e-5..1, 1 - b1 log-uniform 1e-2..1",
}


def halving_epochs(s: dict[str, Any], problem: str) -> tuple[int, int]:
    """(epochs of a full run, first rung) of `problem` at this size: digits runs a third as long."""
    if problem == "moons":
        return s["halving_epochs"], s["min_epochs"]
    return max(3, s["halving_epochs"] // 3), max(1, s["min_epochs"] // 3)


def _best_acc(rows) -> float:
    vals = [r["final_val_accuracy"] for r in rows if not r["diverged"] and r["final_val_accuracy"] is not None]
    return max(vals) if vals else float("nan")


def part_halving(s: dict[str, Any], problem: str, checks: common.Checks) -> dict[str, Any]:
    import numpy as np

    from jaxopt_lab import config as config_mod
    from jaxopt_lab.sweep import config_sweep

    E, first_rung = halving_epochs(s, problem)
    per_seed = []
    for seed in range(s["halving_seeds"]):
        # Random search: the first k configurations of one random stream, k = 1..trials.
        rs = config_sweep.run_sweep(config_mod.from_dict(halving_config(s, problem, s["random_trials"], seed, False)),
                                    progress=False)
        accs = [r["final_val_accuracy"] if not r["diverged"] and r["final_val_accuracy"] is not None else -1.0
                for r in rs.rows]
        best_of_k = np.maximum.accumulate(accs)
        points = []
        for n_cfg in s["halving_configs"]:
            # Halving draws its configurations from a different stream of the same distribution.
            res = config_sweep.run_sweep(
                config_mod.from_dict(halving_config(s, problem, n_cfg, 1000 + seed, True)), progress=False)
            spent = sum(r["epochs_run"] for r in res.rows)
            finalists = [r for r in res.rows if r["epochs_run"] == E]
            k_equal = spent / E
            k_int = max(1, min(len(best_of_k), int(math.floor(k_equal))))
            points.append({
                "configs": n_cfg, "epochs_spent": spent, "equal_random_trials": k_equal,
                "finalists": len(finalists), "halving_best": _best_acc(finalists),
                "halving_best_any": _best_acc(res.rows),
                "random_best_equal_compute": float(best_of_k[k_int - 1]),
                "random_trials_available": len(best_of_k),
            })
        per_seed.append({"seed": seed, "random_best_of_k": best_of_k.tolist(), "halving": points})

    print(f"\n## Successive halving (eta 3, rungs from {first_rung} epochs) vs random search at equal compute: "
          f"{problem}")
    print(f"{HALVING_PROBLEMS[problem]}; {E} epochs per full run; {s['halving_seeds']} search seeds; "
          "best final validation accuracy (halving: among runs trained to the full budget)")
    rows = []
    summary = []
    for j, n_cfg in enumerate(s["halving_configs"]):
        h = [p["halving"][j] for p in per_seed]
        spent = statistics.mean(x["epochs_spent"] for x in h)
        hb = [x["halving_best"] for x in h]
        rb = [x["random_best_equal_compute"] for x in h]
        capped = any(x["equal_random_trials"] > x["random_trials_available"] for x in h)
        wins = sum(a > b for a, b in zip(hb, rb, strict=True))
        ties = sum(a == b for a, b in zip(hb, rb, strict=True))

        def ms(v):
            return f"{statistics.mean(v):.4f} ± {statistics.pstdev(v):.4f}"

        rows.append({
            "halving configs": n_cfg, "epochs spent (mean)": f"{spent:.0f}",
            "= full runs": f"{spent / E:.1f}" + (" (capped)" if capped else ""),
            "halving best val acc": ms(hb), "random search best val acc": ms(rb),
            "halving wins/ties/losses": f"{wins}/{ties}/{len(hb) - wins - ties}",
        })
        summary.append({"configs": n_cfg, "epochs_spent_mean": spent, "halving_best": hb, "random_best": rb,
                        "wins": wins, "ties": ties})
    print(common.table(rows))
    for p in per_seed:
        for x in p["halving"]:
            checks.add(f"halving {problem} seed {p['seed']} N={x['configs']}: spends less than N full runs",
                       x["epochs_spent"] < x["configs"] * E, f"{x['epochs_spent']} < {x['configs'] * E}")
    return {"per_seed": per_seed, "summary": summary}


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of: " + ", ".join(PARTS))
    p.add_argument("--halving-problems", default=None,
                   help="comma-separated subset of: " + ", ".join(HALVING_PROBLEMS) + " (default: moons; "
                   "both at --size full)")
    args = p.parse_args(argv)
    default_problems = "moons,digits" if args.size == "full" else "moons"
    problems = [x.strip() for x in (args.halving_problems or default_problems).split(",") if x.strip()]
    for problem in problems:
        if problem not in HALVING_PROBLEMS:
            p.error(f"--halving-problems: {problem!r} is not a valid choice; valid choices: "
                    + ", ".join(HALVING_PROBLEMS))
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    for part in parts:
        if part not in PARTS:
            p.error(f"--parts: {part!r} is not a valid choice; valid choices: {', '.join(PARTS)}")
    import jax

    jax.config.update("jax_num_cpu_devices", common.cpu_count())
    s = SETTINGS[args.size]
    reps = args.reps or common.default_reps(args.size)
    info = common.machine_info()
    command = " ".join(["python", "benchmarks/adaptive.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"# adaptive sweeps — --size {args.size}, {len(jax.devices())} host device(s), reps {reps}")
    print("machine:", common.format_machine(info))
    print("command:", command)
    checks = common.Checks()
    payload: dict[str, Any] = {"benchmark": "adaptive", "size": args.size, "reps": reps, "machine": info,
                               "command": command, "parts": parts}
    if "refill" in parts:
        payload["refill"] = part_refill(s, reps, checks)
    if "halving" in parts:
        payload["halving"] = {}
        for problem in problems:
            payload["halving"][problem] = h = part_halving(s, problem, checks)
            if args.out:
                h["figure"] = str(halving_figure(h, s, problem, args.out))
                print(f"figure: {h['figure']}")
    return common.finish(checks, payload, args.out)


def halving_figure(h: dict[str, Any], s: dict[str, Any], problem: str, out: str):
    """Best validation accuracy vs epochs spent: random search's best-of-k (mean ± std over seeds)
    and each halving budget (mean ± std of both axes), saved beside the JSON file."""
    import numpy as np

    from jaxopt_lab import plots

    E, _ = halving_epochs(s, problem)
    curves = np.array([p["random_best_of_k"] for p in h["per_seed"]])
    k = np.arange(1, curves.shape[1] + 1)
    fig, ax = plots.new_figure(figsize=(6.5, 4))
    mean, std = curves.mean(axis=0), curves.std(axis=0)
    ax.plot(k * E, mean, color="C0", label="random search (best of first k runs)")
    ax.fill_between(k * E, mean - std, mean + std, color="C0", alpha=0.2)
    for j, n_cfg in enumerate(s["halving_configs"]):
        pts = [p["halving"][j] for p in h["per_seed"]]
        xs = np.array([x["epochs_spent"] for x in pts])
        ys = np.array([x["halving_best"] for x in pts])
        ax.errorbar(xs.mean(), ys.mean(), xerr=xs.std(), yerr=ys.std(), fmt="o", color=f"C{j + 1}",
                    capsize=3, label=f"successive halving, {n_cfg} configurations")
    # The first few random runs are often bad: zoom on where the comparison is made.
    lows = [mean[min(2, len(mean) - 1):].min()] + [min(x["halving_best"] for x in p["halving"]) for p in h["per_seed"]]
    ax.set_ylim(max(0.0, min(lows) - 0.02), min(1.0, max(mean.max(), max(
        x["halving_best"] for p in h["per_seed"] for x in p["halving"])) + 0.01))
    ax.set_xscale("log")
    ax.set_xlabel("compute: epochs trained, all runs together")
    ax.set_ylabel("best final validation accuracy")
    ax.set_title(f"{problem}: halving (eta 3) vs random search, {len(h['per_seed'])} search seeds")
    ax.legend(fontsize=8)
    return plots.save(fig, os.path.splitext(out)[0] + f"_halving_{problem}.png")


if __name__ == "__main__":
    sys.exit(main())
