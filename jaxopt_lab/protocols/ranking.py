"""How a protocol ranks runs and summarizes seeds: the metric to rank by, mean ± std over seeds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxopt_lab.config import ConfigError
from jaxopt_lab.protocols.options import METRICS, PREFIX

__all__ = ["resolve_metric", "stats"]


def resolve_metric(choice: str, rows: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """(`runs.csv` column, ``"max"``/``"min"``, note) of the metric to rank runs by.

    ``auto`` is the final validation accuracy for classification and the final validation
    loss otherwise (DeepOBS's choice); without a validation split, the training metric, with a
    note saying so.
    """
    def has(col: str) -> bool:
        return any(r.get(col) is not None for r in rows)

    note = ""
    if choice == "auto":
        split = "val" if has("final_val_loss") else "train"
        if split == "train":
            note = "no validation split (data.val_fraction = 0): runs are ranked by their training metric"
        choice = f"{split}_accuracy" if has(f"final_{split}_accuracy") else f"{split}_loss"
    column = f"final_{choice}"
    if not has(column):
        raise ConfigError(
            f"{PREFIX}.metric = {choice!r} is not measured by this config (no {column} in runs.csv); "
            f"valid choices: auto, {', '.join(m for m in METRICS if has('final_' + m))}"
        )
    return column, METRICS[choice], note


def stats(rows: Sequence[Mapping[str, Any]], column: str) -> dict[str, Any]:
    """Mean, std (ddof=1), n of a metric over non-diverged runs (diverged counted separately)."""
    vals = np.asarray([r[column] for r in rows if not r.get("diverged") and r.get(column) is not None], float)
    return {
        "mean": float(vals.mean()) if vals.size else math.nan,
        "std": float(vals.std(ddof=1)) if vals.size > 1 else math.nan,
        "n": int(vals.size),
        "n_diverged": sum(bool(r.get("diverged")) for r in rows),
    }
