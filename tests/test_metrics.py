"""Evaluation metrics: reconstruction errors, ELBO and IWAE delegation, linear probe, PCA baseline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from scratchae import ArgumentError, DataError, ShapeError, backend, metrics
from scratchae.models import VAE, AutoEncoder, DenoisingAutoEncoder
from scratchae.pca import PCA


@pytest.fixture(scope="module")
def vae(digits) -> VAE:
    model = VAE(64, hidden=(32,), latent_dim=4)
    model.fit(digits.X_train, epochs=5, lr=1e-2, verbose=False)
    return model


def test_reconstruction_mse_is_the_mse_models_own_loss(digits, device):
    ae = AutoEncoder(64, (16,), 8, output="linear", loss="mse", device=device)
    ae.fit(digits.X_train, epochs=2, lr=1e-2, verbose=False)
    ours = backend.to_numpy(metrics.reconstruction_mse(ae, digits.X_test))
    assert ours.shape == (len(digits.X_test),)
    np.testing.assert_allclose(ours, backend.to_numpy(ae.reconstruction_error(digits.X_test)), rtol=1e-5)
    by_hand = ((digits.X_test - backend.to_numpy(ae.reconstruct(digits.X_test))) ** 2).sum(axis=1)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-5)


def test_reconstruction_bce_matches_the_loss_from_logits(digits, device):
    ae = AutoEncoder(64, (16,), 8, device=device)  # sigmoid output, BCE from logits
    ae.fit(digits.X_train, epochs=2, lr=1e-2, verbose=False)
    ours = backend.to_numpy(metrics.reconstruction_bce(ae, digits.X_test))
    np.testing.assert_allclose(ours, backend.to_numpy(ae.reconstruction_error(digits.X_test)), rtol=1e-4)
    assert np.all(ours > 0)


def test_reconstruction_metrics_take_pca_and_a_vae(digits, vae):
    pca = PCA(8).fit(digits.X_train)
    np.testing.assert_allclose(metrics.reconstruction_mse(pca, digits.X_test), pca.reconstruction_error(digits.X_test))
    X = digits.X_test
    clipped_pca = metrics.reconstruction_bce(pca, X)  # PCA's output leaves [0, 1]: clipped, finite
    p = pca.reconstruct(X)
    eps = 1e-7 if p.dtype == np.float32 else 1e-12  # the clip of bce_loss
    p = np.clip(p, eps, 1 - eps)
    np.testing.assert_allclose(clipped_pca, -(X * np.log(p) + (1 - X) * np.log1p(-p)).sum(axis=1), rtol=1e-4)
    vae_mse = metrics.reconstruction_mse(vae, X)
    np.testing.assert_allclose(vae_mse, ((backend.to_numpy(vae.reconstruct(X)) - X) ** 2).sum(axis=1), rtol=1e-5)


def test_reconstruction_metrics_refuse_bad_input(digits, vae):
    with pytest.raises(ArgumentError, match="reconstruct"):
        metrics.reconstruction_mse(object(), digits.X_test)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        metrics.reconstruction_bce(vae, digits.X_test * 2)
    with pytest.raises(ShapeError, match="63 features"):
        metrics.reconstruction_mse(vae, digits.X_test[:, :63])


def test_elbo_and_iwae_delegate_with_seeded_draws(digits, vae):
    X = digits.X_test
    e = metrics.elbo(vae, X, seed=3)
    np.testing.assert_array_equal(e, vae.elbo(X, rng=backend.new_rng(3, vae.device)))
    np.testing.assert_array_equal(e, metrics.elbo(vae, X, seed=3))
    assert not np.array_equal(e, metrics.elbo(vae, X, seed=4))
    iw1 = metrics.iwae(vae, X, k=1, seed=3)
    iw50 = metrics.iwae(vae, X, k=50, seed=3)
    assert iw50.shape == e.shape == (len(X),)
    np.testing.assert_array_equal(iw50, vae.log_likelihood(X, k=50, rng=backend.new_rng(3, vae.device)))
    # k = 1 estimates the ELBO (same mean); more samples give a tighter (larger) bound
    assert iw1.mean() == pytest.approx(e.mean(), rel=0.02)
    assert iw50.mean() > e.mean()


def test_denoising_mse_compares_the_noisy_input_and_its_reconstruction_with_the_clean_one(digits):
    dae = DenoisingAutoEncoder(64, (16,), 8, noise="masking", noise_level=0.3)
    dae.fit(digits.X_train, epochs=10, batch_size=32, lr=3e-3, verbose=False)
    X = digits.X_test
    noisy, denoised = metrics.denoising_mse(dae, X, seed=2)
    corrupted = dae.corrupt(X, rng=2)
    np.testing.assert_allclose(noisy, ((corrupted - X) ** 2).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(denoised, ((dae.reconstruct(corrupted) - X) ** 2).sum(axis=1), rtol=1e-5)
    assert denoised.mean() < noisy.mean()  # it denoises
    with pytest.raises(ArgumentError, match="expected a DenoisingAutoEncoder"):
        metrics.denoising_mse(AutoEncoder(64, (16,), 8), X)


def test_kl_per_dimension_sums_to_the_kl_term(digits, vae):
    """Per coordinate: the mean over examples of 0.5 (mu^2 + exp(logvar) - logvar - 1); summed over the
    coordinates it is the model's KL term, KL(q(z|x) || N(0, I)) per example."""
    per_dim = backend.to_numpy(metrics.kl_per_dimension(vae, digits.X_test))
    mu, logvar = (np.asarray(a, np.float64) for a in vae.encode(digits.X_test))
    expected = (0.5 * (mu**2 + np.exp(logvar) - logvar - 1)).mean(axis=0)
    assert per_dim.shape == (4,) and np.all(per_dim >= 0)
    np.testing.assert_allclose(per_dim, expected, rtol=1e-5)
    eps = np.zeros((len(digits.X_test), 4), np.float32)
    kl_term = backend.to_float(vae.batch_loss(digits.X_test, eps=eps).terms["kl"].data)
    assert per_dim.sum() == pytest.approx(kl_term, rel=1e-5)
    with pytest.raises(ArgumentError, match="AutoEncoder has no elbo: expected a VAE"):
        metrics.kl_per_dimension(AutoEncoder(64, (8,), 2), digits.X_test)


def test_elbo_needs_a_vae(digits):
    with pytest.raises(ArgumentError, match="VAE"):
        metrics.elbo(AutoEncoder(64, (8,), 4), digits.X_test)
    with pytest.raises(ArgumentError, match="VAE"):
        metrics.iwae(PCA(2).fit(digits.X_train), digits.X_test)


def test_linear_probe_on_raw_pixels(digits, device):
    acc = metrics.linear_probe_accuracy(digits.X_train, digits.y_train, digits.X_test, digits.y_test, device=device)
    assert acc > 0.85


def test_linear_probe_on_noise_is_at_chance(digits, rng):
    noise_train, noise_test = rng.random((len(digits.X_train), 64)), rng.random((len(digits.X_test), 64))
    acc = metrics.linear_probe_accuracy(noise_train, digits.y_train, noise_test, digits.y_test)
    assert acc < 0.25  # chance: 0.1


def test_a_linear_probe_on_labels_of_one_class_scores_them_all(rng):
    """Labels all 0: a softmax over two classes (the second never seen) gets every test label right."""
    Z = rng.random((40, 3))
    assert metrics.linear_probe_accuracy(Z[:30], np.zeros(30), Z[30:], np.zeros(10)) == 1.0


def test_linear_probe_refuses_bad_input(digits):
    with pytest.raises(ShapeError, match="Z_test"):
        metrics.linear_probe_accuracy(digits.X_train, digits.y_train, digits.X_test[:, :5], digits.y_test)
    with pytest.raises(ShapeError, match="y"):
        metrics.linear_probe_accuracy(digits.X_train, digits.y_train[:-1], digits.X_test, digits.y_test)


def test_standardize_uses_the_training_statistics(rng):
    Z = rng.normal(3.0, 2.0, size=(500, 4))
    Z[:, 2] = 7.0  # constant feature: shifted only
    other = rng.normal(size=(10, 4))
    Zs, others = metrics.standardize(Z, other)
    np.testing.assert_allclose(Zs.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Zs.std(axis=0), [1, 1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(others, (other - Z.mean(axis=0)) / np.where(Z.std(axis=0) > 0, Z.std(axis=0), 1))


def test_pca_reconstruction_error_matches_sklearn_and_falls_with_k(digits, device):
    Xtr, Xte = digits.X_train.astype(np.float64), digits.X_test.astype(np.float64)
    ref = SkPCA(6, svd_solver="full").fit(Xtr)
    expected = ((Xte - ref.inverse_transform(ref.transform(Xte))) ** 2).sum(axis=1)
    ours = backend.to_numpy(metrics.pca_reconstruction_error(Xtr, Xte, 6, device=device))
    np.testing.assert_allclose(ours, expected, rtol=1e-8)
    means = [backend.to_float(metrics.pca_reconstruction_error(Xtr, Xte, k).mean()) for k in (2, 6, 16, 64)]
    assert means == sorted(means, reverse=True) and means[-1] < 1e-20
