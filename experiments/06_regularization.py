"""Experiment 6 (lecture seeds 000-003): regularizers against overfitting, and L2 with Adam vs AdamW.

    python experiments/06_regularization.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.regularization.SIZES` and takes minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaxopt_lab.experiments import regularization
from jaxopt_lab.report import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiment-output/regularization"))
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = regularization.run(args.out, size=args.size)
    index = write_report(args.out, "Regularization and overfitting", [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
