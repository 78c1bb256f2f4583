"""XLA compiler options for CPU programs, in one table, and the one place that compiles with them.

Options by how much run time a program has to amortize its compilation (CPU seconds measured
on this project's programs):

- "fast": no LLVM optimization passes and the classic elemental emitters instead of the newer
  fusion emitters: compiles about 4x faster (optimizer comparison: 8.9 s -> 2.3 s) but its
  matrix products are unvectorized loops, about 3x slower; right for models of a few thousand
  parameters (the lectures' experiments).
- "balanced": LLVM optimization level 2 (the default is higher) and the classic emitters:
  compiles 2-3x faster than the default and runs almost as fast (regularization experiment:
  10.6 s compile + 2.2 s run -> 3.8 s + 2.1 s; moons sweep of 128 runs on 2 busy cores: compile
  6.2-7.8 s -> 2.2-4.0 s, runs/s equal within noise). Every sweep program uses it.
- "default": XLA's own settings.

Results agree with the default's to float32 rounding. Other backends compile with their defaults.
"""

from __future__ import annotations

from typing import Any

import jax

COMPILER_OPTIONS: dict[str, dict[str, Any]] = {
    "fast": {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False},
    "balanced": {"xla_backend_optimization_level": 2, "xla_cpu_use_fusion_emitters": False},
    "default": {},
}


def compile_lowered(lowered: Any, mode: str = "balanced") -> Any:
    """Compile a lowered program with `COMPILER_OPTIONS[mode]` on CPU.

    A JAX/XLA version that does not know an option compiles with its defaults.
    """
    options = COMPILER_OPTIONS[mode]
    if options and jax.default_backend() == "cpu":
        try:
            return lowered.compile(compiler_options=options)
        except Exception:  # noqa: BLE001 - unknown options surface as generic XLA errors
            pass
    return lowered.compile()
