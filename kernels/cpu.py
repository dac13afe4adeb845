"""Numba kernels for the CPU: one pass over the arrays where NumPy would make several.

Called through :mod:`scratchae.kernels` (``fused.py``), which checks the arguments and
passes C-contiguous (N, D) arrays, activation codes and scalars of the arrays' dtype.
Each public function computes what the same-named expression in
:mod:`scratchae.kernels.reference` computes, with the same floating-point operations in
the same order (sums excepted: losses accumulate in float64, and BCE adds its log1p terms
as logs of float64 products, see ``_bce_finish``). Numba calls libm one
element at a time for exp, log1p, expm1 and tanh, 5 to 30 times slower than NumPy's
SIMD ufuncs, so those run as NumPy ufuncs in place on a scratch array and the kernels
fuse everything around them. Kernels are compiled on first use, per dtype, and kept in
Numba's on-disk cache; :func:`warmup` compiles them all at once.

Every kernel runs on one thread: ``parallel=True`` halves a kernel timed alone at batch
1024, but between OpenBLAS's matrix products (whose threads keep spinning) a step of
GEMMs + bias/relu + Adam went from 2.5 ms to 15.6 ms at batch 128 on 2 cores
(``python benchmarks/kernels_micro.py --parallel-check``).
"""

from __future__ import annotations

import sys
import threading
from functools import partial
from typing import Any

import numpy as np
from numba import njit, prange

from .args import ACTIVATION_CODES, GROUP

# error_model="numpy": IEEE division (no ZeroDivisionError check), which lets LLVM vectorize the loops.
# prange marks the loops whose iterations are independent; compiled without parallel=True they run serially.
_jit = partial(njit, cache=True, fastmath=False, error_model="numpy")

RELU, LEAKY_RELU, ELU, SIGMOID, TANH, SOFTPLUS = (
    ACTIVATION_CODES[name] for name in ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus")
)
# Activations whose forward needs a transcendental: the NumPy ufuncs applied, in order, to the scratch u.
_FORWARD_UFUNCS = {ELU: (np.expm1,), SIGMOID: (np.exp,), SOFTPLUS: (np.exp, np.log1p)}


@_jit
def _bias_act(z, b, code, p, u):
    """z (N, D) <- z + b (b: (D,) or None), then relu / leaky_relu in place; for elu, sigmoid and
    softplus u (N, D) <- the ufunc's argument: min(x, 0) for elu, -|x| for sigmoid and softplus."""
    zero = z.dtype.type(0)
    n, d = z.shape
    for i in prange(n):
        for j in range(d):
            x = z[i, j]
            if b is not None:
                x += b[j]
            if code == RELU:
                x = zero if x < zero else x
            elif code == LEAKY_RELU:
                x = x if x > zero else x * p
            elif code == ELU:
                u[i, j] = zero if x > zero else x  # min(x, 0), NaN kept as the reference's minimum keeps it
            elif code == SIGMOID or code == SOFTPLUS:
                u[i, j] = -abs(x)
            z[i, j] = x


@_jit
def _act_post(z, u, code, p):
    """z (N, D) <- f(z) given u: expm1(min(z, 0)) for elu, exp(-|z|) for sigmoid, log1p(exp(-|z|)) for softplus."""
    one, zero = z.dtype.type(1), z.dtype.type(0)
    n, d = z.shape
    for i in prange(n):
        for j in range(d):
            x, e = z[i, j], u[i, j]
            if code == ELU:
                z[i, j] = x if x > zero else e * p
            elif code == SIGMOID:
                z[i, j] = one / (one + e) if x >= zero else e / (one + e)
            elif code == SOFTPLUS:
                z[i, j] = (x if x > zero else zero) + e


@_jit
def _act_grad(gy, y, code, p, u, g):
    """g (N, D) <- gy * f'(x) written from y; u holds expm1(-y) for softplus."""
    one, zero = y.dtype.type(1), y.dtype.type(0)
    n, d = y.shape
    for i in prange(n):
        for j in range(d):
            yy, dy = y[i, j], gy[i, j]
            if code == RELU:
                dy = dy * (one if yy > zero else zero)
            elif code == LEAKY_RELU:
                dy = dy if yy > zero else dy * p
            elif code == ELU:
                dy = dy if yy > zero else dy * (yy + p)
            elif code == SIGMOID:
                dy = dy * yy * (one - yy)
            elif code == TANH:
                dy = dy * (one - yy * yy)
            elif code == SOFTPLUS:
                dy = dy * -u[i, j]
            g[i, j] = dy


@_jit
def _column_sums(g, out):
    """out (D,) <- the sums of g (N, D) over rows, added row after row in g's dtype (as NumPy's sum(axis=0))."""
    n, d = g.shape
    for i in range(n):
        for j in range(d):
            out[j] += g[i, j]


# Rows per block of _bce_finish's products: each factor 1 + e lies in [1, 2], so a product stays below 2^256.
_PRODUCT_ROWS = 256


@_jit
def _bce_finish(z, t, e):
    """Sum of max(z, 0) - z t + log1p(e), and e <- sigmoid(z) - t, given e = exp(-|z|).  All (N, D).

    The log1p terms are added as logs of products, in float64: per column, the product of 1 + e
    over a block of rows, one log per block and column instead of one log1p per element.
    """
    one, zero = z.dtype.type(1), z.dtype.type(0)
    n, d = z.shape
    acc = np.zeros(d)
    prod = np.ones(d)
    logs = 0.0
    for i in range(n):
        for j in range(d):
            x, ti, ei = z[i, j], t[i, j], e[i, j]
            acc[j] += (x if x > zero else zero) - x * ti
            prod[j] *= 1.0 + ei
            e[i, j] = (one / (one + ei) if x >= zero else ei / (one + ei)) - ti
        if (i + 1) % _PRODUCT_ROWS == 0 or i == n - 1:
            for j in range(d):
                logs += np.log(prod[j])
                prod[j] = 1.0
    return acc.sum() + logs


@_jit
def _mse(pred, target, g):
    """Sum of (pred - target)^2, and g <- 2 (pred - target).  All (N, D)."""
    two = pred.dtype.type(2)
    n, d = pred.shape
    acc = np.zeros(d)
    for i in range(n):
        for j in range(d):
            diff = pred[i, j] - target[i, j]
            acc[j] += diff * diff
            g[i, j] = two * diff
    return acc.sum()


@_jit
def _kl_finish(mu, logvar, var):
    """Sum of 0.5 (mu^2 + var - logvar - 1), and var <- 0.5 (var - 1), given var = exp(logvar).  All (N, D)."""
    one, half = mu.dtype.type(1), mu.dtype.type(0.5)
    n, d = mu.shape
    acc = np.zeros(d)
    for i in range(n):
        for j in range(d):
            m, lv, vr = mu[i, j], logvar[i, j], var[i, j]
            acc[j] += half * (m * m + vr - lv - one)
            var[i, j] = half * (vr - one)
    return acc.sum()


@_jit
def _reparameterize_forward(mu, std, eps, z):
    """z <- mu + std eps.  All flat (M,)."""
    for i in prange(z.size):
        z[i] = mu[i] + std[i] * eps[i]


@_jit
def _reparameterize_backward(gz, std, eps, glogvar, geps):
    """geps <- gz std,  glogvar <- 0.5 gz std eps.  All flat (M,)."""
    half = gz.dtype.type(0.5)
    for i in prange(gz.size):
        g_std = gz[i] * std[i]
        geps[i] = g_std
        glogvar[i] = half * g_std * eps[i]


@_jit
def _adam_one(w, g, m, v, step_size, eps, beta1, one_minus_beta1, beta2, one_minus_beta2, wd):
    """The Adam step of ``reference.adam_update`` on one parameter in one pass.  All arrays flat (M,)."""
    for i in prange(w.size):
        gi = g[i] + wd * w[i] if wd != 0 else g[i]
        mi = m[i] * beta1 + one_minus_beta1 * gi
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        w[i] = w[i] - step_size * mi / (np.sqrt(vi) + eps)


# A group's loop calls the one-parameter kernel: its loop then compiles as on its own (the loop written
# inside the group's, over arrays taken from the tuples, ran 3-5% slower at 4M elements).
@_jit
def _adam(ws, gs, ms, vs, step_sizes, epss, *scalars):
    """``_adam_one`` on each parameter k of the group: ws, gs, ms, vs tuples of GROUP flat arrays,
    step_sizes and epss (GROUP,); scalars: beta1, 1 - beta1, beta2, 1 - beta2, wd."""
    for k in range(len(ws)):
        _adam_one(ws[k], gs[k], ms[k], vs[k], step_sizes[k], epss[k], *scalars)


@_jit
def _momentum_one(w, g, v, lr, momentum, nesterov, wd):
    """The momentum step of ``reference.momentum_update`` on one parameter in one pass.  All arrays flat (M,)."""
    for i in prange(w.size):
        gi = g[i] + wd * w[i] if wd != 0 else g[i]
        vi = v[i] * momentum + gi
        v[i] = vi
        w[i] = w[i] - lr * (gi + momentum * vi) if nesterov else w[i] - lr * vi


@_jit
def _momentum(ws, gs, vs, lr, momentum, nesterov, wd):
    """``_momentum_one`` on each parameter k of the group: ws, gs, vs tuples of GROUP flat arrays."""
    for k in range(len(ws)):
        _momentum_one(ws[k], gs[k], vs[k], lr, momentum, nesterov, wd)


def bias_act_forward(z: np.ndarray, b: np.ndarray | None, code: int, p: Any) -> None:
    """z (N, D) <- f(z + b) in place; b: (D,) or None; p: the activation's parameter as a z.dtype scalar."""
    _ready(z.dtype)
    if code in _FORWARD_UFUNCS:
        u = np.empty_like(z)
        _bias_act(z, b, code, p, u)
        for ufunc in _FORWARD_UFUNCS[code]:
            ufunc(u, out=u)
        _act_post(z, u, code, p)
        return
    if b is not None or code in (RELU, LEAKY_RELU):
        _bias_act(z, b, code, p, z)
    if code == TANH:
        np.tanh(z, out=z)


def act_backward(gy: np.ndarray, y: np.ndarray, code: int, p: Any, bias_grad: bool) -> tuple[np.ndarray, Any]:
    """(g, gb): g (N, D) = gy * f'(x) from y (not identity), gb (D,) = column sums of g, or None."""
    _ready(y.dtype)
    u = y  # read by softplus only; never g itself, which would defeat LLVM's alias check and vectorization
    if code == SOFTPLUS:
        u = np.negative(y)
        np.expm1(u, out=u)
    g = np.empty_like(y)
    _act_grad(gy, y, code, p, u, g)
    if not bias_grad:
        return g, None
    # A second loop: summing inside _act_grad's loop, whose activation switch LLVM does not hoist, was 2x slower.
    gb = np.zeros(y.shape[1], y.dtype)
    _column_sums(g, gb)
    return g, gb


def bce_with_logits(z: np.ndarray, t: np.ndarray) -> tuple[Any, np.ndarray]:
    """(total, grad) for z, t (N, D): the sum of max(z, 0) - z t + log1p(exp(-|z|)), and sigmoid(z) - t."""
    _ready(z.dtype)
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)
    total = _bce_finish(z, t, e)
    return z.dtype.type(total), e


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[Any, np.ndarray]:
    """(total, grad) for pred, target (N, D): the sum of (pred - target)^2, and 2 (pred - target)."""
    _ready(pred.dtype)
    g = np.empty_like(pred)
    return pred.dtype.type(_mse(pred, target, g)), g


def gaussian_kl(mu: np.ndarray, logvar: np.ndarray) -> tuple[Any, np.ndarray]:
    """(total, dlogvar) for mu, logvar (N, D): sum of 0.5 (mu^2 + exp(logvar) - logvar - 1), 0.5 (exp(logvar) - 1)."""
    _ready(mu.dtype)
    var = np.exp(logvar)
    return mu.dtype.type(_kl_finish(mu, logvar, var)), var


def reparameterize_forward(mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z, std) for mu, logvar, eps (N, D): std = exp(0.5 logvar), z = mu + std eps."""
    _ready(mu.dtype)
    std = np.multiply(logvar, mu.dtype.type(0.5))
    np.exp(std, out=std)
    z = np.empty_like(std)
    _reparameterize_forward(mu.reshape(-1), std.reshape(-1), eps.reshape(-1), z.reshape(-1))
    return z, std


def reparameterize_backward(gz: np.ndarray, std: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(glogvar, geps) for gz, std, eps (N, D): 0.5 gz std eps, gz std."""
    _ready(gz.dtype)
    glogvar, geps = np.empty_like(gz), np.empty_like(gz)
    _reparameterize_backward(gz.reshape(-1), std.reshape(-1), eps.reshape(-1), glogvar.reshape(-1), geps.reshape(-1))
    return glogvar, geps


def adam_update(ws: list, gs: list, ms: list, vs: list, step_sizes: list, epss: list, *scalars: Any) -> None:
    """In place on up to GROUP flat w, m, v; step_sizes, epss: one number per parameter (rounded to
    w.dtype here); ``scalars`` (w.dtype): beta1, 1 - beta1, beta2, 1 - beta2, wd."""
    dtype = ws[0].dtype
    _ready(dtype)
    _adam(*_padded(ws, gs, ms, vs), _padded_values(step_sizes, dtype), _padded_values(epss, dtype), *scalars)


def momentum_update(ws: list, gs: list, vs: list, lr: Any, momentum: Any, nesterov: bool, wd: Any) -> None:
    """In place on up to GROUP flat w, v; lr, momentum, wd: w.dtype scalars."""
    _ready(ws[0].dtype)
    _momentum(*_padded(ws, gs, vs), lr, momentum, nesterov, wd)


_EMPTY = {dt: np.empty(0, dt) for dt in (np.dtype(np.float32), np.dtype(np.float64))}  # the padding of a group


def _padded(ws: list, gs: list, *updated: list) -> tuple[tuple, ...]:
    """The lists of flat arrays as tuples of GROUP, filled up with empty arrays: one compiled signature
    for every group size. Read-only gradients are copied, so each tuple holds one array type."""
    fill = (_EMPTY[ws[0].dtype],) * (GROUP - len(ws))
    gs = [g if g.flags.writeable else g.copy() for g in gs]
    return tuple(tuple(group) + fill for group in (ws, gs, *updated))


def _padded_values(values: list, dtype: np.dtype) -> np.ndarray:
    """One value per parameter as a (GROUP,) array of ``dtype`` (zeros after the group's parameters)."""
    out = np.zeros(GROUP, dtype)
    out[: len(values)] = values
    return out


_warm: set[np.dtype] = set()
COMPILE_NOTE = "scratchae: preparing the Numba kernels (compiled on the first run, later loaded from cache)…"
# Loading the kernels from Numba's on-disk cache takes about 0.25 s on an idle machine (longer on a busy
# one, when the note may show too); compiling them takes seconds.
NOTE_AFTER_S = 0.5


def warmup(dtypes: tuple[Any, ...] = (np.float32, np.float64)) -> None:
    """Compile every kernel for ``dtypes`` now (loaded from Numba's on-disk cache after the first run).

    Prints :data:`COMPILE_NOTE` to stderr, at most once per process, when the kernels are not
    ready after :data:`NOTE_AFTER_S` seconds (compiling, or loading on a busy machine).
    """
    todo = [dt for dt in map(np.dtype, dtypes) if dt not in _warm]
    if not todo:
        return
    timer = threading.Timer(NOTE_AFTER_S, print, (COMPILE_NOTE,), {"file": sys.stderr, "flush": True})
    timer.daemon = True
    if not _warm:
        timer.start()
    try:
        for dt in todo:
            _warm.add(dt)  # before the calls below, which come back through _ready
            _exercise(dt)
    finally:
        timer.cancel()


def _ready(dtype: np.dtype) -> None:
    if dtype not in _warm:
        warmup((dtype,))


def _exercise(dtype: np.dtype) -> None:
    """Call every kernel once on tiny (2, 3) arrays of ``dtype``: once per compiled type signature."""
    a = np.full((2, 3), 0.5, dtype)
    c = dtype.type
    for b in (a[0].copy(), None):
        bias_act_forward(a.copy(), b, RELU, c(0))
        bias_act_forward(a.copy(), b, SIGMOID, c(0))
    act_backward(a, a, RELU, c(0), True)
    bce_with_logits(a, a)
    mse(a, a)
    gaussian_kl(a, a)
    reparameterize_backward(a, *reparameterize_forward(a, a, a))

    def group() -> list[np.ndarray]:  # one parameter, flat
        return [a.reshape(-1).copy()]

    adam_update(group(), group(), group(), group(), [c(1e-3)], [c(1e-8)], *(c(x) for x in (0.9, 0.1, 0.999, 1e-3, 0)))
    for nesterov in (True, False):
        momentum_update(group(), group(), group(), c(0.1), c(0.9), nesterov, c(0))
