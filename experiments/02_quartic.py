"""Experiment 2 (lecture seed 004): GD, momentum, Nesterov, decay and gradient-based control on a quartic.

    python experiments/02_quartic.py [--out DIR] [--size tiny|demo|full]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # the lecture's printed values are reproduced in float64

from jaxopt_lab.experiments import quartic  # noqa: E402
from jaxopt_lab.report import write_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiment-output/quartic"))
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = quartic.run(args.out, size=args.size)
    index = write_report(args.out, "The quartic: gradient descent and its variants", [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
