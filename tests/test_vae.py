"""VAE and ConditionalVAE: encode/decode/sample, the Gaussian likelihood, ELBO and the IWAE estimate
(against the exact log p(x) of a linear Gaussian VAE), class-controlled generation, KL warm-up, beta."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_models import D, build, digits, host

from scratchae import ArgumentError, DataError, ShapeError, backend
from scratchae.models import VAE
from scratchae.models.base import INFERENCE_BATCH
from scratchae.train import evaluate_loss

# ---------------------------------------------------------------- shapes and sampling


@pytest.mark.parametrize("name", ["vae_bernoulli", "vae_gaussian", "cvae"])
def test_vae_shapes(name, device):
    X, y = digits(100)
    vae = build(name, device)
    yy = y if vae.needs_labels else None
    mu, logvar = vae.encode(X, yy)
    assert host(mu).shape == host(logvar).shape == (100, 4)
    np.testing.assert_array_equal(host(vae.transform(X, yy)), host(mu))
    images = vae.decode(mu, yy)
    assert host(images).shape == (100, D)
    np.testing.assert_array_equal(host(vae.inverse_transform(mu, yy)), host(images))
    np.testing.assert_array_equal(host(vae.reconstruct(X, yy)), host(images))  # through the posterior mean
    assert host(vae.elbo(X, yy)).shape == (100,)
    assert host(vae.log_likelihood(X, yy, k=3)).shape == (100,)
    samples = host(vae.sample(7, **({"y": 3} if vae.needs_labels else {})))
    assert samples.shape == (7, D)


def test_vae_encoder_and_decoder_work_alone(device):
    X, _ = digits(30)
    vae = build("vae_bernoulli", device)
    mu, logvar = vae.encoder(backend.as_float_array(X, device=device))
    np.testing.assert_allclose(host(mu), host(vae.transform(X)), rtol=1e-6, atol=1e-6)
    assert logvar.shape == (30, 4)
    Z = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    out = vae.decoder.mean(backend.as_float_array(Z, device=device))
    np.testing.assert_allclose(host(out), host(vae.decode(Z)), rtol=1e-6, atol=1e-6)


def test_bernoulli_samples_are_probabilities_and_seeded(device):
    vae = build("vae_bernoulli", device)
    vae.fit(digits()[0], epochs=2, verbose=False)
    s = host(vae.sample(50, rng=backend.new_rng(5, device)))
    assert s.shape == (50, D) and s.min() >= 0 and s.max() <= 1
    np.testing.assert_array_equal(s, host(vae.sample(50, rng=backend.new_rng(5, device))))
    assert not np.array_equal(s, host(vae.sample(50, rng=backend.new_rng(6, device))))
    assert np.std(s, axis=0).mean() > 1e-3  # different z give different images


def test_moving_to_the_device_the_model_is_on_keeps_its_sampling_generator(device):
    """``to(device)`` for the model's own device changes nothing: the next samples are the ones an
    untouched model draws next, not the first ones again."""
    moved, untouched = build("vae_bernoulli", device), build("vae_bernoulli", device)
    first = host(moved.sample(3))
    np.testing.assert_array_equal(first, host(untouched.sample(3)))
    moved.to(device)
    second = host(moved.sample(3))
    np.testing.assert_array_equal(second, host(untouched.sample(3)))
    assert not np.array_equal(second, first)


def test_gaussian_negative_log_likelihood_is_the_gaussian_density(device):
    """-log N(x; m, s^2 I) = |x - m|^2 / (2 s^2) + D log(s sqrt(2 pi)), per example and averaged."""
    rng = np.random.default_rng(0)
    s = 0.3
    vae = build("vae_gaussian", device, gaussian_std=s, dtype="float64")
    x, m = rng.random((5, D)), rng.random((5, D))
    expected = ((x - m) ** 2).sum(axis=1) / (2 * s * s) + D * (math.log(s) + 0.5 * math.log(2 * math.pi))
    dev = lambda a: backend.as_float_array(a, device=device)  # noqa: E731
    per_entry = host(vae.negative_log_likelihood(dev(m), dev(x), "none"))
    np.testing.assert_allclose(per_entry.sum(axis=1), expected, rtol=1e-12)
    batch = backend.to_float(vae.negative_log_likelihood(dev(m), dev(x)).data)
    assert batch == pytest.approx(expected.mean(), rel=1e-12)


# ---------------------------------------------------------------- ELBO and the IWAE estimate


def linear_gaussian_vae(device: str) -> tuple[VAE, np.ndarray, np.ndarray, float]:
    """A trained linear VAE (no hidden layer, identity activations, Gaussian p(x|z) with std s) on
    data from a linear Gaussian model, with the exact log p(x) = log N(x; b, W^T W + s^2 I) of its decoder."""
    rng = np.random.default_rng(0)
    d, latent, s = 6, 2, 0.5
    X = rng.standard_normal((400, latent)) @ rng.standard_normal((latent, d)) + 0.5 * rng.standard_normal(d)
    X += s * rng.standard_normal(X.shape)
    vae = VAE(d, (), latent, "identity", "gaussian", gaussian_std=s, dtype="float64", seed=1, device=device)
    vae.fit(X, epochs=60, batch_size=50, lr=1e-2, verbose=False)
    W, b = host(vae.decoder.net[0].W), host(vae.decoder.net[0].b)
    cov = W.T @ W + s * s * np.eye(d)
    diff = X - b
    logdet = np.linalg.slogdet(cov)[1]
    exact = -0.5 * (np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff) + logdet + d * math.log(2 * math.pi))
    return vae, X, exact, s


def test_iwae_estimate_converges_to_the_exact_log_likelihood(device):
    """With k = 1000 the estimate is within 0.1 nats of log p(x) for every example; the ELBO lies below."""
    vae, X, exact, _ = linear_gaussian_vae(device)
    X, exact = X[:100], exact[:100]
    ll = host(vae.log_likelihood(X, k=1000, rng=backend.new_rng(1, device)))
    assert np.abs(ll - exact).max() < 0.1
    assert abs(ll.mean() - exact.mean()) < 0.01
    elbo = host(vae.elbo(X, rng=backend.new_rng(2, device)))
    assert elbo.mean() < exact.mean()


def test_elbo_estimate_is_unbiased_for_the_analytic_elbo(device):
    """For a linear Gaussian decoder E_q[log p(x|z)] has a closed form: the mean of 500 one-sample
    ELBO estimates per example agrees with it to 4 standard errors, and lies below log p(x)."""
    vae, X, exact, s = linear_gaussian_vae(device)
    X = X[:20]
    mu, logvar = (host(a) for a in vae.encode(X))
    W, b = host(vae.decoder.net[0].W), host(vae.decoder.net[0].b)
    var = np.exp(logvar)
    expected_sq = ((X - mu @ W - b) ** 2).sum(axis=1) + np.einsum("nl,ld->n", var, W * W)
    d = X.shape[1]
    recon = -expected_sq / (2 * s * s) - d * (math.log(s) + 0.5 * math.log(2 * math.pi))
    kl = 0.5 * (mu * mu + var - logvar - 1).sum(axis=1)
    analytic = recon - kl
    draws = host(vae.elbo(np.repeat(X, 500, axis=0), rng=backend.new_rng(3, device))).reshape(20, 500)
    se = draws.std(axis=1) / math.sqrt(500)
    assert np.all(np.abs(draws.mean(axis=1) - analytic) < 4 * se + 1e-9)
    assert np.all(analytic <= exact[:20] + 1e-9)  # the gap is KL(q(z|x) || p(z|x)) >= 0


def test_iwae_bound_is_above_the_elbo_and_grows_with_k(device):
    X, _ = digits()
    vae = build("vae_bernoulli", device)
    vae.fit(X, epochs=3, lr=3e-3, verbose=False)
    Xt = X[:200]
    elbo = host(vae.elbo(Xt, rng=backend.new_rng(0, device))).mean()
    ll = {k: host(vae.log_likelihood(Xt, k=k, rng=backend.new_rng(k, device))).mean() for k in (1, 10, 100)}
    assert ll[100] >= elbo - 0.05 and ll[100] > ll[10] > ll[1] - 0.05, (elbo, ll)


def test_iwae_with_one_sample_is_an_elbo_estimate(device):
    """k = 1 with the same eps as ``elbo``: the two differ per example by log p(z) - log q(z|x) + KL,
    which has mean zero; the mean difference over 1000 examples is within 4 standard errors of 0."""
    X, _ = digits(2000)
    vae = build("vae_bernoulli", device)
    vae.fit(X, epochs=2, lr=3e-3, verbose=False)
    X = X[:1000]
    one = host(vae.log_likelihood(X, k=1, rng=backend.new_rng(9, device))).astype(np.float64)
    elbo = host(vae.elbo(X, rng=backend.new_rng(9, device))).astype(np.float64)
    diff = one - elbo
    assert np.std(diff) > 0  # a different estimator, not the same numbers
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff))


def test_elbo_equals_minus_the_batch_loss_with_the_same_eps(device):
    X, _ = digits(64)
    vae = build("vae_bernoulli", device)
    elbo = host(vae.elbo(X, rng=backend.new_rng(4, device)))
    eps = backend.new_rng(4, device).standard_normal((64, 4), dtype=np.float32)
    loss = vae.batch_loss(backend.as_float_array(X, device=device), eps=eps)
    assert -elbo.mean() == pytest.approx(backend.to_float(loss.total.data), rel=1e-5)


def test_log_likelihood_batches_rows_without_changing_the_estimate(device, capfd):
    """max_rows bounds examples x k per decoder pass: the generator's draws come in the same order,
    so the per-example values are the same to rounding; ``progress`` draws a bar on stderr."""
    X, _ = digits(40)
    vae = build("vae_bernoulli", device)
    big = host(vae.log_likelihood(X, k=50, rng=backend.new_rng(0, device)))
    small = host(vae.log_likelihood(X, k=50, rng=backend.new_rng(0, device), max_rows=100, progress=True))
    np.testing.assert_allclose(small, big, rtol=1e-5)
    assert "log p(x), k=50 [########################] 20/20" in capfd.readouterr().err  # 2 examples a batch
    with pytest.raises(ArgumentError, match="k must be a positive integer"):
        vae.log_likelihood(X, k=0)
    with pytest.raises(ArgumentError, match="max_rows must be a positive integer"):
        vae.log_likelihood(X, max_rows=0)


def test_an_integer_rng_seeds_one_generator_for_the_whole_call(device):
    """rng=3 draws every batch's eps from one generator, as rng=new_rng(3) does: copies of one example in
    different batches get different estimates (not the same noise again in each batch)."""
    vae = build("vae_bernoulli", device)
    X = np.tile(digits(1)[0], (8, 1))
    by_seed = host(vae.log_likelihood(X, k=20, rng=3, max_rows=40))  # 2 examples a decoder batch
    np.testing.assert_array_equal(by_seed, host(vae.log_likelihood(X, k=20, rng=backend.new_rng(3, device))))
    assert len(np.unique(by_seed)) == 8
    X = np.tile(X[:1], (2 * INFERENCE_BATCH + 1, 1))  # three inference batches
    elbo = host(vae.elbo(X, rng=5))
    np.testing.assert_array_equal(elbo, host(vae.elbo(X, rng=backend.new_rng(5, device))))
    assert elbo[0] != elbo[INFERENCE_BATCH] != elbo[2 * INFERENCE_BATCH]


# ---------------------------------------------------------------- conditional VAE


@pytest.fixture(scope="module")
def trained_cvae():
    X, y = digits(2000)
    cvae = build("cvae")
    cvae.fit(X, y, epochs=15, batch_size=64, lr=3e-3, verbose=False)
    return cvae, X, y


def test_cvae_generates_the_class_it_is_given(trained_cvae):
    """The mean of 200 samples of class c is nearest to the class-c training mean (for at least 9 of
    the 10 digits), and the generated class means differ clearly from one another."""
    cvae, X, y = trained_cvae
    class_means = np.stack([X[y == c].mean(axis=0) for c in range(10)])
    generated = np.stack([host(cvae.sample(200, y=c, rng=backend.new_rng(c))).mean(axis=0) for c in range(10)])
    dist = ((generated[:, None, :] - class_means[None, :, :]) ** 2).sum(axis=2)
    assert (dist.argmin(axis=1) == np.arange(10)).sum() >= 9, dist.round(2)
    pair = ((generated[:, None, :] - generated[None, :, :]) ** 2).sum(axis=2)
    assert pair[~np.eye(10, dtype=bool)].min() > 0.5


def test_cvae_same_z_different_class_gives_different_images(trained_cvae):
    cvae = trained_cvae[0]
    Z = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    a, b = host(cvae.decode(Z, np.full(10, 1))), host(cvae.decode(Z, 7))  # an array or one label for all
    assert np.abs(a - b).mean() > 0.05
    np.testing.assert_array_equal(a, host(cvae.decode(Z, 1)))


def test_cvae_needs_valid_labels():
    X, y = digits(32)
    cvae = build("cvae")
    with pytest.raises(ArgumentError, match="y is required"):
        cvae.fit(X, epochs=1, verbose=False)
    with pytest.raises(ArgumentError, match="needs labels"):
        cvae.batch_loss(X)
    with pytest.raises(DataError, match=r"\[0, 9\]"):
        cvae.sample(3, y=10)
    with pytest.raises(ShapeError, match=r"expected \(32,\)"):
        cvae.encode(X, y[:5])


# ---------------------------------------------------------------- KL weight: warm-up and beta


def test_kl_warmup_ramps_the_weight_linearly_then_holds_beta(device):
    """beta=2, kl_warmup=4: the KL weight of epochs 1..6 is 0.5, 1, 1.5, 2, 2, 2 and each epoch's
    loss is recon + weight * kl (the epoch means of the batch terms)."""
    X, _ = digits(256)
    vae = build("vae_bernoulli", device, beta=2.0, kl_warmup=4)
    used = []  # the weight each training batch's loss is computed with (4 batches an epoch)
    loss_of_batch = vae.batch_loss
    vae.batch_loss = lambda *args, **kwargs: used.append(vae.kl_weight) or loss_of_batch(*args, **kwargs)
    history = vae.fit(X, epochs=6, batch_size=64, verbose=False)
    weights = used[::4]
    assert used == [w for w in weights for _ in range(4)]
    assert weights == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    for loss, recon, kl, w in zip(history["loss"], history["recon"], history["kl"], weights, strict=True):
        assert loss == pytest.approx(recon + w * kl, rel=1e-5)


def test_validation_loss_and_the_trained_model_weigh_the_kl_by_beta_during_warmup(device):
    """The warm-up weight is for the training batches only: each epoch's val_loss is val_recon + beta *
    val_kl (so early stopping compares one objective across epochs), and a fit that ends in the warm-up
    leaves the model at beta."""
    X, _ = digits(320)
    vae = build("vae_bernoulli", device, beta=1.5, kl_warmup=10)
    history = vae.fit(X[:256], epochs=3, batch_size=64, verbose=False, validation_data=X[256:])
    assert history["loss"][0] == pytest.approx(history["recon"][0] + 0.15 * history["kl"][0], rel=1e-5)
    for loss, recon, kl in zip(history["val_loss"], history["val_recon"], history["val_kl"], strict=True):
        assert loss == pytest.approx(recon + 1.5 * kl, rel=1e-5)
    assert vae.kl_weight == 1.5
    assert evaluate_loss(vae, X[256:])["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)


def test_no_warmup_uses_beta_from_the_first_epoch(device):
    vae = build("vae_bernoulli", device, beta=0.5)
    h = vae.fit(digits(128)[0], epochs=1, verbose=False)
    assert vae.kl_weight == 0.5
    assert h["loss"][0] == pytest.approx(h["recon"][0] + 0.5 * h["kl"][0], rel=1e-5)


def test_beta_zero_trains_the_reconstruction_only(device):
    X, _ = digits(256)
    vae = build("vae_bernoulli", device, beta=0.0)
    h = vae.fit(X, epochs=3, lr=3e-3, verbose=False)
    assert h["loss"] == pytest.approx(h["recon"], rel=1e-6)
    assert h["kl"][-1] > 0  # still reported


def test_reconstruction_weight_zero_collapses_the_posterior_to_the_prior(device):
    """With only the KL term, q(z|x) goes to N(0, I): the KL falls close to 0."""
    X, _ = digits(256)
    vae = build("vae_bernoulli", device, reconstruction_weight=0.0)
    h = vae.fit(X, epochs=10, batch_size=32, lr=1e-2, verbose=False)
    assert h["loss"] == pytest.approx(h["kl"], rel=1e-6)
    assert h["kl"][-1] < 0.05 * h["kl"][0], h["kl"]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(beta=-1.0), "beta"),
        (dict(beta=float("nan")), "beta"),
        (dict(beta=True), "beta must be a finite number >= 0, got True"),
        (dict(reconstruction_weight=-0.5), "reconstruction_weight"),
        (dict(kl_warmup=-1), "kl_warmup"),
        (dict(kl_warmup=1.5), "kl_warmup"),
        (dict(gaussian_std=0.0), "gaussian_std"),
        (dict(gaussian_std=float("inf")), "gaussian_std"),
        (
            dict(likelihood="gaussian", gaussian_std=1e-30),
            r"gaussian_std 1e-30 is too small for float32: the squared error's scale 1 / \(2 std\^2\) would be",
        ),
        (dict(likelihood="poisson"), "poisson"),
        (dict(latent_dim=0), "latent_dim"),
    ],
)
def test_vae_refuses_bad_arguments(kwargs, needle):
    with pytest.raises(ArgumentError, match=needle):
        VAE(D, **kwargs)


def test_a_tiny_gaussian_std_fits_float64():
    assert VAE(D, likelihood="gaussian", gaussian_std=1e-30, dtype="float64").gaussian_std == 1e-30
    with pytest.raises(
        ArgumentError, match=r"gaussian_std 1e-200 is too small for float64.*std must exceed about 5.27e-155\)"
    ):
        VAE(D, likelihood="gaussian", gaussian_std=1e-200, dtype="float64")  # its square underflows to 0


def test_vae_accepts_numpy_scalars():
    vae = VAE(D, beta=np.float32(0.25), reconstruction_weight=np.float64(2), kl_warmup=np.int64(2))
    assert (vae.beta, vae.reconstruction_weight, vae.kl_warmup) == (0.25, 2.0, 2)
    vae.on_epoch_start(0)
    assert vae.kl_weight == 0.125
