"""Experiment 7 (lecture seeds 003, 004): initializers x activations on a deep MLP, symmetry, clipping.

    python experiments/07_initialization.py [--out DIR] [--size tiny|demo|full]

Runs in float32 (no 64-bit mode needed). `--size full` uses the larger sizes in
`jaxopt_lab.experiments.initialization.SIZES` and takes minutes.
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("initialization", "Initialization and activations")
