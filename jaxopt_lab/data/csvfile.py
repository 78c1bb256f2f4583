"""Load a small tabular data set from a CSV file: numeric features and a label column chosen by name.

The file has one header row of column names, then one row per example. Every
feature value must be a finite number; missing values, NaN and inf are errors
(this is a research toolkit: silently imputing would change the experiment).
Blank lines are skipped. Every problem is reported as `path:line: column N
('name'): what is wrong`, so it can be fixed without opening a debugger.

Class labels may be integers or strings. Either way they are mapped to
`0..k-1` in sorted order (numeric order for integers, so `2 < 10`; string
order otherwise); `read_csv` also returns the original labels (`classes`), so
`classes[y[i]]` is row `i`'s label as written in the file.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxopt_lab._checks import check_choice, closest

__all__ = ["CSVData", "CSVFormatError", "CSVFileNotFoundError", "read_csv", "load_csv", "TASKS"]

TASKS = ("classification", "regression")


class CSVFormatError(ValueError):
    """The file exists but its content cannot be used; the message names file, line and column."""


class CSVFileNotFoundError(FileNotFoundError, ValueError):
    """The file does not exist. A `FileNotFoundError` that is also a `ValueError` (bad input)."""


class CSVData(NamedTuple):
    """What `read_csv` found in a file.

    Attributes:
      x: `float64` features of shape `(n, d)`, columns in `feature_names` order.
      y: `int64` class indices `0..k-1` (classification) or `float64` targets
        (regression), shape `(n,)`.
      feature_names: the feature columns' names, in order.
      classes: the original labels, sorted; `classes[y[i]]` is row `i`'s label
        as written. Empty for regression.
      label_column: name of the label column.
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    classes: list[int] | list[str]
    label_column: str


def _parse_number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_csv(
    path: str | os.PathLike,
    label_column: str,
    *,
    feature_columns: Sequence[str] | None = None,
    task: str = "classification",
    delimiter: str = ",",
) -> CSVData:
    """Read features and labels from a CSV file with a header row.

    Args:
      path: the CSV file.
      label_column: name of the column holding the labels (or regression targets).
      feature_columns: names of the feature columns, in the order wanted;
        default: every column but the label, in file order.
      task: "classification" (labels mapped to `0..k-1`, at least 2 classes) or
        "regression" (finite float targets).
      delimiter: the field separator.

    Raises:
      CSVFileNotFoundError: no such file (also a `FileNotFoundError` and a `ValueError`).
      CSVFormatError: (a `ValueError`) an empty file, a missing or duplicated
        column, a ragged row, an empty, non-numeric, NaN or inf value, no data
        rows, or a single class.
    """
    check_choice("task", task, TASKS)
    if isinstance(feature_columns, str):
        feature_columns = [feature_columns]
    where = os.fspath(path)
    header, header_line, rows = _read_rows(where, delimiter)
    position = _column_positions(where, header, header_line)
    if label_column not in position:
        raise CSVFormatError(
            f"{where}:{header_line}: no column named {label_column!r} for label_column"
            f"{closest(label_column, header)}: columns are {header}"
        )
    feature_names = _feature_names(where, header, header_line, position, label_column, feature_columns)
    if not rows:
        raise CSVFormatError(f"{where}: no data rows after the header on line {header_line}")
    label_at = position[label_column]
    x, raw_labels = _features_and_labels(where, header, rows, [position[n] for n in feature_names],
                                         label_at, label_column)
    if task == "regression":
        y = np.array(
            [
                _cell_number(where, line, label_at, label_column, raw)
                for (line, _), raw in zip(rows, raw_labels, strict=True)
            ],
            dtype=np.float64,
        )
        return CSVData(x, y, feature_names, [], label_column)

    y, classes = _encode_labels(where, rows, label_at, label_column, raw_labels)
    return CSVData(x, y, feature_names, classes, label_column)


def _read_rows(where: str, delimiter: str) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
    """(header, its line number, [(line number, cells)] of the data rows); blank lines skipped.

    The header is the first non-blank line, its names stripped; a file without one is an error.
    """
    if not os.path.exists(where):
        raise CSVFileNotFoundError(f"{where}: no such file")
    if os.path.isdir(where):
        raise CSVFormatError(f"{where}: is a directory, not a CSV file")
    # utf-8-sig: files saved by spreadsheet programs often start with a byte-order mark.
    with open(where, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header: list[str] | None = None
        header_line = 0
        rows: list[tuple[int, list[str]]] = []
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header, header_line = [cell.strip() for cell in row], reader.line_num
                else:
                    rows.append((reader.line_num, row))
        except csv.Error as e:
            # e.g. a field over the csv module's limit (csv.field_size_limit(), 131072 characters)
            raise CSVFormatError(f"{where}:{reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise CSVFormatError(
                f"{where}: after line {reader.line_num}: not UTF-8 text (byte {e.start} of a block: {e.reason})"
            ) from None
    if header is None:
        raise CSVFormatError(f"{where}: the file is empty: expected a header row of column names")
    return header, header_line, rows


def _column_positions(where: str, header: list[str], header_line: int) -> dict[str, int]:
    """Column name -> index, after checking every name is non-empty and unique."""
    position: dict[str, int] = {}  # one pass, so wide files stay linear
    for j, name in enumerate(header):
        if not name:
            raise CSVFormatError(f"{where}:{header_line}: column {j + 1} has an empty name in the header")
        if name in position:
            raise CSVFormatError(f"{where}:{header_line}: column {j + 1}: the name {name!r} appears twice")
        position[name] = j
    return position


def _feature_names(
    where: str,
    header: list[str],
    header_line: int,
    position: dict[str, int],
    label_column: str,
    feature_columns: Sequence[str] | None,
) -> list[str]:
    """The feature columns: those asked for (each existing, not the label, listed once), else all but the label."""
    if feature_columns is None:
        feature_names = [name for name in header if name != label_column]
    else:
        feature_names = list(feature_columns)
        for name in feature_names:
            if name not in position:
                raise CSVFormatError(
                    f"{where}:{header_line}: no column named {name!r} in feature_columns"
                    f"{closest(name, header)}: columns are {header}"
                )
            if name == label_column:
                raise CSVFormatError(
                    f"{where}: feature_columns includes the label column {label_column!r}: the label cannot "
                    "also be a feature"
                )
        seen: set[str] = set()
        duplicated = sorted({name for name in feature_names if name in seen or seen.add(name)})
        if duplicated:
            raise CSVFormatError(f"{where}: feature_columns lists {duplicated} more than once")
    if not feature_names:
        raise CSVFormatError(f"{where}: no feature columns: the only column is the label {label_column!r}")
    return feature_names


def _features_and_labels(
    where: str,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    feature_at: list[int],
    label_at: int,
    label_column: str,
) -> tuple[np.ndarray, list[str]]:
    """The `float64` features `(n, d)` and the label cells as written (stripped, non-empty)."""
    x = np.empty((len(rows), len(feature_at)), dtype=np.float64)
    raw_labels: list[str] = []
    for i, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise CSVFormatError(
                f"{where}:{line}: ragged row: {len(row)} fields where the header has {len(header)}"
            )
        for k, j in enumerate(feature_at):
            x[i, k] = _cell_number(where, line, j, header[j], row[j])
        label = row[label_at].strip()
        if not label:
            place = f"{where}:{line}: column {label_at + 1} ({label_column!r})"
            raise CSVFormatError(f"{place}: the label is empty")
        raw_labels.append(label)
    return x, raw_labels


def _cell_number(where: str, line: int, j: int, name: str, cell: str) -> float:
    text = cell.strip()
    place = f"{where}:{line}: column {j + 1} ({name!r})"
    if not text:
        raise CSVFormatError(f"{place}: empty value (missing values are not supported)")
    value = _parse_number(text)
    if value is None:
        raise CSVFormatError(f"{place}: {text!r} is not a number")
    if not math.isfinite(value):
        raise CSVFormatError(f"{place}: {text!r} is not finite (NaN and inf are not allowed)")
    return value


def _encode_labels(
    where: str,
    rows: list[tuple[int, list[str]]],
    label_at: int,
    label_column: str,
    raw_labels: list[str],
) -> tuple[np.ndarray, list[int] | list[str]]:
    numbers = [_parse_number(label) for label in raw_labels]
    if all(value is not None for value in numbers):
        # Numeric labels must be whole numbers: a real-valued column is a regression target.
        for (line, _), raw, value in zip(rows, raw_labels, numbers, strict=True):
            if not math.isfinite(value) or value != int(value):
                what = "not finite" if not math.isfinite(value) else "not a whole number"
                raise CSVFormatError(
                    f"{where}:{line}: column {label_at + 1} ({label_column!r}): the class label {raw!r} is "
                    f"{what}; use task='regression' for real-valued targets"
                )
        labels: list = [int(value) for value in numbers]
    else:
        labels = raw_labels
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise CSVFormatError(
            f"{where}: column {label_at + 1} ({label_column!r}) holds a single class ({classes[0]!r}) in all "
            f"{len(labels)} rows: classification needs at least 2 classes"
        )
    index = {label: k for k, label in enumerate(classes)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    return y, classes


def load_csv(
    path: str | os.PathLike,
    label_column: str,
    *,
    feature_columns: Sequence[str] | None = None,
    task: str = "classification",
    delimiter: str = ",",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`(x, y, feature_names)` of a CSV file; see `read_csv` for the arguments and errors."""
    data = read_csv(path, label_column, feature_columns=feature_columns, task=task, delimiter=delimiter)
    return data.x, data.y, data.feature_names
