"""Binarize intensities in [0, 1] for a Bernoulli likelihood."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import as_float_array, as_rng, device_of, to_float
from ..errors import ArgumentError, DataError


def binarize(X: Any, threshold: float | None = None, rng: Any = None) -> Any:
    """0/1 values in the dtype and on the device of ``X`` (N, D).

    Fixed: ``x > threshold`` (``threshold`` 0.5 when neither argument is given).
    Stochastic, with ``rng`` (an int seed or a generator of X's array module): each entry is
    drawn as ``x ~ Bernoulli(X)``, i.e. 1 when ``u < X`` for ``u ~ U[0, 1)``; X must lie in [0, 1].
    A VAE trained on fresh stochastic draws each epoch sees the data as probabilities rather
    than as one fixed 0/1 image.
    """
    X = as_float_array(X)
    number = isinstance(threshold, (int, float, np.integer, np.floating)) and not isinstance(threshold, bool)
    if threshold is not None and not (number and math.isfinite(threshold)):
        raise ArgumentError(f"binarize: threshold must be a finite number, got {threshold!r:.60}")
    if rng is None:
        t = 0.5 if threshold is None else float(threshold)
        return (X > t).astype(X.dtype)
    if threshold is not None:
        raise ArgumentError("binarize: give threshold (fixed) or rng (stochastic), not both")
    gen = as_rng(rng, device_of(X), "binarize")
    if X.size and (to_float(X.min()) < 0 or to_float(X.max()) > 1):
        raise DataError(
            f"binarize: stochastic binarization needs values in [0, 1], got {to_float(X.min())}..{to_float(X.max())}"
        )
    return (gen.random(X.shape, dtype=X.dtype) < X).astype(X.dtype)
