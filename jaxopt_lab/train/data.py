"""A run's data: split and standardized once on the host, then one device copy per trainer.

The arrays enter compiled programs as *arguments* (`Trainer.data_arrays`, passed by
the sweep runner to every chunk), never as constants baked into the program: compile
time and program size do not grow with the data, and a later sweep on other data of
the same shapes reuses the compiled program.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab.config import Config
from jaxopt_lab.data import preprocessing, splits
from jaxopt_lab.data.datasets import DATASETS, load_dataset

#: The names of the arrays a run reads, in `Trainer.data_arrays`.
SPLIT_NAMES = ("train", "val", "test")


class PreparedData(NamedTuple):
    """The split, preprocessed data of a run, on the host (float64 numpy)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int | None


def _load(config: Config, data: Any) -> tuple[np.ndarray, np.ndarray, int | None]:
    d = config.data
    if data is None:
        wanted = {k: getattr(d, k, None) for k in DATASETS[d.dataset].options}
        ds = load_dataset(d.dataset, **{k: v for k, v in wanted.items() if v is not None})
        return np.asarray(ds.x), np.asarray(ds.y), ds.num_classes
    if hasattr(data, "x") and hasattr(data, "y"):
        return np.asarray(data.x), np.asarray(data.y), getattr(data, "num_classes", None)
    x, y = (np.asarray(a) for a in data)
    num_classes = int(y.max()) + 1 if np.issubdtype(y.dtype, np.integer) else None
    return x, y, num_classes


def prepare_data(config: Config, data: Any = None) -> PreparedData:
    """Load (or take `data`: `(x, y)` arrays or a `Dataset`) the data set, split it by
    `data.random_state`, and standardize it on the training rows.

    Features are float64 on the host, except float32 features of a float32 run, which stay
    float32 (converting them would only double a large data set's memory for nothing)."""
    d = config.data
    x, y, num_classes = _load(config, data)
    keep32 = x.dtype == np.float32 and config.train.precision == "float32"
    x = x if keep32 else x.astype(np.float64)
    if x.ndim == 1:
        x = x[:, None]
    stratify = y if (num_classes is not None and d.stratify and d.val_fraction + d.test_fraction > 0) else None
    if d.val_fraction == 0 and d.test_fraction == 0:
        tr, va, te = np.arange(len(x)), np.arange(0), np.arange(0)
    else:
        tr, va, te = splits.train_val_test_split(
            len(x), val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.random_state,
            stratify=stratify,
        )
    if d.standardize:
        scaler = preprocessing.Standardizer.fit(x[tr])
        x = scaler.transform(x)

    def part(idx):
        return (take_rows(x, idx), y[idx]) if len(idx) else (None, None)

    return PreparedData(*part(tr), *part(va), *part(te), num_classes=num_classes)


#: XLA's CPU client adopts a host buffer aligned to this many bytes as a device array without
#: copying it; the splits are cut into such buffers so a large data set is not held twice.
_ALIGN = 64


def take_rows(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`x[idx]` in a freshly allocated buffer aligned to `_ALIGN` bytes."""
    shape = (len(idx), *x.shape[1:])
    nbytes = math.prod(shape) * x.dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    offset = (-raw.ctypes.data) % _ALIGN
    out = raw[offset:offset + nbytes].view(x.dtype).reshape(shape)
    np.take(x, idx, axis=0, out=out)
    return out


def device_arrays(data: PreparedData, dtype: Any) -> dict[str, Any]:
    """The splits present as device arrays (`x_<split>` in `dtype`, `y_<split>`), one copy: features
    already in `dtype` become device arrays without a copy where the device is the host's memory."""
    out = {}
    for name in SPLIT_NAMES:
        x, y = getattr(data, f"x_{name}"), getattr(data, f"y_{name}")
        if x is None:
            continue
        out[f"x_{name}"] = jax.device_put(x) if x.dtype == np.dtype(dtype) else jnp.asarray(x, dtype)
        out[f"y_{name}"] = jnp.asarray(y, jnp.int32) if np.issubdtype(y.dtype, np.integer) else jnp.asarray(y, dtype)
    return out


def host_view(arrays: dict[str, Any], num_classes: int | None) -> PreparedData:
    """`PreparedData` read back from device arrays (views, without a copy, on CPU)."""
    parts = []
    for name in SPLIT_NAMES:
        for axis in ("x", "y"):
            a = arrays.get(f"{axis}_{name}")
            parts.append(None if a is None else np.asarray(a))
    return PreparedData(*parts, num_classes=num_classes)
