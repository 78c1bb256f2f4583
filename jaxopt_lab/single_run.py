"""`jaxopt-lab train`: one run of a config, written to a folder.

The folder holds `metrics.json` (the final metrics, the names of docs/guide.md's runs.csv columns),
`history.csv` (one row per epoch), `model.ckpt` (the final parameters and
batch-norm statistics, in the safe checkpoint format) and `loss.png`. It is
written into a staging folder first and published complete, under the
output-folder contract of `jaxopt_lab._io` (a user's file of one of these names
is refused, never replaced; the user's other files stay).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jax
import numpy as np

from jaxopt_lab import _io, checkpoint, plots
from jaxopt_lab.config import Config
from jaxopt_lab.sweep.runner import compile_lowered
from jaxopt_lab.train import HISTORY_KEYS, Trainer, make_train

#: The entries `train_and_write` writes into its folder.
OUTPUT_NAMES = _io.TRAIN_OUTPUTS


def build(cfg: Config) -> Trainer:
    return make_train(cfg)


def _plain(v: Any) -> Any:
    v = np.asarray(v).item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def train_and_write(trainer: Trainer, out: str | os.PathLike, *, seed: int = 0) -> dict[str, Any]:
    """Train one run with `seed` and write its folder; returns the metrics row."""

    key = jax.random.PRNGKey(seed)
    run = compile_lowered(jax.jit(trainer).lower(key, None))
    result = jax.device_get(run(key, None))
    metrics = {k: _plain(v) for k, v in result.metrics.items()}
    metrics["diverged"] = bool(metrics["diverged"])
    row = {"run": 0, "seed": seed, **metrics}
    with _io.publish(out) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(row, indent=2) + "\n")
        epochs = int(metrics["epochs_run"])
        _io.write_csv(tmp / "history.csv", ["epoch", *HISTORY_KEYS],
                      ([e + 1, *(float(result.history[k][e]) for k in HISTORY_KEYS)] for e in range(epochs)), nan="")
        checkpoint.save(
            tmp / "model.ckpt",
            {"params": result.params, "model_state": result.model_state},
            {"seed": seed, "metrics": row},
        )

        plots.history_figure({"run": result.history}, tmp / "loss.png", epochs_run={"run": epochs})
    return row
