"""Activations: forward against NumPy formulas, backward against central differences."""

from __future__ import annotations

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import ArgumentError, backend
from scratchae.ops.activations import ACTIVATIONS, get_activation

# name, keyword parameters, float64 reference y = f(x)
CASES = [
    ("identity", {}, lambda x: x),
    ("relu", {}, lambda x: np.maximum(x, 0)),
    ("leaky_relu", {"negative_slope": 0.1}, lambda x: np.where(x > 0, x, 0.1 * x)),
    ("elu", {"alpha": 0.7}, lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    ("sigmoid", {}, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", {}, np.tanh),
    ("softplus", {}, lambda x: np.log1p(np.exp(x))),
]
CASE_IDS = [c[0] for c in CASES]
SHAPES = [(7,), (4, 5), (2, 3, 4)]


def away_from_kink(rng: np.random.Generator, shape: tuple[int, ...], low: float = 1e-3, high: float = 3.0):
    """Values with |x| in [low, high] and random sign: central differences never straddle x = 0."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def test_every_activation_is_covered():
    assert set(ACTIVATIONS) == set(CASE_IDS)


@pytest.mark.parametrize("name, params, ref", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_formula_and_keeps_dtype(tensor, rng, name, params, ref, dtype):
    x = away_from_kink(rng, (6, 5))
    y = F.activate(tensor(x, dtype=dtype), name, **params)
    assert y.dtype == dtype and y.shape == x.shape
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y.numpy(), ref(x.astype(dtype).astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name, params, ref", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradient_matches_central_differences(tensor, rng, check_grads, name, params, ref, shape):
    x = tensor(away_from_kink(rng, shape), requires_grad=True, dtype=np.float64)
    check_grads(lambda x: F.activate(x, name, **params), [x])


@pytest.mark.parametrize(
    "fn",
    [F.relu, F.leaky_relu, F.elu, F.sigmoid, F.tanh, F.softplus],
    ids=lambda f: f.__name__,
)
def test_named_function_equals_activate(tensor, rng, fn):
    x = tensor(away_from_kink(rng, (3, 4)), dtype=np.float64)
    np.testing.assert_array_equal(fn(x).numpy(), F.activate(x, fn.__name__).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturating_activations_stay_finite_at_extremes(tensor, dtype):
    x = tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0], requires_grad=True, dtype=dtype)
    for fn in (F.sigmoid, F.softplus, F.tanh, F.elu):
        x.grad = None
        y = fn(x)
        y.backward(np.ones(5))
        assert np.all(np.isfinite(y.numpy())), fn.__name__
        assert np.all(np.isfinite(backend.to_numpy(x.grad))), fn.__name__
    np.testing.assert_allclose(F.sigmoid(x).numpy(), [0, 0, 0.5, 1, 1], atol=1e-30)
    np.testing.assert_allclose(F.softplus(x).numpy()[[0, 2, 4]], [0, np.log(2), 1000], rtol=1e-6)


@pytest.mark.parametrize(
    "name, params, slope_at_zero",
    [("relu", {}, 0.0), ("leaky_relu", {"negative_slope": 0.2}, 0.2)],
)
def test_kink_uses_left_derivative(tensor, name, params, slope_at_zero):
    """The documented choice at x = 0: the derivative from the left."""
    x = tensor([0.0, 0.0], requires_grad=True, dtype=np.float64)
    F.activate(x, name, **params).backward(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(backend.to_numpy(x.grad), [slope_at_zero, 3 * slope_at_zero])


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("swish", {}, "unknown activation 'swish'"),
        ("leaky_relu", {"negative_slope": -0.1}, "negative_slope must be >= 0"),
        ("elu", {"alpha": 0.0}, "alpha must be > 0"),
        ("relu", {"alpha": 1.0}, "does not take alpha"),
    ],
)
def test_bad_activation_arguments_raise(name, params, fragment):
    with pytest.raises(ArgumentError, match=fragment):
        get_activation(name, **params)


def test_activation_labels_name_their_parameters():
    assert get_activation("elu", alpha=0.5).label == "elu(alpha=0.5)"
    assert get_activation(None).name == "identity"
