"""Input checks shared by models, metrics and the command line: clear errors, nothing deep in NumPy."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, DataError, DTypeError, ShapeError
from .tensor import Tensor


def as_array(X: Any, name: str) -> Any:
    """``X`` as an array (a Tensor's data, an array as it is, anything else through ``np.asarray``);
    a ragged nested list raises ShapeError instead of NumPy's ValueError."""
    if isinstance(X, Tensor):
        X = X.data
    if hasattr(X, "dtype"):
        return X
    try:
        return np.asarray(X)
    except ValueError as exc:  # "inhomogeneous shape"
        raise ShapeError(f"{name} is ragged (rows of different lengths), expected a rectangular array: {exc}") from exc


def check_matrix(X: Any, name: str, width: int | None, dtype: Any, device: str) -> Any:
    """``X`` as an (N, width) floating array of ``dtype`` on ``device``, finite, N >= 1.

    Integer, bool and float16 data are converted to ``dtype``; object or string data are refused,
    and so are values that overflow ``dtype`` (float64 beyond float32 range becomes inf).
    """
    arr = as_array(X, name)
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if arr.ndim != 2:
        expected = f"(N, {width})" if width is not None else "(N, D)"
        raise ShapeError(f"{name} must be a 2-D array {expected}, got shape {tuple(arr.shape)}")
    if width is not None and arr.shape[1] != width:
        raise ShapeError(f"{name} has {arr.shape[1]} features (shape {tuple(arr.shape)}), the model expects {width}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(arr.shape)}): need at least one example")
    with np.errstate(over="ignore"):  # an overflow to inf is reported below
        arr = backend.as_float_array(arr, dtype=dtype, device=device)
    xp = backend.array_module_of(arr)
    bad = int((~xp.isfinite(arr)).sum())
    if bad:
        rows = xp.nonzero(~xp.isfinite(arr).all(axis=1))[0][:5]
        raise DataError(
            f"{name} has {bad} NaN or infinite values (first rows: {backend.to_numpy(rows).tolist()}); "
            f"values beyond the {arr.dtype} range count as infinite"
        )
    return arr


def beyond_range(values: Any, dtype: Any) -> float | None:
    """The largest magnitude of a floating array whose values would overflow ``dtype`` on a cast (float64
    weights beyond float32's 3.4e38 become inf), else None."""
    if getattr(values, "dtype", None) is None or values.dtype.kind != "f" or not values.size:
        return None
    if values.dtype.itemsize <= np.dtype(dtype).itemsize:
        return None
    top = float(backend.array_module_of(values).abs(values).max())
    return top if top > float(np.finfo(dtype).max) else None


def check_unit_interval(
    X: Any, name: str, reason: str, instead: str = "a squared-error loss", how: str = "e.g. pixels / 255"
) -> None:
    """Raise a DataError unless every value of the (finite) array ``X`` lies in [0, 1]; ``reason`` says
    what needs that (a BCE / Bernoulli loss, whose targets are probabilities), ``instead`` what takes any
    values, ``how`` how to scale."""
    xp = backend.array_module_of(X)
    low, high = float(xp.min(X)), float(xp.max(X))
    if low < 0 or high > 1:
        raise DataError(
            f"{name} holds values from {low:.8g} to {high:.8g}, but {reason} needs targets in [0, 1]: "
            f"scale the data to [0, 1] ({how}), or use {instead}"
        )


def check_no_labels(y: Any, kind: str, name: str = "y") -> None:
    """Refuse labels ``y`` given to a model of ``kind`` that takes none (only a conditional model does)."""
    if y is not None:
        raise ArgumentError(f"{name} is for a model conditioned on labels (ConditionalVAE); {kind} takes none")


LARGEST_LABEL = 2**53  # a label above it is no class number (and would not survive float64 or the cast)


def check_class_labels(y: Any, n: int, n_classes: int | None, name: str = "y", device: str = "cpu") -> Any:
    """``y`` as an int64 array (n,) with values in [0, n_classes) on ``device`` (n_classes None: 0 to 2**53).

    Integer labels and floats holding whole numbers are accepted; bool, fractional, NaN/inf,
    string and object labels are refused.
    """
    if y is None:
        values = "0, 1, 2, ..." if n_classes is None else f"[0, {n_classes - 1}]"
        raise ArgumentError(f"{name} is required: labels of shape ({n},) with values in {values}")
    arr = backend.to_numpy(as_array(y, name))
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            first = arr[~whole].flat[0]
            raise DataError(f"{name} must hold integer class labels, got dtype {arr.dtype} with the value {first}")
    elif arr.dtype.kind not in "iu":
        raise DTypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ShapeError(f"{name} has shape {tuple(arr.shape)}, expected ({n},): one label per example")
    top = LARGEST_LABEL if n_classes is None else n_classes - 1
    if n and (arr.min() < 0 or arr.max() > top):  # before the cast to int64: no wrap
        low, high = (v.item() for v in (arr.min(), arr.max()))
        bound = "be >= 0 (and at most 2**53)" if n_classes is None else f"lie in [0, {top}] ({n_classes} classes)"
        raise DataError(f"{name} must {bound}, got values from {low} to {high}")
    return backend.to_device(arr.astype(np.int64), device)


def check_number(name: str, value: Any, allow_zero: bool = False) -> float:
    """``value`` as a float: a finite real number > 0 (>= 0 with ``allow_zero``; a bool is refused)."""
    bound = ">= 0" if allow_zero else "> 0"
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    # a float's value fits float64; an int may not (10**400 is taken as inf, not an OverflowError)
    fits = number and (isinstance(value, (float, np.floating)) or abs(int(value)) <= sys.float_info.max)
    as_float = float(value) if fits else math.inf
    if not math.isfinite(as_float) or as_float < 0 or (as_float == 0 and not allow_zero):
        raise ArgumentError(f"{name} must be a finite number {bound}, got {value!r:.60}")
    return as_float


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1 (a bool or a float is refused with an ArgumentError naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
