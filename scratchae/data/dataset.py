"""``load``: one entry point for the named data sets and the user's own array files."""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, DataError, ShapeError
from .checks import check_count, check_features, check_labels
from .files import SUFFIXES, full_scale_of, read_array_file
from .raw import RawData
from .sources import load_digits, load_idx_set
from .split import split_indices

DATASETS = ("digits", "fashion-mnist", "mnist")
SCALES = ("auto", "minmax", None)
# labels whose largest value makes more classes than this, and this many times more than the distinct labels,
# are no class numbers (ids, or a stray value): refused, where a model would build one-hot rows that wide
SPARSE_CLASSES, SPARSE_RATIO = 1000, 100


@dataclass(frozen=True)
class Dataset:
    """A train and a test part, validated: X (N, D) float32, y (N,) int64 or None.

    ``image_shape`` (H, W) lets a plot reshape a row of X into an image (None for non-images);
    ``n_classes`` is None when there are no labels. ``minmax``: the (min, max) of the raw training
    part that ``scale="minmax"`` mapped onto [0, 1] (None under another scaling), for new data;
    ``full_scale``: the value ``scale="auto"`` divided by (255 for uint8, 16 for the digits; None
    when it divided by nothing).
    """

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    image_shape: tuple[int, ...] | None
    n_classes: int | None
    name: str
    class_names: tuple[str, ...] | None = None
    minmax: tuple[float, float] | None = None
    full_scale: float | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
        return self.X_train, self.y_train, self.X_test, self.y_test

    def digests(self) -> dict[str, str]:
        """{"train": ..., "test": ...}: a hash of each part's arrays (values, shapes and dtypes), which
        tells whether a source still holds the data a model was trained or tested on."""
        return {"train": _digest(self.X_train, self.y_train), "test": _digest(self.X_test, self.y_test)}


def _digest(X: np.ndarray, y: np.ndarray | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in (X, y):
        if a is not None:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _read(
    name: str | os.PathLike, data_dir: str | os.PathLike | None, csv_labels: bool | str | None
) -> tuple[RawData, str]:
    """The raw arrays of a named data set or an array file, and the name to show for them."""
    key = str(name).lower().replace("_", "-")
    if key == "digits":
        return load_digits(), key
    if key in ("fashion-mnist", "mnist"):
        return load_idx_set(key, data_dir), key
    path = Path(name)
    if path.suffix.lower() not in SUFFIXES:
        raise ArgumentError(
            f"unknown data set {str(name)!r}: expected one of {', '.join(DATASETS)} "
            f"or a path to a {'/'.join(SUFFIXES)} file"
        )
    return read_array_file(path, csv_labels=csv_labels), path.name


def _scale(
    X_train: np.ndarray, X_test: np.ndarray, scale: str | None, full_scale: float | None
) -> tuple[float, float] | None:
    """Rescale both parts in place: "auto" divides by the source's full scale (if known), "minmax" maps
    the training part's min..max onto 0..1 (test values may then fall outside [0, 1]; returns that
    (min, max)), None keeps values."""
    if scale == "auto" and full_scale is not None:
        X_train /= full_scale
        X_test /= full_scale
    elif scale == "minmax":
        lo, hi = float(X_train.min()), float(X_train.max())
        minmax_scale(X_train, (lo, hi))
        minmax_scale(X_test, (lo, hi))
        return lo, hi
    return None


def minmax_scale(X: np.ndarray, minmax: tuple[float, float]) -> np.ndarray:
    """X mapped in place by the training part's (min, max) onto [0, 1]: (X - min) / (max - min)."""
    lo, hi = minmax
    X -= lo
    X /= hi - lo if hi > lo else 1.0
    return X


def _check_image_shape(image_shape: tuple[int, ...] | None, n_features: int) -> tuple[int, ...] | None:
    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    if not shape or min(shape) < 1 or math.prod(shape) != n_features:
        raise ShapeError(
            f"image_shape {shape} does not fit {n_features} features: expected a shape whose product is that"
        )
    return shape


def _first(a: np.ndarray | None, n: int | None) -> np.ndarray | None:
    """The first ``n`` rows of ``a`` as their own array (all of ``a`` when ``n`` is None or too large)."""
    return a if a is None or n is None or n >= len(a) else a[:n].copy()


def _n_classes(raw: RawData, labels: list[np.ndarray], every: list[np.ndarray], name: str) -> int | None:
    """The data set's own class count, else the largest label + 1 of the parts kept (``labels``, the
    training part first; with a warning where some class below it has no training example: a stray
    label, or -1 stored as uint8 255, adds empty classes). ``every``: all the source's labels, before
    any limit, which must be class numbers (not too sparse)."""
    if not labels:
        return None
    top = max(int(y.max()) for y in labels)
    if raw.n_classes is not None and top >= raw.n_classes:
        raise DataError(f"{name}: label {top} is out of range: expected 0..{raw.n_classes - 1}")
    if raw.n_classes is not None:
        return raw.n_classes
    largest, distinct = max(int(y.max()) for y in every), len(np.unique(np.concatenate(every)))
    if largest + 1 > max(SPARSE_CLASSES, SPARSE_RATIO * distinct):
        raise DataError(
            f"{name}: the labels run up to {largest}, which makes {largest + 1} classes for {distinct} distinct "
            f"labels: labels must be class numbers 0, 1, 2, ... (renumber them: np.unique(y, return_inverse=True)[1])"
        )
    present = np.unique(labels[0])
    n_missing = top + 1 - len(present)
    if n_missing:
        # the first few classes without an example lie below len(present) + 8 (no more than len(present) are there)
        first = np.setdiff1d(np.arange(min(top + 1, len(present) + 8)), present)[:8]
        shown = ", ".join(map(str, first)) + (", ..." if n_missing > len(first) else "")
        warnings.warn(
            f"{name}: the labels run from 0 to {top}, so {top + 1} classes, but {n_missing} of them have no "
            f"training example ({shown}): check the labels (or n_train, which may have left them out)",
            UserWarning,
            stacklevel=3,
        )
    return top + 1


def load(
    name: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    scale: str | None = "auto",
    csv_labels: bool | str | None = False,
    image_shape: tuple[int, ...] | None = None,
) -> Dataset:
    """Load, validate and scale a data set.

    ``name``: "digits" (scikit-learn's 8x8 digits, 64 features, values /16), "fashion-mnist"
    (``data_dir``, then /usr/share/datasets/fashion-mnist), "mnist" (``data_dir`` only), or a path
    to a ``.npy``/``.npz``/``.csv`` file. A source without a test part is split by a seeded,
    stratified (when labelled) permutation: ``test_fraction`` of each class goes to the test part.
    ``n_train``/``n_test`` keep at most the first that many examples of each part. ``scale``:
    "auto" maps the source's full scale to 1 (uint8 /255, digits /16; other data unchanged),
    "minmax" maps the training part's min..max onto 0..1, None keeps the values.
    ``csv_labels``: the CSV column holding the class label, "first" or "last" (True: the last).
    ``image_shape`` (H, W) overrides the shape recorded for plotting.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise ArgumentError(f"name must be a data set's name or a file's path, got {type(name).__name__}")
    if scale not in SCALES:
        raise ArgumentError(f"scale must be one of {SCALES}, got {scale!r}")
    n_train, n_test = check_count(n_train, "n_train", True), check_count(n_test, "n_test", True)
    raw, shown = _read(name, data_dir, csv_labels)
    X, found_shape = check_features(raw.X, f"{shown}: X_train")
    y = None if raw.y is None else check_labels(raw.y, len(X), f"{shown}: y_train")
    if raw.X_test is None:
        train, test = split_indices(len(X), test_fraction, y, split_seed)
        X, X_test = X[train], X[test]
        y, y_test = (None, None) if y is None else (y[train], y[test])
    else:
        X_test, _ = check_features(raw.X_test, f"{shown}: X_test")
        if X_test.shape[1] != X.shape[1]:
            raise ShapeError(f"{shown}: X_test has {X_test.shape[1]} features, X_train has {X.shape[1]}")
        y_test = None if raw.y_test is None else check_labels(raw.y_test, len(X_test), f"{shown}: y_test")
    every = [lab for lab in (y, y_test) if lab is not None]  # the labels before the limits
    X, y, X_test, y_test = _first(X, n_train), _first(y, n_train), _first(X_test, n_test), _first(y_test, n_test)
    if scale == "auto" and raw.X_test is not None and full_scale_of(raw.X) != full_scale_of(raw.X_test):
        raise DataError(
            f"{shown}: X has dtype {raw.X.dtype} and X_test dtype {raw.X_test.dtype}, which the 'auto' scaling "
            f"scales differently (uint8 pixels are divided by 255, other dtypes taken as they are): store both "
            f"parts with one dtype, or choose another scaling (scale='minmax' or None)"
        )
    minmax = _scale(X, X_test, scale, raw.full_scale)
    return Dataset(
        X_train=X,
        y_train=y,
        X_test=X_test,
        y_test=y_test,
        image_shape=_check_image_shape(image_shape or found_shape, X.shape[1]),
        n_classes=_n_classes(raw, [lab for lab in (y, y_test) if lab is not None], every, shown),
        name=shown,
        class_names=raw.class_names,
        minmax=minmax,
        full_scale=raw.full_scale if scale == "auto" else None,
    )


def load_dataset(
    name: str | os.PathLike, data_dir: str | os.PathLike | None = None, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(X_train, y_train, X_test, y_test)`` of :func:`load` (same arguments)."""
    return load(name, data_dir, **kwargs).as_tuple()
