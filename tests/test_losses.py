"""Losses: gradients for every reduction, closed-form values, stability at extreme inputs, errors."""

from __future__ import annotations

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import ArgumentError, DataError, DTypeError, ShapeError, backend
from scratchae.ops.gaussian import GaussianKL
from scratchae.ops.losses import BCELoss, BCEWithLogits, MSELoss, SoftmaxCrossEntropy, bce_clip_eps

REDUCTIONS = ["batchmean", "sum", "mean", "none"]
SHAPES = [(1, 1), (4, 3), (2, 3, 5)]


def _logits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Moderate logits with the edge values -50 and 50 mixed in."""
    z = rng.normal(0, 3, size=shape)
    z.flat[::3] = 50.0 * rng.choice([-1.0, 1.0], size=z.flat[::3].shape)
    return z


# name -> (loss, draw (first argument, second argument) of a shape)
PAIR_LOSSES = {
    "mse_loss": (F.mse_loss, lambda rng, s: (rng.standard_normal(s), rng.standard_normal(s))),
    "bce_loss": (F.bce_loss, lambda rng, s: (rng.uniform(0.05, 0.95, s), rng.uniform(0, 1, s))),
    "bce_with_logits": (F.bce_with_logits, lambda rng, s: (_logits(rng, s), rng.uniform(0, 1, s))),
}


@pytest.mark.parametrize("name", list(PAIR_LOSSES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pair_loss_gradients_to_both_arguments(tensor, rng, check_grads, name, shape, reduction):
    loss, draw = PAIR_LOSSES[name]
    a, b = (tensor(v, requires_grad=True, dtype=np.float64) for v in draw(rng, shape))
    out = loss(a, b, reduction=reduction)
    assert out.shape == (shape if reduction == "none" else ())
    check_grads(lambda a, b: loss(a, b, reduction=reduction), [a, b])


@pytest.mark.parametrize("shape", [(3, 2), (5, 3), (8, 10)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_gradient(tensor, rng, check_grads, shape, reduction):
    """Moderate rows beside a row with a logit of 50 and a row with a logit of -50."""
    z = rng.normal(0, 3, size=shape)
    z[0, 0], z[-1, -1] = 50.0, -50.0
    z = tensor(z, requires_grad=True, dtype=np.float64)
    labels = rng.integers(0, shape[1], size=shape[0])
    check_grads(lambda z: F.softmax_cross_entropy(z, labels, reduction=reduction), [z])


def _loss_call(name: str, rng: np.random.Generator, tensor, shape: tuple[int, int]):
    """``reduction -> value`` of the loss ``name`` on fixed random inputs of ``shape`` (N, C)."""
    if name == "softmax_cross_entropy":
        loss, args = F.softmax_cross_entropy, [tensor(_logits(rng, shape)), rng.integers(0, shape[1], size=shape[0])]
    else:
        loss, draw = PAIR_LOSSES[name]
        args = [tensor(v) for v in draw(rng, shape)]
    return lambda reduction: loss(*args, reduction=reduction).numpy()


@pytest.mark.parametrize("name", [*PAIR_LOSSES, "softmax_cross_entropy"])
def test_reductions_relate(tensor, rng, name):
    n, c = 6, 4
    value = _loss_call(name, rng, tensor, (n, c))
    none, total = value("none"), value("sum")
    per_example_count = 1 if name == "softmax_cross_entropy" else c
    np.testing.assert_allclose(none.sum(), total, rtol=1e-6)
    np.testing.assert_allclose(value("batchmean") * n, total, rtol=1e-6)
    np.testing.assert_allclose(value("mean") * n * per_example_count, total, rtol=1e-6)


def test_mse_of_identical_arrays_is_zero(tensor, rng):
    x = rng.standard_normal((5, 3))
    for reduction in REDUCTIONS:
        assert np.all(F.mse_loss(tensor(x), tensor(x), reduction=reduction).numpy() == 0)


def test_mse_value(tensor):
    loss = F.mse_loss(tensor([[1.0, 2.0], [3.0, 4.0]]), tensor([[0.0, 0.0], [3.0, 6.0]]))
    np.testing.assert_allclose(loss.item(), (1 + 4 + 0 + 4) / 2)  # batchmean over 2 examples


def _entropy(t: np.ndarray) -> np.ndarray:
    return -(t * np.log(t) + (1 - t) * np.log(1 - t))


def test_bce_at_p_equal_t_is_the_entropy(tensor, rng):
    t = rng.uniform(0.05, 0.95, (4, 6))
    bce = F.bce_loss(tensor(t, dtype=np.float64), tensor(t, dtype=np.float64), reduction="none")
    np.testing.assert_allclose(bce.numpy(), _entropy(t), rtol=1e-12)
    logits = tensor(np.log(t / (1 - t)), dtype=np.float64)
    via_logits = F.bce_with_logits(logits, tensor(t, dtype=np.float64), reduction="none")
    np.testing.assert_allclose(via_logits.numpy(), _entropy(t), rtol=1e-12)


def test_bce_with_logits_equals_bce_of_sigmoid(tensor, rng):
    z, t = rng.normal(0, 4, (3, 7)), rng.uniform(0, 1, (3, 7))
    p = 1 / (1 + np.exp(-z))
    direct = F.bce_with_logits(tensor(z, dtype=np.float64), tensor(t, dtype=np.float64), reduction="none")
    np.testing.assert_allclose(direct.numpy(), F.bce_loss(tensor(p), tensor(t), reduction="none").numpy(), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_at_plus_minus_100(tensor, dtype):
    z = np.array([[-100.0, -100.0, 100.0, 100.0, 0.0, 100.0]])
    t = np.array([[0.0, 1.0, 0.0, 1.0, 0.5, 0.25]])
    zt = tensor(z, requires_grad=True, dtype=dtype)
    loss = F.bce_with_logits(zt, tensor(t, dtype=dtype), reduction="none")
    assert loss.dtype == dtype
    expected = [0.0, 100.0, 100.0, 0.0, np.log(2), 75.0]  # max(z, 0) - z t + log1p(exp(-|z|))
    np.testing.assert_allclose(loss.numpy(), [expected], rtol=1e-6, atol=1e-30)
    loss.backward(np.ones_like(z))
    sigmoid = np.array([[0.0, 0.0, 1.0, 1.0, 0.5, 1.0]])
    grad = backend.to_numpy(zt.grad)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, sigmoid - t, atol=np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_loss_clips_probabilities_0_and_1(tensor, dtype):
    """p is clipped to [eps, 1 - eps]: finite loss about -log(eps) when p is certain and wrong,
    and zero gradient where p was clipped (the derivative of the clipped function)."""
    p = tensor([[0.0, 1.0, 0.0, 1.0]], requires_grad=True, dtype=dtype)
    t = tensor([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    loss = F.bce_loss(p, t, reduction="none")
    values = loss.numpy()[0]
    eps = bce_clip_eps(np.dtype(dtype))
    assert np.all(np.isfinite(values))
    assert np.all((-np.log(2 * eps) < values[:2]) & (values[:2] < -np.log(eps / 2))), values
    np.testing.assert_allclose(values[2:], 0, atol=10 * eps)
    loss.backward(np.ones((1, 4)))
    np.testing.assert_array_equal(backend.to_numpy(p.grad), np.zeros((1, 4)))


@pytest.mark.parametrize("classes", [2, 10, 784])
def test_softmax_cross_entropy_of_uniform_logits_is_log_c(tensor, classes):
    z = tensor(np.full((3, classes), 7.5))
    labels = np.array([0, classes - 1, classes // 2])
    np.testing.assert_allclose(F.softmax_cross_entropy(z, labels, reduction="none").numpy(), np.log(classes), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_stable_for_large_logits(tensor, dtype):
    z = tensor([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]], requires_grad=True, dtype=dtype)
    loss = F.softmax_cross_entropy(z, np.array([1, 2]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [2000.0, 0.0], rtol=1e-6)
    loss.backward(np.ones(2))
    np.testing.assert_allclose(backend.to_numpy(z.grad), [[1, -1, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(PAIR_LOSSES))
def test_loss_keeps_dtype(tensor, rng, dtype, name):
    loss, draw = PAIR_LOSSES[name]
    a, b = (tensor(v, requires_grad=True, dtype=dtype) for v in draw(rng, (3, 2)))
    out = loss(a, b)
    out.backward()
    assert out.dtype == dtype and a.grad.dtype == dtype and b.grad.dtype == dtype


@pytest.mark.parametrize("name", list(PAIR_LOSSES))
def test_pair_loss_errors(tensor, name):
    loss, _ = PAIR_LOSSES[name]
    with pytest.raises(ShapeError, match=r"\(3, 2\).*\(2, 3\)"):
        loss(tensor(np.full((3, 2), 0.5)), tensor(np.full((2, 3), 0.5)))
    with pytest.raises(ArgumentError, match="unknown reduction 'avg'.*batchmean, sum, mean, none"):
        loss(tensor(np.full((3, 2), 0.5)), tensor(np.full((3, 2), 0.5)), reduction="avg")


@pytest.mark.parametrize(
    "logits_shape, labels, error, fragment",
    [
        ((3, 4), np.array([0, 4, 1]), DataError, r"\[0, 3\].*0 to 4"),
        ((3, 4), np.array([0, -1, 1]), DataError, r"\[0, 3\]"),
        ((3, 4), np.array([0.0, 1.5, 2.0]), DataError, "whole numbers"),
        ((3, 4), np.array(["a", "b", "c"]), DTypeError, "integers"),
        ((3, 4), np.array([0, 1]), ShapeError, r"\(2,\).*\(3,\)"),
        ((4,), np.array([0]), ShapeError, r"\(N, C\)"),
    ],
)
def test_softmax_cross_entropy_label_errors(tensor, logits_shape, labels, error, fragment):
    with pytest.raises(error, match=fragment):
        F.softmax_cross_entropy(tensor(np.zeros(logits_shape)), labels)


def test_softmax_cross_entropy_accepts_integral_float_labels(tensor):
    z = tensor(np.log([[0.25, 0.75], [0.5, 0.5]]))
    np.testing.assert_allclose(F.softmax_cross_entropy(z, np.array([1.0, 0.0]), reduction="sum").item(), -np.log(0.375))


@pytest.mark.parametrize(
    "reduction, factor", [("batchmean", "* dL / N"), ("mean", "* dL / numel"), ("sum", "* dL"), ("none", "* dl")]
)
def test_each_losss_backward_formula_carries_its_reductions_factor(reduction, factor):
    """What trace prints beside a loss's gradient is the gradient it shows: batchmean divides by N."""
    for op in (MSELoss(reduction), BCELoss(reduction), BCEWithLogits(reduction), GaussianKL(reduction)):
        terms = op.formula.split(", ")
        assert len(terms) == 2 and all(t.endswith(factor) for t in terms), op.formula
    ce = SoftmaxCrossEntropy(np.zeros(2, int), reduction).formula
    assert ce.endswith("* dL / N" if reduction == "mean" else factor), ce  # mean averages over the rows
