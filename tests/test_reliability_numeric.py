"""Numerical extremes: property tests of the activations and losses over their whole working range
(logits in [-1e4, 1e4], logvar in [-50, 50], targets and probabilities in [0, 1]), with the fused kernels
on and off. In float32, every value and gradient is finite and matches a float64 reference computed
from the same float32 inputs, within a bound that follows float32 rounding (stated per test). And a
training run whose loss overflows stops at that batch, before any update with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import scratchae
import scratchae.functional as F
from scratchae import DivergenceError, Tensor, backend
from scratchae.models import AutoEncoder

PROPERTY = settings(max_examples=25, deadline=2000)
KERNELS = pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "plain"])
EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)  # the smallest normal float32


def floats(low: float, high: float) -> st.SearchStrategy:
    return st.floats(low, high, width=32)


@st.composite
def arrays(draw: st.DrawFn, *ranges: tuple[float, float]) -> list[np.ndarray]:
    """Float32 arrays of one shape (1..4, 1..5), one per (low, high) range, ends of the range included."""
    shape = draw(st.tuples(st.integers(1, 4), st.integers(1, 5)))
    return [draw(hnp.arrays(np.float32, shape, elements=floats(lo, hi))) for lo, hi in ranges]


LOGITS, UNIT, LOGVAR = (-1e4, 1e4), (0.0, 1.0), (-50.0, 50.0)


def assert_close(got: np.ndarray, ref: np.ndarray, tol: np.ndarray | float, what: str) -> None:
    """got (float32) finite and within tol of ref (float64), elementwise, plus 4 ulps of ref for the rounding
    of the result and of the batch mean's 1/N, plus the smallest normal float32 (below it values underflow)."""
    got = np.asarray(got, dtype=np.float64)
    assert np.all(np.isfinite(got)), f"{what}: not finite: {got}"
    err = np.abs(got - ref)
    tol = tol + 4 * EPS32 * np.abs(ref) + TINY32
    assert np.all(err <= tol), (
        f"{what}: error {err.max():.3g} above the bound at {np.argmax(err - tol)}; got {got}, ref {ref}"
    )


def sigmoid64(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# name -> (f, f') in float64
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "identity": (lambda x: x, lambda x: np.ones_like(x)),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1, 0.01)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), lambda x: np.exp(np.minimum(x, 0))),
    "sigmoid": (sigmoid64, lambda x: sigmoid64(x) * sigmoid64(-x)),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "softplus": (lambda x: np.logaddexp(0, x), sigmoid64),
}  # fmt: skip


def test_every_activation_is_covered():
    from scratchae.ops.activations import ACTIVATIONS as ALL

    assert set(ACTIVATIONS) == set(ALL)


@KERNELS
@pytest.mark.parametrize("name", list(ACTIVATIONS))
@PROPERTY
@given(xs=arrays(LOGITS))
def test_activation_values_and_gradients(kernels, name, xs):
    """Through ``activate`` and through ``linear`` (x @ I + b, exact, so the fused bias+activation kernel
    runs). y within 8 ulps; dy/dx within 1e-6 absolute (every f' here is
    in [0, 1] and is computed from y, which costs up to a few ulps of 1); the bias gradient within N * 1e-6."""
    (x,) = xs
    f, df = ACTIVATIONS[name]
    x64 = x.astype(np.float64)
    ref_y, ref_d = f(x64), df(x64)
    eye = np.eye(x.shape[1], dtype=np.float32)
    with backend.use_kernels(kernels):
        for path in ("activate", "linear"):
            xt, b = Tensor(x, requires_grad=True), Tensor(np.zeros(x.shape[1], np.float32), requires_grad=True)
            y = F.activate(xt, name) if path == "activate" else F.linear(xt, eye, b, name)
            y.sum().backward()
            assert_close(y.numpy(), ref_y, 8 * EPS32 * np.abs(ref_y), f"{path} {name} y")
            assert_close(xt.grad, ref_d, 1e-6, f"{path} {name} dy/dx")
            if path == "linear":
                assert_close(b.grad, ref_d.sum(axis=0), x.shape[0] * 1e-6, f"{path} {name} db")


def loss_and_grads(fn: Callable, *arrays: np.ndarray) -> tuple[float, list[np.ndarray]]:
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    loss = fn(*tensors)
    loss.backward()
    return float(loss.item()), [t.grad for t in tensors]


def total_bound(terms: np.ndarray) -> float:
    """The error allowed on a float32 sum of elementwise terms: 64 ulps of the sum of their magnitudes
    (each term's own rounding, the sum's, and cancellation between them)."""
    return 64 * EPS32 * float(np.abs(terms).sum())


@KERNELS
@PROPERTY
@given(zt=arrays(LOGITS, UNIT))
def test_bce_with_logits(kernels, zt):
    """l = max(z, 0) - z t + log1p(exp(-|z|)); dl/dz = sigmoid(z) - t (to 1e-6), dl/dt = -z (exact)."""
    z, t = zt
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    n = z.shape[0]
    parts = np.stack([np.maximum(z64, 0), -z64 * t64, np.log1p(np.exp(-np.abs(z64)))])
    with backend.use_kernels(kernels):
        value, (dz, dt) = loss_and_grads(F.bce_with_logits, z, t)
    assert_close(value, parts.sum() / n, total_bound(parts) / n, "value")
    assert_close(dz, (sigmoid64(z64) - t64) / n, 1e-6 / n, "dz")
    assert_close(dt, -z64 / n, 2 * EPS32 * np.abs(z64) / n, "dt")


@KERNELS
@PROPERTY
@given(pt=arrays(LOGITS, UNIT))
def test_mse(kernels, pt):
    """l = (p - t)^2 with p up to 1e4 (terms up to 1e8); dl/dp = 2 (p - t) within 8 ulps of |p| + |t|."""
    p, t = pt
    p64, t64 = p.astype(np.float64), t.astype(np.float64)
    n = p.shape[0]
    with backend.use_kernels(kernels):
        value, (dp, dt) = loss_and_grads(F.mse_loss, p, t)
    assert_close(value, ((p64 - t64) ** 2).sum() / n, total_bound((np.abs(p64) + np.abs(t64)) ** 2) / n, "value")
    bound = 8 * EPS32 * (np.abs(p64) + np.abs(t64)) / n
    assert_close(dp, 2 * (p64 - t64) / n, bound, "dp")
    assert_close(dt, -2 * (p64 - t64) / n, bound, "dt")


@KERNELS
@PROPERTY
@given(pt=arrays(UNIT, UNIT))
def test_bce_on_probabilities_clipped_at_0_and_1(kernels, pt):
    """p clipped to [1e-7, 1 - 1e-7] (in float32); the gradients of the clipped function, up to 1e7 in size,
    within 1e-5 relative to the magnitudes they are computed from."""
    p, t = pt
    pc = np.clip(p, np.float32(1e-7), np.float32(1 - 1e-7)).astype(np.float64)
    t64, n = t.astype(np.float64), p.shape[0]
    log_p, log_q = np.log(pc), np.log1p(-pc)
    with backend.use_kernels(kernels):
        value, (dp, dt) = loss_and_grads(F.bce_loss, p, t)
    terms = np.stack([t64 * log_p, (1 - t64) * log_q])
    assert_close(value, -terms.sum() / n, total_bound(terms) / n, "value")
    inside = pc == p.astype(np.float64)
    assert_close(dp, (pc - t64) / (pc * (1 - pc)) * inside / n, 1e-5 * (pc + t64) / (pc * (1 - pc)) / n, "dp")
    assert_close(dt, (log_q - log_p) / n, 1e-5 * (np.abs(log_q) + np.abs(log_p)) / n, "dt")


@KERNELS
@PROPERTY
@given(mv=arrays(LOGITS, LOGVAR))
def test_gaussian_kl(kernels, mv):
    """l = 0.5 (mu^2 + exp(logvar) - logvar - 1), exp(50) = 5e21 included; dl/dmu = mu (exact),
    dl/dlogvar = 0.5 (exp(logvar) - 1) within 4 ulps of exp(logvar) + 1."""
    mu, lv = mv
    mu64, lv64 = mu.astype(np.float64), lv.astype(np.float64)
    n = mu.shape[0]
    parts = 0.5 * np.stack([mu64**2, np.exp(lv64), -lv64, -np.ones_like(lv64)])
    with backend.use_kernels(kernels):
        value, (dmu, dlv) = loss_and_grads(F.gaussian_kl, mu, lv)
    assert_close(value, parts.sum() / n, total_bound(parts) / n, "value")
    assert_close(dmu, mu64 / n, 0, "dmu")
    assert_close(dlv, 0.5 * np.expm1(lv64) / n, 4 * EPS32 * (np.exp(lv64) + 1) / n, "dlogvar")


@KERNELS
@PROPERTY
@given(me=arrays(LOGITS, LOGVAR, (-8.0, 8.0)))
def test_reparameterize(kernels, me):
    """z = mu + exp(logvar / 2) eps with std up to exp(25) = 7e10; each gradient within 4 ulps."""
    mu, lv, eps = me
    mu64, std64, eps64 = mu.astype(np.float64), np.exp(0.5 * lv.astype(np.float64)), eps.astype(np.float64)
    with backend.use_kernels(kernels):
        ts = [Tensor(a, requires_grad=True) for a in (mu, lv, eps)]
        z = F.reparameterize(*ts)
        z.sum().backward()
    assert_close(z.numpy(), mu64 + std64 * eps64, 8 * EPS32 * (np.abs(mu64) + std64 * np.abs(eps64)), "z")
    assert_close(ts[0].grad, np.ones_like(mu64), 0, "dmu")
    assert_close(ts[1].grad, 0.5 * std64 * eps64, 8 * EPS32 * std64 * np.abs(eps64), "dlogvar")
    assert_close(ts[2].grad, std64, 8 * EPS32 * std64, "deps")


@KERNELS
@PROPERTY
@given(zs=arrays(LOGITS), data=st.data())
def test_softmax_cross_entropy(kernels, zs, data):
    """l_n = logsumexp(z_n) - z_n[y_n] with logits 2e4 apart; dl/dz = softmax(z) - onehot(y) within 1e-6."""
    (z,) = zs
    n, c = z.shape
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    z64 = z.astype(np.float64)
    shifted = z64 - z64.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    zt = Tensor(z, requires_grad=True)
    with backend.use_kernels(kernels):
        loss = F.softmax_cross_entropy(zt, y)
        loss.backward()
    rows = np.arange(n)
    assert_close(loss.item(), -log_probs[rows, y].sum() / n, total_bound(np.abs(z64) + 1) / n, "value")
    expected = np.exp(log_probs)
    expected[rows, y] -= 1
    assert_close(zt.grad, expected / n, 1e-6 / n, "dz")


# ---------------------------------------------------------------- a loss that overflows during training


@KERNELS
def test_training_stops_at_the_batch_whose_loss_overflows(kernels, tmp_path):
    """Row 9 holds 3e19 (finite float32; its squared error is not): with batches of 4 in order, the loss of
    epoch 2, batch 3 is inf. Training stops there, before the optimizer step: the weights are those after
    batch 2, and the checkpoint of epoch 1 is what loads."""
    X = np.random.default_rng(0).random((16, 6)).astype(np.float32)
    bad = X.copy()
    bad[9] = 3e19
    args = dict(batch_size=4, shuffle=False, verbose=False, optimizer="sgd", lr=1e-2)

    def model() -> AutoEncoder:
        return AutoEncoder(6, (4,), 2, output="linear", loss="mse")

    with backend.use_kernels(kernels), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow warnings on the way to inf
        diverged = model()
        diverged.fit(X, epochs=1, checkpoint_dir=tmp_path, **args)
        stop = r"the loss became inf in epoch 2, batch 3; the weights were not .* or rescale the data if it holds very"
        with pytest.raises(DivergenceError, match=stop):
            diverged.fit(bad, epochs=3, checkpoint_dir=tmp_path, **args)
        reference = model()
        reference.fit(X, epochs=1, **args)
        reference.fit(X[:8], epochs=2, **args)  # epoch 2 = the two batches before the bad one
    assert diverged.optimizer.steps == 6 and diverged.epochs_trained == 1  # 4 steps in the first fit, 2 here
    for name, w in diverged.state_dict().items():
        np.testing.assert_array_equal(w, reference.state_dict()[name], err_msg=name)
    loaded = scratchae.load(tmp_path)
    assert loaded.epochs_trained == 1 and len(loaded.history) == 1
    first = model()
    first.fit(X, epochs=1, **args)
    for name, w in loaded.state_dict().items():
        np.testing.assert_array_equal(w, first.state_dict()[name], err_msg=name)
