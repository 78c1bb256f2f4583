"""Experiment 7 (lecture seeds 003, 004): initializers x activations on a deep MLP, symmetry, clipping.

    python experiments/07_initialization.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.initialization.SIZES` and takes minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaxopt_lab.experiments import initialization
from jaxopt_lab.report import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiment-output/initialization"))
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = initialization.run(args.out, size=args.size)
    index = write_report(args.out, "Initialization and activations", [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
