"""Experiment 9 (the hyperparameter lecture): grid vs random search at equal budgets, with the expected best of k.

    python experiments/09_search.py [--out DIR] [--size tiny|demo|full]
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("search", "Grid vs random search")
