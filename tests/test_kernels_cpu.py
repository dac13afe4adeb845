"""The Numba kernels equal their reference expressions; bad arguments get clear errors."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from kernel_cases import (
    CASES,
    DTYPES,
    SHAPES,
    TOLERANCES,
    check_case,
    check_non_finite_activations,
    check_strided_gradients,
)
from scratchae.kernels import cpu, reference

from scratchae import ArgumentError, DTypeError, ShapeError, kernels
from scratchae.backend import to_numpy


@pytest.mark.parametrize("edge", [False, True], ids=["random", "edge"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kernel_equals_reference(case, shape, dtype, edge):
    check_case(case, shape, dtype, edge, np, to_numpy)


def test_nan_and_inf_pass_the_activations_as_in_the_reference():
    check_non_finite_activations(np, to_numpy)


def test_non_contiguous_inputs_are_read_correctly():
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((2, 6, 8))[:, :, ::2]  # each (6, 4), strided
    total, grad = kernels.bce_with_logits(z, t)
    ref_total, ref_grad = reference.bce_with_logits(z, t)
    np.testing.assert_allclose(total, ref_total, **TOLERANCES[z.dtype])
    np.testing.assert_allclose(grad, ref_grad, **TOLERANCES[z.dtype])


@pytest.mark.parametrize("rows", [255, 256, 257, 600, 1024])
def test_bce_total_across_product_blocks(rows):
    """The log1p terms are summed as logs of per-column products over blocks of rows: rows that
    cross a block boundary, and logits from -1e4 to 1e4 (factors 1 + e from 1 to 2), give the
    float64 reference total to 1e-12."""
    rng = np.random.default_rng(rows)
    z = rng.standard_normal((rows, 5)) * rng.choice([1.0, 30.0, 1e4], (rows, 5))
    z[::7] = 0.0  # e = 1: the largest factor
    t = rng.random((rows, 5))
    total, grad = kernels.bce_with_logits(z, t)
    ref_total, ref_grad = reference.bce_with_logits(z, t)
    np.testing.assert_allclose(total, ref_total, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_import_loads_no_compiler():
    code = "import sys, scratchae, scratchae.kernels; print(sorted({'numba', 'cupy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_first_call_prints_the_compile_note_once(monkeypatch, capsys):
    """Kernels not ready within the note's delay (here: 0.2 s of set-up against 0 s) get the note, once per process."""
    exercise = cpu._exercise
    monkeypatch.setattr(cpu, "_warm", set())
    monkeypatch.setattr(cpu, "NOTE_AFTER_S", 0.0)
    monkeypatch.setattr(cpu, "_exercise", lambda dtype: (time.sleep(0.2), exercise(dtype)))
    a = np.ones((2, 3), np.float32)
    kernels.mse(a, a)
    kernels.mse(a, a.copy())
    cpu.warmup()
    assert capsys.readouterr().err.count(cpu.COMPILE_NOTE) == 1
    assert cpu._warm == set(DTYPES)


def test_kernels_ready_at_once_print_no_note(monkeypatch, capsys):
    """Kernels loaded within the delay (compiled in this process already, as from Numba's cache) print nothing."""
    monkeypatch.setattr(cpu, "_warm", set())
    monkeypatch.setattr(cpu, "NOTE_AFTER_S", 5.0)
    cpu.warmup()
    assert cpu.COMPILE_NOTE not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda a, b: kernels.mse(a, b.astype(np.float64)), DTypeError, ["target", "float64", "float32"]),
        (lambda a, b: kernels.mse(a.astype(np.int32), b), DTypeError, ["pred", "int32"]),
        (lambda a, b: kernels.gaussian_kl(a, [[0.0]]), DTypeError, ["logvar", "list"]),
        (lambda a, b: kernels.bce_with_logits(a, b.T), ShapeError, ["target", "(3, 2)", "(2, 3)"]),
        (lambda a, b: kernels.bias_act_forward(a, b[0, :2], "relu"), ShapeError, ["b", "(2,)", "(3,)"]),
        (lambda a, b: kernels.bias_act_forward(a, None, "swish"), ArgumentError, ["swish", "softplus"]),
        (lambda a, b: kernels.act_backward(a, b, "elu"), ArgumentError, ["elu", "alpha"]),
        (lambda a, b: kernels.bias_act_forward(a.T, None, "relu"), ArgumentError, ["z", "C-contiguous"]),
        (
            lambda a, b: kernels.adam_update([a, b], [b, a], [b, a.T.copy().T], [b, b], [0.1] * 2, 0.9, 0.9, [0.1] * 2),
            ArgumentError,
            ["ms[1]", "C-contiguous"],
        ),
        (lambda a, b: kernels.momentum_update([a], [b], [b[:, :2]], 0.1, 0.9), ShapeError, ["vs[0]", "(2, 2)"]),
        (lambda a, b: kernels.momentum_update(a, b, b, 0.1, 0.9), ArgumentError, ["ws", "list or tuple", "ndarray"]),
        (lambda a, b: kernels.momentum_update([a, b], [a], [b], 0.1, 0.9), ArgumentError, ["ws 2", "gs 1"]),
        (lambda a, b: kernels.adam_update([a], [b], [b], [a], 1e-3, 0.9, 0.999, [1e-8]), ArgumentError, ["step_sizes"]),
        (lambda a, b: kernels.adam_update([a], [b], [b], [a[0]], [1e-3], 0.9, 0.999, [1e-8]), ShapeError, ["vs[0]"]),
        (lambda a, b: kernels.momentum_update([a], [b.astype(np.float64)], [a], 0.1, 0.9), DTypeError, ["gs[0]"]),
        (lambda a, b: kernels.momentum_update([a], [b], [_read_only(a)], 0.1, 0.9), ArgumentError, ["vs[0]", "read-"]),
    ],
)
def test_bad_arguments_get_clear_errors(call, error, words):
    """An error names the argument; the arrays updated in place are left as they were."""
    a, b = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    with pytest.raises(error) as info:
        call(a, b)
    for word in words:
        assert word in str(info.value)
    assert np.all(a == 1) and np.all(b == 0)


def test_optimizer_steps_take_strided_gradients():
    check_strided_gradients(np, to_numpy)


def test_an_optimizer_step_reads_a_read_only_gradient():
    w, v = np.ones(3, np.float32), np.zeros(3, np.float32)
    g = _read_only(np.full(3, 2.0, np.float32))
    kernels.momentum_update([w], [g], [v], 0.5, 0.9)
    np.testing.assert_array_equal(w, 0.0)


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a
