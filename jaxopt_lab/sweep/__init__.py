"""Sweeps: search spaces, the vectorized runner, and results tables.

    from jaxopt_lab import sweep
    space = sweep.grid({"lr": [1e-3, 1e-2, 1e-1]}) * sweep.seeds(8)
    result = sweep.run(train_fn, space)          # train_fn(key, hparams) -> pytree
    rows = result.table()

Search methods: `grid`, `random` and `quasirandom` spaces (run with `run`), and `optimize`,
which proposes each round's trials from the results of the earlier ones (`jaxopt_lab.sweep.search`).
"""

from jaxopt_lab._cache import clear_all as clear_caches
from jaxopt_lab.sweep.runner import SweepResult, run, use_cpu_cores
from jaxopt_lab.sweep.search import optimize
from jaxopt_lab.sweep.space import (
    Space,
    choice,
    concat,
    from_config,
    grid,
    int_loguniform,
    loguniform,
    one_minus_loguniform,
    product,
    quasirandom,
    randint,
    random,
    seeds,
    single,
    uniform,
)

__all__ = [
    "Space",
    "SweepResult",
    "choice",
    "clear_caches",
    "concat",
    "from_config",
    "grid",
    "int_loguniform",
    "loguniform",
    "one_minus_loguniform",
    "optimize",
    "product",
    "quasirandom",
    "randint",
    "random",
    "run",
    "seeds",
    "single",
    "uniform",
    "use_cpu_cores",
]
