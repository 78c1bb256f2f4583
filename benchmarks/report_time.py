"""How long a sweep's report takes to render, after the sweep (issue 20: a 1,024-run sweep's report in < 10 s).

    python benchmarks/report_time.py [CONFIG.toml] [--rounds 3] [--out DIR]

Runs the config's sweep once (default: examples/moons_sweep.toml, 1,024 runs), writes its results
without a report, then renders the report from the finished result `--rounds` times, printing the
wall-clock and CPU seconds of each round and the one-minute load average before and after. The first
round includes importing the report's libraries (matplotlib's figures, Optuna when installed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", default=str(Path(__file__).parent.parent / "examples" / "moons_sweep.toml"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", help="results folder (default: a temporary one, removed afterwards)")
    args = p.parse_args()

    from jaxopt_lab.config import load
    from jaxopt_lab.sweep import config_sweep

    result = config_sweep.run_sweep(load(args.config), progress=False)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="report-time-")) / "out"
    config_sweep.write_results(out, result, report=False)
    rounds = []
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        from jaxopt_lab.sweep import config_sweep, report  # first round: the import is part of the cost

        report.sweep_report(out, config_sweep.report_data(result))
        rounds.append({"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2)})
    print(json.dumps({"config": args.config, "runs": len(result.rows), "rounds": rounds,
                      "load_before": load_before, "load_after": os.getloadavg()[0]}, indent=1))
    if not args.out:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
