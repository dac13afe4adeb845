"""Weight initializers: ``init(rng, fan_in, fan_out) -> (fan_in, fan_out)`` float64 array on the host.

Glorot/Xavier: uniform limit sqrt(6 / (fan_in + fan_out)), normal std sqrt(2 / (fan_in + fan_out)).
He: uniform limit sqrt(6 / fan_in), normal std sqrt(2 / fan_in).  Zeros: all 0.
Inside ``placeholder_weights()`` layers skip all of this and hold read-only zero placeholders.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable

import numpy as np

from .. import backend
from ..errors import ArgumentError

Initializer = Callable[[np.random.Generator, int, int], np.ndarray]


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """W (fan_in, fan_out) ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """W (fan_in, fan_out) ~ N(0, 2 / (fan_in + fan_out))."""
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """W (fan_in, fan_out) ~ U(-a, a), a = sqrt(6 / fan_in)."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """W (fan_in, fan_out) ~ N(0, 2 / fan_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def zeros(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """W (fan_in, fan_out) = 0 (``rng`` unused: the initializers' common signature)."""
    return np.zeros((fan_in, fan_out))


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
}

RELU_FAMILY = ("relu", "leaky_relu", "elu")


def get_initializer(init: str | Initializer, activation: str = "identity") -> Initializer:
    """An initializer by name; ``"auto"`` is He normal for the relu family, Glorot uniform otherwise."""
    if callable(init):
        return init
    if init == "auto":
        return he_normal if activation in RELU_FAMILY else glorot_uniform
    if init not in INITIALIZERS:
        raise ArgumentError(f"unknown init {init!r}: expected 'auto' or one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[init]


_placeholders: contextvars.ContextVar[bool] = contextvars.ContextVar("placeholder_weights", default=False)


def placeholder_weights() -> contextlib.AbstractContextManager[None]:
    """Context in which new layers hold read-only zero placeholders of their weights' shapes (one
    broadcast scalar each: no memory, no random draws) instead of initial values. For a model whose
    every parameter is loaded right after (``scratchae.load``); training a placeholder fails."""
    return backend.context_value(_placeholders, True)


def placeholders_enabled() -> bool:
    """Whether layers built now get read-only placeholders (inside ``placeholder_weights()``)."""
    return _placeholders.get()
