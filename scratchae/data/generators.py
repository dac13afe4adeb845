"""Random generators for the data transforms, matched to the array module of the data."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..errors import ArgumentError


def generator_for(rng: Any, xp: ModuleType, what: str) -> Any:
    """``xp.random.default_rng(rng)`` for an int seed; a Generator of ``xp`` is returned as it is.

    A NumPy generator for CuPy data (or the reverse), or anything else, raises :class:`ArgumentError`.
    """
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return xp.random.default_rng(int(rng))
    if isinstance(rng, xp.random.Generator):
        return rng
    raise ArgumentError(
        f"{what}: rng must be an int seed or a {xp.__name__}.random.Generator (for data of that module), "
        f"got {type(rng).__module__}.{type(rng).__name__}"
    )
