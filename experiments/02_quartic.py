"""Experiment 2 (the quartic lecture): GD, momentum, Nesterov, decay and gradient-based control on a quartic.

    python experiments/02_quartic.py [--out DIR] [--size tiny|demo|full]
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("quartic", "The quartic: gradient descent and its variants", x64=True)
