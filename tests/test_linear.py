"""The dense op y = f(x W + b): forward, gradients to x, W and b, shape errors."""

from __future__ import annotations

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import ShapeError, backend, no_grad
from scratchae.ops.activations import ACTIVATIONS

ACTIVATION_PARAMS = {"leaky_relu": {"negative_slope": 0.1}, "elu": {"alpha": 0.7}}
SHAPES = [(1, 3, 2), (5, 4, 3), (8, 6, 10)]  # (N, in, out)


def inputs(rng: np.random.Generator, n: int, d_in: int, d_out: int) -> tuple[np.ndarray, ...]:
    return rng.standard_normal((n, d_in)), rng.standard_normal((d_in, d_out)), rng.standard_normal(d_out)


def kink_free(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shift b so that no pre-activation x W + b lies within 1e-3 of the relu kink at 0."""
    z = x @ W + b
    near = np.abs(z) < 1e-3
    return b + 2e-3 * near.any(axis=0)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_gradients_to_x_W_and_b(tensor, rng, check_grads, activation, shape, bias):
    x, W, b = inputs(rng, *shape)
    b = kink_free(x, W, b) if bias else np.zeros_like(b)
    assert np.min(np.abs(x @ W + b)) >= 1e-3, "test point on the relu kink"
    params = ACTIVATION_PARAMS.get(activation, {})
    args = [tensor(a, requires_grad=True, dtype=np.float64) for a in ((x, W, b) if bias else (x, W))]
    report = check_grads(lambda *a: F.linear(*a, activation=activation, **params), args)
    assert [r.shape for r in report.rows] == [tuple(a.shape) for a in args]


@pytest.mark.parametrize("activation", ["identity", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_equals_activation_of_affine_map(tensor, rng, activation, dtype):
    x, W, b = (tensor(a, dtype=dtype) for a in inputs(rng, 6, 4, 3))
    y = F.linear(x, W, b, activation=activation)
    expected = F.activate(x @ W + b, activation)
    assert y.dtype == dtype and y.shape == (6, 3)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_only_inputs_that_require_grad_get_one(tensor, rng):
    x, W, b = inputs(rng, 4, 3, 2)
    xt, Wt, bt = tensor(x), tensor(W, requires_grad=True), tensor(b, requires_grad=True)
    F.linear(xt, Wt, bt).backward(np.ones((4, 2)))
    assert xt.grad is None
    np.testing.assert_allclose(backend.to_numpy(Wt.grad), x.T @ np.ones((4, 2)), rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(bt.grad), np.full(2, 4.0), rtol=1e-6)


def test_no_grad_records_no_linear_node(tensor, rng):
    x, W, b = (tensor(a, requires_grad=True) for a in inputs(rng, 2, 3, 4))
    with no_grad():
        y = F.linear(x, W, b, activation="relu")
    assert y.creator is None and not y.requires_grad


@pytest.mark.parametrize(
    "x_shape, W_shape, b_shape, named",
    [
        ((4, 3), (5, 2), (2,), ["(4, 3)", "(5, 2)"]),
        ((4,), (4, 2), (2,), ["(4,)", "(4, 2)"]),
        ((4, 3), (3, 2), (3,), ["(3,)", "(3, 2)"]),
    ],
)
def test_shape_mismatch_names_both_shapes(tensor, x_shape, W_shape, b_shape, named):
    args = (tensor(np.ones(x_shape)), tensor(np.ones(W_shape)), tensor(np.ones(b_shape)))
    with pytest.raises(ShapeError) as info:
        F.linear(*args)
    assert isinstance(info.value, ValueError)
    for shape in named:
        assert shape in str(info.value)
