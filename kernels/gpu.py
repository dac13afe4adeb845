"""CUDA kernels through CuPy: the ``*.cu`` sources beside this file, compiled with NVRTC.

The sources are joined into one module and compiled once per dtype (``-Dsae_t=float`` or
``double``, ``--fmad=false`` so no multiply-add is fused and each kernel rounds as the
reference expression does); CuPy caches the result on disk. CuPy adds ``-ftz=true`` to every
NVRTC compile (its own kernels' too), so float32 subnormals flush to 0 on the GPU where the CPU
keeps them: results agree down to about 1e-38, not below (the float64 build is not affected).
Same internal signatures as :mod:`.cpu`; inputs arrive checked and C-contiguous from :mod:`.fused`.
Reductions are deterministic: per-block partial sums in float64, then ``sum_partials``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import GPU_HINT, array_module
from ..errors import DeviceUnavailableError
from .args import GROUP

HERE = Path(__file__).resolve().parent
SOURCES = ("common.cu", "activations.cu", "losses.cu", "gaussian.cu", "optim.cu")
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
OPTIONS = ("--fmad=false",)
BLOCK = 256  # SAE_BLOCK in common.cu
TILE = (32, 16)  # (SAE_TILE_X, SAE_TILE_Y) in activations.cu
MAX_BLOCKS = 1024  # grid cap: grid-stride loops cover the rest; bounds the partial sums

# Each kernel's parameters in order: "p" pointer, "q" long long, "i" int, "t" sae_t (the dtype's scalar).
SIGNATURES = {
    "sum_partials": "pip",
    "bias_act_forward": "ppqiiit",
    "act_backward": "ppppqiiti",
    "bce_with_logits": "ppppq",
    "mse": "ppppq",
    "gaussian_kl": "ppppq",
    "reparameterize_forward": "pppppq",
    "reparameterize_backward": "pppppq",
    # a group of GROUP parameters: GROUP pointers of each array, GROUP sizes (and step sizes, eps), the scalars
    "adam_update": "p" * 4 * GROUP + "q" * GROUP + "t" * (2 * GROUP + 5),
    "momentum_update": "p" * 3 * GROUP + "q" * GROUP + "ttit",
}
_CAST = {"p": lambda a, dt: a, "q": lambda a, dt: np.int64(a), "i": lambda a, dt: np.int32(a), "t": lambda a, dt: dt(a)}


def source() -> str:
    """The module's CUDA source: common.cu, then each family with its ``#include "common.cu"`` removed."""
    texts = [(HERE / name).read_text(encoding="utf-8") for name in SOURCES]
    return "\n".join(text.replace('#include "common.cu"', "") for text in texts)


_functions: dict[tuple[str, np.dtype], Any] = {}
# CuPy's errors from a driver, runtime or device that did run (e.g. a PTX newer than the driver, no memory
# left): no library is missing, so no install hint
DEVICE_ERRORS = ("CUDADriverError", "CUDARuntimeError", "OutOfMemoryError")


def _function(name: str, dtype: np.dtype) -> Any:
    """The compiled kernel ``name`` for ``dtype`` (the module is built on first use)."""
    key = (name, dtype)
    if key not in _functions:
        cp = array_module("gpu")
        try:  # NVRTC compiles here, on the first get_function
            module = cp.RawModule(code=source(), options=(*OPTIONS, f"-Dsae_t={C_TYPES[dtype]}"))
            functions = {(kernel, dtype): module.get_function(kernel) for kernel in SIGNATURES}
        except Exception as exc:  # NVRTC or a CUDA library missing, or the compiler's message
            if type(exc).__name__ == "CompileException":  # NVRTC ran and refused the sources: nothing to install
                raise DeviceUnavailableError(
                    f"device 'gpu': NVRTC could not compile the CUDA kernels for {dtype}: {exc}"
                ) from exc
            if type(exc).__name__ in DEVICE_ERRORS:  # the libraries loaded; the driver or the device refused
                raise DeviceUnavailableError(
                    f"device 'gpu': loading the CUDA kernels for {dtype} failed ({type(exc).__name__}: {exc})"
                ) from exc
            raise DeviceUnavailableError(
                f"device 'gpu': compiling the CUDA kernels for {dtype} failed ({type(exc).__name__}: {exc}); "
                f"CuPy needs NVRTC and the CUDA libraries: {GPU_HINT}"
            ) from exc
        _functions.update(functions)
    return _functions[key]


def _launch(name: str, dtype: np.dtype, grid: tuple[int, ...], block: tuple[int, ...], *args: Any) -> None:
    """Run kernel ``name`` with ``args`` cast to its C parameter types (SIGNATURES)."""
    kinds = SIGNATURES[name]
    _function(name, dtype)(grid, block, tuple(_CAST[k](a, dtype.type) for k, a in zip(kinds, args, strict=True)))


def _grid(size: int) -> tuple[int]:
    return (max(1, min(math.ceil(size / BLOCK), MAX_BLOCKS)),)


def _elementwise(name: str, first: Any, *args: Any) -> None:
    """Launch a grid-stride kernel over ``first.size`` elements; ``args`` follow the arrays as declared."""
    _launch(name, first.dtype, _grid(first.size), (BLOCK,), first, *args)


def _reduce(name: str, *arrays: Any) -> Any:
    """Launch a loss kernel (arrays..., partials, size); the total as a 0-d array of the inputs' dtype."""
    cp, first = array_module("gpu"), arrays[0]
    grid = _grid(first.size)
    partials = cp.empty(grid[0], cp.float64)
    _launch(name, first.dtype, grid, (BLOCK,), *arrays, partials, first.size)
    total = cp.empty((), first.dtype)
    _launch("sum_partials", first.dtype, (1,), (BLOCK,), partials, grid[0], total)
    return total


def bias_act_forward(z: Any, b: Any, code: int, p: Any) -> None:
    """z (N, D) <- f(z + b) in place; b: (D,) or None."""
    has_bias = b is not None
    _elementwise("bias_act_forward", z, b if has_bias else z, z.size, z.shape[1], has_bias, code, p)


def act_backward(gy: Any, y: Any, code: int, p: Any, bias_grad: bool) -> tuple[Any, Any]:
    """(g, gb): g (N, D) = gy * f'(x) from y, gb (D,) = column sums of g, or None."""
    cp = array_module("gpu")
    n, d = y.shape
    g = cp.empty_like(y)
    gb = cp.empty(d, y.dtype) if bias_grad else None
    grid = (max(1, math.ceil(d / TILE[0])),)
    _launch("act_backward", y.dtype, grid, TILE, gy, y, g, g if gb is None else gb, n, d, code, p, bias_grad)
    return g, gb


def bce_with_logits(z: Any, t: Any) -> tuple[Any, Any]:
    """(total, grad) for z, t (N, D): the sum of max(z, 0) - z t + log1p(exp(-|z|)), and sigmoid(z) - t."""
    grad = array_module("gpu").empty_like(z)
    return _reduce("bce_with_logits", z, t, grad), grad


def mse(pred: Any, target: Any) -> tuple[Any, Any]:
    """(total, grad) for pred, target (N, D): the sum of (pred - target)^2, and 2 (pred - target)."""
    grad = array_module("gpu").empty_like(pred)
    return _reduce("mse", pred, target, grad), grad


def gaussian_kl(mu: Any, logvar: Any) -> tuple[Any, Any]:
    """(total, dlogvar) for mu, logvar (N, D): sum of 0.5 (mu^2 + exp(logvar) - logvar - 1), 0.5 (exp(logvar) - 1)."""
    dlogvar = array_module("gpu").empty_like(logvar)
    return _reduce("gaussian_kl", mu, logvar, dlogvar), dlogvar


def reparameterize_forward(mu: Any, logvar: Any, eps: Any) -> tuple[Any, Any]:
    """(z, std) for mu, logvar, eps (N, D): std = exp(0.5 logvar), z = mu + std eps."""
    cp = array_module("gpu")
    z, std = cp.empty_like(mu), cp.empty_like(mu)
    _elementwise("reparameterize_forward", mu, logvar, eps, z, std, mu.size)
    return z, std


def reparameterize_backward(gz: Any, std: Any, eps: Any) -> tuple[Any, Any]:
    """(glogvar, geps) for gz, std, eps (N, D): 0.5 gz std eps, gz std."""
    cp = array_module("gpu")
    glogvar, geps = cp.empty_like(gz), cp.empty_like(gz)
    _elementwise("reparameterize_backward", gz, std, eps, glogvar, geps, gz.size)
    return glogvar, geps


def adam_update(ws: list, gs: list, ms: list, vs: list, step_sizes: list, epss: list, *scalars: Any) -> None:
    """In place on up to GROUP flat w, m, v in one launch; step_sizes, epss: one number per parameter;
    ``scalars``: beta1, 1 - beta1, beta2, 1 - beta2, wd."""
    _group_launch("adam_update", (ws, gs, ms, vs), (step_sizes, epss), scalars)


def momentum_update(ws: list, gs: list, vs: list, lr: Any, momentum: Any, nesterov: bool, wd: Any) -> None:
    """In place on up to GROUP flat w, v in one launch; lr, momentum, wd: scalars of w's dtype."""
    _group_launch("momentum_update", (ws, gs, vs), (), (lr, momentum, nesterov, wd))


def _group_launch(name: str, arrays: tuple[list, ...], per_parameter: tuple[list, ...], scalars: tuple) -> None:
    """Launch an optimizer kernel with block row k for parameter k: each list of ``arrays`` filled up to
    GROUP with its first array, the sizes with 0 and ``per_parameter``'s numbers with 0, then ``scalars``."""
    first = arrays[0]
    pointers = [a for group in arrays for a in _filled(group, group[0])]
    sizes = _filled([a.size for a in first], 0)
    numbers = [x for values in per_parameter for x in _filled(values, 0)]
    grid = (_grid(max(sizes))[0], len(first))
    _launch(name, first[0].dtype, grid, (BLOCK,), *pointers, *sizes, *numbers, *scalars)


def _filled(values: list, fill: Any) -> list:
    """``values`` followed by ``fill`` up to GROUP entries."""
    return [*values, *[fill] * (GROUP - len(values))]
