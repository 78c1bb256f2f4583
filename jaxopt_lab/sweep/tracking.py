"""Logging a sweep to TensorBoard and MLflow, from the host, after each chunk.

    [sweep.log]
    tensorboard = "tb-logs"                 # one TensorBoard run per sweep run: tb-logs/run_00012
    mlflow = "sqlite:///mlflow.db"          # an MLflow tracking URI (a local SQLite file, a server, ...)
    experiment = "lr-sweep"                 # MLflow experiment name (default "jaxopt-lab")

or ``jaxopt-lab sweep CONFIG --out DIR --tensorboard tb-logs --mlflow sqlite:///mlflow.db``.

For every run: each history column (``train_loss``, ``val_loss``, ``train_accuracy``,
``val_accuracy``, ``learning_rate`` -- the rate the optimizer actually used -- and whatever
else the trainer records) as a scalar per epoch, steps 1..``epochs_run``; the final metrics
of ``runs.csv`` (those that apply) as scalars under ``final/`` (TensorBoard, at step
``epochs_run``) or as metrics of the run under their ``runs.csv`` names (MLflow); and the
run's hyperparameters (the config, flattened to ``section.key``, with the run's swept values
and seed) as TensorBoard's hparams or MLflow params. Values are written as float64
(TensorBoard tensor summaries), so they read back equal to ``histories.npz``.

Nothing runs inside ``jit``: the sweep engine hands each finished chunk's outputs (host numpy
arrays) to `SweepLogger.on_chunk`. The libraries are an optional extra,
``pip install 'jaxopt-lab[log]'``; a sweep without ``[sweep.log]`` never imports them, and
asking for a log whose library is missing is a config error naming the extra.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab._checks import ConfigError, closest

__all__ = ["LogOptions", "options", "SweepLogger", "LOG_KEYS", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'jaxopt-lab[log]'"
LOG_KEYS = ("tensorboard", "mlflow", "experiment")
"""The keys of ``[sweep.log]``."""

_LIBRARIES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


@dataclass(frozen=True)
class LogOptions:
    """Where to log: a TensorBoard folder and/or an MLflow tracking URI (None: not logged)."""

    tensorboard: str | None = None
    mlflow: str | None = None
    experiment: str = "jaxopt-lab"

    @property
    def enabled(self) -> bool:
        return self.tensorboard is not None or self.mlflow is not None


def options(sweep: Mapping[str, Any] | None) -> LogOptions:
    """`LogOptions` from a config's ``[sweep]`` table, checked (keys, types, libraries installed).

    Raises:
      ConfigError: an unknown key or a non-string value (naming the key and the valid ones), or a
        requested log whose library is not installed (naming the extra to install).
    """

    raw = (sweep or {}).get("log") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"sweep.log must be a table with keys {', '.join(LOG_KEYS)}, not {raw!r}")
    for key, value in raw.items():
        if key not in LOG_KEYS:
            raise ConfigError(f"unknown key sweep.log.{key}{closest(key, LOG_KEYS)}; valid keys of [sweep.log]: "
                              + ", ".join(LOG_KEYS))
        if not isinstance(value, str) or not value:
            raise ConfigError(f"sweep.log.{key} = {value!r} must be a non-empty string")
    opts = LogOptions(**raw)
    for key, module in _LIBRARIES.items():
        if getattr(opts, key) is not None:
            try:
                importlib.import_module(module)
            except ImportError:
                raise ConfigError(f"sweep.log.{key} needs the {module} package, which is not installed: "
                                  f"{INSTALL_HINT}") from None
    return opts


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{name}."))
        else:
            out[name] = v
    return out


def _hparam_value(v: Any) -> bool | int | float | str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(list(v)) if isinstance(v, (list, tuple)) else str(v)


def _metrics_and_history(chunk_out: Any) -> tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]:
    """(metrics, history) of a config sweep's chunk: ``{"metrics", "history"}``, or that and the
    lanes' info when lanes are refilled."""
    if isinstance(chunk_out, tuple) and len(chunk_out) == 2 and isinstance(chunk_out[0], Mapping):
        chunk_out = chunk_out[0]
    return chunk_out["metrics"], chunk_out["history"]


class SweepLogger:
    """Writes each finished run of a sweep to TensorBoard and/or MLflow (see the module docstring).

    Args:
      opts: where to log.
      points: the sweep's points in run order (swept values and ``seed``).
      base_params: the config's values, TOML-shaped (``{"optimizer": {"name": ...}, ...}``);
        each run's hyperparameters are these, flattened, with its point's values on top.
    """

    def __init__(self, opts: LogOptions, points: Sequence[Mapping[str, Any]], base_params: Mapping[str, Any]):
        self.opts = opts
        self.points = list(points)
        self.base = {k: _hparam_value(v) for k, v in _flatten(base_params).items() if k.split(".")[0] != "sweep"}
        self._mlflow = None
        self._experiment_id = None
        if opts.mlflow is not None:
            from mlflow.tracking import MlflowClient

            self._mlflow = MlflowClient(tracking_uri=opts.mlflow)
            exp = self._mlflow.get_experiment_by_name(opts.experiment)
            self._experiment_id = exp.experiment_id if exp else self._mlflow.create_experiment(opts.experiment)

    def params(self, run: int) -> dict[str, Any]:
        """The hyperparameters logged for `run`."""
        return {**self.base, **{k: _hparam_value(v) for k, v in self.points[run].items()}}

    def on_chunk(self, indices: Sequence[int], chunk_out: Any) -> None:
        """Log the runs `indices` of a finished chunk (host outputs, leading axis over the chunk's runs)."""
        metrics, history = _metrics_and_history(chunk_out)
        for j, run in enumerate(np.asarray(indices).tolist()):
            final = {k: float(np.asarray(v)[j]) for k, v in metrics.items()}
            epochs = int(final.get("epochs_run", np.asarray(next(iter(history.values()))).shape[1]))
            # A NaN final metric is one that does not apply (an empty runs.csv cell): not logged.
            final = {k: v for k, v in final.items() if not math.isnan(v)}
            curves = {k: np.asarray(v, dtype=np.float64)[j, :epochs] for k, v in history.items()}
            if self.opts.tensorboard is not None:
                self._tensorboard(run, curves, final, epochs)
            if self._mlflow is not None:
                self._mlflow_run(run, curves, final)

    def _tensorboard(self, run: int, curves: Mapping[str, np.ndarray], final: Mapping[str, float],
                     epochs: int) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import summary_v2 as hparams_summary
        from tensorboard.plugins.scalar import metadata as scalar_metadata
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util

        writer = EventFileWriter(str(Path(self.opts.tensorboard) / f"run_{run:05d}"))
        now = time.time()

        def scalar(tag: str, value: float, step: int) -> None:
            # float64 tensor summaries (what tf.summary.scalar writes), not 32-bit simple_value.
            val = summary_pb2.Summary.Value(tag=tag, metadata=scalar_metadata.create_summary_metadata("", ""),
                                            tensor=tensor_util.make_tensor_proto(np.float64(value)))
            writer.add_event(event_pb2.Event(summary=summary_pb2.Summary(value=[val]), step=step, wall_time=now))

        writer.add_event(event_pb2.Event(summary=hparams_summary.hparams_pb(self.params(run)), step=0,
                                         wall_time=now))
        for key, values in curves.items():
            for e, v in enumerate(values.tolist(), start=1):
                scalar(key, v, e)
        for key, v in final.items():
            scalar(f"final/{key}", v, epochs)
        writer.close()

    def _mlflow_run(self, run: int, curves: Mapping[str, np.ndarray], final: Mapping[str, float]) -> None:
        from mlflow.entities import Metric, Param

        client = self._mlflow
        r = client.create_run(self._experiment_id, run_name=f"run_{run:05d}", tags={"jaxopt_lab.run": str(run)})
        rid = r.info.run_id
        ms = int(time.time() * 1000)
        params = [Param(k, str(v)) for k, v in self.params(run).items()]
        metrics = [Metric(k, v, ms, e) for k, values in curves.items()
                   for e, v in enumerate(values.tolist(), start=1)]
        metrics += [Metric(k, v, ms, 0) for k, v in final.items()]
        for i in range(0, len(params), 100):  # MLflow's batch limits: 100 params, 1000 metrics
            client.log_batch(rid, params=params[i : i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[i : i + 1000])
        client.set_terminated(rid)
