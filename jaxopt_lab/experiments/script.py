"""The command line shared by the scripts in the repository's `experiments/` folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaxopt_lab.experiments import experiment_module
from jaxopt_lab.report_page import write_report


def main(name: str, title: str, *, x64: bool = False, argv: list[str] | None = None) -> Path:
    """Run experiment `name` (`--out DIR`, `--size tiny|demo|full`) and write its one-section report.

    `x64` turns on 64-bit JAX before the experiment is imported (the lecture reproductions
    compare float64 numbers).
    """
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--out", type=Path, default=Path("experiment-output") / name, help="output folder")
    parser.add_argument("--size", choices=("tiny", "demo", "full"), default="demo",
                        help="tiny: seconds; demo: what `jaxopt-lab demo` runs; full: the lecture's sizes")
    args = parser.parse_args(argv)
    if x64:
        import jax  # 64-bit mode must be on before the experiment module builds any array

        jax.config.update("jax_enable_x64", True)
    module = experiment_module(name)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    section = module.run(args.out, size=args.size)
    index = write_report(args.out, title, [section])
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")
    return index
