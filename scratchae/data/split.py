"""Deterministic train/test split of one set of examples."""

from __future__ import annotations

import numpy as np

from ..backend import check_seed
from ..errors import ArgumentError, DataError


def split_indices(
    n: int, test_fraction: float, labels: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of ``n`` examples, each sorted ascending.

    A seeded permutation picks ``round(test_fraction * n_c)`` test examples from each class
    ``c`` when ``labels`` (n,) are given (stratified), else ``round(test_fraction * n)`` in all.
    The same ``(n, test_fraction, labels, seed)`` always gives the same split.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ArgumentError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(check_seed(seed, "the split seed"))
    order = rng.permutation(n)
    groups = [order] if labels is None else [order[labels[order] == c] for c in np.unique(labels)]
    test = np.concatenate([g[: round(test_fraction * len(g))] for g in groups])
    if len(test) == 0 or len(test) == n:
        raise DataError(
            f"test_fraction={test_fraction} of {n} examples leaves an empty train or test set: "
            "give more examples, another test_fraction, or a separate test part"
        )
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
