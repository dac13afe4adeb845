"""Paths through a model's latent space: the straight line between the codes of two examples."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, ShapeError
from .validation import as_array, check_class_labels, check_no_labels, check_positive_int


def _one_example(model: Any, x: Any, name: str) -> Any:
    """``x`` (input_dim,) or (1, input_dim) as a checked (1, input_dim) array on the model's device."""
    arr = as_array(x, name)
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[0] != 1):
        raise ShapeError(
            f"{name} must be one example, shape ({model.input_dim},) or (1, {model.input_dim}), got {tuple(arr.shape)}"
        )
    return model.check_input(arr.reshape(1, -1), name)


def interpolate(model: Any, a: Any, b: Any, steps: int = 9, y: Any = None) -> tuple[Any, Any]:
    """(Z (steps, latent_dim), images (steps, input_dim)): the codes z_t = (1 - t) z_a + t z_b for t in
    linspace(0, 1, steps), z = ``model.transform(x)`` of the examples ``a`` and ``b`` (each (input_dim,)
    or (1, input_dim); a VAE's posterior means), and their decodings ``model.inverse_transform(z_t)``, so
    the first and last images are the two examples' reconstructions. ``y``: the class of both, for a
    conditional VAE (its path runs within that class)."""
    if not all(callable(getattr(model, name, None)) for name in ("check_input", "transform", "inverse_transform")):
        raise ArgumentError(
            f"interpolate needs an autoencoder or a VAE (encode with transform, decode with inverse_transform), "
            f"got {type(model).__name__}"
        )
    steps = check_positive_int("steps", steps)
    if steps < 2:
        raise ArgumentError(f"steps must be at least 2 (the two ends), got {steps}")
    if not getattr(model, "needs_labels", False):
        check_no_labels(y, type(model).__name__)
    xp = backend.array_module(model.device)
    X = xp.concatenate([_one_example(model, a, "a"), _one_example(model, b, "b")])
    labels = []  # the path's one class, which the model takes as the label of every row
    if y is not None:
        labels = check_class_labels(np.ravel(backend.to_numpy(as_array(y, "y"))), 1, model.n_classes).tolist()
    codes = model.transform(X, *labels)
    t = xp.linspace(0.0, 1.0, steps, dtype=codes.dtype)[:, None]
    Z = (1 - t) * codes[0] + t * codes[1]
    return Z, model.inverse_transform(Z, *labels)
