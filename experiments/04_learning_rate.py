"""Experiment 4 (lecture seeds 000, 002): learning-rate regimes and the learning-rate x momentum heatmap.

    python experiments/04_learning_rate.py [--out DIR] [--size tiny|demo|full]
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("learning_rate", "The learning rate")
