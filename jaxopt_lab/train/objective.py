"""The training objective of a config: its loss, its accuracy and the model's output width."""

from __future__ import annotations

from collections.abc import Callable

import jax

from jaxopt_lab import losses
from jaxopt_lab.config import ConfigError


def make_objective(loss_name: str, num_classes: int | None) -> tuple[Callable, Callable | None, int]:
    """(loss(outputs, y, where), accuracy(outputs, y, where) or None, output width)."""
    loss = losses.get_loss(loss_name)
    if loss_name == "binary_cross_entropy":
        if num_classes not in (2, None):
            raise ConfigError(
                f"train.loss = 'binary_cross_entropy' needs 2 classes, the data has {num_classes}; "
                "use 'cross_entropy'"
            )
        return (
            lambda out, y, where: loss(out[:, 0], y, where=where),
            lambda out, y, where: losses.accuracy(out[:, 0], y, where=where),
            1,
        )
    if loss_name == "cross_entropy":
        if num_classes is None:
            raise ConfigError("train.loss = 'cross_entropy' needs a classification data set; use 'mse'")
        return (
            lambda out, y, where: loss(out, y, where=where),
            lambda out, y, where: losses.accuracy(out, y, where=where),
            num_classes,
        )
    # Regression losses: on class labels they fit one-hot targets.
    if num_classes is None:
        return (lambda out, y, where: loss(out[:, 0], y, where=where), None, 1)
    return (
        lambda out, y, where: loss(out, jax.nn.one_hot(y, num_classes, dtype=out.dtype), where=where),
        lambda out, y, where: losses.accuracy(out, y, where=where),
        num_classes,
    )
