"""Data: toy generators (scikit-learn compatible), the 8x8 digits, CSV files, splits,
preprocessing, batching inside `jit`, and augmentation.

Nothing here imports scikit-learn at import time; only `load_digits` needs it.
The `augment(names)` helper stays in its module (`jaxopt_lab.data.augment.augment`):
re-exporting it here would hide the module of the same name.
"""

from jaxopt_lab.data.augment import (
    AUGMENTATIONS,
    compose,
    gaussian_noise,
    random_flip,
    random_rotation,
    random_shift,
    rotate,
)
from jaxopt_lab.data.batching import epoch_batches, num_batches
from jaxopt_lab.data.csvfile import CSVData, CSVFileNotFoundError, CSVFormatError, load_csv, read_csv
from jaxopt_lab.data.datasets import DATASETS, Dataset, DatasetInfo, dataset_names, load_dataset
from jaxopt_lab.data.digits import load_digits
from jaxopt_lab.data.generators import (
    make_blobs,
    make_circles,
    make_moons,
    make_regression_1d,
    make_regression_2d,
    make_spirals,
    make_xor,
)
from jaxopt_lab.data.preprocessing import Standardizer, one_hot
from jaxopt_lab.data.splits import (
    kfold,
    leave_one_out,
    split_sizes,
    stratified_kfold,
    train_val_test_split,
)

__all__ = [
    "AUGMENTATIONS",
    "CSVData",
    "CSVFileNotFoundError",
    "CSVFormatError",
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "Standardizer",
    "compose",
    "dataset_names",
    "epoch_batches",
    "gaussian_noise",
    "kfold",
    "leave_one_out",
    "load_csv",
    "load_dataset",
    "load_digits",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_regression_1d",
    "make_regression_2d",
    "make_spirals",
    "make_xor",
    "num_batches",
    "one_hot",
    "random_flip",
    "random_rotation",
    "random_shift",
    "read_csv",
    "rotate",
    "split_sizes",
    "stratified_kfold",
    "train_val_test_split",
]
