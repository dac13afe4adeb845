"""Checks and reductions shared by the ops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor

REDUCTIONS = ("batchmean", "sum", "mean", "none")


def check_reduction(reduction: str) -> str:
    """``reduction`` if it is one of REDUCTIONS, else an ArgumentError."""
    if reduction not in REDUCTIONS:
        raise ArgumentError(f"unknown reduction {reduction!r}: expected one of {', '.join(REDUCTIONS)}")
    return reduction


def check_same_shape(op: str, a: Any, b: Any, names: tuple[str, str]) -> None:
    """A ShapeError naming ``op`` and the arguments ``names`` unless a and b have the same shape."""
    if a.shape != b.shape:
        raise ShapeError(
            f"{op}: {names[0]} has shape {tuple(a.shape)} but {names[1]} has shape {tuple(b.shape)}; they must be equal"
        )


def reduce_loss(values: Any, reduction: str) -> Any:
    """Reduce elementwise loss values of shape (N, ...).

    ``sum``: summed over all elements; ``mean``: averaged over all elements; ``batchmean``: summed over
    every axis but the first, averaged over the first (N); ``none``: unchanged.
    """
    return values if reduction == "none" else reduce_total(values.sum(), tuple(values.shape), reduction)


def reduce_total(total: Any, shape: tuple[int, ...], reduction: str) -> Any:
    """The reduced loss from the sum of the values of an array of ``shape`` (any reduction but none)."""
    return total if reduction == "sum" else total / _averaged_count(shape, reduction)


def reduction_scale(gy: Any, shape: tuple[int, ...], reduction: str) -> Any:
    """d(reduced)/d(values) times the upstream gradient ``gy``, broadcastable to ``shape``."""
    return gy if reduction in ("none", "sum") else gy / _averaged_count(shape, reduction)


REDUCTION_FACTORS = {"batchmean": " * dL / N", "mean": " * dL / numel", "sum": " * dL", "none": " * dl"}


def reduction_formula(template: str, reduction: str) -> str:
    """A loss's backward formula with its reduction's factor: ``{dL}`` in ``template`` becomes
    `` * dL / N`` (batchmean), `` * dL / numel`` (mean), `` * dL`` (sum) or `` * dl`` (none, elementwise)."""
    return template.format(dL=REDUCTION_FACTORS[reduction])


def _averaged_count(shape: tuple[int, ...], reduction: str) -> int:
    """How many values ``mean`` (all elements) or ``batchmean`` (the first axis) averages over, at least 1."""
    return max(math.prod(shape if reduction == "mean" else shape[:1]), 1)


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)


def constant_like(value: Any, other: Any) -> Any:
    """A Python number as a 0-d array of ``other``'s dtype, so constants never change dtypes. Made by
    ``full`` where the data are: on the GPU a fill kernel, not a copy from the host."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ref = other.data if isinstance(other, Tensor) else backend.as_float_array(other)
        if abs(value) > float(np.finfo(ref.dtype).max) and (isinstance(value, int) or math.isfinite(value)):
            raise DTypeError(f"the constant {value!r:.40} is beyond the {ref.dtype} range of the op's tensors")
        return backend.array_module_of(ref).full((), value, dtype=ref.dtype)
    return value
