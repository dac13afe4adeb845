"""PCA against the covariance eigenvalues and scikit-learn; principal angles; the linear AE finds PCA's subspace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from scratchae import ArgumentError, DataError, ShapeError, backend
from scratchae.models import AutoEncoder
from scratchae.pca import PCA, principal_angles

K = 4  # digits' 4th and 5th covariance eigenvalues (0.40, 0.27) are well apart: a stable subspace


def test_explained_variance_is_the_covariance_eigenvalues(digits, device):
    X = digits.X_train.astype(np.float64)
    pca = PCA(K, device=device).fit(X)
    eigenvalues = np.linalg.eigvalsh(np.cov(X, rowvar=False, ddof=1))[::-1]
    np.testing.assert_allclose(backend.to_numpy(pca.explained_variance_), eigenvalues[:K], rtol=1e-9)
    ratios = backend.to_numpy(pca.explained_variance_ratio_)
    np.testing.assert_allclose(ratios, eigenvalues[:K] / eigenvalues.sum(), rtol=1e-9)
    assert ratios.sum() <= 1
    assert np.all(np.diff(ratios) <= 0)
    full = PCA(X.shape[1], device=device).fit(X)
    assert backend.to_numpy(full.explained_variance_ratio_).sum() == pytest.approx(1.0, abs=1e-12)


def test_matches_sklearn(digits, device):
    X = digits.X_train.astype(np.float64)
    ours = PCA(K, device=device).fit(X)
    ref = SkPCA(K, svd_solver="full").fit(X)
    np.testing.assert_allclose(backend.to_numpy(ours.explained_variance_), ref.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(backend.to_numpy(ours.mean_), ref.mean_, atol=1e-12)
    comps = backend.to_numpy(ours.components_)
    np.testing.assert_allclose(comps @ comps.T, np.eye(K), atol=1e-12)
    assert principal_angles(comps.T, ref.components_.T).max() < 1e-5
    # component by component, equal up to sign, so the codes are too
    signs = np.sign(np.sum(comps * ref.components_, axis=1))
    np.testing.assert_allclose(comps, ref.components_ * signs[:, None], atol=1e-9)
    codes = backend.to_numpy(ours.transform(digits.X_test))
    np.testing.assert_allclose(codes, ref.transform(digits.X_test.astype(np.float64)) * signs, atol=1e-9)


def test_reconstruction_error_is_the_discarded_variance(digits, device):
    X = digits.X_train.astype(np.float64)
    pca = PCA(K, device=device).fit(X)
    errors = backend.to_numpy(pca.reconstruction_error(X))
    eigenvalues = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1]
    assert errors.shape == (len(X),)
    # sum_n |x_n - xhat_n|^2 / (N - 1) = the sum of the eigenvalues PCA leaves out
    assert errors.sum() / (len(X) - 1) == pytest.approx(eigenvalues[K:].sum(), rel=1e-9)
    ref = SkPCA(K, svd_solver="full").fit(X)
    Xt = digits.X_test.astype(np.float64)
    by_hand = ((Xt - ref.inverse_transform(ref.transform(Xt))) ** 2).sum(axis=1)
    np.testing.assert_allclose(backend.to_numpy(pca.reconstruction_error(Xt)), by_hand, rtol=1e-8)
    full = PCA(X.shape[1], device=device).fit(X)
    assert backend.to_numpy(full.reconstruction_error(Xt)).max() < 1e-20


def test_fit_transform_and_inverse(digits, device):
    pca = PCA(K, device=device)
    Z = pca.fit_transform(digits.X_train)
    assert Z.shape == (len(digits.X_train), K) and Z.dtype == np.float64
    np.testing.assert_allclose(backend.to_numpy(Z).mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(Z).var(axis=0, ddof=1), backend.to_numpy(pca.explained_variance_))
    back = pca.inverse_transform(Z)
    np.testing.assert_allclose(backend.to_numpy(pca.transform(back)), backend.to_numpy(Z), atol=1e-12)
    assert PCA(K, dtype="float32").fit(digits.X_train).transform(digits.X_test).dtype == np.float32


def test_constant_data_explains_nothing_without_warnings(device):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pca = PCA(2, device=device).fit(np.ones((10, 5)))
    assert backend.to_numpy(pca.explained_variance_ratio_).tolist() == [0.0, 0.0]


def test_pca_refuses_bad_input(digits):
    with pytest.raises(ArgumentError, match="not fitted"):
        PCA(2).transform(digits.X_test)
    with pytest.raises(ArgumentError, match="n_components"):
        PCA(0)
    with pytest.raises(ArgumentError, match="n_components must be <= min"):
        PCA(65).fit(digits.X_train)
    with pytest.raises(ShapeError, match="at least 2"):
        PCA(1).fit(digits.X_train[:1])
    pca = PCA(2).fit(digits.X_train)
    with pytest.raises(ShapeError, match="63 features"):
        pca.transform(digits.X_test[:, :63])
    with pytest.raises(ShapeError, match="Z has 3 features"):
        pca.inverse_transform(np.zeros((5, 3)))
    bad = digits.X_train.copy()
    bad[3, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        PCA(2).fit(bad)


def test_principal_angles_known_case_and_basis_invariance(rng):
    t = np.deg2rad(30.0)
    A = np.array([[1.0, 0], [0, 1], [0, 0]])
    B = np.array([[1.0, 0], [0, np.cos(t)], [0, np.sin(t)]])
    np.testing.assert_allclose(principal_angles(A, B), [0.0, 30.0], atol=1e-6)
    M = rng.standard_normal((10, 3))
    mix = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    np.testing.assert_allclose(principal_angles(M, M @ mix), 0.0, atol=1e-5)
    orth = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    np.testing.assert_allclose(principal_angles(orth[:, :3], orth[:, 3:6]), 90.0, atol=1e-6)


@pytest.mark.parametrize("radians", [1e-9, 1e-5, 0.3, 1.2])
def test_principal_angles_of_small_and_large_rotations(radians):
    """B turns A's second axis by ``radians`` out of A's plane: angles 0 and that angle, to 1e-7 of it
    (from the sine below 45 degrees: cos(1e-9) rounds to 1, which arccos gives as 1.2e-6 degrees)."""
    A = np.array([[1.0, 0], [0, 1], [0, 0], [0, 0]])
    B = np.array([[1.0, 0], [0, np.cos(radians)], [0, np.sin(radians)], [0, 0]])
    angles = principal_angles(A, B)
    assert angles[0] < 1e-12
    assert angles[1] == pytest.approx(np.degrees(radians), rel=1e-7)
    assert principal_angles(A, np.c_[B, [0, 0, 0, 1.0]]) == pytest.approx(angles, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("radians", [[1e-8, 2e-8, 3e-8], [1e-9, 0.5, 1.2], [0.0, 1e-7, 1e-7]])
def test_principal_angles_of_close_small_angles_in_random_bases(radians, rng):
    """Subspaces of R^10 turned by given angles in 3 planes, each given by a random basis (not the
    principal vectors): the angles back to 1e-6 of each, however close to one another and to 0."""
    t = np.array(radians)
    Q = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    A = Q[:, :3] @ rng.standard_normal((3, 3))
    B = (Q[:, :3] * np.cos(t) + Q[:, 3:6] * np.sin(t)) @ rng.standard_normal((3, 3))
    np.testing.assert_allclose(principal_angles(A, B), np.degrees(np.sort(t)), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(principal_angles(B, A), np.degrees(np.sort(t)), rtol=1e-6, atol=1e-12)


def test_principal_angles_refuses_bad_input(rng):
    with pytest.raises(ShapeError, match="rows"):
        principal_angles(rng.standard_normal((5, 2)), rng.standard_normal((6, 2)))
    with pytest.raises(ShapeError, match="k <= D"):
        principal_angles(rng.standard_normal((2, 3)), rng.standard_normal((2, 1)))
    with pytest.raises(DataError, match="linearly dependent"):
        principal_angles(np.ones((5, 2)), rng.standard_normal((5, 2)))


MAX_ANGLE_DEG = 5.0
MAX_EXCESS_ERROR = 0.02


def test_linear_autoencoder_finds_the_pca_subspace(digits, device):
    """A linear AE (no nonlinearity, MSE) trained with Adam spans PCA's k-dimensional subspace with its
    decoder rows (every principal angle < 5 degrees) and its test error is within 2% of PCA's."""
    ae = AutoEncoder(64, hidden=(), latent_dim=K, activation="identity", output="linear", loss="mse", device=device)
    ae.fit(digits.X_train, epochs=150, batch_size=64, lr=1e-2, verbose=False)
    pca = PCA(K, device=device).fit(digits.X_train)
    decoder_rows = backend.to_numpy(ae.decoder.net.layers[0].W.data)  # (k, 64): the directions codes decode along
    angles = principal_angles(decoder_rows.T, backend.to_numpy(pca.components_).T)
    assert angles.max() < MAX_ANGLE_DEG, angles
    ae_error = backend.to_float(ae.reconstruction_error(digits.X_test).mean())
    pca_error = backend.to_float(pca.reconstruction_error(digits.X_test).mean())
    assert ae_error <= pca_error * (1 + MAX_EXCESS_ERROR), (ae_error, pca_error)
    # PCA is the optimum on the data it was fitted to: no linear AE beats it there
    ae_train = backend.to_float(ae.reconstruction_error(digits.X_train).mean())
    assert ae_train >= backend.to_float(pca.reconstruction_error(digits.X_train).mean()) * (1 - 1e-4)
