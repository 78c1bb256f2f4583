"""Experiment 5 (the gradients-and-activations lecture): learning-rate schedules compared over seeds.

    python experiments/05_schedules.py [--out DIR] [--size tiny|demo|full]
"""

from jaxopt_lab.experiments.script import main

if __name__ == "__main__":
    main("schedules", "Learning-rate schedules")
