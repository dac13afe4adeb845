"""The checker itself: it passes right gradients, catches a wrong one, and checks whole modules."""

from __future__ import annotations

import re

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import (
    ArgumentError,
    DTypeError,
    Function,
    GradcheckError,
    GraphError,
    Tensor,
    backend,
    gradcheck,
    gradcheck_module,
    nn,
)


class Square(Function):
    """y = x^2; dx = 2 x dy (``factor`` replaces the 2, so a test can make it wrong)."""

    def __init__(self, factor: float = 2.0):
        self.factor = factor

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved
        return self.factor * x * gy


def test_right_backward_passes_with_report_fields(tensor, rng):
    x = tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True, dtype=np.float64)
    report = gradcheck(lambda x: Square()(x), [x], names=["x"])
    assert report.ok
    assert report.max_abs_error < 1e-8 and report.max_rel_error < 1e-6
    (row,) = report.rows
    assert (row.name, row.shape, row.checked, row.ok) == ("x", (3, 4), 12, True)
    assert row.grad_scale > 1.0  # |2 x r| with |x| >= 0.5 and r ~ N(0, 1)
    assert "PASS" in report.table() and str(report) == report.table()


def test_wrong_backward_is_detected(tensor, rng):
    """A backward missing the factor 2 is off by half the gradient: relative error 0.5."""
    x = tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True, dtype=np.float64)
    report = gradcheck(lambda x: Square(factor=1.0)(x), [x])
    assert not report.ok and not report.rows[0].ok
    np.testing.assert_allclose(report.max_rel_error, 0.5, rtol=1e-6)
    assert "NO" in report.table() and "FAIL" in report.table()


def test_raise_on_fail_raises_with_the_table(tensor, rng):
    x = tensor(rng.uniform(0.5, 2.0, (2, 2)), requires_grad=True, dtype=np.float64)
    c = tensor(rng.uniform(0.5, 2.0, (2, 2)), requires_grad=True, dtype=np.float64)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, c: Square(factor=2.5)(x) * c, [x, c], names=["x", "c"], raise_on_fail=True)
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    for fragment in ("gradient check failed", "max rel err", "x ", "c ", "NO", "yes", "FAIL"):
        assert fragment in message


def test_inputs_are_float64_copies(tensor, rng):
    data = rng.uniform(0.5, 2.0, (2, 3)).astype(np.float32)
    x = tensor(data, requires_grad=True, dtype=np.float32)
    seen = []

    def square(x: Tensor) -> Tensor:
        seen.append(x.dtype)
        return Square()(x)

    report = gradcheck(square, [x])
    assert report.ok and set(seen) == {np.dtype(np.float64)}
    np.testing.assert_array_equal(x.numpy(), data)
    assert x.grad is None


def test_only_inputs_that_require_grad_are_checked(tensor, rng):
    x = tensor(rng.standard_normal((2, 2)), requires_grad=True, dtype=np.float64)
    report = gradcheck(F.mul, [x, tensor(rng.standard_normal((2, 2)))], names=["x", "constant"])
    assert [row.name for row in report.rows] == ["x"]
    with pytest.raises(GraphError, match="no input requires a gradient"):
        gradcheck(F.mul, [rng.standard_normal(2), rng.standard_normal(2)])


def test_max_entries_samples_that_many_entries(tensor, rng):
    x = tensor(rng.standard_normal((10, 10)), requires_grad=True, dtype=np.float64)
    small = tensor(rng.standard_normal(3), requires_grad=True, dtype=np.float64)
    report = gradcheck(lambda x, s: F.tanh(x).sum(axis=0) * s.sum(), [x, small], max_entries=7)
    assert [row.checked for row in report.rows] == [7, 3] and report.ok


def _mlp(device: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Dense(5, 4, activation="tanh", rng=0, device=device),
        nn.Dense(4, 4, activation="elu", rng=1, device=device),
        nn.Dense(4, 3, rng=2, device=device),
    )


def test_gradcheck_module_over_a_dense_mlp(device, rng):
    model = _mlp(device).to(dtype="float64")
    x = Tensor(backend.as_float_array(rng.standard_normal((6, 5)), dtype=np.float64, device=device))
    t = Tensor(backend.as_float_array(rng.uniform(size=(6, 3)), dtype=np.float64, device=device))
    before = [p.numpy().copy() for p in model.parameters()]
    report = gradcheck_module(model, lambda: F.bce_with_logits(model(x), t))
    assert report.ok and report.max_rel_error < 1e-6, report.table()
    assert [row.name for row in report.rows] == ["0.W", "0.b", "1.W", "1.b", "2.W", "2.b"]
    assert [row.checked for row in report.rows] == [20, 4, 16, 4, 12, 3]
    for p, old in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.numpy(), old)  # perturbations undone
        assert p.grad is None


def test_gradcheck_module_skips_frozen_parameters_and_samples(device, rng):
    model = _mlp(device).to(dtype="float64")
    model[0].freeze()
    x = Tensor(backend.as_float_array(rng.standard_normal((4, 5)), dtype=np.float64, device=device))
    report = gradcheck_module(model, lambda: model(x).mean(), max_entries=5, raise_on_fail=True)
    assert [(row.name, row.checked) for row in report.rows] == [("1.W", 5), ("1.b", 4), ("2.W", 5), ("2.b", 3)]


def test_gradcheck_module_detects_a_wrong_backward(rng):
    model = nn.Sequential(nn.Dense(3, 2, rng=0, dtype=np.float64))
    x = rng.uniform(0.5, 2.0, (4, 3))
    report = gradcheck_module(model, lambda: Square(factor=1.0)(model(x)).sum())
    assert not report.ok and [row.ok for row in report.rows] == [False, False]


def test_a_check_loosened_by_the_losss_rounding_says_so(rng):
    """A loss of about 1e8 whose gradients are at most 4: 32 ulps of it over eps = 1e-6 let relative errors
    of about 0.2 pass, and the table says so; at eps = 1e-2 the allowance is 1e4 times smaller."""
    model = nn.Sequential(nn.Dense(3, 2, rng=0, dtype=np.float64))
    x = rng.uniform(0.5, 2.0, (4, 3))
    offset = np.full((4, 2), 1e8 / 8)
    loose = gradcheck_module(model, lambda: (model(x) + offset).sum())
    assert loose.ok and "note: the rounding of the objective lets relative errors up to" in loose.table()
    assert max(row.rounding_share for row in loose.rows) > 1e-3
    close = gradcheck_module(model, lambda: (model(x) + offset).sum(), eps=1e-2)
    assert close.ok and "note:" not in close.table(), close.table()
    plain = gradcheck_module(model, lambda: model(x).sum())
    assert "note:" not in plain.table()
    tiny = gradcheck_module(model, lambda: model(x).sum() * 1e-8)  # atol, not rounding, is what is loose here
    assert "note:" not in tiny.table()


def test_gradcheck_module_refuses_float32_and_names_the_fix(device):
    model = _mlp(device)
    with pytest.raises(DTypeError, match=r"float32.*module\.to\(dtype='float64'\)"):
        gradcheck_module(model, lambda: model(np.ones((1, 5), np.float32)).sum())


def test_gradcheck_module_misuse(rng):
    model = nn.Sequential(nn.Dense(3, 2, rng=0, dtype=np.float64))
    x = rng.standard_normal((4, 3))
    with pytest.raises(GraphError, match=r"one value, got shape \(4, 2\)"):
        gradcheck_module(model, lambda: model(x))
    with pytest.raises(GraphError, match="loss_fn must return a Tensor, got float"):
        gradcheck_module(model, lambda: 1.0)
    model.freeze()
    with pytest.raises(GraphError, match="no trainable parameter"):
        gradcheck_module(model, lambda: model(x).sum())


def test_gradcheck_module_perturbs_non_contiguous_parameters(rng):
    """A parameter stored column-major (a transposed array) is checked like any other."""
    model = nn.Dense(3, 2, rng=0, dtype=np.float64)
    model.W = nn.Parameter(np.asfortranarray(model.W.data))
    x = rng.standard_normal((4, 3))
    report = gradcheck_module(model, lambda: F.tanh(model(x)).sum())
    assert report.ok and report.max_rel_error < 1e-6, report.table()


def test_a_large_loss_is_allowed_its_rounding(rng):
    """The reference VAE's loss (~650 nats on random pixels) is a sum of ~6,000 terms: one value of it is
    rounded by ~1e-13, which puts ~1e-7 into a difference quotient with the step 1e-6, more than rtol
    allows for gradients near 0.5. Those entries pass with the rounding allowance, which stays far below
    the error of a gradient wrong by 0.1%."""
    from scratchae.models import VAE

    vae = VAE(784, hidden=(400,), latent_dim=20, dtype="float64")
    x, eps = rng.uniform(0, 1, (8, 784)), rng.standard_normal((8, 20))
    report = gradcheck_module(vae, lambda: vae.batch_loss(x, eps=eps).total, max_entries=30)
    assert report.ok, report.table()
    strict = [r.max_abs_error <= 1e-10 + 1e-6 * r.grad_scale for r in report.rows]
    assert not all(strict), "no row needed the allowance: the test no longer shows it"
    for r in report.rows:
        assert r.rounding < 1e-3 * r.grad_scale and r.kinks == 0
    off = nn.Sequential(nn.Dense(784, 20, rng=0, dtype=np.float64))
    big = rng.uniform(0, 1, (8, 784)) * 10
    wrong = gradcheck_module(off, lambda: Square(factor=2.002)(off(big)).sum() + 650.0 * 8, max_entries=10)
    assert not wrong.ok


def test_an_entry_on_a_kink_is_left_out_and_a_tensor_of_kinks_fails():
    x = Tensor(np.array([[-1.0, 0.0, 2.0]]), requires_grad=True)
    (row,) = gradcheck(F.relu, [x]).rows
    assert (row.checked, row.kinks, row.ok) == (2, 1, True)
    dense = nn.Dense(3, 4, "relu", init="zeros", dtype=np.float64)  # every pre-activation is 0: all kinks
    report = gradcheck_module(dense, lambda: dense(np.ones((5, 3))).sum())
    assert not report.ok and [(r.checked, r.kinks) for r in report.rows] == [(0, 12), (0, 4)]
    assert "NO (every entry at a kink)" in report.table()


def test_gradcheck_names_its_misuse(rng):
    W = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    with pytest.raises(GraphError, match="fn must return a Tensor or a tuple of Tensors, got ndarray"):
        gradcheck(lambda W: W.data * 2, [W])
    with pytest.raises(ArgumentError, match=r"0 names for 1 input$"):
        gradcheck(lambda W: W * 2, [W], names=[])
    x32 = np.ones((4, 3), np.float32)
    with pytest.raises(DTypeError, match="mix dtypes float32 and float64.*float64 copies of its inputs"):
        gradcheck(lambda W: F.linear(x32, W), [W])
    with pytest.raises(DTypeError) as info:  # another dtype error is passed on as it is
        gradcheck(lambda W: W + np.array(["a"]), [W])
    assert "float64 copies" not in str(info.value)


@pytest.mark.parametrize(
    "fn, inputs",
    [
        (lambda p, t: F.mse_loss(p, t), lambda rng: [rng.standard_normal((4, 6)) * 1e-3, np.zeros((4, 6))]),
        (lambda m, v: F.gaussian_kl(m, v), lambda rng: [rng.standard_normal((4, 3)) * 1e-3] * 2),
    ],
    ids=["mse near its target", "kl near the prior"],
)
def test_curvature_large_beside_the_slope_is_not_a_kink(fn, inputs, rng):
    """Near a minimum s'' dwarfs s', so the bend h s'' fails the tolerance; it grows with the step as a
    kink's does not, so every entry is checked at h (not at a step where rounding swamps the slope)."""
    for trial in range(10):
        a, b = inputs(rng)
        report = gradcheck(fn, [Tensor(a, requires_grad=True), Tensor(b, requires_grad=trial % 2 == 0)])
        assert report.ok, report.table()
        assert all(r.kinks == 0 and r.checked == a.size for r in report.rows)


def test_a_kink_just_inside_the_step_is_stepped_around(rng):
    """relu at 0.75 h from its kink: the central difference at h is biased, the one at h / 100 is clear."""
    x = rng.uniform(0.5, 2.0, (2, 3)) * rng.choice([-1, 1], (2, 3))
    x[0, 0] = -0.75e-6
    report = gradcheck(F.relu, [Tensor(x, requires_grad=True)])
    (row,) = report.rows
    assert report.ok and row.checked == 6 and row.kinks == 0, report.table()


def test_the_rounding_allowance_follows_the_entries_that_changed(rng):
    """x^2 on 10,000 entries near 100: the sum is ~1e8 but a perturbation changes one entry, so the
    allowance stays near one entry's rounding (not the sum's, ~0.6) and a backward off by 0.01% still fails."""
    x = Tensor(100 + rng.standard_normal((100, 100)), requires_grad=True)
    right = gradcheck(lambda x: Square()(x), [x], max_entries=20)
    assert right.ok and right.rows[0].rounding < 1e-5 * right.rows[0].grad_scale, right.table()
    assert not gradcheck(lambda x: Square(factor=2.0002)(x), [x], max_entries=20).ok


def test_max_entries_is_none_or_positive(rng):
    x = Tensor(rng.standard_normal((2, 2)), requires_grad=True)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ArgumentError, match="max_entries must be None \\(every entry\\) or a positive integer"):
            gradcheck(lambda x: x * 2, [x], max_entries=bad)


def test_a_change_below_the_outputs_resolution_is_allowed_for_and_said_to_bound_only():
    """A scalar output of ~3e5 moves by less than an ulp when a weakly coupled input is perturbed, and
    comes back unchanged: the numeric slope is 0, within the output's rounding, not a failure; as that
    allowance exceeds the gradient, the table says the check only bounds it."""
    big = Tensor(np.full((4, 64), 100.0), requires_grad=True)
    weak = Tensor(np.full((4, 3), 1e-4), requires_grad=True)
    report = gradcheck(
        lambda b, w: F.mse_loss(b, np.zeros((4, 64))) + F.gaussian_kl(w, w * 0), [big, weak], names=["big", "weak"]
    )
    assert report.ok and report.rows[1].rounding_share >= 1, report.table()
    (weak_line,) = [line for line in report.table().splitlines() if line.startswith("weak")]
    assert weak_line.endswith("yes, only bounded (rounding >= max|grad|)")
    assert "note: for weak the rounding allowance reaches max|grad|" in report.table()


def test_a_zero_gradient_passes_at_any_step():
    """d/db of (a + b) - b is exactly 0 and the numeric slope is rounding noise: a pass at every step."""
    a, b = (Tensor(np.random.default_rng(s).standard_normal((3, 4)), requires_grad=True) for s in (1, 2))
    for eps in (1e-6, 1e-4, 1e-3, 1e-2, 1e-1):
        assert gradcheck(lambda x, y: (x + y) - y, [a, b], eps=eps).ok


def test_a_step_below_the_values_resolution_is_refused(rng):
    """At 1e-17, x ± eps rounds to x for x in [0.5, 1): refused, naming the step; at 1e-15 a backward 10 times
    too large is still caught."""
    x = Tensor(rng.uniform(0.5, 1.0, (3, 4)), requires_grad=True)

    def wrong(t: Tensor) -> Tensor:
        return Square(factor=20.0)(t)

    assert not gradcheck(wrong, [x]).ok
    assert not gradcheck(wrong, [x], eps=1e-15).ok
    with pytest.raises(ArgumentError, match=r"step 1e-17 is below the float64 resolution of the value 0\.\d+"):
        gradcheck(wrong, [x], eps=1e-17)


def test_the_slope_divides_by_the_step_actually_taken(rng):
    """x - s near s = 1e6: x ± 1e-6 is stored with an error up to ulp(1e6) ~ 1.2e-10, a relative error of
    6e-5 in 2h; dividing by the stored step gives the exact slope 1."""
    s = 1e6
    x = Tensor(s + rng.uniform(0, 1, (3, 4)), requires_grad=True)
    report = gradcheck(lambda t: F.sub(t, Tensor(np.full((3, 4), s))), [x])
    assert report.ok and report.max_abs_error < 1e-9, report.table()


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(eps=0.0), "eps must be a finite number > 0, got 0.0"),
        (dict(eps=-1e-6), "eps must be a finite number > 0"),
        (dict(eps="a"), "eps must be a finite number > 0, got 'a'"),
        (dict(eps=True), "eps must be a finite number > 0, got True"),
        (dict(rtol=-1.0), "rtol must be a finite number >= 0"),
        (dict(atol=float("nan")), "atol must be a finite number >= 0, got nan"),
        (dict(seed="a"), "seed must be an integer >= 0, got 'a'"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, needle, rng):
    x = Tensor(rng.standard_normal((2, 2)), requires_grad=True)
    with pytest.raises(ArgumentError, match=re.escape(needle)):
        gradcheck(F.tanh, [x], **kwargs)
    with pytest.raises(ArgumentError, match=re.escape(needle)):
        gradcheck_module(nn.Dense(2, 2, rng=0, dtype="float64"), lambda: F.tanh(x), **kwargs)


def test_seed_none_draws_an_unseeded_weighting(rng):
    x = Tensor(rng.standard_normal((2, 2)), requires_grad=True)
    assert gradcheck(F.tanh, [x], seed=None).ok


def test_a_function_that_is_not_callable_is_refused(rng):
    x = Tensor(rng.standard_normal((2, 2)), requires_grad=True)
    with pytest.raises(ArgumentError, match="gradcheck: fn must be callable, got int"):
        gradcheck(3, [x])
    with pytest.raises(ArgumentError, match="gradcheck_module: loss_fn must be callable, got Tensor"):
        gradcheck_module(nn.Dense(2, 2, rng=0, dtype="float64"), x)


def test_curvature_near_a_log_singularity_is_not_taken_for_a_kink(rng):
    """bce_loss at p ~ 1e-4: the slope moves between h and 4h (a large third derivative), yet every
    entry is smooth and is checked (at the smaller step), none left out as a kink."""
    p = Tensor(rng.uniform(1e-5, 1e-4, (3, 3)), requires_grad=True)
    (row,) = gradcheck(lambda p: F.bce_loss(p, np.full((3, 3), 0.5)), [p]).rows
    assert row.ok and row.kinks == 0 and row.checked == 9
