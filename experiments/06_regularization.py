"""Experiment 6 (the lectures listed in docs/lectures.md): regularizers against overfitting, and L2 with Adam vs AdamW.

    python experiments/06_regularization.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.regularization_comparison.SIZES` and takes minutes.
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("regularization", "Regularization and overfitting")
