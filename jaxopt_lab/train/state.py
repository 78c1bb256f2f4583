"""What a run carries and returns: `TrainState`, `TrainResult`, and the names of its records.

The history columns and final metrics are named here once; the results table
(`jaxopt_lab.sweep.records.RESULT_COLUMNS`) and the reports read these names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

Array = jax.Array
PyTree = Any

#: Per-epoch records, one column each of `TrainState.history`.
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "grad_norm")

#: Final metrics of a run, in `TrainResult.metrics` (and the runs table) order.
METRIC_KEYS = (
    "final_train_loss", "final_train_accuracy", "final_val_loss", "final_val_accuracy",
    "final_test_loss", "final_test_accuracy", "best_val_loss", "best_epoch", "epochs_run", "diverged",
)



def goal(metric: str) -> str:
    """Whether a run metric is better higher (``"max"``: accuracies) or lower (``"min"``: losses)."""
    return "max" if metric.endswith("accuracy") else "min"


#: The metrics a protocol ranks by (``final_<name>`` in the runs table) and a target may be set on
#: (``<name>`` in the history), with their goals.
#: Validation first, then test, then training; accuracy before loss (the protocols' tables follow this order).
RANKING_METRICS = dict(sorted(
    ((k.removeprefix("final_"), goal(k)) for k in METRIC_KEYS if k.startswith("final_")),
    key=lambda item: (("val", "test", "train").index(item[0].split("_")[0]), item[1] != "max"),
))
TARGET_METRICS = {k: goal(k) for k in HISTORY_KEYS if k.startswith(("train_", "val_"))}


class TrainState(NamedTuple):
    """Everything a run carries from one epoch to the next; saving it and continuing
    with `Trainer.run_epochs` gives the same result as an uninterrupted run.

    Fields:
      params: current model parameters.
      opt_state: the optimizer's state.
      model_state: the model's state (batch-norm running statistics; `{}` without any).
      plateau_state: `reduce_on_plateau`'s state, or `()` without it.
      epoch: epochs completed (int32).
      step: updates applied or attempted (int32); the dropout/noise key index.
      best_params: parameters at the best monitored loss so far; `()` when early stopping
        is off and not swept (not tracked: copying them every epoch is not free).
      best_model_state: model_state at that epoch (likewise).
      best_loss: best monitored loss (validation, else training), +inf at start.
      best_epoch: 1-based epoch of best_loss (0 before any).
      wait: epochs since the last improvement (early-stopping counter).
      stopped: early stopping triggered.
      diverged: a non-finite loss, gradient or parameter was met.
      order_key: key for the mini-batch order, dropout and input noise.
      history: `(epochs, len(HISTORY_KEYS))` array, one column per history key
        (one array so an epoch's record is one write).
    """

    params: PyTree
    opt_state: PyTree
    model_state: PyTree
    plateau_state: PyTree
    epoch: Array
    step: Array
    best_params: PyTree
    best_model_state: PyTree
    best_loss: Array
    best_epoch: Array
    wait: Array
    stopped: Array
    diverged: Array
    order_key: Array
    history: Array


class TrainResult(NamedTuple):
    """The outcome of a run.

    Fields:
      params: final parameters (the best epoch's when early stopping restored them).
      best_params: parameters at the best monitored loss (None when early stopping is off
        and not swept: then only `best_epoch` and `best_val_loss` are tracked).
      model_state: the model state matching `params` (batch-norm statistics, ...).
      history: per-epoch metrics, `(epochs,)` arrays, NaN after the run stopped.
      metrics: scalars named by `METRIC_KEYS` (NaN where not applicable; the test metrics
        only when the data has a test split).
    """

    params: PyTree
    best_params: PyTree
    model_state: PyTree
    history: dict[str, Array]
    metrics: dict[str, Array]
