"""Time each fused kernel against its plain reference expression at the reference VAE's shapes.

    python benchmarks/kernels_micro.py [--device cpu|gpu] [--dtype float32] [--parallel-check]

Prints microseconds per call (best of several rounds) and the speedup reference / fused.
Activations and losses run at batch 128 and 1024 by width 400 and 784, the Gaussian ops
at width 20, the optimizer steps on weights of 784 x 400 and 400 x 20.
``--parallel-check`` (CPU) times a step of matrix products and kernels with the Numba
kernels compiled serial and ``parallel=True``: the reason the CPU kernels are serial.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scratchae.kernels import reference

from scratchae import backend, kernels

BATCHES, WIDTHS, LATENT = (128, 1024), (400, 784), 20
WEIGHTS = ((784, 400), (400, 20))
# the reference VAE's parameters (784-400-20): encoder W, b, head W, b (mu and logvar), decoder W, b, W, b
VAE_PARAMETERS = ((784, 400), (400,), (400, 40), (40,), (20, 400), (400,), (400, 784), (784,))


def best_time(fn: Callable[[], Any], sync: Callable[[], None], budget: float = 0.2) -> float:
    """Seconds per call: the best of 5 rounds of calls filling about ``budget`` seconds each."""
    fn()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    calls = max(1, int(budget / 5 / max(time.perf_counter() - start, 1e-7)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def cases(xp: Any, dtype: Any) -> list[tuple[str, tuple[int, ...], Callable[[Any], tuple]]]:
    """(label, shape, make_args(shape)) for every measured call; the label starts with the kernel's name."""
    rng = np.random.default_rng(0)

    def arr(shape: tuple[int, ...], positive: bool = False) -> Any:
        a = rng.standard_normal(shape).astype(dtype)
        return xp.asarray(np.abs(a) if positive else a)

    rows = [(n, d) for n in BATCHES for d in WIDTHS]
    latent = [(n, LATENT) for n in BATCHES]
    out = []
    for act in ("relu", "sigmoid"):
        out += [(f"bias_act_forward {act}", s, lambda s, a=act: (arr(s), arr(s[1:]), a)) for s in rows]
        out += [(f"act_backward {act}", s, lambda s, a=act: (arr(s), xp.abs(arr(s)), a)) for s in rows]
    out += [("bce_with_logits", s, lambda s: (arr(s), arr(s, True))) for s in rows]
    out += [("mse", s, lambda s: (arr(s), arr(s))) for s in rows]
    out += [("gaussian_kl", s, lambda s: (arr(s), arr(s))) for s in latent]
    out += [("reparameterize_forward", s, lambda s: (arr(s), arr(s), arr(s))) for s in latent]
    out += [("reparameterize_backward", s, lambda s: (arr(s), arr(s, True), arr(s))) for s in latent]

    def group(shapes: tuple[tuple[int, ...], ...], positive: bool = False) -> list:
        return [arr(s, positive) for s in shapes]

    def adam(shapes: tuple[tuple[int, ...], ...]) -> tuple:
        k = len(shapes)
        return (group(shapes), group(shapes), group(shapes), group(shapes, True), [1e-2] * k, 0.9, 0.999, [1e-8] * k)

    def momentum(shapes: tuple[tuple[int, ...], ...]) -> tuple:
        return group(shapes), group(shapes), group(shapes), 0.01, 0.9

    # the optimizer steps on one weight matrix, then on all the reference VAE's parameters as one group
    groups = [(s,) for s in WEIGHTS] + [VAE_PARAMETERS]
    out += [("adam_update", g, adam) for g in groups]
    out += [("momentum_update", g, momentum) for g in groups]
    return out


def run_table(device: str, dtype: Any) -> None:
    xp = backend.array_module(device)

    def sync() -> None:
        backend.synchronize(device)

    if device == "cpu":
        from scratchae.kernels import cpu

        cpu.warmup((dtype,))
    print(f"{'kernel':26s} {'shape':>12s} {'reference us':>13s} {'fused us':>9s} {'speedup':>8s}")
    for name, shape, make_args in cases(xp, dtype):
        args = make_args(shape)
        kernel = name.split()[0]  # "bias_act_forward relu" -> bias_act_forward
        ref_fn, fused_fn = getattr(reference, kernel), getattr(kernels, kernel)
        t_ref = best_time(lambda f=ref_fn, a=args: f(*a), sync)
        t_fused = best_time(lambda f=fused_fn, a=args: f(*a), sync)
        print(f"{name:26s} {_label(shape):>12s} {t_ref * 1e6:13.1f} {t_fused * 1e6:9.1f} {t_ref / t_fused:7.2f}x")


def _label(shape: tuple) -> str:
    """An array's shape, a group's one shape, or the number of arrays in a larger group."""
    if shape and isinstance(shape[0], tuple):
        return str(shape[0]) if len(shape) == 1 else f"{len(shape)} params"
    return str(shape)


def parallel_check(dtype: Any) -> None:
    """A forward + backward GEMM pair, bias+relu and an Adam step per call: serial vs parallel=True kernels."""
    from numba import njit
    from scratchae.kernels import cpu

    cpu.warmup((dtype,))
    rng = np.random.default_rng(0)
    c = np.dtype(dtype).type
    W = rng.standard_normal((784, 400)).astype(dtype)
    b = rng.standard_normal(400).astype(dtype)
    flat = [rng.standard_normal(W.size).astype(dtype) for _ in range(3)]
    w, g, m, v = W.reshape(-1), flat[0], flat[1], np.abs(flat[2])
    scalars = tuple(c(s) for s in (1e-3, 1e-8, 0.9, 0.1, 0.999, 1e-3, 0))  # cpu._adam_one's step size, eps, five
    variants = {
        "serial": (cpu._bias_act, cpu._adam_one),
        "parallel": tuple(
            njit(parallel=True, fastmath=False, error_model="numpy")(k.py_func) for k in (cpu._bias_act, cpu._adam_one)
        ),
    }
    for n in BATCHES:
        x = rng.standard_normal((n, 784)).astype(dtype)
        for label, (bias_act, adam) in variants.items():

            def step(x=x, bias_act=bias_act, adam=adam) -> None:
                z = x @ W
                bias_act(z, b, cpu.RELU, c(0), z)
                x.T @ z
                adam(w, g, m, v, *scalars)

            print(f"batch {n:5d} step with {label:8s} kernels: {best_time(step, lambda: None, 1.0) * 1e3:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=backend.DEVICES)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--parallel-check", action="store_true", help="time serial vs parallel Numba kernels")
    opts = parser.parse_args()
    dtype = np.dtype(opts.dtype)
    if opts.parallel_check:
        parallel_check(dtype)
    else:
        run_table(opts.device, dtype)


if __name__ == "__main__":
    main()
