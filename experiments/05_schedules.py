"""Experiment 5 (lecture seed 003): learning-rate schedules compared over seeds.

    python experiments/05_schedules.py [--out DIR] [--size tiny|demo|full]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaxopt_lab.experiments import schedules
from jaxopt_lab.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiment-output/schedules"))
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = schedules.run(args.out, size=args.size)
    index = write_report(args.out, "Learning-rate schedules", [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
