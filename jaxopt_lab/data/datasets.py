"""Data sets by name: `load_dataset("moons", n_samples=500, noise=0.25, random_state=7)`.

Config files and the command line name a data set and its options
(`[data] dataset = "moons"`); this module turns that into arrays. `DATASETS`
lists every name with its task, its options and their defaults (what
`jaxopt-lab list` shows). Generated sets default to `random_state=0`, so a
name alone always gives the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jaxopt_lab._checks import unknown_choice
from jaxopt_lab.data import generators
from jaxopt_lab.data.csvfile import read_csv
from jaxopt_lab.data.digits import load_digits
from jaxopt_lab.data.npz import read_npz
from jaxopt_lab.data.sklearn_sets import load_sklearn

__all__ = ["Dataset", "DatasetInfo", "DATASETS", "REQUIRED", "load_dataset", "dataset_names", "dataset_options"]


class Dataset(NamedTuple):
    """A data set in memory.

    Attributes:
      x: `float64` features of shape `(n, d)`.
      y: `int64` class labels `0..num_classes-1` (classification) or `float64`
        targets (regression), shape `(n,)`.
      num_classes: number of classes, or None for regression.
      name: the registry name it was loaded under.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int | None
    name: str


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of an option that has none and must be given (e.g. csv's `path`)."""


class DatasetInfo(NamedTuple):
    """What `DATASETS[name]` says about a data set.

    Attributes:
      task: "classification" or "regression" (csv: as its `task` option says).
      options: option name -> default value (`REQUIRED` when it must be given).
      description: one line for listings.
    """

    task: str
    options: dict[str, Any]
    description: str


_NOISY_2D = {"n_samples": 100, "noise": None, "random_state": 0, "shuffle": True}

DATASETS: dict[str, DatasetInfo] = {
    "moons": DatasetInfo(
        "classification", dict(_NOISY_2D), "two interleaving half circles (sklearn make_moons, bit for bit)"
    ),
    "circles": DatasetInfo(
        "classification",
        {**_NOISY_2D, "factor": 0.8},
        "a circle inside another (sklearn make_circles, bit for bit)",
    ),
    "blobs": DatasetInfo(
        "classification",
        {
            "n_samples": 100,
            "n_features": 2,
            "centers": 3,
            "cluster_std": 1.0,
            "center_box": (-10.0, 10.0),
            "random_state": 0,
            "shuffle": True,
        },
        "isotropic Gaussian clusters (sklearn make_blobs, bit for bit)",
    ),
    "spirals": DatasetInfo(
        "classification",
        {**_NOISY_2D, "n_classes": 2, "turns": 1.0},
        "interleaved spiral arms, one per class",
    ),
    "xor": DatasetInfo(
        "classification",
        {"n_samples": 100, "noise": None, "random_state": 0},
        "uniform points in [-1, 1]^2, class 1 where the coordinates' signs differ",
    ),
    "digits": DatasetInfo(
        "classification",
        {"n_class": 10},
        "8x8 handwritten digits, 1797 x 64, intensities 0..16 (scikit-learn's installed copy)",
    ),
    "breast_cancer": DatasetInfo(
        "classification", {}, "Wisconsin breast cancer, 569 x 30, 2 classes (scikit-learn's installed copy)"
    ),
    "wine": DatasetInfo("classification", {}, "wine cultivars, 178 x 13, 3 classes (scikit-learn's installed copy)"),
    "iris": DatasetInfo("classification", {}, "Fisher's iris, 150 x 4, 3 classes (scikit-learn's installed copy)"),
    "diabetes": DatasetInfo(
        "regression",
        {"scaled": True},
        "diabetes progression, 442 x 10, regression target 25..346 (scikit-learn's installed copy)",
    ),
    "npz": DatasetInfo(
        "classification",
        {"path": REQUIRED, "x_key": "x", "y_key": "y", "y_path": None, "task": "classification"},
        "arrays saved by NumPy: x and y of an .npz archive (np.savez), or x.npy with y_path = y.npy",
    ),
    "csv": DatasetInfo(
        "classification",
        {
            "path": REQUIRED,
            "label_column": REQUIRED,
            "feature_columns": None,
            "task": "classification",
            "delimiter": ",",
        },
        "numeric feature columns and a label column of a CSV file with a header row",
    ),
    "sine": DatasetInfo(
        "regression",
        {"n_samples": 100, "noise": 0.1, "x_range": None, "random_state": 0},
        "1-D regression: y = sin(x) + noise, x uniform in [-pi, pi]",
    ),
    "regression_1d": DatasetInfo(
        "regression",
        {"n_samples": 100, "function": "sine", "noise": 0.1, "x_range": None, "random_state": 0},
        f"1-D regression: y = f(x) + noise, f in {sorted(generators.REGRESSION_1D_FUNCTIONS)}",
    ),
    "regression_2d": DatasetInfo(
        "regression",
        {"n_samples": 200, "function": "franke", "noise": 0.05, "x_range": None, "random_state": 0},
        f"2-D regression: y = f(x1, x2) + noise, f in {sorted(generators.REGRESSION_2D_FUNCTIONS)}",
    ),
}


def _classes(x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    return np.asarray(x, np.float64), np.asarray(y, np.int64), int(num_classes)


def _regression(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
    return np.asarray(x, np.float64), np.asarray(y, np.float64), None


def _blobs(o: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    x, y, centers = generators.make_blobs(o.pop("n_samples"), o.pop("n_features"), return_centers=True, **o)
    # Counted from the centers: with few samples a cluster may get no point, yet it is still a class.
    return _classes(x, y, centers.shape[0])


def _csv(o: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int | None]:
    data = read_csv(o.pop("path"), o.pop("label_column"), **o)
    if o["task"] == "regression":
        return _regression(data.x, data.y)
    return _classes(data.x, data.y, len(data.classes))


def _npz(o: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int | None]:
    data = read_npz(o.pop("path"), **o)
    if o["task"] == "regression":
        return _regression(data.x, data.y)
    return _classes(data.x, data.y, len(data.classes))


_LOADERS: dict[str, Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray, int | None]]] = {
    "moons": lambda o: _classes(*generators.make_moons(**o), 2),
    "circles": lambda o: _classes(*generators.make_circles(**o), 2),
    "blobs": _blobs,
    "spirals": lambda o: _classes(*generators.make_spirals(**o), o["n_classes"]),
    "xor": lambda o: _classes(*generators.make_xor(**o), 2),
    "digits": lambda o: _classes(*load_digits(**o), o["n_class"]),
    "breast_cancer": lambda o: _classes(*load_sklearn("breast_cancer"), 2),
    "wine": lambda o: _classes(*load_sklearn("wine"), 3),
    "iris": lambda o: _classes(*load_sklearn("iris"), 3),
    "diabetes": lambda o: _regression(*load_sklearn("diabetes", **o)),
    "npz": _npz,
    "csv": _csv,
    "sine": lambda o: _regression(*generators.make_regression_1d(function="sine", **o)),
    "regression_1d": lambda o: _regression(*generators.make_regression_1d(**o)),
    "regression_2d": lambda o: _regression(*generators.make_regression_2d(**o)),
}


def dataset_names() -> list[str]:
    """The registered names, in listing order."""
    return list(DATASETS)


_CONFIG_OPTIONS = ("n_samples", "noise", "random_state", "path", "label_column", "x_key", "y_key", "y_path", "task")


def dataset_options(data_config: Any) -> dict[str, Any]:
    """The `load_dataset` options a `[data]` config section gives its data set.

    Those of the section's keys that `DATASETS[data_config.dataset]` accepts
    and that are set (not None), so `load_dataset(d.dataset,
    **dataset_options(d))` loads what the config describes.
    """
    accepted = DATASETS[data_config.dataset].options
    values = {key: getattr(data_config, key, None) for key in _CONFIG_OPTIONS}
    return {key: value for key, value in values.items() if key in accepted and value is not None}


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load the data set registered as `name` with `options` (see `DATASETS[name].options`).

    Raises:
      ValueError: an unknown name or option (the message lists the valid ones
        and suggests the closest), a missing required option, or a bad option
        value (from the generator or loader, naming the value and valid range).
    """
    if name not in DATASETS:
        raise unknown_choice("dataset", name, DATASETS)
    accepted = DATASETS[name].options
    for option in options:
        if option not in accepted:
            raise unknown_choice(f"dataset {name!r}: option", option, accepted)
    resolved = {**accepted, **options}
    missing = [option for option, value in resolved.items() if value is REQUIRED]
    if missing:
        raise ValueError(f"dataset {name!r} needs the option(s) {missing}")
    x, y, num_classes = _LOADERS[name](dict(resolved))
    return Dataset(x, y, num_classes, name)
