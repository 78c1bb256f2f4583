"""Experiment 10 (the data-splits lecture): a single validation split vs k-fold vs leave-one-out accuracy estimates.

    python experiments/10_splits.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.split_comparison.SIZES` and takes minutes.
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("splits", "Data splits")
