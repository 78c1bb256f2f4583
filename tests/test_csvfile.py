"""CSV loading: values, label encodings, and one test per error, each naming file, line and column."""

import re

import numpy as np
import pytest

from jaxopt_lab.data.csvfile import CSVFileNotFoundError, CSVFormatError, load_csv, read_csv


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_values_string_labels_and_feature_order(tmp_path):
    path = write(tmp_path, "x1,species,x2\n1.5,setosa,-2\n\n3e-1,versicolor,4\n0,setosa, 7.25 \n")
    x, y, names = load_csv(path, "species")
    assert names == ["x1", "x2"]
    assert x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(x, [[1.5, -2.0], [0.3, 4.0], [0.0, 7.25]])
    np.testing.assert_array_equal(y, [0, 1, 0])  # sorted: setosa < versicolor
    x2, _, names2 = load_csv(path, "species", feature_columns=["x2", "x1"])
    assert names2 == ["x2", "x1"]
    np.testing.assert_array_equal(x2, x[:, ::-1])


def test_integer_labels_sorted_numerically(tmp_path):
    path = write(tmp_path, "a,y\n0,10\n1,2\n2,10\n3,-1\n4,2.0\n")
    data = read_csv(path, "y")
    assert data.classes == [-1, 2, 10]  # numeric order: 2 < 10
    np.testing.assert_array_equal(data.y, [2, 1, 2, 0, 1])
    assert [data.classes[i] for i in data.y] == [10, 2, 10, -1, 2]


def test_regression_targets_and_bom(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffa;t\n1;0.5\n2;-1.25\n".encode())
    x, y, names = load_csv(path, "t", task="regression", delimiter=";")
    assert names == ["a"] and y.dtype == np.float64
    np.testing.assert_array_equal(y, [0.5, -1.25])


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(CSVFileNotFoundError, match=re.escape(f"{missing}: no such file")) as info:
        load_csv(missing, "y")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


# (file content, label column, expected message with {path} for the file)
ERRORS = [
    ("a,b,y\n1,2,0\n3,oops,1\n", "y", "{path}:3: column 2 ('b'): 'oops' is not a number"),
    ("a,b,y\n1,2,0\n3,4\n", "y", "{path}:3: ragged row: 2 fields where the header has 3"),
    ("a,b,y\n1,2,0\n3,4,1,9\n", "y", "{path}:3: ragged row: 4 fields where the header has 3"),
    ("a,b,y\n1,nan,0\n3,4,1\n", "y", "{path}:2: column 2 ('b'): 'nan' is not finite (NaN and inf"),
    ("a,b,y\n1,2,0\n-inf,4,1\n", "y", "{path}:3: column 1 ('a'): '-inf' is not finite"),
    ("a,b,y\n1,,0\n", "y", "{path}:2: column 2 ('b'): empty value"),
    ("a,b,lbl\n1,2,0\n", "label", "{path}:1: no column named 'label' for label_column (did you mean 'lbl'?)"),
    ("a,b,y\n1,2,cat\n3,4,cat\n", "y", "{path}: column 3 ('y') holds a single class ('cat') in all 2 rows"),
    ("a,b,y\n1,2,0.5\n3,4,1\n", "y", "{path}:2: column 3 ('y'): the class label '0.5' is not a whole number"),
    ("a,b,y\n1,2,0\n3,4,\n", "y", "{path}:3: column 3 ('y'): the label is empty"),
    ("", "y", "{path}: the file is empty"),
    ("a,b,y\n", "y", "{path}: no data rows after the header on line 1"),
    ("a,a,y\n1,2,0\n", "y", "{path}:1: column 2: the name 'a' appears twice"),
    ("y\n0\n1\n", "y", "{path}: no feature columns"),
]


@pytest.mark.parametrize("text, label, message", ERRORS)
def test_errors_name_file_line_and_column(tmp_path, text, label, message):
    path = write(tmp_path, text)
    with pytest.raises(CSVFormatError, match=re.escape(message.format(path=path))):
        load_csv(path, label)


def test_bad_feature_columns_and_task(tmp_path):
    path = write(tmp_path, "alpha,beta,y\n1,2,0\n3,4,1\n")
    message = r"no column named 'alpah' in feature_columns \(did you mean 'alpha'"
    with pytest.raises(CSVFormatError, match=message):
        load_csv(path, "y", feature_columns=["alpah"])
    with pytest.raises(CSVFormatError, match="feature_columns includes the label column 'y'"):
        load_csv(path, "y", feature_columns=["alpha", "y"])
    with pytest.raises(ValueError, match=r"task='regresion' is not a valid choice \(did you mean 'regression'"):
        load_csv(path, "y", task="regresion")
    with pytest.raises(CSVFormatError, match=r"\['alpha'\] more than once"):
        load_csv(path, "y", feature_columns=["alpha", "alpha"])


def test_regression_target_must_be_finite(tmp_path):
    path = write(tmp_path, "a,t\n1,2\n2,inf\n")
    with pytest.raises(CSVFormatError, match=re.escape(f"{path}:3: column 2 ('t'): 'inf' is not finite")):
        load_csv(path, "t", task="regression")
