"""Results as data: a finished sweep's folder as a pandas DataFrame and an xarray Dataset.

    from jaxopt_lab import results
    res = results.load("out/lr-sweep")
    res.runs                      # pandas DataFrame, one row per run (runs.csv)
    res.histories                 # xarray Dataset over run x epoch (histories.npz)
    res.summary, res.config       # summary.json and the config the sweep ran

pandas and xarray are an optional extra: ``pip install 'jaxopt-lab[analysis]'``.

Types. Each `runs.csv` column gets the narrowest nullable pandas type that holds
it: ``boolean`` (``diverged``, ``halted``), ``Int64`` (``run``, ``seed``,
``best_epoch``, ``epochs_run``, integer-valued swept keys), ``Float64`` (metrics,
numeric swept keys), ``string`` (categorical swept keys such as
``optimizer.name``), else ``object`` (lists such as ``model.hidden`` become
tuples). An empty cell -- a metric that does not apply, such as the validation
loss of a sweep without a validation split -- is ``pd.NA``; a NaN written in
the file (the loss of a diverged run) stays a float NaN. So ``df[c].isna()``
is True for *missing* only, and ``np.isnan(df[c].to_numpy(float, na_value=0))``
finds the NaNs. Every value equals the cell `jaxopt_lab.sweep.records.read_runs_csv`
reads, bit for bit.

Folders. A config sweep (plain, refilling, halving: any folder with ``runs.csv``),
a protocol run (``protocol.json`` with one sweep folder per sub-sweep: their runs are
concatenated with a ``sweep`` column, and `SweepData.sweeps` holds each one), and a
single `jaxopt-lab train` run (``metrics.json`` and ``history.csv``).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from jaxopt_lab import config as config_mod
from jaxopt_lab.sweep.records import plain_value, read_runs_csv
from jaxopt_lab.sweep.runner import ExecutionStats

__all__ = ["SweepData", "load", "frame", "read_sweep_result", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'jaxopt-lab[analysis]'"
"""The command that installs what this module needs (pandas and xarray)."""


def _require(*modules: str) -> list[Any]:
    """Import `modules`, or raise ImportError with one line naming the extra to install."""

    out = []
    for name in modules:
        try:
            out.append(importlib.import_module(name))
        except ImportError:
            raise ImportError(f"jaxopt_lab.results needs {name}: {INSTALL_HINT}") from None
    return out


@dataclass
class SweepData:
    """A results folder read back as data (see the module docstring for the types).

    Attributes:
      path: the folder.
      runs: pandas DataFrame, one row per run, the columns of ``runs.csv`` in order
        (a protocol run adds a leading ``sweep`` column).
      histories: xarray Dataset with one variable per history key (``train_loss``,
        ``val_accuracy``, ``learning_rate``, ...) over dims ``run`` x ``epoch``; ``epoch``
        counts from 1, ``run`` is the run index of ``runs.csv``; ``seed`` and the swept
        keys are coordinates along ``run``, so ``ds.groupby("optimizer.name")`` works.
      summary: ``summary.json`` (``protocol.json`` for a protocol run; ``metrics.json``
        for a single run) as a dict.
      config: the config the sweep ran as a TOML-shaped dict (``config.json``); None for
        folders written before it was saved.
      sweeps: a protocol run's sweeps by name (each a `SweepData`); empty otherwise.
    """

    path: Path
    runs: Any
    histories: Any
    summary: dict[str, Any]
    config: dict[str, Any] | None
    sweeps: dict[str, SweepData] = field(default_factory=dict)

    @property
    def swept_keys(self) -> list[str]:
        """The swept columns of ``runs`` (between ``run`` and ``seed``)."""
        cols = [c for c in self.runs.columns if c != "sweep"]
        if "seed" not in cols:
            return []
        return cols[1 : cols.index("seed")]


# ----------------------------------------------------------------------------- typing cells


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, str):
        return "str"
    return "other"


def _column(values: Sequence[Any]) -> Any:
    """One column of typed cells as a pandas array (None -> NA; NaN stays NaN)."""
    (pd,) = _require("pandas")
    kinds = {_kind(v) for v in values} - {"none"}
    mask = np.asarray([v is None for v in values], dtype=bool)
    if kinds == {"bool"}:
        data = np.asarray([bool(v) if v is not None else False for v in values], dtype=bool)
        return pd.arrays.BooleanArray(data, mask)
    if kinds == {"int"}:
        data = np.asarray([int(v) if v is not None else 0 for v in values], dtype=np.int64)
        return pd.arrays.IntegerArray(data, mask)
    if kinds and kinds <= {"int", "float"}:
        # Built from values and mask: pandas' constructors would turn a NaN into NA.
        data = np.asarray([float(v) if v is not None else 0.0 for v in values], dtype=np.float64)
        return pd.arrays.FloatingArray(data, mask)
    if kinds == {"str"}:
        return pd.array([v if v is not None else pd.NA for v in values], dtype="string")
    out = np.empty(len(values), dtype=object)
    out[:] = [pd.NA if v is None else v for v in values]
    return out


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Any:
    """A pandas DataFrame of row dicts, typed as described in the module docstring.

    Args:
      rows: one dict per run (the rows of `read_runs_csv`, `SweepResult.table`, ...).
        numpy/JAX scalars are taken as Python scalars; a key absent from a row is NA.
      columns: the column order (default: keys in order of first appearance).

    Returns:
      A `pandas.DataFrame` with one row per dict.

    Examples:
      >>> df = frame([{"run": 0, "loss": float("nan"), "ok": True}, {"run": 1, "loss": None, "ok": False}])
      >>> df["loss"].isna().tolist()  # None is missing; NaN is a value
      [False, True]
      >>> [str(df[c].dtype) for c in df.columns]
      ['Int64', 'Float64', 'boolean']
    """
    (pd,) = _require("pandas")

    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    data = {}
    for c in columns:
        values = [plain_value(r.get(c)) for r in rows]
        values = [tuple(v) if isinstance(v, list) else v for v in values]
        data[c] = _column(values)
    return pd.DataFrame(data, columns=list(columns))


# ----------------------------------------------------------------------------- histories


def _histories(arrays: Mapping[str, np.ndarray], runs: Any, coords_from: Sequence[str]) -> Any:
    """An xarray Dataset over run x epoch from per-key (runs, epochs) arrays."""
    (xr,) = _require("xarray")
    run = np.asarray(arrays["run"]) if "run" in arrays else np.arange(len(runs))
    variables = {k: (("run", "epoch"), np.asarray(v)) for k, v in arrays.items() if k != "run"}
    n_epochs = max((v[1].shape[1] for v in variables.values()), default=0)
    coords: dict[str, Any] = {"run": run, "epoch": np.arange(1, n_epochs + 1)}
    for c in coords_from:
        if c in runs.columns and len(runs) == len(run) and runs[c].dtype != object:
            coords[c] = ("run", runs[c].to_numpy())
    return xr.Dataset(variables, coords=coords)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------------------- folder kinds


def _load_sweep(folder: Path) -> SweepData:
    with open(folder / "runs.csv", encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    rows = read_runs_csv(folder / "runs.csv")
    runs = frame(rows, header)
    hist_path = folder / "histories.npz"
    arrays: dict[str, np.ndarray] = {}
    if hist_path.is_file():
        with np.load(hist_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    swept = header[1 : header.index("seed")] if "seed" in header else []
    histories = _histories(arrays, runs, [*swept, "seed"])
    return SweepData(path=folder, runs=runs, histories=histories,
                     summary=_read_json(folder / "summary.json") or {}, config=_read_json(folder / "config.json"))


def _load_protocol(folder: Path) -> SweepData:
    (xr,) = _require("xarray")
    record = _read_json(folder / "protocol.json") or {}
    sweeps: dict[str, SweepData] = {}
    for rec in record.get("sweeps", []):
        sub = folder / rec["path"]
        if (sub / "runs.csv").is_file():
            sweeps[rec["name"]] = _load_sweep(sub)
    rows: list[dict[str, Any]] = []
    columns: list[str] = ["sweep"]
    parts = []
    for name, data in sweeps.items():
        sub_rows = read_runs_csv(data.path / "runs.csv")
        rows += [{"sweep": name, **r} for r in sub_rows]
        columns += [c for c in data.runs.columns if c not in columns]
        ds = data.histories.drop_vars([c for c in data.histories.coords if c not in ("run", "epoch", "seed")])
        parts.append(ds.assign_coords(sweep=("run", np.full(ds.sizes["run"], name, dtype=object))))
    runs = frame(rows, columns)
    if parts:
        # Sweeps of different lengths are padded with NaN after their last epoch.
        histories = xr.concat(parts, dim="run", join="outer", fill_value=np.nan)
    else:
        histories = xr.Dataset()
    return SweepData(path=folder, runs=runs, histories=histories, summary=record,
                     config=record.get("base_config"), sweeps=sweeps)


def _load_single(folder: Path) -> SweepData:
    metrics = _read_json(folder / "metrics.json") or {}
    runs = frame([metrics])
    arrays: dict[str, list[float]] = {}
    hist = folder / "history.csv"
    if hist.is_file():
        with open(hist, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                for k, v in row.items():
                    if k != "epoch":
                        arrays.setdefault(k, []).append(float(v) if v != "" else math.nan)
    histories = _histories({k: np.asarray([v]) for k, v in arrays.items()}, runs, ["seed"])
    return SweepData(path=folder, runs=runs, histories=histories, summary=metrics,
                     config=_read_json(folder / "config.json"))


def read_sweep_result(out_dir: str | Any) -> Any:
    """A config sweep's folder as the result object its report is drawn from (no pandas needed).

    The object has what `jaxopt_lab.sweep.report.sweep_report` reads: ``rows`` (`read_runs_csv`),
    ``histories`` (``histories.npz``), ``plan`` (``swept_keys``, ``groups``, ``config``: a
    `jaxopt_lab.config.Config` from ``config.json``, None without one) and ``stats`` (an
    `ExecutionStats` from ``summary.json``). `jaxopt-lab report` re-renders a report from it.

    Raises:
      FileNotFoundError: `out_dir` has no ``runs.csv`` or no ``summary.json``.
    """

    folder = Path(out_dir)
    for name in ("runs.csv", "summary.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{str(folder)!r} has no {name}: it is not a finished sweep's folder")
    with open(folder / "runs.csv", encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    summary = _read_json(folder / "summary.json") or {}
    raw_config = _read_json(folder / "config.json")
    histories: dict[str, np.ndarray] = {}
    if (folder / "histories.npz").is_file():
        with np.load(folder / "histories.npz", allow_pickle=False) as npz:
            histories = {k: npz[k] for k in npz.files if k != "run"}
    stats = ExecutionStats(**{k: summary[k] for k in ("runs", "devices", "execution", "lanes", "wall_seconds",
                                                      "compile_seconds", "chunks", "chunks_resumed",
                                                      "compilations") if summary.get(k) is not None})
    plan = SimpleNamespace(
        swept_keys=summary.get("swept_keys", header[1 : header.index("seed")] if "seed" in header else []),
        groups=summary.get("groups", [{}]),
        config=config_mod.from_dict(raw_config) if raw_config is not None else None,
    )
    return SimpleNamespace(plan=plan, rows=read_runs_csv(folder / "runs.csv"), histories=histories, stats=stats)


def load(out_dir: str | Any) -> SweepData:
    """Read a results folder written by `jaxopt-lab sweep`, `sweep --protocol` or `train`.

    Args:
      out_dir: the folder (``--out``).

    Returns:
      A `SweepData` with ``.runs`` (pandas DataFrame), ``.histories`` (xarray Dataset
      over run x epoch), ``.summary`` and ``.config`` (dicts).

    Raises:
      FileNotFoundError: `out_dir` holds no results (no ``runs.csv``, ``protocol.json``
        or ``metrics.json``).
      ImportError: pandas or xarray is missing (the message names the extra to install).

    Examples:
      >>> from jaxopt_lab import results                    # doctest: +SKIP
      >>> res = results.load("out/lr-sweep")                # doctest: +SKIP
      >>> res.runs.groupby("optimizer.learning_rate")["best_val_loss"].mean()  # doctest: +SKIP
    """
    _require("pandas", "xarray")
    folder = Path(out_dir)
    if (folder / "protocol.json").is_file():
        return _load_protocol(folder)
    if (folder / "runs.csv").is_file():
        return _load_sweep(folder)
    if (folder / "metrics.json").is_file():
        return _load_single(folder)
    raise FileNotFoundError(
        f"{str(folder)!r} holds no results: expected runs.csv (a sweep), protocol.json (a protocol run) "
        "or metrics.json (jaxopt-lab train)"
    )
