"""Scaling of the project's sweep engine: runs per sweep, devices, compilation reuse.

    python benchmarks/scaling.py [--size tiny|small|full] [--out results.json] [--reps N]

The problem is the moons example config, `examples/moons_sweep.toml` (moons MLP 2-20-2 ReLU,
SGD with momentum, full batch, validation split 0.2) with the number of epochs of `--size`, run with
`jaxopt_lab.sweep.config_sweep.run_sweep` (what `jaxopt-lab sweep` runs) on every core as a
host device. Four measurements:

1. **Runs per sweep** from 1 to 8,192 (`full`): wall time of the first sweep of each size
   (compile included), compile time, run time and runs/s of a second, already compiled
   sweep (for the largest sizes, the first sweep's wall time minus its compile time),
   chunks, and the peak resident memory each sweep added. A second series with a
   fixed `chunk_size` shows the working set staying flat while the sweep grows (only the
   returned results, a few KiB per run, grow with the number of runs).
2. **Devices 1, 2, 4**: the same sweep in child processes with
   `XLA_FLAGS=--xla_force_host_platform_device_count=N`, alternated (1 2 4 1 2 4 ...), with
   each child's compile time, runs/s and peak RSS; the results must be the same for every
   device count (docs/design.md, "Promises the sweep keeps").
3. **No recompilation**: a second sweep of the same structure with new hyperparameter values
   compiles nothing (`ExecutionStats.compilations == 0`), runs faster, and returns
   different results (the new values were used).
4. **Compile time per group**: a sweep over two activations (two groups, two programs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SETTINGS = {
    # runs: runs per sweep; fixed: (chunk_size, runs) of the fixed-chunk series; device_runs: the
    # sweep of the device children; recompile_runs: 4 learning rates x seeds, a run count the
    # series reuse; activations: the groups of part 4 (relu's program may exist already).
    "tiny": {
        "runs": [1, 2, 4],
        "fixed": (2, [4, 8]),
        "epochs": 10,
        "device_runs": 4,
        "devices": [1, 2],
        "recompile_runs": 4,
        "second_max_runs": 8192,
        "activations": ["relu", "tanh"],
    },
    "small": {
        "runs": [1, 4, 16, 64, 256, 1024],
        "fixed": (64, [256, 1024]),
        "epochs": 100,
        "device_runs": 256,
        "devices": [1, 2, 4],
        "recompile_runs": 256,
        "second_max_runs": 1024,
        "activations": ["tanh", "elu"],
    },
    "full": {
        "runs": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
        "fixed": (256, [1024, 4096, 8192]),
        "epochs": 100,
        "device_runs": 1024,
        "devices": [1, 2, 4],
        "recompile_runs": 1024,
        "second_max_runs": 2048,
        "activations": ["tanh", "elu"],
    },
}
PARTS = ("recompile", "runs", "devices", "groups")


def base_config(epochs: int, sweep: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {"dataset": "moons", "n_samples": 500, "noise": 0.25, "random_state": 7, "val_fraction": 0.2},
        "model": {"hidden": [20], "activation": "relu", "init": "he_normal"},
        "train": {"loss": "cross_entropy", "epochs": epochs, "batch_size": 0},
        "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        "sweep": sweep,
    }


def lr_grid(n_runs: int, offset: float = 0.0) -> dict[str, Any]:
    """`n_runs` runs: 4 learning rates (shifted by `offset` on a log scale) x n_runs/4 seeds."""
    import numpy as np

    lrs = [float(f"{x:.4g}") for x in np.geomspace(0.01, 0.3, 4) * 10**offset]
    return {"seeds": max(1, n_runs // 4), "grid": {"optimizer": {"learning_rate": lrs}}}


def sweep_once(raw: dict[str, Any], chunk_size: int | None = None) -> tuple[Any, common.Sample]:
    from jaxopt_lab import config as config_mod
    from jaxopt_lab.sweep import config_sweep

    cfg = config_mod.from_dict(raw)
    config_mod.validate(cfg)
    sample, res = common.timed(lambda: config_sweep.run_sweep(cfg, progress=False, chunk_size=chunk_size))
    return res, sample


def output_bytes(res: Any) -> int:
    return sum(v.nbytes for v in res.histories.values()) + 8 * 8 * len(res.rows)


# ----------------------------------------------------------------------------- child: one device count


def worker(size: str) -> int:
    """Child process: one sweep on however many host devices XLA_FLAGS made; JSON on stdout."""
    common.report_peak_at_exit()
    import jax

    s = SETTINGS[size]
    raw = base_config(s["epochs"], lr_grid(s["device_runs"]))
    res1, first = sweep_once(raw)
    res2, second = sweep_once(raw)
    out = {
        "devices": len(jax.devices()),
        "compile_seconds": res1.stats.compile_seconds,
        "first_wall_seconds": first.seconds,
        "wall_seconds": second.seconds,
        "runs": len(res2.rows),
        "runs_per_second": len(res2.rows) / second.seconds,
        "engine_runs_per_second": res2.stats.runs_per_second,
        "compilations_second_sweep": res2.stats.compilations,
        "final_val_loss": [r["final_val_loss"] for r in res2.rows],
        "final_train_loss": [r["final_train_loss"] for r in res2.rows],
    }
    print("RESULT " + json.dumps(out))
    return 0


# ----------------------------------------------------------------------------- parent


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of: " + ", ".join(PARTS))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.size)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    for part in parts:
        if part not in PARTS:
            p.error(f"--parts: {part!r} is not a valid choice; valid choices: {', '.join(PARTS)}")

    import jax

    jax.config.update("jax_num_cpu_devices", common.cpu_count())

    s = SETTINGS[args.size]
    reps = args.reps or common.default_reps(args.size)
    info = common.machine_info()
    command = " ".join(["python", "benchmarks/scaling.py", *(argv if argv is not None else sys.argv[1:])])
    print(
        f"# scaling — --size {args.size}: moons MLP 2-20-2, {s['epochs']} epochs, validation 0.2, "
        f"{len(jax.devices())} host device(s)"
    )
    print("machine:", common.format_machine(info))
    print("command:", command)
    checks = common.Checks()
    payload: dict[str, Any] = {
        "benchmark": "scaling",
        "size": args.size,
        "reps": reps,
        "machine": info,
        "command": command,
        "epochs": s["epochs"],
        "parts": parts,
    }
    # Part 3 runs first, while nothing is compiled, so its first sweep must compile.
    if "recompile" in parts:
        payload["recompile"] = part_recompile(s, checks)
    if "runs" in parts:
        payload["runs_per_sweep"] = part_runs(s, checks)
    if "devices" in parts:
        payload["devices"] = part_devices(s, args.size, reps, checks)
    if "groups" in parts:
        payload["groups"] = part_groups(s, checks)
    return common.finish(checks, payload, args.out)


def part_recompile(s: dict[str, Any], checks: common.Checks) -> list[dict[str, Any]]:
    import numpy as np

    print("\n## 3. a second sweep with new values (run first: nothing is compiled yet)")
    n = s["recompile_runs"]
    res_a, a = sweep_once(base_config(s["epochs"], lr_grid(n, 0.0)))
    res_b, b = sweep_once(base_config(s["epochs"], lr_grid(n, 0.5)))
    rec = [
        {
            "sweep": "first (learning rates 0.01–0.3)",
            "runs": len(res_a.rows),
            "wall s": f"{a.seconds:.2f}",
            "compile s": f"{res_a.stats.compile_seconds:.2f}",
            "compilations": res_a.stats.compilations,
        },
        {
            "sweep": "second (learning rates x3.16)",
            "runs": len(res_b.rows),
            "wall s": f"{b.seconds:.2f}",
            "compile s": f"{res_b.stats.compile_seconds:.2f}",
            "compilations": res_b.stats.compilations,
        },
    ]
    print(common.table(rec))
    la = np.asarray([r["final_train_loss"] for r in res_a.rows], np.float64)
    lb = np.asarray([r["final_train_loss"] for r in res_b.rows], np.float64)
    checks.add(
        "first sweep compiled once",
        res_a.stats.compilations == 1,
        f"compilations: {res_a.stats.compilations}",
    )
    checks.add(
        "second sweep with new values does not recompile",
        res_b.stats.compilations == 0,
        f"compilations: first {res_a.stats.compilations}, second {res_b.stats.compilations}",
    )
    checks.add(
        "second sweep is faster than the first",
        b.seconds < a.seconds,
        f"{a.seconds:.2f}s then {b.seconds:.2f}s",
    )
    checks.add(
        "second sweep used its new values",
        not np.allclose(la, lb, equal_nan=True),
        "final training losses differ between the two sweeps",
    )
    return rec


def _series(s: dict[str, Any], runs: list[int], chunk_size: int | None) -> list[dict[str, Any]]:
    """Each size: a first sweep (compiles where the shape is new) and, up to `second_max_runs`, a
    second, compiled one; beyond that the first sweep's run time (wall - compile) is the measure."""
    rows = []
    for n in runs:
        raw = base_config(s["epochs"], {"seeds": n})
        res1, first = sweep_once(raw, chunk_size)
        st1 = res1.stats
        if n <= s["second_max_runs"]:
            res2, second = sweep_once(raw, chunk_size)
            st2, run_s, recompiled = res2.stats, second.seconds, res2.stats.compilations
        else:
            res2, second, st2 = res1, None, st1
            run_s, recompiled = first.seconds - st1.compile_seconds, None
        deltas = [first.rss_delta] + ([second.rss_delta] if second else [])
        peak = max(first.peak_rss, second.peak_rss if second else 0)
        rows.append(
            {
                "runs": n,
                "chunk": "auto" if chunk_size is None else chunk_size,
                "chunks": st2.chunks,
                "first sweep s": f"{first.seconds:.2f}",
                "compile s": f"{st1.compile_seconds:.2f}",
                "run s": f"{run_s:.3f}" + ("" if second else " (1st)"),
                "runs/s": f"{n / run_s:.1f}",
                "recompiled (2nd)": "-" if recompiled is None else recompiled,
                "peak RSS MiB": common.mib(peak),
                "Δ RSS MiB": "/".join(common.mib(d) for d in deltas),
                "results MiB": f"{output_bytes(res2) / 2**20:.2f}",
                "_raw": {
                    "runs": n,
                    "chunk": chunk_size,
                    "chunks": st2.chunks,
                    "first_seconds": first.seconds,
                    "compile_seconds": st1.compile_seconds,
                    "compilations_first": st1.compilations,
                    "run_seconds": run_s,
                    "second_sweep": second is not None,
                    "rss_deltas": deltas,
                    "peak_rss": peak,
                    "output_bytes": output_bytes(res2),
                    "compilations_second": recompiled,
                },
            }
        )
        print(
            f"  {n} runs (chunk {rows[-1]['chunk']}): first {first.seconds:.2f}s "
            f"(compile {st1.compile_seconds:.2f}s), run {run_s:.3f}s",
            flush=True,
        )
    return rows


def part_runs(s: dict[str, Any], checks: common.Checks) -> list[dict[str, Any]]:
    print("\n## 1. runs per sweep (default chunking)")
    auto = _series(s, s["runs"], None)
    print(common.table([{k: v for k, v in r.items() if k != "_raw"} for r in auto]))
    chunk, fixed_runs = s["fixed"]
    print(f"\n## 1b. runs per sweep with a fixed chunk_size = {chunk}")
    fixed = _series(s, fixed_runs, chunk)
    print(common.table([{k: v for k, v in r.items() if k != "_raw"} for r in fixed]))
    checks.add(
        "every second sweep of the same size reused its program",
        all(r["recompiled (2nd)"] in (0, "-") for r in auto + fixed),
        "compilations == 0 on every second sweep",
    )
    working = [max(r["_raw"]["rss_deltas"]) for r in fixed]
    print(
        f"fixed chunk {chunk}: peak memory added per sweep {', '.join(common.mib(d) for d in working)} MiB "
        f"for {', '.join(str(n) for n in fixed_runs)} runs; results "
        f"{', '.join(r['results MiB'] for r in fixed)} MiB"
    )
    return [r["_raw"] for r in auto + fixed]


def part_devices(s: dict[str, Any], size: str, reps: int, checks: common.Checks) -> dict[str, Any]:
    import numpy as np

    print("\n## 2. host devices (child processes, XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    dev_samples: dict[int, list[dict[str, Any]]] = {n: [] for n in s["devices"]}
    script = os.path.abspath(__file__)
    for r in range(reps):
        order = s["devices"][r % len(s["devices"]) :] + s["devices"][: r % len(s["devices"])]
        for n in order:
            env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
            child = common.run_child([sys.executable, script, "--worker", "--size", size], env=env)
            line = [ln for ln in child.stdout.splitlines() if ln.startswith("RESULT ")]
            if child.returncode != 0 or not line:
                checks.add(f"devices={n}: child ran", False, child.stderr[-500:])
                continue
            res = json.loads(line[0][len("RESULT ") :])
            res["peak_rss"] = child.peak_rss
            res["process_seconds"] = child.seconds
            dev_samples[n].append(res)
            print(
                f"  round {r + 1}: {n} device(s): {res['runs_per_second']:.1f} runs/s, "
                f"compile {res['compile_seconds']:.1f}s",
                flush=True,
            )
    rows = []
    base = None
    for n, got in dev_samples.items():
        if not got:
            continue
        rate = common.spread(x["runs_per_second"] for x in got)
        base = base or rate.median
        rows.append(
            {
                "devices": n,
                "runs": got[0]["runs"],
                "runs/s": rate.fmt(3),
                "x 1 device": f"{rate.median / base:.2f}",
                "compile s": common.spread(x["compile_seconds"] for x in got).fmt(3),
                "first result s (process)": common.spread(x["process_seconds"] for x in got).fmt(3),
                "peak RSS MiB": common.mib(max(x["peak_rss"] for x in got)),
            }
        )
    print(common.table(rows))
    ref_n = s["devices"][0]
    if dev_samples.get(ref_n):
        ref = np.asarray(dev_samples[ref_n][0]["final_val_loss"], np.float64)
        for n, got in dev_samples.items():
            if n == ref_n or not got:
                continue
            other = np.asarray(got[0]["final_val_loss"], np.float64)
            diff = float(np.nanmax(np.abs(other - ref) / np.maximum(np.abs(ref), 1e-12)))
            checks.add(
                f"{n} devices give the results of {ref_n}",
                diff <= 1e-6,
                f"max relative difference of final_val_loss {diff:.1e}"
                + (" (bit-identical)" if diff == 0 else ""),
            )
    print("GPU: not measured (this task was not lent a device machine)")
    return {"samples": {str(n): got for n, got in dev_samples.items()}, "table": rows}


def part_groups(s: dict[str, Any], checks: common.Checks) -> list[dict[str, Any]]:
    from jaxopt_lab.sweep import runner

    print("\n## 4. compile time per group (one program per activation)")
    acts = s["activations"]
    before = len(runner._COMPILED)
    raw = base_config(s["epochs"], {"seeds": 2, "grid": {"model": {"activation": acts}}})
    res_g, g = sweep_once(raw)
    groups = len(res_g.plan.groups)
    new = len(runner._COMPILED) - before
    per = res_g.stats.compile_seconds / max(res_g.stats.compilations, 1)
    rows = [
        {
            "groups": groups,
            "activations": ", ".join(acts),
            "compilations": res_g.stats.compilations,
            "compile s (total)": f"{res_g.stats.compile_seconds:.2f}",
            "compile s per compiled group": f"{per:.2f}",
            "wall s": f"{g.seconds:.2f}",
        }
    ]
    print(common.table(rows))
    checks.add(
        "one compilation per group not compiled before",
        res_g.stats.compilations == new and new <= groups,
        f"{res_g.stats.compilations} compilations, {new} new programs, {groups} groups",
    )
    return rows


if __name__ == "__main__":
    sys.exit(main())
