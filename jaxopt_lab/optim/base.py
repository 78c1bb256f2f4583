"""The protocol every optimizer here speaks, and the checks on hyperparameters.

The `GradientTransformation` protocol, `chain` and `apply_updates` are optax's
own: reusing them is what makes every transform in this package composable with
optax's in both directions (docs/optimizers.md, "Guarantees"). The optimizer *math* is written in
this package; only the plumbing is shared. The checks on hyperparameters, `check_range` and
`concrete_value`, live in `jaxopt_lab._checks` (below the optimizers) and are re-exported here.
"""

from typing import Any

import optax

from jaxopt_lab._checks import check_range, concrete_value

GradientTransformation = optax.GradientTransformation
GradientTransformationExtraArgs = optax.GradientTransformationExtraArgs
EmptyState = optax.EmptyState
Params = Any
Updates = Any
ScalarOrSchedule = optax.ScalarOrSchedule

chain = optax.chain
apply_updates = optax.apply_updates
identity = optax.identity

__all__ = [
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "EmptyState",
    "ScalarOrSchedule",
    "chain",
    "apply_updates",
    "identity",
    "concrete_value",
    "check_range",
]
