"""The plain array expressions every fused kernel must reproduce (NumPy or CuPy arrays).

Same signatures and results as the fused entry points of :mod:`scratchae.kernels.fused` (which
pass integer activation codes and flat argument lists on to :mod:`scratchae.kernels.cpu` and
:mod:`scratchae.kernels.gpu`); the activations and the sigmoid are the very formulas of
:mod:`scratchae.ops.activations`, the optimizer steps are what :mod:`scratchae.optim` runs with the
kernels off. Shapes: (N, D) or any shape whose last axis is D; ``b`` and ``gb`` are (D,); totals are
0-d values of the input dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backend import array_module_of
from ..ops.activations import Activation, _sigmoid, get_activation
from .args import PARAM_NAMES


def activation(act: str, param: float | None = None) -> Activation:
    """The op's :class:`Activation` named ``act`` with its parameter (slope or alpha) set to ``param``."""
    return get_activation(act, **({PARAM_NAMES[act]: param} if act in PARAM_NAMES else {}))


def bias_act_forward(z: Any, b: Any, act: str, param: float | None = None) -> Any:
    """z <- f(z + b) in place (``b`` may be None); returns z."""
    if b is not None:
        z += b
    z[...] = activation(act, param).forward(z, array_module_of(z))
    return z


def act_backward(gy: Any, y: Any, act: str, param: float | None = None, bias_grad: bool = True) -> tuple[Any, Any]:
    """g = gy * f'(x) from y = f(x), and gb = sum of g over every axis but the last (None unless bias_grad)."""
    g = activation(act, param).backward(gy, y, array_module_of(gy))
    return g, (g.sum(axis=tuple(range(g.ndim - 1))) if bias_grad else None)


def bce_with_logits(z: Any, t: Any) -> tuple[Any, Any]:
    """total = sum(max(z, 0) - z t + log1p(exp(-|z|))),  grad = sigmoid(z) - t."""
    xp = array_module_of(z)
    values = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
    return values.sum(), _sigmoid(z, xp) - t


def mse(pred: Any, target: Any) -> tuple[Any, Any]:
    """total = sum((pred - target)^2),  grad = 2 (pred - target)."""
    diff = pred - target
    return (diff * diff).sum(), 2 * diff


def gaussian_kl(mu: Any, logvar: Any) -> tuple[Any, Any, Any]:
    """total = sum(0.5 (mu^2 + exp(logvar) - logvar - 1)),  dmu = mu (itself),  dlogvar = 0.5 (exp(logvar) - 1)."""
    var = array_module_of(logvar).exp(logvar)
    return (0.5 * (mu * mu + var - logvar - 1)).sum(), mu, 0.5 * (var - 1)


def reparameterize_forward(mu: Any, logvar: Any, eps: Any) -> tuple[Any, Any]:
    """std = exp(0.5 logvar),  z = mu + std eps."""
    std = array_module_of(logvar).exp(0.5 * logvar)
    return mu + std * eps, std


def reparameterize_backward(gz: Any, std: Any, eps: Any) -> tuple[Any, Any, Any]:
    """gmu = gz (itself),  glogvar = 0.5 gz std eps,  geps = gz std."""
    g_std = gz * std
    return gz, 0.5 * g_std * eps, g_std


def adam_update(
    ws: Sequence[Any],
    gs: Sequence[Any],
    ms: Sequence[Any],
    vs: Sequence[Any],
    step_sizes: Sequence[float],
    beta1: float,
    beta2: float,
    epss: Sequence[float],
    weight_decay: float = 0.0,
) -> None:
    """In place, for each parameter k (w, g, m, v = ws[k], gs[k], ms[k], vs[k]): with g' = g + wd w (g
    itself unchanged), m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; w -= step_sizes[k] m / (sqrt(v) + epss[k]).

    ``optim.Adam`` passes the bias corrections folded into the step sizes and eps (see there).
    """
    for w, g, m, v, step_size, eps in zip(ws, gs, ms, vs, step_sizes, epss, strict=True):
        g = g + weight_decay * w if weight_decay else g
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        denom = array_module_of(v).sqrt(v)
        denom += eps
        w -= step_size * m / denom


def momentum_update(
    ws: Sequence[Any],
    gs: Sequence[Any],
    vs: Sequence[Any],
    lr: float,
    momentum: float,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> None:
    """In place, for each parameter k (w, g, v = ws[k], gs[k], vs[k]): with g' = g + wd w (g itself
    unchanged), v = momentum v + g'; w -= lr (g' + momentum v) if nesterov else lr v."""
    for w, g, v in zip(ws, gs, vs, strict=True):
        g = g + weight_decay * w if weight_decay else g
        v *= momentum
        v += g
        w -= lr * (g + momentum * v) if nesterov else lr * v
