"""NumPy files and scikit-learn's bundled sets as data sets: values, and one clear line for every bad file."""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxopt_lab.config import ConfigError, DataConfig
from jaxopt_lab.data.datasets import DATASETS, dataset_options, load_dataset
from jaxopt_lab.data.npz import NpzFileNotFoundError, read_npz

ROOT = Path(__file__).resolve().parent.parent


def _save(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


# ----------------------------------------------------------------------------- happy paths


def test_npz_archive_classification_maps_labels_in_sorted_order(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype(np.float32)
    labels = np.array([7, 3, 3, 10, 7, 3, 10, 10, 7, 3, 7, 10])
    path = _save(tmp_path / "d.npz", x=x, y=labels)
    ds = load_dataset("npz", path=path)
    assert ds.x.dtype == np.float64 and ds.y.dtype == np.int64 and ds.num_classes == 3
    np.testing.assert_array_equal(ds.x, x.astype(np.float64))
    # 3 < 7 < 10 numerically: classes[y] gives back the labels as written.
    data = read_npz(path)
    assert data.classes == [3, 7, 10]
    np.testing.assert_array_equal(np.array(data.classes)[data.y], labels)


def test_npz_custom_keys_string_labels_and_image_stacks(tmp_path):
    images = np.arange(5 * 4 * 3 * 2, dtype=np.uint8).reshape(5, 4, 3, 2)
    names = np.array(["cat", "dog", "cat", "ant", "dog"])
    path = _save(tmp_path / "img.npz", images=images, names=names, other=np.zeros(2))
    data = read_npz(path, x_key="images", y_key="names")
    assert data.image_shape == (4, 3, 2)
    # Row-major flattening, so x.reshape(n, H, W, C) (what the CNN does) gives the images back.
    np.testing.assert_array_equal(data.x.reshape(images.shape), images)
    assert data.classes == ["ant", "cat", "dog"]
    np.testing.assert_array_equal(data.y, [1, 2, 1, 0, 2])


def test_npy_pair_and_regression(tmp_path):
    x = np.linspace(0, 1, 20).reshape(10, 2)
    y = np.sin(np.arange(10.0))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    ds = load_dataset("npz", path=str(tmp_path / "x.npy"), y_path=str(tmp_path / "y.npy"), task="regression")
    assert ds.num_classes is None
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.y, y)


def test_dataset_options_from_a_config_section(tmp_path):
    d = DataConfig(dataset="npz", path="a.npz", x_key="X", y_path=None, task="regression")
    assert dataset_options(d) == {"path": "a.npz", "x_key": "X", "y_key": "y", "task": "regression"}
    # Keys a data set does not take are left out (moons takes no path).
    assert dataset_options(DataConfig(dataset="moons", path="a.npz")) == {
        "n_samples": 500, "noise": 0.25, "random_state": 7,
    }


# ----------------------------------------------------------------------------- bad files


def _pickle_file(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": [1, 2]}))
    return {"path": str(path)}


def _object_archive(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    return {"path": str(path)}


def _object_npy(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0], [2.0]]))
    np.save(tmp_path / "y.npy", np.array(["a", None], dtype=object), allow_pickle=True)
    return {"path": str(tmp_path / "x.npy"), "y_path": str(tmp_path / "y.npy")}


def _archive(tmp_path, **arrays):
    return {"path": _save(tmp_path / "d.npz", **arrays)}


def _broken_zip(tmp_path):
    path = tmp_path / "broken.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", b"\x93NUMPYgarbage")
        z.writestr("y.npy", b"nonsense")
    return {"path": str(path)}


def _lone_npy(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    return {"path": str(tmp_path / "x.npy")}


def _pair(tmp_path, x, y):
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return {"path": str(tmp_path / "x.npy"), "y_path": str(tmp_path / "y.npy")}


X4 = np.zeros((4, 2))
Y4 = np.array([0, 1, 0, 1])

BAD = {
    "missing file": (lambda t: {"path": str(t / "nope.npz")}, "nope.npz", r"no such file \(data\.path\)"),
    "directory": (lambda t: {"path": str(t)}, str, r"is a directory"),
    "text file": (
        lambda t: (t / "a.npz").write_text("x,y\n1,2\n") and {"path": str(t / "a.npz")},
        "a.npz", r"not an \.npz or \.npy file \(data\.path\)",
    ),
    "pickle": (_pickle_file, "evil.pkl", r"not an \.npz or \.npy file .*pickles are never loaded"),
    "broken zip": (_broken_zip, "broken.npz", r"numpy cannot read it"),
    "missing x key": (
        lambda t: _archive(t, X=X4, y=Y4), "d.npz",
        r"no array named 'x' \(data\.x_key\) \(did you mean 'X'\?\): the arrays are \['X', 'y'\]",
    ),
    "missing y key": (
        lambda t: _archive(t, x=X4, labels=Y4), "d.npz",
        r"no array named 'y' \(data\.y_key\).*the arrays are \['x', 'labels'\]",
    ),
    "object array in archive": (_object_archive, "obj.npz", r"array 'x' \(data\.x_key\): holds Python objects"),
    "object npy": (_object_npy, "y.npy", r"labels \(data\.y_path\): holds Python objects"),
    "x 1-D": (
        lambda t: _archive(t, x=np.zeros(4), y=Y4), "d.npz",
        r"array 'x' \(data\.x_key\): shape \(4,\) has 1 dimension",
    ),
    "x 5-D": (
        lambda t: _archive(t, x=np.zeros((4, 1, 1, 1, 1)), y=Y4), "d.npz", r"has 5 dimension",
    ),
    "y 2-D": (
        lambda t: _archive(t, x=X4, y=Y4[:, None]), "d.npz",
        r"array 'y' \(data\.y_key\): shape \(4, 1\): labels need one value per row",
    ),
    "length mismatch": (
        lambda t: _archive(t, x=X4, y=Y4[:3]), "d.npz",
        r"array 'y' \(data\.y_key\) has 3 rows but array 'x' \(data\.x_key\) has 4",
    ),
    "length mismatch pair": (
        lambda t: _pair(t, X4, Y4[:3]), "y.npy",
        r"labels \(data\.y_path\) has 3 rows but .*x\.npy \(data\.path\) has 4",
    ),
    "string features": (
        lambda t: _archive(t, x=np.array([["a"], ["b"], ["c"], ["d"]]), y=Y4), "d.npz",
        r"array 'x' \(data\.x_key\): dtype <U1 is not numeric",
    ),
    "complex features": (
        lambda t: _archive(t, x=X4 + 1j, y=Y4), "d.npz", r"dtype complex128 is not numeric",
    ),
    "nan features": (
        lambda t: _archive(t, x=np.array([[0.0], [1.0], [np.nan], [2.0]]), y=Y4), "d.npz",
        r"array 'x' \(data\.x_key\): 1 value\(s\) are NaN or inf \(the first in row 2\)",
    ),
    "no rows": (lambda t: _archive(t, x=np.zeros((0, 2)), y=np.zeros(0)), "d.npz", r"has no rows"),
    "fractional class": (
        lambda t: _archive(t, x=X4, y=np.array([0, 0.5, 1, 1])), "d.npz",
        r"the class label 0.5 in row 1 is not a whole number; use data.task = 'regression'",
    ),
    "single class": (lambda t: _archive(t, x=X4, y=np.ones(4, int)), "d.npz", r"holds a single class"),
    "lone npy": (
        _lone_npy, "x.npy", r"a single \.npy array \(data\.path\): give the labels' \.npy file as data\.y_path",
    ),
    "archive with y_path": (
        lambda t: {**_archive(t, x=X4, y=Y4), "y_path": str(t / "d.npz")}, "d.npz",
        r"data\.y_path is for a pair of \.npy files",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_raise_one_line_naming_file_and_key(tmp_path, case):
    make, filename, pattern = BAD[case]
    options = make(tmp_path)
    where = options["path"] if filename is str else filename
    with pytest.raises(ConfigError, match=pattern) as info:
        load_dataset("npz", **options)
    message = str(info.value)
    assert "\n" not in message
    assert where in message.split(": ")[0]


def test_regression_refuses_text_and_nan_targets(tmp_path):
    path = _save(tmp_path / "d.npz", x=X4, y=np.array(["a", "b", "c", "d"]))
    with pytest.raises(ConfigError, match=r"array 'y' \(data\.y_key\): dtype <U1 is not numeric"):
        read_npz(path, task="regression")
    path = _save(tmp_path / "e.npz", x=X4, y=np.array([0.0, np.inf, 1.0, 2.0]))
    with pytest.raises(ConfigError, match=r"1 target\(s\) are NaN or inf \(the first in row 1\)"):
        read_npz(path, task="regression")
    with pytest.raises(ConfigError, match=r"data.task = 'regresion' is not a valid choice \(did you mean"):
        read_npz(path, task="regresion")


def test_missing_file_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_npz(tmp_path / "none.npz")
    assert issubclass(NpzFileNotFoundError, ConfigError)


def test_pickled_object_array_is_never_unpickled(tmp_path):
    # An object array whose unpickling would leave a trace: loading it must refuse, not run it.
    marker = tmp_path / "ran"

    class Trap:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "trap.npz"
    np.savez(path, x=np.array([Trap(), Trap()], dtype=object), y=np.array([0, 1]))
    with pytest.raises(ConfigError, match="holds Python objects"):
        read_npz(path)
    assert not marker.exists()


def test_cli_train_on_a_bad_npz_exits_2_with_one_line(tmp_path):
    data = _save(tmp_path / "d.npz", features=X4, y=Y4)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\ndataset = "npz"\npath = "{data}"\n[train]\nepochs = 1\n')
    proc = subprocess.run(
        [sys.executable, "-m", "jaxopt_lab", "train", str(cfg), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "d.npz: no array named 'x' (data.x_key)" in lines[0] and "['features', 'y']" in lines[0]
    assert not (tmp_path / "o").exists()


def test_config_checks_npz_needs_a_path_and_task_choices():
    from jaxopt_lab.config import from_dict, validate

    with pytest.raises(ConfigError, match=r"data.dataset = 'npz' needs data.path"):
        validate(from_dict({"data": {"dataset": "npz"}}))
    with pytest.raises(ConfigError, match=r"data.task = 'clasification' is not a valid choice \(did you mean"):
        validate(from_dict({"data": {"dataset": "npz", "path": "a.npz", "task": "clasification"}}))
    with pytest.raises(ConfigError, match=r"data.x_key = 3 must be a string"):
        from_dict({"data": {"x_key": 3}})


# ----------------------------------------------------------------------------- scikit-learn's sets

SKLEARN = {"breast_cancer": 2, "wine": 3, "iris": 3, "diabetes": None}


@pytest.mark.parametrize("name", list(SKLEARN))
def test_sklearn_sets_equal_sklearn_itself(name):
    from sklearn import datasets

    x_ref, y_ref = getattr(datasets, f"load_{name}")(return_X_y=True)
    ds = load_dataset(name)
    assert ds.num_classes == SKLEARN[name] and ds.name == name
    assert ds.x.shape == x_ref.shape and ds.x.dtype == np.float64
    np.testing.assert_array_equal(ds.x, x_ref)
    np.testing.assert_array_equal(ds.y, y_ref)
    if SKLEARN[name] is None:
        assert ds.y.dtype == np.float64 and DATASETS[name].task == "regression"
        assert (ds.y.min(), ds.y.max()) == (25.0, 346.0)
    else:
        assert ds.y.dtype == np.int64 and sorted(np.unique(ds.y)) == list(range(SKLEARN[name]))


def test_diabetes_unscaled_option():
    from sklearn import datasets

    x_ref, _ = datasets.load_diabetes(return_X_y=True, scaled=False)
    np.testing.assert_array_equal(load_dataset("diabetes", scaled=False).x, x_ref)


@pytest.mark.parametrize("name", ["iris", "diabetes", "digits"])
def test_sklearn_sets_missing_library_says_how_to_install(monkeypatch, name):
    for module in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ModuleNotFoundError, match=rf"the {name} data set .*pip install 'jaxopt-lab\[data\]'"):
        load_dataset(name)


def test_sklearn_sets_are_listed_and_validate():
    from jaxopt_lab import registry
    from jaxopt_lab.config import from_dict, validate

    for name in [*SKLEARN, "npz"]:
        assert name in registry.dataset_names()
    validate(from_dict({"data": {"dataset": "wine"}}))
    with pytest.raises(ConfigError, match=r"data.dataset = 'wines' is not a valid choice \(did you mean 'wine'\?\)"):
        validate(from_dict({"data": {"dataset": "wines"}}))
