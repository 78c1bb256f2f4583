"""Categorical choices as branches of one compiled program: `switch(trainers)`, `switch_config(config, key, values)`.

A `Trainer` is compiled once per *structure*: the optimizer's name, the
activation, the normalization, the batch size are fixed when it is built.
`switch` puts several trainers into one program: `switched(branch, key,
hparams, data)` runs the whole run of `trainers[branch]` (`lax.switch` over
whole runs, so each branch keeps its own optimizer state, model state and batch
size, and only the chosen branch runs), with `branch` an integer that may be
traced like any numeric hyperparameter. `optimizer_switch` is the finer form
for branches that differ only in the optimizer: one training loop, the
optimizer's update chosen per step.

When it pays, and when it does not:

* Sequential execution (`lax.map` over the runs, `execution = "map"`): each run
  executes its own branch only, so the run time is that of the separate
  programs. XLA still compiles every branch: a `switch` over whole runs costs
  about the compile time of the separate trainers (it buys one program, one
  dispatch, one result array); `optimizer_switch` saves compilation, since the
  loop, the model and its gradient are compiled once (docs/guide.md has the
  measurements).
* Under `vmap` over `branch`, `lax.switch` becomes a `select`: *every* branch
  runs for every run and the results are picked afterwards, so N branches cost
  N times the run time. Batch runs *within* a branch (vmap over seeds or
  learning rates with a fixed `branch`), and map over branches.

Example:

    import jax, jax.numpy as jnp
    from jaxopt_lab.config import Config
    from jaxopt_lab.train import switch

    run = switch.switch_config(Config(), "optimizer.name", ["sgd", "adam", "rmsprop"],
                               result_fn=lambda r: r.metrics)
    key = jax.random.PRNGKey(0)
    metrics = jax.jit(lambda: jax.lax.map(
        lambda b: run(b, key, {"optimizer.learning_rate": 0.01}), jnp.arange(3)))()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab.config import Config, apply_overrides
from jaxopt_lab.train import step as step_mod
from jaxopt_lab.train.engine import Trainer, make_train
from jaxopt_lab.train.state import TrainResult

Array = jax.Array
PyTree = Any


class SwitchedTrainer:
    """`switched(branch, key, hparams=None, data=None)`: the run of `trainers[branch]`, one program for all.

    Attributes:
      trainers: the branches, in index order.
      labels: one name per branch.
      data_arrays: the data every branch trains on (the first trainer's; all must agree in shapes).
      result_fn: maps each branch's `TrainResult` to what the call returns.
    """

    def __init__(self, trainers: Sequence[Trainer], labels: Sequence[str] | None = None,
                 result_fn: Callable[[TrainResult], PyTree] | None = None):
        self.trainers = tuple(trainers)
        if not self.trainers:
            raise ValueError("switch needs at least one trainer")
        self.labels = tuple(labels) if labels is not None else tuple(str(i) for i in range(len(self.trainers)))
        if len(self.labels) != len(self.trainers):
            raise ValueError(f"switch: {len(self.labels)} labels for {len(self.trainers)} trainers")
        self.result_fn = result_fn or (lambda r: r)
        self.data_arrays = self.trainers[0].data_arrays
        want = jax.tree.map(lambda a: (a.shape, a.dtype), dict(self.data_arrays))
        for label, t in zip(self.labels, self.trainers, strict=True):
            got = jax.tree.map(lambda a: (a.shape, a.dtype), dict(t.data_arrays))
            if got != want:
                raise ValueError(
                    f"switch: branch {label!r} trains on data of other shapes ({got}) than branch "
                    f"{self.labels[0]!r} ({want}); branches of one program share their data"
                )

    def __len__(self) -> int:
        return len(self.trainers)

    def index(self, label: str) -> int:
        """The branch index of `label`."""
        return self.labels.index(label)

    def __call__(self, branch: Any, key: Array, hparams: Mapping[str, Any] | None = None,
                 data: Mapping[str, Array] | None = None, init_params: PyTree = None) -> PyTree:
        """The run of `trainers[branch]`; from `init_params` instead of the model's own
        initialization when given (they must fit every branch's model)."""
        data = self.data_arrays if data is None else data

        def branch_fn(trainer: Trainer) -> Callable[..., PyTree]:
            def run(key, hp, data, init_params):
                if init_params is None:
                    return self.result_fn(trainer(key, hp, data))
                state = init_state_from(trainer, key, hp, init_params)
                state = trainer.run_epochs(state, hp, data=data)
                return self.result_fn(trainer.finalize(state, hp, data=data))

            return run

        branches = [branch_fn(t) for t in self.trainers]
        if len(branches) == 1:
            return branches[0](key, hparams, data, init_params)
        try:
            return jax.lax.switch(branch, branches, key, hparams, data, init_params)
        except TypeError as e:
            if "branch" not in str(e) and "output" not in str(e):
                raise
            raise TypeError(
                "switch: the branches return results of different structures (e.g. parameters of other "
                "shapes); pass result_fn= to keep what they share, e.g. lambda r: (r.history, r.metrics)"
            ) from e


def init_state_from(trainer: Trainer, key: Array, hparams: Mapping[str, Any] | None, params: PyTree):
    """`trainer.init_state(key, hparams)` starting from `params` (cast to the run's dtype) instead of
    the model's initialization; the optimizer's state is initialized for them."""
    state = trainer.init_state(key, hparams)
    params = jax.tree.map(lambda ref, p: jnp.asarray(p, ref.dtype), state.params, params)
    opt, _ = trainer._optimizer(trainer.resolve(hparams))
    best = params if step_mod.tracks_best(trainer.resolve(hparams)) else state.best_params
    return state._replace(params=params, opt_state=opt.init(params), best_params=best)


def switch(trainers: Sequence[Trainer], labels: Sequence[str] | None = None,
           result_fn: Callable[[TrainResult], PyTree] | None = None) -> SwitchedTrainer:
    """One program that runs any of `trainers`, chosen by a (traceable) integer.

    Args:
      trainers: trainers on data of the same shapes (any configs, models, optimizers, batch sizes).
      labels: a name per trainer (default: its index).
      result_fn: `TrainResult -> PyTree` applied in every branch; the branches' outputs must have
        one structure (default: the whole `TrainResult`, which needs parameters of one shape).

    Returns:
      A `SwitchedTrainer`: `switched(branch, key, hparams=None, data=None)`. Every branch receives
      the same `hparams`, so they must be valid keys of every branch.
    """
    return SwitchedTrainer(trainers, labels, result_fn)


def switch_config(config: Config, key: str, values: Sequence[Any], *,
                  result_fn: Callable[[TrainResult], PyTree] | None = None, **make_train_kwargs: Any
                  ) -> SwitchedTrainer:
    """`switch` over `config` with the dotted `key` set to each of `values` (e.g. `"optimizer.name"`,
    `"model.activation"`, `"train.batch_size"`); labels are the values. `make_train_kwargs` go to every
    `make_train` (a model, data, a loss)."""

    trainers = [make_train(apply_overrides(config, {key: v}), **make_train_kwargs) for v in values]
    return SwitchedTrainer(trainers, [str(v) for v in values], result_fn)


def switch_optimizer(index: Any, optimizers: Sequence[optax.GradientTransformation]) -> optax.GradientTransformation:
    """One of several optimizers chosen by a (traced) integer, inside one training loop.

    The finer-grained form of `switch`: the state is the tuple of every optimizer's state;
    `update` runs `optimizers[index]` alone (`lax.switch`) and leaves the other states as they
    are, so a run follows exactly the trajectory of its own optimizer. Use it as a trainer's
    `optimizer_fn` when the branches differ only in the optimizer (the loop and the model are
    compiled once, not once per branch). The same caveat holds: under `vmap` over `index`
    every branch computes.
    """
    optimizers = tuple(optimizers)

    def init_fn(params: PyTree) -> tuple:
        return tuple(opt.init(params) for opt in optimizers)

    def branch(j: int):
        def run(grads, states, params):
            updates, new_state = optimizers[j].update(grads, states[j], params)
            return updates, tuple(new_state if i == j else s for i, s in enumerate(states))

        return run

    def update_fn(grads: PyTree, states: tuple, params: PyTree | None = None) -> tuple[PyTree, tuple]:
        return jax.lax.switch(index, [branch(j) for j in range(len(optimizers))], grads, states, params)

    return optax.GradientTransformation(init_fn, update_fn)


def optimizer_switch(makers: Sequence[Callable[[Mapping[str, Any]], optax.GradientTransformation]],
                     key: str = "branch") -> Callable[[Mapping[str, Any]], optax.GradientTransformation]:
    """An `optimizer_fn` for `make_train` whose optimizer is `makers[hp["optimizer." + key]]`.

    Each maker receives the run's optimizer hyperparameters (without the `optimizer.` prefix,
    possibly traced, e.g. the learning rate) and returns a transformation; the index is one more
    traced hyperparameter, `hparams["optimizer.branch"]`. The optimizers share one compiled loop
    (`switch_optimizer`); for branches that differ in more than the optimizer, use `switch`.
    """
    makers = tuple(makers)

    def optimizer_fn(hp: Mapping[str, Any]) -> optax.GradientTransformation:
        index = jnp.asarray(hp.get(key, 0)).astype(jnp.int32)
        return switch_optimizer(index, [make(hp) for make in makers])

    return optimizer_fn
