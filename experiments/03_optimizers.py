"""Experiment 3 (optimizers lectures): GD, SGD, the adaptive optimizers, AdaBound and Lookahead compared.

From the initialization-and-quartic and optimizers-and-overfitting lectures (docs/lectures.md).

    python experiments/03_optimizers.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.optimizer_comparison.SIZES` and takes minutes.
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("optimizers", "Optimizers compared")
