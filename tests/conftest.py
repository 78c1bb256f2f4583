"""Test-wide settings.

float64 is enabled for the whole suite: the parity contracts (1e-9 relative over
100 steps) and the lectures' printed numbers are float64 statements. Code under
test passes explicit dtypes wherever float32 is the product default.
"""

import jax

jax.config.update("jax_enable_x64", True)
