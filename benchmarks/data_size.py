"""Compile time, program size and memory of a mini-batch sweep as the data grows.

The engine passes the data to compiled programs as an argument (`Trainer.data_arrays`),
so compile time and program size should not depend on the number of rows, and memory
should be one copy of the data plus the runs' own state. Each data size runs in its own
child process (a fresh compile cache and an honest peak resident set):

    python benchmarks/data_size.py --rows 1000,60000 --features 784 --runs 64

For each size it prints the compile seconds of the sweep's program (lowering + XLA),
the program's size and its largest constant (elements), and the peak resident set of
the process. The fixed overhead (Python, JAX, XLA's compiler and runtime) is what the
smallest size's peak holds beyond 2 x (its data + its runs' parameters and optimizer
states); the largest size's peak is checked against 2 x (data + states) + that overhead.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path


def _vmhwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(rows: int, features: int, runs: int, hidden: int, batch: int) -> dict:
    import jax
    import numpy as np

    from jaxopt_lab import sweep
    from jaxopt_lab.config import Config, DataConfig, OptimizerConfig, TrainConfig
    from jaxopt_lab.sweep import runner
    from jaxopt_lab.train import make_train

    jax.numpy.zeros(1).block_until_ready()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    y = rng.integers(0, 10, rows).astype(np.int32)
    cfg = Config(
        data=DataConfig(val_fraction=0.1, test_fraction=0.0, standardize=False),
        model=__import__("jaxopt_lab.config", fromlist=["ModelConfig"]).ModelConfig(hidden=(hidden,)),
        train=TrainConfig(epochs=1, batch_size=batch),
        optimizer=OptimizerConfig("adam", {"learning_rate": 1e-3}),
    )
    trainer = make_train(cfg, data=(x, y))
    del x
    space = sweep.grid({"optimizer.learning_rate": list(np.geomspace(1e-4, 1e-2, runs // 4))}) * sweep.seeds(4)
    t0 = time.perf_counter()
    result = sweep.run(trainer, space, execution="auto", chunk_size=runs, progress=False)
    total = time.perf_counter() - t0
    # The program the runner compiled, lowered again for its text: the largest constant in it.
    keys = ["optimizer.learning_rate"]
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()), ("runs",))
    prog = runner._program(lambda s, h, d: trainer(jax.random.PRNGKey(s), h, d).metrics, keys, mesh, "map", 32,
                           with_data=True)
    args = (np.zeros(runs, np.int32), {k: np.zeros(runs, np.float32) for k in keys}, trainer.data_arrays)
    t1 = time.perf_counter()
    lowered = prog.lower(*args)
    text = lowered.as_text()
    runner.compile_lowered(lowered)
    compile_s = time.perf_counter() - t1
    shapes = re.findall(r"constant dense<[^>]*> : tensor<((?:\d+x)*)", text)
    largest = max((int(np_prod(s)) for s in shapes), default=0)
    data_bytes = sum(a.nbytes for a in jax.tree.leaves(trainer.data_arrays))
    p0 = trainer.init_state(jax.random.PRNGKey(0), {})
    state_bytes = runs * sum(a.nbytes for a in jax.tree.leaves((p0.params, p0.opt_state)))
    return {
        "rows": rows, "features": features, "runs": runs, "compile_s": compile_s, "sweep_s": total,
        "program_chars": len(text), "largest_constant": largest, "peak_bytes": _vmhwm(),
        "data_bytes": data_bytes, "state_bytes": state_bytes, "compilations": result.stats.compilations,
    }


def np_prod(shape: str) -> int:
    out = 1
    for d in shape.split("x"):
        if d:
            out *= int(d)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="1000,60000")
    ap.add_argument("--features", type=int, default=784)
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--batch", type=int, default=6000, help="rows per update (at most the smallest train split)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--size", default=None, help="'tiny' for the smoke test")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.size == "tiny":
        args.rows, args.features, args.runs, args.batch = "200,800", 16, 8, 50
    if args.child is not None:
        print(json.dumps(child(args.child, args.features, args.runs, args.hidden, args.batch)))
        return 0
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        batch = min(args.batch, int(rows * 0.9))
        cmd = [sys.executable, __file__, "--child", str(rows), "--features", str(args.features), "--runs",
               str(args.runs), "--hidden", str(args.hidden), "--batch", str(batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 1 << 20
    overhead = results[0]["peak_bytes"] - 2 * (results[0]["data_bytes"] + results[0]["state_bytes"])
    print(f"{'rows':>7} {'compile s':>9} {'sweep s':>8} {'program chars':>13} {'largest const':>13} "
          f"{'peak MiB':>9} {'estimate MiB':>12} {'data MiB':>8} {'state MiB':>9}")
    for r in results:
        r["estimate_bytes"] = 2 * (r["data_bytes"] + r["state_bytes"]) + overhead
        print(f"{r['rows']:>7} {r['compile_s']:>9.2f} {r['sweep_s']:>8.2f} {r['program_chars']:>13} "
              f"{r['largest_constant']:>13} {r['peak_bytes'] / mib:>9.0f} {r['estimate_bytes'] / mib:>12.0f} "
              f"{r['data_bytes'] / mib:>8.1f} {r['state_bytes'] / mib:>9.1f}")
    a, b = results[0], results[-1]
    ratio = b["compile_s"] / a["compile_s"]
    print(f"fixed overhead: {overhead / mib:.0f} MiB (peak at {a['rows']} rows beyond 2 x (data + states))")
    print(f"compile time ratio {b['rows']} / {a['rows']} rows: {ratio:.2f} (target <= 1.3)")
    print(f"program text {a['program_chars']} vs {b['program_chars']} characters")
    print(f"peak within 2 x (data + states) + overhead at {b['rows']} rows: {b['peak_bytes'] <= b['estimate_bytes']}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "data_size.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
