"""Input corruption for denoising autoencoders, on NumPy or CuPy arrays.

``corrupt`` is a pure function of ``(X, rng)``: the same generator state gives the same noise,
so a model's loss with its noise injected is deterministic and can be gradient-checked.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..backend import array_module_of, as_float_array, as_rng, device_of
from ..errors import ArgumentError

NOISE_KINDS = ("gaussian", "masking", "salt_pepper")


def check_level(kind: str, level: Any, what: str = "corrupt: level") -> float:
    """gaussian: a standard deviation >= 0; masking and salt_pepper: a probability in [0, 1].

    ``what`` names the argument in the error message.
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise ArgumentError(f"{what} must be a number, got {level!r}")
    value = float(level)
    upper = math.inf if kind == "gaussian" else 1.0
    if not math.isfinite(value) or not 0.0 <= value <= upper:
        expected = "a finite number >= 0 (noise std)" if kind == "gaussian" else "a probability in [0, 1]"
        raise ArgumentError(f"{what} for {kind!r} must be {expected}, got {level!r}")
    return value


def corrupt(X: Any, kind: str, level: float, rng: Any) -> Any:
    """A corrupted copy of ``X`` (N, D), same dtype and device.

    - "gaussian": ``X + level * eps``, eps ~ N(0, 1) per entry; not clipped, so values may leave [0, 1].
    - "masking": each entry set to 0 with probability ``level``.
    - "salt_pepper": each entry, with probability ``level``, set to 0 or 1 with equal chance
      (one uniform draw u per entry: u < level/2 -> 0, level/2 <= u < level -> 1).

    ``rng``: an int seed or a ``xp.random.default_rng(...)`` generator of X's array module.
    """
    if kind not in NOISE_KINDS:
        raise ArgumentError(f"corrupt: unknown noise kind {kind!r}: expected one of {', '.join(NOISE_KINDS)}")
    level = check_level(kind, level)
    X = as_float_array(X)
    xp = array_module_of(X)
    gen = as_rng(rng, device_of(X), "corrupt")
    if kind == "gaussian":
        return X + X.dtype.type(level) * gen.standard_normal(X.shape, dtype=X.dtype)
    u = gen.random(X.shape, dtype=X.dtype)
    if kind == "masking":
        return xp.where(u < level, X.dtype.type(0), X)
    out = xp.where(u < level / 2, X.dtype.type(0), X)
    return xp.where((u >= level / 2) & (u < level), X.dtype.type(1), out)
