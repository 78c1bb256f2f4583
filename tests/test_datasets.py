"""The data-set registry: names, options, types, and errors that list the valid choices."""

import numpy as np
import pytest
import sklearn.datasets as skd

from jaxopt_lab.data.datasets import DATASETS, REQUIRED, Dataset, load_dataset

REQUIRED_NAMES = {"moons", "circles", "blobs", "spirals", "xor", "digits", "csv", "sine"}


def test_required_names_are_listed_with_their_options():
    assert REQUIRED_NAMES <= set(DATASETS)
    for name, info in DATASETS.items():
        assert info.task in ("classification", "regression"), name
        assert isinstance(info.options, dict) and info.description
    assert DATASETS["csv"].options["path"] is REQUIRED
    assert DATASETS["sine"].task == "regression"


# Every data set but those reading a file the user names (csv, npz: a REQUIRED path).
@pytest.mark.parametrize("name", sorted(n for n, info in DATASETS.items() if REQUIRED not in info.options.values()))
def test_every_dataset_loads_with_its_defaults(name):
    ds = load_dataset(name)
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.x.ndim == 2 and ds.x.dtype == np.float64
    assert ds.y.shape == (ds.x.shape[0],)
    if DATASETS[name].task == "regression":
        assert ds.num_classes is None and ds.y.dtype == np.float64
    else:
        assert ds.y.dtype == np.int64
        assert ds.y.min() >= 0 and ds.y.max() < ds.num_classes
    again = load_dataset(name)  # deterministic defaults
    assert np.array_equal(ds.x, again.x) and np.array_equal(ds.y, again.y)


def test_moons_options_reach_the_generator():
    ds = load_dataset("moons", n_samples=500, noise=0.25, random_state=7)
    x, y = skd.make_moons(n_samples=500, noise=0.25, random_state=7)
    assert np.array_equal(ds.x, x) and np.array_equal(ds.y, y) and ds.num_classes == 2


def test_num_classes():
    assert load_dataset("blobs", n_samples=2, centers=3).num_classes == 3  # one cluster got no point
    assert load_dataset("spirals", n_classes=4).num_classes == 4
    assert load_dataset("digits", n_class=5).num_classes == 5


def test_csv_through_the_registry(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    ds = load_dataset("csv", path=str(path), label_column="label")
    assert ds.num_classes == 2
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(ds.y, [0, 1, 0])
    reg = load_dataset("csv", path=str(path), label_column="b", feature_columns=["a"], task="regression")
    assert reg.num_classes is None
    np.testing.assert_array_equal(reg.y, [2.0, 4.0, 6.0])


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("moon", {}, r"dataset='moon' is not a valid choice \(did you mean 'moons'\?\); valid choices: blobs, .*moons"),
        ("imagenet", {}, r"dataset='imagenet' is not a valid choice; valid choices:"),
        ("moons", {"nosie": 0.1}, r"dataset 'moons': option='nosie' is not a valid choice \(did you mean 'noise'"),
        ("digits", {"n_samples": 10}, r"dataset 'digits': option='n_samples' is not a valid choice; "
         r"valid choices: n_class$"),
        ("csv", {"path": "x.csv"}, r"dataset 'csv' needs the option\(s\) \['label_column'\]"),
        ("moons", {"n_samples": 1}, r"n_samples=1 is out of range"),
        ("circles", {"noise": -1.0}, r"noise=-1.0 is out of range"),
    ],
)
def test_errors(name, options, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(name, **options)
