"""Losses: MSE, BCE on probabilities, BCE with logits, softmax cross-entropy.

Every loss takes ``reduction``: ``"batchmean"`` (default: summed over every axis but the
first, averaged over the first — the per-example loss, summed over features, averaged over the
batch), ``"sum"``, ``"mean"`` (over all elements) or ``"none"`` (elementwise values).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any

from .. import backend, kernels
from ..errors import DataError, DTypeError, ShapeError
from ..tensor import Function, Tensor
from ._common import (
    check_reduction,
    check_same_shape,
    reduce_loss,
    reduce_total,
    reduction_formula,
    reduction_scale,
)
from .activations import _sigmoid


class PairLoss(Function):
    """A loss summed from elementwise values ``l(a, b)``, reduced by ``reduction``.

    Subclasses give ``values(a, b) -> l`` (saving what they need) and
    ``local_grads(need_a, need_b) -> (dl/da, dl/db)``; backward scales them by the
    reduction's factor and the upstream gradient. Those with a fused kernel also give
    ``fused_total(a, b) -> sum of l`` (saving the local gradients the kernel computed in the
    same pass), used when kernels are on and the reduction is not ``none``.
    """

    arg_names = ("input", "target")
    has_kernel = False
    #: the backward's formula, ``{dL}`` standing for the reduction's factor (see ``reduction_formula``)
    grads = ""

    def __init__(self, reduction: str = "batchmean"):
        self.reduction = check_reduction(reduction)

    @property
    def formula(self) -> str:  # type: ignore[override]
        return reduction_formula(self.grads, self.reduction)

    def forward(self, a: Any, b: Any) -> Any:
        check_same_shape(self.name, a, b, self.arg_names)
        self.shape = tuple(a.shape)
        if self.has_kernel and self.reduction != "none" and backend.kernels_enabled():
            return reduce_total(self.fused_total(a, b), self.shape, self.reduction)
        return reduce_loss(self.values(a, b), self.reduction)

    def backward(self, gy: Any) -> tuple:
        scale = reduction_scale(gy, self.shape, self.reduction)
        need_a, need_b = self.needs_input_grad
        da, db = self.local_grads(need_a, need_b)
        return (da * scale if need_a else None, db * scale if need_b else None)

    def values(self, a: Any, b: Any) -> Any:
        raise NotImplementedError(f"{self.name} must implement values")

    def fused_total(self, a: Any, b: Any) -> Any:
        raise NotImplementedError(f"{self.name} has no fused kernel")

    def local_grads(self, need_a: bool, need_b: bool) -> tuple:
        raise NotImplementedError(f"{self.name} must implement local_grads")


class MSELoss(PairLoss):
    """l = (y - t)^2;  dl/dy = 2 (y - t),  dl/dt = -2 (y - t)."""

    name = "mse_loss"
    arg_names = ("pred", "target")
    grads = "dpred = 2 (pred - t){dL}, dt = -2 (pred - t){dL}"
    has_kernel = True

    def values(self, y: Any, t: Any) -> Any:
        diff = y - t
        self.save_for_backward(diff, None)
        return diff * diff

    def fused_total(self, y: Any, t: Any) -> Any:
        total, d = kernels.mse(y, t)
        self.save_for_backward(None, d)
        return total

    def local_grads(self, need_a: bool, need_b: bool) -> tuple:
        diff, d = self.saved
        d = 2 * diff if d is None else d
        return d, (-d if need_b else None)


def bce_clip_eps(dtype: Any) -> float:
    """The margin that keeps log(p) and log(1 - p) finite: 1e-7 for float32, 1e-12 for float64."""
    return 1e-7 if dtype.itemsize <= 4 else 1e-12


class BCELoss(PairLoss):
    """l = -(t log p + (1 - t) log(1 - p)) with p clipped to [eps, 1 - eps].

    dl/dp = (p - t) / (p (1 - p)) inside the clip range and 0 where p was clipped (the
    derivative of the clipped function); dl/dt = log(1 - p) - log(p).
    """

    name = "bce_loss"
    arg_names = ("prob", "target")
    grads = "dp = (p - t) / (p (1 - p)){dL}, dt = log((1 - p) / p){dL}"

    def values(self, p: Any, t: Any) -> Any:
        xp = backend.array_module_of(p)
        eps = bce_clip_eps(p.dtype)
        pc = xp.clip(p, eps, 1 - eps)
        log_p, log_q = xp.log(pc), xp.log1p(-pc)
        self.save_for_backward(p, pc, t, log_p, log_q)
        return -(t * log_p + (1 - t) * log_q)

    def local_grads(self, need_a: bool, need_b: bool) -> tuple:
        p, pc, t, log_p, log_q = self.saved
        dp = (pc - t) / (pc * (1 - pc)) * (pc == p) if need_a else None
        dt = (log_q - log_p) if need_b else None
        return dp, dt


class BCEWithLogits(PairLoss):
    """l = max(z, 0) - z t + log1p(exp(-|z|)) = BCE(sigmoid(z), t), stable for any z.

    dl/dz = sigmoid(z) - t,  dl/dt = -z.
    """

    name = "bce_with_logits"
    arg_names = ("logits", "target")
    grads = "dz = (sigmoid(z) - t){dL}, dt = -z{dL}"
    has_kernel = True

    def values(self, z: Any, t: Any) -> Any:
        xp = backend.array_module_of(z)
        self.save_for_backward(z, t, None)
        return xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))

    def fused_total(self, z: Any, t: Any) -> Any:
        total, dz = kernels.bce_with_logits(z, t)
        self.save_for_backward(z, t, dz)
        return total

    def local_grads(self, need_a: bool, need_b: bool) -> tuple:
        z, t, dz = self.saved
        if need_a and dz is None:
            dz = _sigmoid(z, backend.array_module_of(z)) - t
        return dz, (-z if need_b else None)


class SoftmaxCrossEntropy(Function):
    """l_n = logsumexp(z_n) - z_n[y_n].  z: (N, C), labels y: (N,) ints in [0, C).

    dl_n/dz_n = softmax(z_n) - onehot(y_n). ``mean`` and ``batchmean`` both average over N.
    """

    name = "softmax_cross_entropy"

    def __init__(self, labels: Any, reduction: str = "batchmean"):
        self.labels = labels
        self.reduction = check_reduction(reduction)

    @property
    def formula(self) -> str:  # type: ignore[override]
        # mean and batchmean both average over the N rows
        return reduction_formula(
            "dz = (softmax(z) - onehot(y)){dL}", "batchmean" if self.reduction == "mean" else self.reduction
        )

    def forward(self, z: Any) -> Any:
        xp = backend.array_module_of(z)
        labels = check_labels(self.labels, z.shape, xp)
        shifted = z - z.max(axis=1, keepdims=True)
        log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_norm
        rows = xp.arange(z.shape[0])
        self.save_for_backward(log_probs, labels, rows)
        return reduce_loss(-log_probs[rows, labels], self.reduction)

    def backward(self, gy: Any) -> Any:
        log_probs, labels, rows = self.saved
        g = backend.array_module_of(log_probs).exp(log_probs)
        g[rows, labels] -= 1
        scale = reduction_scale(gy, (log_probs.shape[0],), self.reduction)
        return g * (scale[:, None] if self.reduction == "none" else scale)


_labels_checked: contextvars.ContextVar[bool] = contextvars.ContextVar("labels_checked", default=False)


def labels_checked() -> contextlib.AbstractContextManager[None]:
    """Context in which softmax_cross_entropy takes its labels' range, [0, C), as checked already:
    ``fit`` checks every label once before it trains, so its steps skip the check (a host sync on the GPU)."""
    return backend.context_value(_labels_checked, True)


def check_label_range(labels: Any, c: int) -> None:
    """Raise a DataError unless every label lies in [0, c) (one host sync on the GPU; min and max only on failure)."""
    if bool(((labels < 0) | (labels >= c)).any()):
        raise DataError(f"labels must lie in [0, {c - 1}], got values from {int(labels.min())} to {int(labels.max())}")


def check_labels(labels: Any, logits_shape: tuple[int, ...], xp: Any) -> Any:
    """Integer labels (N,) in [0, C) for logits of shape (N, C), as an array of ``xp`` (the range is not
    checked again inside :func:`labels_checked`)."""
    if len(logits_shape) != 2:
        raise ShapeError(f"softmax_cross_entropy: logits must be (N, C), got shape {tuple(logits_shape)}")
    labels = labels.data if isinstance(labels, Tensor) else labels
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f":
            raise DTypeError(f"labels must be integers, got dtype {labels.dtype}")
        if not bool(xp.all(labels == xp.round(labels))):
            raise DataError(
                f"labels must hold whole numbers, got fractional, NaN or infinite values (dtype {labels.dtype})"
            )
        labels = labels.astype(xp.int64)
    n, c = logits_shape
    if labels.shape != (n,):
        raise ShapeError(f"labels have shape {tuple(labels.shape)}, expected ({n},) for logits of shape ({n}, {c})")
    if n and not _labels_checked.get():
        check_label_range(labels, c)
    return labels


def mse_loss(pred: Any, target: Any, reduction: str = "batchmean") -> Tensor:
    """Squared error l = (pred - t)^2, reduced;  dl/dpred = 2 (pred - t) (times the reduction's 1/N or 1/numel)."""
    return MSELoss(reduction)(pred, target)


def bce_loss(prob: Any, target: Any, reduction: str = "batchmean") -> Tensor:
    """l = -(t log p + (1 - t) log(1 - p)), p clipped to [eps, 1 - eps], reduced;  dl/dp = (p - t) / (p (1 - p)),
    0 where p was clipped (see BCELoss)."""
    return BCELoss(reduction)(prob, target)


def bce_with_logits(logits: Any, target: Any, reduction: str = "batchmean") -> Tensor:
    """l = max(z, 0) - z t + log1p(exp(-|z|)) = BCE(sigmoid(z), t), stable for any logit z, reduced;
    dl/dz = sigmoid(z) - t."""
    return BCEWithLogits(reduction)(logits, target)


def softmax_cross_entropy(logits: Any, labels: Any, reduction: str = "batchmean") -> Tensor:
    """l_n = logsumexp(z_n) - z_n[y_n] for logits z (N, C) and integer labels y (N,), reduced;
    dl_n/dz_n = softmax(z_n) - onehot(y_n)."""
    return SoftmaxCrossEntropy(labels, reduction)(logits)
