"""The VAE ops: Gaussian KL to N(0, I) and the reparameterization z = mu + exp(logvar / 2) eps."""

from __future__ import annotations

import numpy as np
import pytest
import scratchae.kernels

import scratchae.functional as F
from scratchae import ArgumentError, ShapeError, backend

REDUCTIONS = ["batchmean", "sum", "mean", "none"]
SHAPES = [(1, 1), (4, 3), (6, 20)]
# exp(10) terms make the checked objective ~1e5: a step of 1e-5 keeps its round-off (~1e-16 * 1e5 / step)
# a million times below the gradient, while the truncation error (~step^2 * exp(10)) stays smaller still.
EDGE_EPS = 1e-5


def _logvar(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Moderate log-variances with the edge values -10 and 10 mixed in."""
    lv = rng.normal(0, 1, size=shape)
    lv.flat[::4] = 10.0 * rng.choice([-1.0, 1.0], size=lv.flat[::4].shape)
    return lv


def _kl_reference(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mu, sigma^2) || N(0, 1)) = log(1 / sigma) + (sigma^2 + mu^2) / 2 - 1/2, per element."""
    sigma = np.exp(0.5 * logvar)
    return np.log(1 / sigma) + (sigma**2 + mu**2) / 2 - 0.5


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_gradients_to_mu_and_logvar(tensor, rng, check_grads, shape, reduction):
    mu = tensor(rng.normal(0, 2, size=shape), requires_grad=True, dtype=np.float64)
    logvar = tensor(_logvar(rng, shape), requires_grad=True, dtype=np.float64)
    report = check_grads(lambda m, lv: F.gaussian_kl(m, lv, reduction=reduction), [mu, logvar], eps=EDGE_EPS)
    assert len(report.rows) == 2


def test_kl_matches_the_textbook_formula(tensor, rng):
    mu, logvar = rng.normal(0, 2, (5, 4)), _logvar(rng, (5, 4))
    kl = F.gaussian_kl(tensor(mu, dtype=np.float64), tensor(logvar, dtype=np.float64), reduction="none")
    np.testing.assert_allclose(kl.numpy(), _kl_reference(mu, logvar), rtol=1e-12)


def test_kl_of_standard_normal_is_zero(tensor):
    for reduction in REDUCTIONS:
        kl = F.gaussian_kl(tensor(np.zeros((3, 5))), tensor(np.zeros((3, 5))), reduction=reduction)
        assert np.all(kl.numpy() == 0)


def test_kl_of_unit_variance_is_half_mu_squared(tensor, rng):
    mu = rng.normal(0, 3, (4, 6))
    zeros = tensor(np.zeros_like(mu), dtype=np.float64)
    mu_t = tensor(mu, dtype=np.float64)
    np.testing.assert_allclose(F.gaussian_kl(mu_t, zeros, reduction="none").numpy(), mu**2 / 2, rtol=1e-14)
    # batchmean: summed over the latent dimensions, averaged over the 4 examples
    np.testing.assert_allclose(F.gaussian_kl(mu_t, zeros).item(), (mu**2 / 2).sum() / 4, rtol=1e-14)


def test_kl_reductions_relate(tensor, rng):
    n, d = 5, 3
    mu, logvar = tensor(rng.standard_normal((n, d))), tensor(rng.standard_normal((n, d)))
    value = {r: F.gaussian_kl(mu, logvar, reduction=r).numpy() for r in REDUCTIONS}
    np.testing.assert_allclose(value["none"].sum(), value["sum"], rtol=1e-6)
    np.testing.assert_allclose(value["batchmean"] * n, value["sum"], rtol=1e-6)
    np.testing.assert_allclose(value["mean"] * n * d, value["sum"], rtol=1e-6)


def test_kl_is_nonnegative_and_finite_at_edge_logvar(tensor, rng):
    kl = F.gaussian_kl(tensor(rng.normal(0, 2, (50, 8))), tensor(rng.uniform(-10, 10, (50, 8))), reduction="none")
    values = kl.numpy()
    assert np.all(np.isfinite(values)) and np.all(values >= 0)


def test_kl_errors(tensor):
    with pytest.raises(ShapeError, match=r"mu has shape \(2, 3\) but logvar has shape \(2, 4\)"):
        F.gaussian_kl(tensor(np.zeros((2, 3))), tensor(np.zeros((2, 4))))
    with pytest.raises(ArgumentError, match="unknown reduction"):
        F.gaussian_kl(tensor(np.zeros((2, 3))), tensor(np.zeros((2, 3))), reduction="elementwise")


KERNELS = pytest.mark.parametrize("kernels", [True, False], ids=["fused", "plain"])


@KERNELS
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reparameterize_gradients_to_mu_logvar_and_eps(tensor, rng, check_grads, shape, kernels):
    mu = tensor(rng.normal(0, 2, size=shape), requires_grad=True, dtype=np.float64)
    logvar = tensor(_logvar(rng, shape), requires_grad=True, dtype=np.float64)
    eps = tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)
    with backend.use_kernels(kernels):
        report = check_grads(F.reparameterize, [mu, logvar, eps], eps=EDGE_EPS)
    assert [r.name for r in report.rows] == ["input 0", "input 1", "input 2"]


@KERNELS
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reparameterize_forward_and_hand_gradients(tensor, rng, dtype, kernels, monkeypatch):
    """Forward and backward against the formulas, through the fused kernels (each called once) or the plain path."""
    calls = []
    for name in ("reparameterize_forward", "reparameterize_backward"):
        kernel = getattr(scratchae.kernels, name)
        monkeypatch.setattr(scratchae.kernels, name, lambda *a, k=kernel, n=name: (calls.append(n), k(*a))[1])
    mu, logvar, eps = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    tm, tl, te = (tensor(a, requires_grad=True, dtype=dtype) for a in (mu, logvar, eps))
    with backend.use_kernels(kernels):
        z = F.reparameterize(tm, tl, te)
    std = np.exp(0.5 * logvar)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert z.dtype == dtype
    np.testing.assert_allclose(z.numpy(), mu + std * eps, rtol=tol, atol=tol)
    gz = rng.normal(size=(3, 4))
    with backend.use_kernels(kernels):
        z.backward(gz)
    np.testing.assert_allclose(backend.to_numpy(tm.grad), gz, rtol=tol)
    np.testing.assert_allclose(backend.to_numpy(tl.grad), 0.5 * gz * std * eps, rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(te.grad), gz * std, rtol=tol)
    assert calls == (["reparameterize_forward", "reparameterize_backward"] if kernels else [])


def test_reparameterize_treats_array_eps_as_a_constant(device, tensor, rng):
    mu = tensor(rng.normal(size=(2, 3)), requires_grad=True, dtype=np.float32)
    eps = backend.as_float_array(rng.normal(size=(2, 3)), dtype=np.float32, device=device)
    z = F.reparameterize(mu, tensor(np.zeros((2, 3)), dtype=np.float32), eps)
    assert z.creator.needs_input_grad == (True, False, False)
    z.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(backend.to_numpy(mu.grad), np.ones((2, 3)))


def test_reparameterize_shape_error_names_all_shapes(tensor):
    with pytest.raises(ShapeError, match=r"mu \(2, 3\), logvar \(2, 3\) and eps \(3, 2\)"):
        F.reparameterize(tensor(np.zeros((2, 3))), tensor(np.zeros((2, 3))), tensor(np.zeros((3, 2))))
