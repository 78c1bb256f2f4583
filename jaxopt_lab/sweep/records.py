"""The results table of a sweep: `runs.csv`, `summary.json`, aggregation and benchmark metrics.

A row is a dict for one run: ``run`` (its index), the swept keys
(``optimizer.learning_rate``, ...), ``seed``, the metrics of `RESULT_COLUMNS`
and any extra scalar metrics (``steps_to_target``, ...).

Missing values. ``None`` means *does not apply* -- the validation metrics of a
sweep without a validation split, ``best_epoch`` without one -- and is written
as an empty cell (docs/guide.md, "Outputs of `jaxopt-lab sweep`"). NaN and infinities are *values* (the loss of
a run that diverged) and are written ``nan``/``inf``/``-inf``, so the table
keeps the difference; the runner passes ``None`` for what does not apply.
JSON has no NaN, so `write_summary_json` writes every non-finite float as
``null``.

Files are written atomically (a temporary file in the same directory, flushed
and fsynced, then `os.replace`, mode 0644; `jaxopt_lab._io`): a reader or a
resumed sweep sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import _io
from jaxopt_lab.train.state import METRIC_KEYS

__all__ = [
    "RESULT_COLUMNS",
    "loss_column",
    "write_runs_csv",
    "read_runs_csv",
    "runs_csv_columns",
    "aggregate",
    "best_run",
    "best_config",
    "expected_max",
    "expected_min",
    "steps_to_target",
    "time_to_target",
    "write_summary_json",
    "read_summary_json",
]

# The test metrics are extra columns, present only when the data has a test split.
RESULT_COLUMNS = tuple(k for k in METRIC_KEYS if not k.startswith("final_test_"))
"""The metric columns of `runs.csv`, in order (docs/guide.md, "Outputs of `jaxopt-lab sweep`")."""

RUN_KEY = "run"
SEED_KEY = "seed"
_INT_COLUMNS = (RUN_KEY, SEED_KEY, "best_epoch", "epochs_run")
_MODES = ("min", "max")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r} is not a valid choice; valid choices: {', '.join(_MODES)}")


def plain_value(value: Any) -> Any:
    """numpy / JAX scalars (0-d arrays) as Python scalars; other values unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "dtype") and tuple(value.shape) == ():
        return np.asarray(value).item()
    return value


def staged_folder(out: str | os.PathLike, *, drop: Sequence[str] = ()) -> contextlib.AbstractContextManager[Path]:
    """A temporary folder beside `out` whose contents become `out`'s results only when the block completes.

    The output-folder contract of `jaxopt_lab._io.publish`: all-or-nothing, and nothing in `out`
    that jaxopt_lab did not write is replaced or removed (a collision is an `OutputFolderError`).
    """
    return _io.publish(out, drop=drop)


# ----------------------------------------------------------------------------- runs.csv


def _parse_cell(cell: str) -> Any:
    """The value a `runs.csv` cell holds: None, bool, int, float, tuple or str."""
    if cell == "":
        return None
    if cell == "true":
        return True
    if cell == "false":
        return False
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        return float(cell)
    except ValueError:
        pass
    if cell.startswith("[") and cell.endswith("]"):
        try:
            items = json.loads(cell)
        except json.JSONDecodeError:
            return cell
        if isinstance(items, list) and all(isinstance(v, (bool, int, float, str)) for v in items):
            return tuple(items)
    return cell


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _format_cell(column: str, value: Any) -> str:
    value = plain_value(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        # Arrays are per-epoch histories or the like: they belong in the histories file, not a cell.
        raise ValueError(f"column {column!r}: an array of shape {tuple(value.shape)} is not a runs.csv cell")
    if isinstance(value, list):
        value = tuple(plain_value(v) for v in value)
    if value is None:
        return ""
    if column == "diverged" and isinstance(value, numbers.Integral) and value in (0, 1):
        value = bool(value)
    if column in _INT_COLUMNS and isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            value = int(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        text = value
    elif isinstance(value, tuple):
        text = json.dumps([plain_value(v) for v in value])
    else:
        raise ValueError(f"column {column!r}: {value!r} is not a scalar and cannot be a runs.csv cell")
    if not _same(_parse_cell(text), value):
        raise ValueError(
            f"column {column!r}: {value!r} would read back as {_parse_cell(text)!r}; "
            "strings that look like numbers, booleans or lists, and empty strings, cannot round-trip"
        )
    return text


def runs_csv_columns(rows: Sequence[Mapping[str, Any]], swept_keys: Sequence[str]) -> list[str]:
    """The header of `runs.csv`: ``run``, the swept keys but ``seed``, ``seed``, `RESULT_COLUMNS`, extras.

    Extra columns are the other keys of the rows, in order of first appearance.
    """
    swept = [k for k in swept_keys if k != SEED_KEY]
    fixed = {RUN_KEY, SEED_KEY, *RESULT_COLUMNS}
    for i, k in enumerate(swept):
        if k in fixed:
            raise ValueError(f"swept key {k!r} clashes with a runs.csv column of the same name")
        if k in swept[:i]:
            raise ValueError(f"swept key {k!r} is listed twice")
    known = fixed | set(swept)
    extras: list[str] = []
    for row in rows:
        for k in row:
            if k not in known and k not in extras:
                extras.append(k)
    return [RUN_KEY, *swept, SEED_KEY, *RESULT_COLUMNS, *extras]


def write_runs_csv(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], swept_keys: Sequence[str]
) -> list[str]:
    """Write `runs.csv` atomically and return its header.

    Columns are `runs_csv_columns`. ``run`` defaults to the row's position. A
    row must have every swept key; a missing ``seed`` or metric is an empty
    cell (does not apply). Floats are written with `repr` (shortest string
    that reads back to the same float, bit for bit), booleans ``true``/``false``.
    """
    columns = runs_csv_columns(rows, swept_keys)
    swept = set(columns[1 : columns.index(SEED_KEY)])
    lines = []
    for i, row in enumerate(rows):
        missing = [k for k in swept if k not in row]
        if missing:
            raise ValueError(f"row {i} has no value for swept key {sorted(missing)[0]!r}")
        lines.append([_format_cell(c, row.get(c, i if c == RUN_KEY else None)) for c in columns])
    _io.write_csv(path, columns, lines)
    return columns


def read_runs_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a `runs.csv`, typed: empty -> None, true/false, int, float, [..] -> tuple, str."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{str(path)!r} is empty: a runs.csv starts with its header") from None
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise ValueError(f"{str(path)!r} line {line}: {len(cells)} cells for {len(header)} columns")
            rows.append({c: _parse_cell(v) for c, v in zip(header, cells, strict=True)})
    return rows


# ----------------------------------------------------------------------------- aggregation


def _metric_value(row: Mapping[str, Any], metric: str) -> float:
    """The metric as a float; NaN when missing or None."""
    v = plain_value(row.get(metric))
    if v is None:
        return math.nan
    if isinstance(v, str) or not isinstance(v, numbers.Real):
        raise ValueError(f"metric {metric!r} = {v!r} is not a number")
    return float(v)


def _diverged(row: Mapping[str, Any]) -> bool:
    return bool(plain_value(row.get("diverged")) or False)


def aggregate(
    rows: Sequence[Mapping[str, Any]],
    by: Sequence[str],
    metrics: Sequence[str],
    *,
    include_diverged: bool = False,
) -> list[dict[str, Any]]:
    """Statistics of `metrics` over the runs sharing the values of `by` (typically across seeds).

    One dict per group, in order of first appearance, holding the `by` values,
    ``n`` (runs in the group), ``n_diverged`` and, per metric,
    ``<metric>_mean``, ``_std`` (ddof=1), ``_median``, ``_min``, ``_max`` and
    ``_n`` (the runs the statistics use).

    Diverged runs are counted in ``n_diverged`` and left out of every statistic
    (unless `include_diverged`): their frozen or non-finite metrics describe a
    failure, not a result, and mixing them in would make a mean of a loss
    meaningless -- ``n_diverged`` keeps the failure visible. Missing / None /
    NaN values are skipped too. Statistics of no value are NaN; ``_std`` of one
    value is NaN.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for i, row in enumerate(rows):
        missing = [k for k in by if k not in row]
        if missing:
            raise ValueError(f"row {i} has no key {missing[0]!r} to group by")
        groups.setdefault(tuple(plain_value(row[k]) for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        agg: dict[str, Any] = dict(zip(by, key, strict=True))
        agg["n"] = len(members)
        agg["n_diverged"] = sum(_diverged(r) for r in members)
        used = members if include_diverged else [r for r in members if not _diverged(r)]
        for m in metrics:
            vals = np.asarray([_metric_value(r, m) for r in used], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            nan = math.nan
            agg[f"{m}_mean"] = float(np.mean(vals)) if vals.size else nan
            agg[f"{m}_std"] = float(np.std(vals, ddof=1)) if vals.size > 1 else nan
            agg[f"{m}_median"] = float(np.median(vals)) if vals.size else nan
            agg[f"{m}_min"] = float(np.min(vals)) if vals.size else nan
            agg[f"{m}_max"] = float(np.max(vals)) if vals.size else nan
            agg[f"{m}_n"] = int(vals.size)
        out.append(agg)
    return out


def loss_column(rows: Sequence[Mapping[str, Any]]) -> str:
    """The loss that ranks runs: ``best_val_loss`` when the runs have a validation split, else
    ``final_train_loss``."""
    return "best_val_loss" if any(r.get("best_val_loss") is not None for r in rows) else "final_train_loss"


def _best(rows: Sequence[Mapping[str, Any]], column: str, mode: str, skip) -> Mapping[str, Any] | None:
    _check_mode(mode)
    best, best_v = None, math.nan
    for row in rows:
        if skip(row):
            continue
        v = _metric_value(row, column)
        if math.isnan(v):
            continue
        # Strict comparison: ties go to the earliest row.
        if best is None or (v < best_v if mode == "min" else v > best_v):
            best, best_v = row, v
    return best


def best_run(rows: Sequence[Mapping[str, Any]], metric: str, mode: str = "min") -> Mapping[str, Any] | None:
    """The run with the lowest (``mode="min"``) or highest (``"max"``) `metric`.

    Diverged runs and runs without the metric (None/NaN) are never best; ties go
    to the first run. None when no run qualifies.
    """
    return _best(rows, metric, mode, _diverged)


def best_config(
    aggregated: Sequence[Mapping[str, Any]],
    metric: str,
    mode: str = "min",
    *,
    allow_diverged: bool = False,
) -> Mapping[str, Any] | None:
    """The `aggregate` row with the best mean of `metric` (``metric`` or ``metric_mean`` both work).

    A configuration with a diverged run is skipped unless `allow_diverged`: a
    setting that blows up on some seeds is not the one to recommend, however
    good its surviving seeds look. Ties go to the first; None when none qualifies.
    """
    column = metric if metric.endswith("_mean") else f"{metric}_mean"
    if aggregated and column not in aggregated[0]:
        raise ValueError(f"{column!r} is not a column of the aggregated rows; aggregate {metric!r} first")
    skip = (lambda r: False) if allow_diverged else (lambda r: bool(r.get("n_diverged", 0)))
    return _best(aggregated, column, mode, skip)


# ----------------------------------------------------------------------------- benchmark metrics


def _sorted_scores(values: Sequence[float], name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError(f"{name}: values is empty")
    if np.isnan(v).any():
        raise ValueError(f"{name}: values contain NaN; drop or replace the runs without a score first")
    return np.sort(v)


def _trial_counts(k: int | Sequence[int], name: str) -> np.ndarray:
    ks = np.asarray(k)
    if ks.dtype == bool or not np.issubdtype(ks.dtype, np.integer) or (ks < 1).any():
        raise ValueError(f"{name}: k={k!r} must be integers >= 1")
    return ks


def expected_max(values: Sequence[float], k: int | Sequence[int]) -> float | np.ndarray:
    """Expected best of `k` trials drawn with replacement from `values` (Dodge et al., 2019).

    "Show Your Work: Improved Reporting of Experimental Results" (EMNLP 2019):
    with the observed scores sorted, ``v_(1) <= ... <= v_(n)``, the maximum of
    ``k`` i.i.d. draws from their empirical distribution is ``v_(i)`` with
    probability ``(i/n)^k - ((i-1)/n)^k``, so

        E[max of k] = sum_i v_(i) [(i/n)^k - ((i-1)/n)^k].

    Exact, no sampling. Applied to a random search's validation scores it is the
    expected best score of a search with a budget of ``k`` trials, which puts
    searches of different sizes (and grid search) on one budget axis. `k` is an
    int (returns a float) or a sequence of ints (returns an array). NaN scores
    raise `ValueError`; infinite ones propagate.
    """
    v = _sorted_scores(values, "expected_max")
    ks = _trial_counts(k, "expected_max")
    n = v.size
    i = np.arange(1, n + 1, dtype=np.float64)
    kk = ks.reshape(-1, 1).astype(np.float64)
    weights = (i / n) ** kk - ((i - 1) / n) ** kk
    # A weight that underflows to 0 must not turn an infinite score into NaN.
    terms = np.where(weights > 0, weights * np.where(weights > 0, v, 0.0), 0.0)
    out = terms.sum(axis=1)
    return float(out[0]) if ks.ndim == 0 else out.reshape(ks.shape)


def expected_min(values: Sequence[float], k: int | Sequence[int]) -> float | np.ndarray:
    """Expected lowest of `k` trials drawn with replacement from `values`: ``-expected_max(-values, k)``.

    For losses, where lower is better.
    """
    out = expected_max(-_sorted_scores(values, "expected_min"), k)
    return -out


def _first_reached(history: Any, target: float, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_mode(mode)
    h = np.asarray(history, dtype=np.float64)
    if h.ndim == 0:
        raise ValueError("history must have an epoch axis: shape (epochs,) or (runs, epochs)")
    reached = h >= target if mode == "max" else h <= target  # NaN never reaches
    hit = reached.any(axis=-1)
    first = reached.argmax(axis=-1) if h.shape[-1] else np.zeros(h.shape[:-1], dtype=np.int64)
    return h, hit, first


def steps_to_target(history: Any, target: float, mode: str = "max") -> int | float | np.ndarray:
    """Epochs until `history` first reaches `target`: the 1-based epoch, ``inf`` when never.

    ``mode="max"`` for accuracies (reached when ``>= target``), ``"min"`` for
    losses (``<= target``), as optimizer benchmarks report time to a target
    (DeepOBS, Schneider et al. 2019; AlgoPerf, Dahl et al. 2023). A history of
    shape ``(epochs,)`` gives an int (or ``inf``); ``(..., epochs)`` gives a float
    array over the leading axes.
    """
    h, hit, first = _first_reached(history, target, mode)
    out = np.where(hit, first + 1.0, np.inf)
    if h.ndim == 1:
        return int(first) + 1 if bool(hit) else math.inf
    return out


def time_to_target(history: Any, target: float, epoch_seconds: Any, mode: str = "max") -> float | np.ndarray:
    """Seconds until `history` first reaches `target` (``inf`` when never).

    `epoch_seconds` is the wall time of each epoch: a scalar, or an array
    broadcasting to `history`'s shape. The time is the sum up to and including
    the epoch that reaches the target.
    """
    h, hit, first = _first_reached(history, target, mode)
    secs = np.asarray(epoch_seconds, dtype=np.float64)
    if (secs < 0).any() or np.isnan(secs).any():
        raise ValueError(f"epoch_seconds={epoch_seconds!r} must be >= 0")
    cum = np.cumsum(np.broadcast_to(secs, h.shape), axis=-1)
    if h.shape[-1] == 0:
        at = np.zeros(h.shape[:-1])
    else:
        at = np.take_along_axis(cum, first[..., None], axis=-1)[..., 0]
    out = np.where(hit, at, np.inf)
    return float(out) if h.ndim == 1 else out


# ----------------------------------------------------------------------------- summary.json


def _jsonable(value: Any, where: str) -> Any:
    value = plain_value(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return _jsonable(np.asarray(value).tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(f"summary{where}: {value!r} ({type(value).__name__}) cannot be written as JSON")


def write_summary_json(path: str | os.PathLike, summary: Mapping[str, Any]) -> None:
    """Write `summary` as JSON atomically.

    numpy/JAX scalars and arrays become numbers and lists, tuples lists, and
    NaN and infinities ``null``: JSON has no NaN, and ``null`` ("no number") is
    what a standard reader can parse. Keys become strings.
    """
    if not isinstance(summary, Mapping):
        raise ValueError(f"summary must be a mapping, not {type(summary).__name__}")
    text = json.dumps(_jsonable(summary, ""), indent=2, allow_nan=False) + "\n"
    _io.atomic_write_text(path, text)


def read_summary_json(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a `write_summary_json` file holds (non-finite numbers read back as None)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
