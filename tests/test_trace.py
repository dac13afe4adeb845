"""scratchae.trace: one step op by op, in forward order, with local finite-difference checks."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from scratchae import ArgumentError, ShapeError, backend
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder
from scratchae.models.base import Loss, Model
from scratchae.nn import Dense
from scratchae.ops.gaussian import GaussianKL
from scratchae.ops.losses import mse_loss
from scratchae.trace import Trace, float64_copy, trace

VAE_OPS = [
    "linear+relu",
    "linear",
    "split",
    "reparameterize",
    "linear+relu",
    "linear",
    "bce_with_logits",
    "gaussian_kl",
    "add",
]
FD_TOL = 1e-6


@pytest.fixture
def batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Six examples of 10 features in (0, 1) and their labels in 0..2."""
    return rng.uniform(0.05, 0.95, (6, 10)), rng.integers(0, 3, 6)


def checked_inputs(t: Trace) -> list:
    return [i for r in t.rows for i in r.inputs if i.grad is not None]


def test_vae_rows_in_forward_order_with_small_fd_errors(device, batch):
    x, _ = batch
    t = trace(VAE(10, hidden=(7,), latent_dim=3, device=device), x, max_entries=20)
    assert [r.name for r in t.rows] == VAE_OPS
    assert [r.step for r in t.rows] == list(range(1, len(VAE_OPS) + 1))
    grads = checked_inputs(t)
    # every gradient that flows is checked: 19 inputs (the data x, targets, eps and constants need none)
    assert len(grads) == 19
    assert all(i.fd_checked > 0 and i.fd_rel_error < FD_TOL and i.fd_ok for i in grads)
    assert t.ok and 0 < t.max_fd_error < FD_TOL
    assert t.dtype == "float64" and t.n_examples == 6
    assert t.terms.keys() == {"recon", "kl"} and t.loss == pytest.approx(t.terms["recon"] + t.terms["kl"])
    # the formula of each op's backward travels with its row
    assert t.rows[3].formula.startswith("dmu = dz") and "exp(logvar)" in t.rows[7].formula


def test_a_kl_weight_other_than_one_is_a_mul_on_the_tape(batch):
    x, _ = batch
    t = trace(VAE(10, hidden=(7,), latent_dim=3, beta=0.5), x)
    assert [r.name for r in t.rows] == [*VAE_OPS[:-1], "mul", "add"]
    assert t.loss == pytest.approx(t.terms["recon"] + 0.5 * t.terms["kl"]) and t.ok


def test_backward_runs_every_op_after_the_ops_that_consume_it(batch):
    x, y = batch
    t = trace(ConditionalVAE(10, 3, hidden=(7,), latent_dim=2), x, y)
    assert sorted(r.backward_step for r in t.rows) == list(range(1, len(t.rows) + 1))
    assert t.backward_rows[0].name == "add" and t.backward_rows[-1].step == 1
    assert "concat" in [r.name for r in t.rows]  # [z, one_hot(y)] before the decoder
    edges = [(t.rows[i.source - 1], r) for r in t.rows for i in r.inputs if i.source is not None]
    # 12 op-to-op edges: split feeds reparameterize and gaussian_kl with mu and logvar, add has two inputs
    assert len(edges) == 12
    for producer, consumer in edges:  # forward: producer first; backward: consumer first
        assert producer.step < consumer.step and producer.backward_step > consumer.backward_step
    assert t.ok and t.max_fd_error < FD_TOL


def test_forward_stats_and_gradients_match_a_direct_float64_step(device, batch, rng):
    x, _ = batch
    model = VAE(10, hidden=(7,), latent_dim=3, device=device)
    eps = rng.standard_normal((6, 3))
    t = trace(model, x, eps=eps)

    ref = float64_copy(model)
    loss = ref.batch_loss(backend.to_device(x, device), eps=backend.to_device(eps, device))
    loss.total.backward()
    assert t.loss == pytest.approx(backend.to_float(loss.total.data), rel=1e-12)

    W = ref.encoder.body.layers[0].W.numpy()
    b = ref.encoder.body.layers[0].b.numpy()
    h = np.maximum(x @ W + b, 0)
    s = t.rows[0].outputs[0].stats
    assert t.rows[0].outputs[0].shape == (6, 7)
    assert (s.mean, s.std, s.min, s.max) == pytest.approx((h.mean(), h.std(), h.min(), h.max()), rel=1e-12)

    by_param = {i.parameter: i for i in checked_inputs(t) if i.parameter}
    assert set(by_param) == {name for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        g = p.numpy() * 0 + backend.to_numpy(p.grad)
        assert by_param[name].grad.norm == pytest.approx(np.linalg.norm(g), rel=1e-10)
        assert by_param[name].grad.max_abs == pytest.approx(np.abs(g).max(), rel=1e-10)


def test_the_model_is_not_changed(batch):
    x, _ = batch
    model = AutoEncoder(10, hidden=(7,), latent_dim=3)
    before = model.state_dict()
    trace(model, x)
    assert model.dtype == np.float32
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_injected_noise_makes_the_step_deterministic(batch, rng):
    x, _ = batch
    model = DenoisingAutoEncoder(10, hidden=(7,), latent_dim=3)
    noisy = model.corrupt(x, rng=5)
    a, b = trace(model, x, noisy=noisy, seed=1), trace(model, x, noisy=noisy, seed=2)
    assert a.loss == b.loss
    assert [r.name for r in a.rows] == ["linear+relu", "linear", "linear+relu", "linear", "bce_with_logits"]
    assert trace(model, x, seed=1).loss != trace(model, x, seed=2).loss  # drawn noise follows the seed
    assert a.ok and a.max_fd_error < FD_TOL


def test_a_wrong_backward_is_caught(batch, monkeypatch):
    x, _ = batch
    mu_grad = GaussianKL.local_grads

    def wrong(self, need_a, need_b):  # dKL/dlogvar off by a factor of two
        dmu, dlogvar = mu_grad(self, need_a, need_b)
        return dmu, 2 * dlogvar

    monkeypatch.setattr(GaussianKL, "local_grads", wrong)
    t = trace(VAE(10, hidden=(7,), latent_dim=3), x)
    kl = next(r for r in t.rows if r.name == "gaussian_kl")
    assert [i.fd_ok for i in kl.inputs] == [True, False]
    assert kl.inputs[1].fd_rel_error > 0.1
    assert not t.ok and "FAIL" in t.table(color=False)


def test_table_is_aligned_and_coloured_only_on_request(batch):
    x, _ = batch
    t = trace(VAE(10, hidden=(7,), latent_dim=3), x, max_entries=5)
    plain = t.table(color=False)
    for name in set(VAE_OPS):
        assert name in plain
    assert "\x1b[" not in plain and "\x1b[" in t.table(color=True)
    assert "W (encoder.body.0.W)" in plain and "constant" in plain and "PASS" in plain
    for box in plain.split("\n\n")[:2]:  # the forward and backward tables: every line one width
        assert len({len(line) for line in box.splitlines()}) == 1
    assert str(t) == plain


def test_rows_as_flat_records(batch):
    x, _ = batch
    t = trace(AutoEncoder(10, hidden=(7,), latent_dim=3), x, check=False)
    records = t.to_dicts()
    assert len(records) == sum(len(r.inputs) for r in t.rows)
    first = records[0]
    assert first["op"] == "linear+relu" and first["input"] == "x" and first["grad_norm"] is None
    assert {"out_mean", "out_std", "out_min", "out_max", "fd_rel_error"} <= first.keys()
    assert all(r["fd_rel_error"] is None and r["fd_ok"] is None for r in records) and not t.checked
    checked = trace(AutoEncoder(10, hidden=(7,), latent_dim=3), x).to_dicts()
    assert {r["fd_ok"] for r in checked} == {True, None}  # None: a constant input
    assert all((r["fd_ok"] is None) == (r["grad_norm"] is None) for r in checked)


def traced_parameters(t: Trace) -> set[str]:
    return {i.parameter for r in t.rows for i in r.inputs if i.parameter and i.grad is not None}


def test_the_step_updates_what_fit_would_frozen_or_not(batch):
    """A frozen encoder's weights get no gradient in the trace; once unfrozen, they do."""
    x, y = batch
    clf = Classifier(10, 3, encoder=AutoEncoder(10, hidden=(7,), latent_dim=3).encoder)
    assert traced_parameters(trace(clf, x, y)) == {"head.0.W", "head.0.b"}
    clf.encoder.unfreeze()
    t = trace(clf, x, y)
    assert traced_parameters(t) == {name for name, _ in clf.named_parameters()} and t.ok


class Ridge(Model):
    """A model of the user's own: one dense layer fitted with MSE to the input's first two features."""

    def __init__(self, seed: int = 0, dtype: str = "float32"):
        super().__init__({"input_dim": 10}, seed, dtype, None)
        self.layer = Dense(10, 2, rng=self.weight_rng(), dtype=self.dtype)

    def batch_loss(self, x, y=None, rng=None) -> Loss:
        loss = mse_loss(self.layer(x), x[:, :2])
        return Loss(loss, {"mse": loss})


def test_a_model_of_the_users_own_is_traced(batch):
    x, _ = batch
    t = trace(Ridge(), x)
    assert [r.name for r in t.rows] == ["linear", "mse_loss"] and t.model == "Ridge"
    assert traced_parameters(t) == {"layer.W", "layer.b"} and t.ok and t.max_fd_error < FD_TOL


def test_bad_arguments(batch):
    x, _ = batch
    with pytest.raises(ArgumentError, match="model must be a scratchae Model.*got Dense"):
        trace(Dense(10, 2), x)
    with pytest.raises(ArgumentError, match="eps"):
        trace(AutoEncoder(10, hidden=(7,), latent_dim=3), x, eps=np.zeros((6, 3)))
    with pytest.raises(ShapeError, match="features"):
        trace(VAE(10, hidden=(7,), latent_dim=3), x[:, :4])


@pytest.mark.parametrize("offset", [0.0, 3e-7])
def test_differences_across_a_relu_kink_are_retried_or_left_out(batch, monkeypatch, offset):
    """Example 0's first hidden pre-activation is put at ``offset`` from the relu's kink: a step of 1e-6
    on that unit's bias straddles it. At 3e-7 the step 1e-8 no longer does; at 0 every step does."""
    x, _ = batch
    model = AutoEncoder(10, hidden=(7,), latent_dim=3, dtype="float64")
    layer = model.encoder.net.layers[0]
    layer.b.data[0] = offset - x[0] @ layer.W.data[:, 0]

    def first_layer_bias(t: Trace):
        return next(i for i in t.rows[0].inputs if i.name == "b")

    b = first_layer_bias(t := trace(model, x, max_entries=None))
    assert t.ok and b.fd_ok and b.fd_rel_error < FD_TOL
    assert b.fd_kinks == (1 if offset == 0 else 0) and b.fd_checked == 7 - b.fd_kinks
    gradcheck_module = sys.modules["scratchae.gradcheck"]  # the module: the package exports the function as .gradcheck
    monkeypatch.setattr(gradcheck_module, "KINK_RETRY", 1.0)  # no smaller step: the entry is left out
    b = first_layer_bias(trace(model, x, max_entries=None))
    assert b.fd_kinks == 1 and b.fd_checked == 6 and b.fd_ok
    assert "(1 at a kink)" in trace(model, x, max_entries=None).table(color=False)


def test_inputs_with_every_entry_at_a_kink_are_counted_as_not_checked(batch):
    """One example whose every first-layer pre-activation is exactly 0 (and, the biases being 0, so is every
    later relu's): inputs whose every entry a step straddles a kink have nothing a central difference can
    check; the verdict counts them apart from the checked ones, not as failures (zero biases at an
    initialization put whole inputs on the kink: the backward is not wrong there)."""
    x, _ = batch
    model = AutoEncoder(10, hidden=(7,), latent_dim=3, dtype="float64")
    layer = model.encoder.net.layers[0]
    layer.b.data[:] = -(x[0] @ layer.W.data)
    t = trace(model, x[:1], max_entries=None)
    unchecked = [i for r in t.rows for i in r.inputs if i.fd_rel_error is None and i.fd_kinks]
    assert unchecked and all(i.fd_checked == 0 and i.fd_kinks == math.prod(i.shape) for i in unchecked) and t.ok
    assert f"; {len(unchecked)} not checked (every sampled entry at a kink)" in t.table(color=False)
    assert "not checked" not in trace(AutoEncoder(10, hidden=(7,), latent_dim=3), x).table(color=False)


def test_a_step_too_small_for_the_objective_only_bounds_the_gradients_and_says_so(batch):
    """fd_step 1e-14: the rounding allowance of a slope, ~1e-14 * |s| / step, reaches the gradients' size:
    those checks show only that |a - n| is below it; the verdict counts them, the default step has none."""
    x, _ = batch
    model = VAE(10, hidden=(7,), latent_dim=3)
    assert "only bounded" not in trace(model, x).table(color=False)
    t = trace(model, x, fd_step=1e-14)
    bounded = [i for r in t.rows for i in r.inputs if i.fd_ok and i.fd_rounding >= i.fd_scale]
    table = t.table(color=False)
    assert bounded and f"; {len(bounded)} only bounded (the rounding allowance reaches" in table
    assert "(only bounded: rounding >= |grad|)" in table


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(fd_step=0.0), "fd_step must be a finite number > 0, got 0.0"),
        (dict(fd_step=-1e-6), "fd_step must be a finite number > 0"),
        (dict(seed=-1), "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_step_or_seed_is_refused_by_name(kwargs, needle, batch):
    with pytest.raises(ArgumentError, match=needle):
        trace(VAE(10, hidden=(7,), latent_dim=3), batch[0], **kwargs)


def test_the_verdict_shows_each_weighted_terms_factor_and_they_make_the_loss(batch):
    """beta 0.5 with a KL warm-up over 4 epochs: the KL enters the loss times 0.5 * 1/4 at epoch 0."""
    x, _ = batch
    t = trace(VAE(10, hidden=(7,), latent_dim=3, likelihood="gaussian", beta=0.5, kl_warmup=4), x)
    assert t.weights == {"kl": 0.125}
    assert t.loss == pytest.approx(t.terms["recon"] + 0.125 * t.terms["kl"], rel=1e-12)
    assert f"kl {t.terms['kl']:.6g} × 0.125)" in t.table(color=False)
    assert "×" not in trace(VAE(10, hidden=(7,), latent_dim=3), x).table(color=False).splitlines()[-3]


def test_noisy_for_a_plain_autoencoder_is_refused(batch):
    x, _ = batch
    with pytest.raises(ArgumentError, match="AutoEncoder takes no noisy input.*DenoisingAutoEncoder"):
        trace(AutoEncoder(10, hidden=(7,), latent_dim=3), x, noisy=x)


def test_a_check_of_zeros_only_says_so(batch):
    """One example through relu layers leaves many gradient entries 0: sampled entries that are 0 both
    ways pass, and the table says they were all 0 (which checks little)."""
    x, _ = batch
    t = trace(VAE(10, hidden=(16, 8), latent_dim=3), x[:1], max_entries=5)
    zeros = [i for r in t.rows for i in r.inputs if i.fd_scale == 0]
    assert zeros and all(i.fd_ok and i.fd_abs_error == 0 for i in zeros)
    assert "✓ (all 0)" in t.table(color=False)
    assert all(i.fd_scale > 0 for r in t.rows for i in r.inputs if i.fd_ok and i.fd_abs_error > 0)
