"""The training engine: `make_train(config) -> train(key, hparams)`, one training loop for everything.

* `state`: `TrainState`, `TrainResult` and the names of the history and metrics.
* `data`: the data of a run, split once and passed to programs as arguments.
* `step`: the one pure epoch (updates, validation, early stopping, divergence).
* `engine`: `make_train` and the `Trainer` it returns.
* `switch`: categorical choices (optimizer, activation, batch size) as branches of one
  program, chosen by a traced integer (`lax.switch`); see docs/guide.md for when it pays.
"""

from jaxopt_lab.train.data import PreparedData, prepare_data
from jaxopt_lab.train.engine import SWITCHABLE_KEYS, TRACEABLE_KEYS, Trainer, make_train
from jaxopt_lab.train.state import HISTORY_KEYS, METRIC_KEYS, TrainResult, TrainState

__all__ = [
    "HISTORY_KEYS", "METRIC_KEYS", "PreparedData", "SWITCHABLE_KEYS", "TRACEABLE_KEYS", "TrainResult", "TrainState",
    "Trainer", "make_train", "prepare_data",
]
