"""The lectures' experiments, one module per topic.

Each module has `run(out: Path, size: str = "demo") -> jaxopt_lab.report.Section`:
it writes its PNG figures into `out` and returns a report section whose text
states the findings with the numbers it measured. `size="tiny"` runs in seconds
(tests), `size="demo"` is what `jaxopt-lab demo` runs. The scripts in the
repository's `experiments/` folder run each one on its own.
"""

#: Module names in report order.
EXPERIMENTS = (
    "moons_sgd_vs_adam",
    "quartic",
    "optimizers",
    "learning_rate",
    "schedules",
    "regularization",
    "initialization",
    "normalization",
    "search",
    "splits",
    "hypergradients",
)


def check_size(size: str, sizes: dict) -> None:
    """`ValueError` naming `size`, the valid choices and the closest one, unless `size` is in `sizes`."""
    if size not in sizes:
        from jaxopt_lab.config import closest

        valid = ", ".join(sizes)
        raise ValueError(f"size={size!r} is not a valid choice{closest(size, sizes)}; valid choices: {valid}")
