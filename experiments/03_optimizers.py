"""Experiment 3 (lecture seeds 004, 002): GD, SGD, the adaptive optimizers, AdaBound and Lookahead compared.

    python experiments/03_optimizers.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.optimizers.SIZES` and takes minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaxopt_lab.experiments import optimizers
from jaxopt_lab.report import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiment-output/optimizers"))
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = optimizers.run(args.out, size=args.size)
    index = write_report(args.out, "Optimizers compared", [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
