"""Experiment 8 (the hyperparameter lecture): no normalization vs batch norm vs layer norm, at small and large batches.

    python experiments/08_normalization.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.normalization_comparison.SIZES` and takes minutes.
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("normalization", "Normalization")
