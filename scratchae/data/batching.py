"""Mini-batch index iteration."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..backend import as_rng
from .checks import check_count


def iterate_minibatches(
    n: int, batch_size: int, rng: np.random.Generator | int | None = None, shuffle: bool = True
) -> Iterator[np.ndarray]:
    """Iterate over int64 index arrays covering ``0..n-1`` once each, ``batch_size`` at a time.

    The last batch is kept even when it is smaller.

    With ``shuffle`` the order is a permutation drawn from ``rng`` (a NumPy generator or an int
    seed; None draws fresh entropy and is not reproducible); without it the order is 0..n-1.
    Arguments are checked when called, before the first batch.
    """
    n = check_count(n, "n")
    batch_size = check_count(batch_size, "batch_size")
    if shuffle:
        order = (np.random.default_rng() if rng is None else as_rng(rng, "cpu", "iterate_minibatches")).permutation(n)
    else:
        order = np.arange(n, dtype=np.int64)
    return (order[start : start + batch_size] for start in range(0, n, batch_size))
