"""The user's own arrays: ``.npy`` (features only), ``.npz`` (named arrays) and numeric CSV."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, DataError, DataNotFoundError, DTypeError, ShapeError
from . import npyio
from .raw import RawData

SUFFIXES = (".npy", ".npz", ".csv")
# role -> accepted .npz keys, in order of preference
NPZ_KEYS = {
    "X": ("X", "x"),
    "y": ("y", "labels"),
    "X_test": ("X_test", "x_test"),
    "y_test": ("y_test", "labels_test"),
}


def full_scale_of(X: np.ndarray) -> float | None:
    """uint8 data is taken as 0..255 pixel values; anything else has no known full scale."""
    return 255.0 if X.dtype == np.uint8 else None


def read_npy(path: Path) -> RawData:
    """A ``.npy`` array of features (N, D) or (N, H, W); it has no labels."""
    X = npyio.read_npy(path)
    return RawData(X=X, full_scale=full_scale_of(X))


def read_npz(path: Path) -> RawData:
    """A ``.npz`` archive with features under ``X``/``x`` and optional ``y``/``labels``, ``X_test``, ``y_test``."""
    with npyio.NpzArchive(path) as archive:
        keys = set(archive.keys())
        parts = {}
        for role, names in NPZ_KEYS.items():
            key = next((k for k in names if k in keys), None)
            if key is not None:
                parts[role] = archive.read(key)
    if "X" not in parts:
        expected = ", ".join(f"{'/'.join(names)}" for names in NPZ_KEYS.values())
        raise DataError(
            f"{path} has no features array: expected key X or x (optional keys: {expected}), "
            f"found {sorted(keys) or 'no arrays'}"
        )
    has_test = "X_test" in parts
    if ("y_test" in parts and not has_test) or (has_test and ("y" in parts) != ("y_test" in parts)):
        raise DataError(
            f"{path}: a test part needs both X_test and (when the training part has labels) y_test; "
            f"found {sorted(keys)}"
        )
    return RawData(**parts, full_scale=full_scale_of(parts["X"]))


CSV_ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark that some spreadsheets write first


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _header_lines(path: Path) -> int:
    """1 when the first line is a header (none of its fields is a number), else 0."""
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        first = next(csv.reader(f), [])
    return int(bool(first) and not any(_is_number(field) for field in first))


def _all_numbers(parts: list[str]) -> bool:
    """Whether a field split on another separator gives two or more numbers (a file with that separator)."""
    return len(parts) > 1 and all(_is_number(p) for p in parts)


def _diagnose_csv(path: Path, skip: int) -> None:
    """Find the first ragged or non-numeric line of a CSV file and raise an error naming it."""
    width = first_line = None
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if line_no <= skip or not row:
                continue
            if width is None:
                width, first_line = len(row), line_no
            elif len(row) != width:
                raise DataError(
                    f"{path}: line {line_no} has {len(row)} fields, expected {width} as on line {first_line}"
                )
            for col, field in enumerate(row, start=1):
                if not _is_number(field):
                    shown = repr(field) if len(field) <= 40 else f"{field[:37]!r}..."
                    other = next((sep for sep in ";\t| " if _all_numbers(field.strip().split(sep))), None)
                    hint = f" (fields are separated by commas, not by {other!r})" if other else ""
                    raise DTypeError(f"{path}: line {line_no}, column {col}: {shown} is not a number{hint}")


CSV_LABEL_COLUMNS = ("first", "last")


def csv_label_column(labels: bool | str | None) -> str | None:
    """``csv_labels`` as "first", "last" (True) or None (False, None: no label column)."""
    if labels is None or labels is False:
        return None
    if labels is True:
        return "last"
    if labels in CSV_LABEL_COLUMNS:
        return labels
    raise ArgumentError(f"csv_labels must be False, True (the last column), 'first' or 'last', got {labels!r}")


def read_csv(path: Path, labels: bool | str | None = False) -> RawData:
    """A numeric CSV file, one example a line, comma-separated; ``labels``: the class label is the
    first or the last column ("first", "last"; True: the last), else every column is a feature.

    A first line with no numeric field is taken as a header and skipped; blank lines are skipped.
    """
    column = csv_label_column(labels)
    try:
        skip = _header_lines(path)
        try:
            with warnings.catch_warnings():  # a file without data lines is reported below, in our words
                warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
                table = np.loadtxt(
                    path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64, comments=None, encoding=CSV_ENCODING
                )
        except ValueError as exc:
            _diagnose_csv(path, skip)
            raise DataError(f"{path} cannot be read as a numeric CSV file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a text CSV file: {exc}") from exc
    if table.size == 0:
        raise ShapeError(f"{path} is empty: it has no data lines")
    if column is None:
        return RawData(X=table)
    if table.shape[1] < 2:
        raise DataError(f"{path}: a label column ({column}) needs at least 2 columns (a label and features), got 1")
    if column == "first":
        return RawData(X=table[:, 1:], y=table[:, 0])
    return RawData(X=table[:, :-1], y=table[:, -1])


def read_array_file(path: Path, csv_labels: bool | str | None = False) -> RawData:
    """Dispatch on the suffix: ``.npy``, ``.npz`` or ``.csv``."""
    if not path.is_file():
        raise DataNotFoundError(f"data file {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy(path)
    if suffix == ".npz":
        return read_npz(path)
    return read_csv(path, labels=csv_labels)
