"""Experiment 4 (learning-rate lectures): learning-rate regimes and the learning-rate x momentum heatmap.

From the moons and optimizers-and-overfitting lectures (docs/lectures.md).

    python experiments/04_learning_rate.py [--out DIR] [--size tiny|demo|full]
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("learning_rate", "The learning rate")
