"""The fused kernels' public API: checks the arguments, then runs the CPU (Numba) or GPU
(CUDA) kernel by the arrays' type. Same signatures and results as :mod:`.reference`.

Shapes: activations and losses take (N, D) or any shape whose last axis is D (a bias b
is (D,)); the optimizer steps take lists of arrays, one per parameter, each of any shape. Totals are 0-d values of the
input dtype; every array returned is new, except those documented as "itself".
Nothing here imports Numba or CuPy: the device module is imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..backend import array_module_of, is_gpu_array
from .args import (
    ACTIVATION_CODES,
    GROUP,
    activation_args,
    bias_shape,
    float_dtype,
    parameter_group,
    per_parameter,
    rows,
    same_shape,
    writable,
)

_modules: dict[str, ModuleType] = {}


def _device(a: Any) -> ModuleType:
    """The kernels for ``a``'s device: :mod:`.gpu` for a CuPy array, :mod:`.cpu` otherwise (imported once)."""
    name = "gpu" if is_gpu_array(a) else "cpu"
    if name not in _modules:
        _modules[name] = importlib.import_module(f".{name}", __package__)
    return _modules[name]


def _rows(a: Any) -> Any:
    """An input as a C-contiguous (rows, D) array (copied only when not contiguous)."""
    return rows(array_module_of(a).ascontiguousarray(a))


def _checked(op: str, **arrays: Any) -> Any:
    """The common dtype of ``arrays``, which must also share one shape."""
    dtype = float_dtype(op, **arrays)
    same_shape(op, **arrays)
    return dtype


def bias_act_forward(z: Any, b: Any, act: str, param: float | None = None) -> Any:
    """z <- f(z + b) in place (z C-contiguous, b (D,) or None) and returned.

    ``act``: identity, relu, leaky_relu, elu, sigmoid, tanh or softplus; ``param``: the
    slope of leaky_relu or the alpha of elu (required for those two, ignored otherwise).
    """
    dtype = float_dtype("bias_act_forward", z=z, **({} if b is None else {"b": b}))
    bias_shape("bias_act_forward", z, b)
    writable("bias_act_forward", z=z)
    code, p = activation_args(act, param, dtype)
    b = None if b is None else array_module_of(b).ascontiguousarray(b)
    _device(z).bias_act_forward(rows(z), b, code, p)
    return z


def act_backward(gy: Any, y: Any, act: str, param: float | None = None, bias_grad: bool = True) -> tuple[Any, Any]:
    """(g, gb): g = gy * f'(x) written from y = f(x) (gy itself for identity; gy is never modified),
    gb = g summed over every axis but the last, shape (D,), or None unless ``bias_grad``."""
    dtype = _checked("act_backward", gy=gy, y=y)
    code, p = activation_args(act, param, dtype)
    gy2 = _rows(gy)
    if code == ACTIVATION_CODES["identity"]:
        return gy, (gy2.sum(axis=0) if bias_grad else None)
    g, gb = _device(gy).act_backward(gy2, _rows(y), code, p, bias_grad)
    return g.reshape(gy.shape), gb


def bce_with_logits(z: Any, t: Any) -> tuple[Any, Any]:
    """(total, grad): total = sum of max(z, 0) - z t + log1p(exp(-|z|)) over all elements,
    grad = sigmoid(z) - t (unscaled: multiply by the reduction's factor)."""
    _checked("bce_with_logits", logits=z, target=t)
    total, grad = _device(z).bce_with_logits(_rows(z), _rows(t))
    return total, grad.reshape(z.shape)


def mse(pred: Any, target: Any) -> tuple[Any, Any]:
    """(total, grad): total = sum of (pred - target)^2, grad = 2 (pred - target) (unscaled)."""
    _checked("mse", pred=pred, target=target)
    total, grad = _device(pred).mse(_rows(pred), _rows(target))
    return total, grad.reshape(pred.shape)


def gaussian_kl(mu: Any, logvar: Any) -> tuple[Any, Any, Any]:
    """(total, dmu, dlogvar): total = sum of 0.5 (mu^2 + exp(logvar) - logvar - 1),
    dmu = mu itself, dlogvar = 0.5 (exp(logvar) - 1) (unscaled)."""
    _checked("gaussian_kl", mu=mu, logvar=logvar)
    total, dlogvar = _device(mu).gaussian_kl(_rows(mu), _rows(logvar))
    return total, mu, dlogvar.reshape(logvar.shape)


def reparameterize_forward(mu: Any, logvar: Any, eps: Any) -> tuple[Any, Any]:
    """(z, std): std = exp(0.5 logvar), z = mu + std eps."""
    _checked("reparameterize_forward", mu=mu, logvar=logvar, eps=eps)
    z, std = _device(mu).reparameterize_forward(_rows(mu), _rows(logvar), _rows(eps))
    return z.reshape(mu.shape), std.reshape(mu.shape)


def reparameterize_backward(gz: Any, std: Any, eps: Any) -> tuple[Any, Any, Any]:
    """(gmu, glogvar, geps): gmu = gz itself, glogvar = 0.5 gz std eps, geps = gz std."""
    _checked("reparameterize_backward", gz=gz, std=std, eps=eps)
    glogvar, geps = _device(gz).reparameterize_backward(_rows(gz), _rows(std), _rows(eps))
    return gz, glogvar.reshape(gz.shape), geps.reshape(gz.shape)


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
    """One Adam step in place on every parameter of a group: lists with one array per parameter
    (w, m, v C-contiguous; the k-th arrays of one shape), one kernel pass per GROUP parameters.

    For parameter k: g' = g + weight_decay w; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
    w -= step_sizes[k] m / (sqrt(v) + epss[k]), with the bias corrections folded into the step
    sizes and eps (``optim.Adam``). g is not modified. Scalars are rounded to w's dtype, as NumPy does.
    """
    dtype = parameter_group("adam_update", ("ws", "ms", "vs"), ws=ws, gs=gs, ms=ms, vs=vs)
    per_parameter("adam_update", len(ws), step_sizes=step_sizes, epss=epss)
    if dtype is None:
        return
    c = dtype.type
    scalars = (c(beta1), c(1 - beta1), c(beta2), c(1 - beta2), c(weight_decay))
    arrays = (_flat(ws), _flat(gs, contiguous=True), _flat(ms), _flat(vs))
    device = _device(ws[0])
    for k in range(0, len(ws), GROUP):
        part = slice(k, k + GROUP)
        device.adam_update(*(a[part] for a in arrays), step_sizes[part], epss[part], *scalars)


def momentum_update(
    ws: Sequence[Any],
    gs: Sequence[Any],
    vs: Sequence[Any],
    lr: float,
    momentum: float,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> None:
    """One SGD-with-momentum step in place on every parameter of a group: lists with one array per
    parameter (w, v C-contiguous; the k-th arrays of one shape), one kernel pass per GROUP parameters.

    g' = g + weight_decay w; v = momentum v + g'; w -= lr (g' + momentum v) if nesterov else lr v.
    g is not modified.
    """
    dtype = parameter_group("momentum_update", ("ws", "vs"), ws=ws, gs=gs, vs=vs)
    if dtype is None:
        return
    c = dtype.type
    arrays = (_flat(ws), _flat(gs, contiguous=True), _flat(vs))
    device = _device(ws[0])
    for k in range(0, len(ws), GROUP):
        part = slice(k, k + GROUP)
        device.momentum_update(*(a[part] for a in arrays), c(lr), c(momentum), bool(nesterov), c(weight_decay))


def _flat(arrays: Sequence[Any], contiguous: bool = False) -> list[Any]:
    """Flat (M,) views of C-contiguous arrays (those updated in place); with ``contiguous``, of C-contiguous
    copies of the others (a strided array's reshape can be a strided view, which the kernels cannot take)."""
    if contiguous:
        arrays = [a if a.flags.c_contiguous else array_module_of(a).ascontiguousarray(a) for a in arrays]
    return [a.reshape(-1) for a in arrays]
