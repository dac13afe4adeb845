"""Cases shared by the CPU and GPU kernel tests: each fused kernel against its reference expression.

A case builds NumPy inputs (random, or "edge": half the elements drawn from extreme values
and exact kinks); :func:`check_case` moves two copies to the device, runs the reference
on one and the fused kernel on the other, and compares every output and every array
updated in place, with the tolerance of the dtype. Inputs not updated in place must come
back unchanged.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scratchae.kernels import reference
from scratchae.kernels.args import ACTIVATION_CODES, GROUP

from scratchae import kernels

SHAPES = [(1, 1), (1, 7), (5, 3), (33, 17), (128, 20), (2, 3, 5), (0, 4), (3, 0)]
DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]
# float32: rtol 1e-5 (sums accumulate in float64 in the kernels, in float32 in NumPy); atol for values near 0.
TOLERANCES = {DTYPES[0]: {"rtol": 1e-5, "atol": 1e-6}, DTYPES[1]: {"rtol": 1e-12, "atol": 1e-12}}
EDGES = {
    "x": (0.0, 1.0, -1.0, 100.0, -100.0, 1e4, -1e4),
    "logvar": (0.0, 1.0, -1.0, 50.0, -50.0),
    "target": (0.0, 1.0, 0.5),
    "grad": (0.0, 1e4, -1e4),
}
PARAMS = {"leaky_relu": 0.2, "elu": 0.7}  # not the defaults, so that passing them is tested


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, edge: bool, kind: str = "x") -> Any:
    """Standard normal values (uniform [0, 1] for targets); with ``edge``, every other one from EDGES[kind]."""
    a = rng.random(shape) if kind == "target" else rng.standard_normal(shape)
    if edge:
        flat = a.reshape(-1)
        flat[::2] = rng.choice(EDGES[kind], flat[::2].size)
    return a.astype(dtype)


def as_rows(a: np.ndarray) -> np.ndarray:
    """``a`` (..., D) as a view of shape (rows, D), an empty one included (where reshape(-1, 0) fails)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


@dataclass(frozen=True)
class Case:
    """``kernel`` (a function of scratchae.kernels and of kernels.reference) on ``inputs(rng, shape, dtype, edge)``."""

    name: str
    kernel: str
    inputs: Callable[[np.random.Generator, tuple[int, ...], np.dtype, bool], tuple] = field(repr=False)
    mutated: tuple[int, ...] = ()  # positions of the arguments updated in place
    row_sums: dict[int, int] = field(default_factory=dict)  # output -> the output it sums over rows


def _forward_inputs(act: str, with_bias: bool) -> Callable:
    def make(rng, shape, dtype, edge):
        z = values(rng, shape, dtype, edge)
        b = values(rng, shape[-1:], dtype, edge) if with_bias else None
        if edge:  # exact kinks: x = z + b = 0 on every third row
            rows = as_rows(z)
            rows[::3] = 0 if b is None else -b
        return z, b, act, PARAMS.get(act)

    return make


def _backward_inputs(act: str, bias_grad: bool) -> Callable:
    def make(rng, shape, dtype, edge):
        x = values(rng, shape, dtype, edge)
        if edge:
            as_rows(x)[::3] = 0  # y at the kink
        y = reference.activation(act, PARAMS.get(act)).forward(x, np)
        return values(rng, shape, dtype, edge, "grad"), y, act, PARAMS.get(act), bias_grad

    return make


def _pair(kind_b: str) -> Callable:
    def make(rng, shape, dtype, edge):
        return values(rng, shape, dtype, edge), values(rng, shape, dtype, edge, kind_b)

    return make


def _reparameterize_forward(rng, shape, dtype, edge):
    return values(rng, shape, dtype, edge), values(rng, shape, dtype, edge, "logvar"), values(rng, shape, dtype, False)


def _reparameterize_backward(rng, shape, dtype, edge):
    std = np.exp(0.5 * values(rng, shape, dtype, edge, "logvar"))
    return values(rng, shape, dtype, edge, "grad"), std, values(rng, shape, dtype, False)


def _group_shapes(shape: tuple[int, ...], size: int) -> list[tuple[int, ...]]:
    """``size`` parameter shapes: ``shape``, then (D,), then (N - k, k + 2) for k = 0, 1, ... (sizes of all kinds)."""
    shapes = [shape, shape[-1:]] + [(max(1, shape[0] - k), k + 2) for k in range(size)]
    return shapes[:size]


def _adam(steps: tuple[int, ...], weight_decay: float) -> Callable:
    """An Adam group: one parameter per entry of ``steps``, each at its own update count (bias correction)."""

    def make(rng, shape, dtype, edge):
        shapes = _group_shapes(shape, len(steps))
        w, g, m = ([values(rng, s, dtype, edge, kind) for s in shapes] for kind in ("x", "grad", "grad"))
        v = [np.abs(values(rng, s, dtype, edge, "grad")) for s in shapes]
        b1, b2 = 0.9, 0.999
        root_c2 = [math.sqrt(1 - b2**t) for t in steps]
        step_sizes = [1e-3 * r / (1 - b1**t) for r, t in zip(root_c2, steps, strict=True)]
        return w, g, m, v, step_sizes, b1, b2, [1e-8 * r for r in root_c2], weight_decay

    return make


def _momentum(size: int, nesterov: bool, weight_decay: float) -> Callable:
    def make(rng, shape, dtype, edge):
        shapes = _group_shapes(shape, size)
        w, g, v = ([values(rng, s, dtype, edge, kind) for s in shapes] for kind in ("x", "grad", "grad"))
        return w, g, v, 0.05, 0.9, nesterov, weight_decay

    return make


CASES = [
    *(
        Case(f"bias_act_forward-{act}{'' if bias else '-nobias'}", "bias_act_forward", _forward_inputs(act, bias), (0,))
        for act in ACTIVATION_CODES
        for bias in (True, False)
    ),
    *(
        Case(f"act_backward-{act}{'' if gb else '-nogb'}", "act_backward", _backward_inputs(act, gb), (), {1: 0})
        for act in ACTIVATION_CODES
        for gb in (True, False)
    ),
    Case("bce_with_logits", "bce_with_logits", _pair("target")),
    Case("mse", "mse", _pair("x")),
    Case("gaussian_kl", "gaussian_kl", _pair("logvar")),
    Case("reparameterize_forward", "reparameterize_forward", _reparameterize_forward),
    Case("reparameterize_backward", "reparameterize_backward", _reparameterize_backward),
    Case("adam_update-step1", "adam_update", _adam((1,), 0.0), (0, 2, 3)),
    Case("adam_update-step1000-wd", "adam_update", _adam((1000, 1000), 0.01), (0, 2, 3)),
    # more parameters than one kernel pass takes (GROUP), at different update counts
    Case("adam_update-group", "adam_update", _adam(tuple(range(1, GROUP + 3)), 0.01), (0, 2, 3)),
    Case("momentum_update", "momentum_update", _momentum(1, False, 0.0), (0, 2)),
    Case("momentum_update-nesterov-wd", "momentum_update", _momentum(2, True, 0.01), (0, 2)),
    Case("momentum_update-group", "momentum_update", _momentum(GROUP + 2, False, 0.01), (0, 2)),
]


# the kernels that reduce (losses, act_backward's column sums), and shapes past one block, past the grid
# cap of MAX_BLOCKS x BLOCK elements (so the grid-stride loops and sum_partials take several passes), and
# with many rows for act_backward's row lanes
REDUCING = [c for c in CASES if c.kernel in ("bce_with_logits", "mse", "gaussian_kl") or c.row_sums]
LARGE_SHAPES = [(1, 300), (3000, 3), (1100, 256)]


def _arrays(args: list, positions: Any) -> list:
    """The arrays at ``positions`` of ``args``, those of a list (a group) one by one."""
    out: list = []
    for i in positions:
        a = args[i]
        out += [x for x in a if hasattr(x, "shape")] if isinstance(a, list) else [a] if hasattr(a, "shape") else []
    return out


def _outputs(result: Any) -> list:
    return list(result) if isinstance(result, tuple) else [] if result is None else [result]


def check_case(
    case: Case, shape: tuple[int, ...], dtype: np.dtype, edge: bool, xp: Any, to_numpy: Callable[[Any], Any]
) -> None:
    """Assert that the fused kernel equals the reference on arrays of ``xp`` (to tolerance)."""
    seed = zlib.crc32(f"{case.name} {shape} {dtype} {edge}".encode())
    args = case.inputs(np.random.default_rng(seed), shape, dtype, edge)

    def on_device(a: Any) -> Any:  # an array, or a list of them (an optimizer step's group)
        if isinstance(a, list) and a and isinstance(a[0], np.ndarray):
            return [xp.array(x) for x in a]
        return xp.array(a) if isinstance(a, np.ndarray) else a

    ref_args, fused_args = [on_device(a) for a in args], [on_device(a) for a in args]
    expected = _outputs(getattr(reference, case.kernel)(*ref_args)) + _arrays(ref_args, case.mutated)
    got = _outputs(getattr(kernels, case.kernel)(*fused_args)) + _arrays(fused_args, case.mutated)
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        if e is None:
            assert g is None, f"output {k} should be None"
            continue
        g_host, e_host = to_numpy(g), to_numpy(e)
        assert g_host.dtype == dtype and g_host.shape == e_host.shape, f"output {k}: {g_host.dtype} {g_host.shape}"
        tol = TOLERANCES[dtype]
        if k in case.row_sums:  # summed in another order than the reference's: allow the rounding bound
            terms = as_rows(np.abs(to_numpy(expected[case.row_sums[k]])))
            bound = tol["atol"] + tol["rtol"] * np.abs(e_host) + len(terms) * np.finfo(dtype).eps * terms.sum(axis=0)
            assert np.all(np.abs(g_host - e_host) <= bound), f"output {k} of {case.name}: {g_host} != {e_host}"
        else:
            np.testing.assert_allclose(g_host, e_host, **tol, err_msg=f"output {k} of {case.name}")
    kept = [i for i in range(len(args)) if i not in case.mutated]
    for a, original in zip(_arrays(fused_args, kept), _arrays(args, kept), strict=True):
        np.testing.assert_array_equal(to_numpy(a), original, err_msg=f"an input of {case.name} was modified")


NON_FINITE = (np.nan, np.inf, -np.inf)


def check_non_finite_activations(xp: Any, to_numpy: Callable[[Any], Any]) -> None:
    """NaN and +-inf pass every activation's forward (with a bias) and backward as in the reference:
    a NaN stays NaN, so a fused step never hides one."""
    for dtype in DTYPES:
        rng = np.random.default_rng(3)
        z = rng.standard_normal((6, 4)).astype(dtype)
        z[:3, :3] = np.array(NON_FINITE, dtype)[None, :]  # each non-finite value in a column of its own
        b = np.array([0.5, -0.5, 0.0, 1.0], dtype)
        gy = rng.standard_normal((6, 4)).astype(dtype)
        gy[3:, 0] = np.nan
        for act in ACTIVATION_CODES:
            param = PARAMS.get(act)
            expected = reference.bias_act_forward(xp.array(z), xp.array(b), act, param)
            got = kernels.bias_act_forward(xp.array(z), xp.array(b), act, param)
            e_host, g_host = to_numpy(expected), to_numpy(got)
            assert np.array_equal(np.isnan(g_host), np.isnan(e_host)), f"{act} forward NaN, {dtype}: {g_host}"
            np.testing.assert_allclose(g_host, e_host, **TOLERANCES[dtype], err_msg=f"{act} forward, {dtype}")
            y = xp.array(np.clip(to_numpy(expected), -50, 50))  # finite outputs (inf y gives inf * 0 in both)
            y[0, 0] = np.nan
            expected_grads = reference.act_backward(xp.array(gy), y, act, param)
            for e, g in zip(expected_grads, kernels.act_backward(xp.array(gy), y, act, param), strict=True):
                e_host, g_host = to_numpy(e), to_numpy(g)
                assert np.array_equal(np.isnan(g_host), np.isnan(e_host)), f"{act} backward NaN, {dtype}"
                np.testing.assert_allclose(g_host, e_host, **TOLERANCES[dtype], err_msg=f"{act} backward, {dtype}")


def check_strided_gradients(xp: Any, to_numpy: Callable[[Any], Any]) -> None:
    """The optimizer steps take gradients that are strided views (every other element, a transpose):
    the same updates as with C-contiguous copies of them, and the views unchanged."""
    rng = np.random.default_rng(7)
    base = [rng.standard_normal((2 * 5,)), rng.standard_normal((4, 3))]
    grads = [xp.array(base[0])[::2], xp.array(base[1]).T]  # (5,) stride 2, (3, 4) F-order
    shapes = [g.shape for g in grads]

    def state() -> list:
        return [xp.array(rng.standard_normal(s)) for s in shapes]

    ws, ms, vs = state(), state(), [xp.abs(v) for v in state()]
    for kernel, args in (
        ("adam_update", lambda w, g, m, v: (w, g, m, v, [1e-2, 2e-2], 0.9, 0.999, [1e-8, 1e-7], 0.01)),
        ("momentum_update", lambda w, g, m, v: (w, g, v, 0.05, 0.9, True, 0.01)),
    ):
        expected, got = ([[a.copy() for a in arrays] for arrays in (ws, ms, vs)] for _ in range(2))
        getattr(reference, kernel)(*args(expected[0], [xp.ascontiguousarray(g) for g in grads], *expected[1:]))
        getattr(kernels, kernel)(*args(got[0], grads, *got[1:]))
        for e, g in zip(sum(expected, []), sum(got, []), strict=True):
            np.testing.assert_allclose(to_numpy(g), to_numpy(e), rtol=1e-12, atol=1e-12, err_msg=kernel)
    np.testing.assert_array_equal(to_numpy(grads[0]), base[0][::2])
