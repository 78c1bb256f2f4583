"""The protocols' tables: CSV files of row dicts, and the text of their report cells.

`write_csv` is not `sweep.records.write_runs_csv`: a protocol's table has its own columns
(runs.csv has a fixed header: run, swept keys, seed, the result columns), a NaN there means "no
value" and is written as an empty cell (runs.csv writes ``nan`` so that it reads back), and its
text cells (hyperparameter lists, targets) need not read back as typed values. Both write
atomically through `jaxopt_lab._io`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxopt_lab import _io

__all__ = ["write_csv", "pm", "point_text"]


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """A protocol's table (`_io.write_dict_csv`): a NaN there means "no value" and is an empty cell."""
    return _io.write_dict_csv(path, rows, nan="")


def pm(s: Mapping[str, Any]) -> str:
    """``mean ± std`` for a table cell."""
    if not s or s.get("n", 0) == 0 or math.isnan(s["mean"]):
        return "-"
    if math.isnan(s["std"]):
        return f"{s['mean']:.4g}"
    return f"{s['mean']:.4g} ± {s['std']:.2g}"


def point_text(point: Mapping[str, Any] | None) -> str:
    """A configuration as ``key=value`` text, optimizer keywords without their ``optimizer.`` prefix."""
    if not point:
        return "-"
    return ", ".join(f"{k.split('.', 1)[1] if k.startswith('optimizer.') else k}={v:.3g}"
                     if isinstance(v, float) else f"{k}={v}" for k, v in point.items())
