"""Experiment 9 (lecture seed 001): grid vs random search at equal budgets, with the expected best of k.

    python experiments/09_search.py [--out DIR] [--size tiny|demo|full]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaxopt_lab.experiments import search
from jaxopt_lab.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiment-output/search"))
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = search.run(args.out, size=args.size)
    index = write_report(args.out, "Grid vs random search", [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
