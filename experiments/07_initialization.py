"""Experiment 7 (initialization lectures): initializers x activations on a deep MLP, symmetry, clipping.

From the gradients-and-activations and initialization-and-quartic lectures (docs/lectures.md).

    python experiments/07_initialization.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.init_comparison.SIZES` and takes minutes.
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("initialization", "Initialization and activations")
