"""Validation of loaded arrays: features, labels, counts.

Every check raises a scratchae error naming the array (``what``) and the expected vs found
value: :class:`DTypeError` for non-numeric data, :class:`ShapeError` for a wrong rank or length,
:class:`DataError` for NaN/inf, negative or fractional labels, or an empty array.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError, DTypeError, ShapeError
from ..validation import check_class_labels, check_positive_int


def _numeric(data: Any, what: str) -> np.ndarray:
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"{what} must be numeric (bool, integer or float), got dtype {arr.dtype}")
    return arr


def check_features(data: Any, what: str) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Validate features and return them as float32 ``(N, D)`` with the image shape, if any.

    ``(N, D)`` stays as it is (image shape None); ``(N, H, W)`` images are flattened to
    ``(N, H*W)`` and ``(H, W)`` is returned. Values are not rescaled here.
    """
    arr = _numeric(data, what)
    if arr.ndim not in (2, 3):
        raise ShapeError(f"{what} must have shape (N, D) or (N, H, W), got shape {arr.shape} (rank {arr.ndim})")
    if arr.shape[0] == 0 or math.prod(arr.shape[1:]) == 0:
        raise ShapeError(f"{what} is empty (shape {arr.shape}): need at least one example of at least one feature")
    image_shape = tuple(arr.shape[1:]) if arr.ndim == 3 else None
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=np.float32)
    check_finite(out, what)
    return out, image_shape


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise :class:`DataError` naming how many NaN/inf entries ``x`` (N, D) has and the first one's place."""
    bad = ~np.isfinite(x)
    if bad.any():
        n_nan = int(np.isnan(x).sum())
        n_inf = int(bad.sum()) - n_nan
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{what} has {n_nan} NaN and {n_inf} infinite values (inf includes values beyond float32 range); "
            f"the first is at row {row}, column {col}"
        )


def check_labels(data: Any, n: int, what: str) -> np.ndarray:
    """Validate class labels for ``n`` examples: shape ``(n,)``, whole numbers >= 0 (a bool column reads as
    0 and 1); return int64 (see ``check_class_labels``)."""
    arr = _numeric(data, what)
    return check_class_labels(arr.astype(np.int64) if arr.dtype.kind == "b" else arr, n, None, what)


def check_count(value: Any, name: str, allow_none: bool = False) -> int | None:
    """A positive int (not a bool, see ``check_positive_int``), or None where allowed."""
    return None if value is None and allow_none else check_positive_int(name, value)
