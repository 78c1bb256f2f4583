"""Experiment 1 (the moons lecture): SGD vs Adam on moons, reproduced exactly in float64, then over inits.

    python experiments/01_moons_sgd_vs_adam.py [--out DIR] [--size tiny|demo|full]
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("moons_sgd_vs_adam", "SGD vs Adam on moons", x64=True)
