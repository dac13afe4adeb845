"""Principal component analysis by SVD, and principal angles between subspaces.

PCA is the closed-form answer to the linear autoencoder: with the centred data
Xc = X - mean = U S V^T, the k rows of V^T with the largest singular values span the
subspace a linear AE with k codes learns, and no rank-k linear map reconstructs X better.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, DataError, DTypeError, ShapeError
from .validation import check_matrix, check_positive_int


class PCA:
    """PCA with ``n_components`` = k, computed in the device's array module (NumPy or CuPy).

    After ``fit(X)`` with X (N, D): ``mean_`` (D,), ``components_`` (k, D) (orthonormal rows,
    each signed so that its largest-magnitude entry is positive), ``explained_variance_`` (k,)
    = the k largest eigenvalues of the sample covariance (ddof = 1) = S^2 / (N - 1),
    ``explained_variance_ratio_`` (k,) = those over the total variance (their sum is <= 1).
    ``dtype``: the precision of the fit and of every output (default float64).
    """

    def __init__(self, n_components: int, device: str | None = None, dtype: Any = "float64"):
        self.n_components = check_positive_int("n_components", n_components)
        self.device = backend.check_device(device)
        self.dtype = backend.check_float_dtype(dtype)
        self.components_: Any = None
        self.mean_: Any = None
        self.explained_variance_: Any = None
        self.explained_variance_ratio_: Any = None

    def _check(self, X: Any, name: str = "X") -> Any:
        if self.components_ is None:
            raise ArgumentError("this PCA is not fitted yet: call fit(X) first")
        return check_matrix(X, name, self.components_.shape[1], self.dtype, self.device)

    def fit(self, X: Any) -> PCA:
        """Fit to X (N, D); needs N >= 2 and k <= min(N, D)."""
        X = check_matrix(X, "X", None, self.dtype, self.device)
        n, d = X.shape
        k = self.n_components
        if n < 2:
            raise ShapeError(f"PCA.fit: X has {n} example, need at least 2 to estimate a covariance")
        if k > min(n, d):
            raise ArgumentError(f"n_components must be <= min(N, D) = {min(n, d)} for X of shape {(n, d)}, got {k}")
        xp = backend.array_module(self.device)
        self.mean_ = X.mean(axis=0)
        _, s, vt = xp.linalg.svd(X - self.mean_, full_matrices=False)
        vt = vt[:k]
        rows = xp.arange(k)
        signs = xp.sign(vt[rows, xp.abs(vt).argmax(axis=1)])
        self.components_ = vt * signs[:, None]
        variances = s * s / (n - 1)  # fit refused n < 2
        self.explained_variance_ = variances[:k]
        total = variances.sum()  # 0 for constant data, whose components explain nothing
        ratio = self.explained_variance_ / total if total > 0 else xp.zeros_like(self.explained_variance_)
        self.explained_variance_ratio_ = ratio
        return self

    def transform(self, X: Any) -> Any:
        """Codes (N, k) = (X - mean) @ components^T."""
        return (self._check(X) - self.mean_) @ self.components_.T

    def inverse_transform(self, Z: Any) -> Any:
        """Points (N, D) = Z @ components + mean, from codes Z (N, k)."""
        if self.components_ is None:
            raise ArgumentError("this PCA is not fitted yet: call fit(X) first")
        Z = check_matrix(Z, "Z", self.n_components, self.dtype, self.device)
        return Z @ self.components_ + self.mean_

    def fit_transform(self, X: Any) -> Any:
        return self.fit(X).transform(X)

    def reconstruct(self, X: Any) -> Any:
        """The projection of X (N, D) onto the fitted affine subspace: inverse_transform(transform(X))."""
        return self.inverse_transform(self.transform(X))

    def reconstruction_error(self, X: Any) -> Any:
        """Per-example sum of squared errors (N,): |x - reconstruct(x)|^2."""
        X = self._check(X)
        diff = X - self.reconstruct(X)
        return (diff * diff).sum(axis=1)


def _host_float64(M: Any, name: str) -> np.ndarray:
    """``M`` as a float64 host array; the conversion's error names the argument."""
    try:
        return backend.to_numpy(backend.as_float_array(M, dtype=np.float64))
    except (DTypeError, ShapeError) as exc:
        raise type(exc)(f"principal_angles: {name}: {exc}") from exc


def principal_angles(A: Any, B: Any) -> np.ndarray:
    """Principal angles in degrees, ascending, between the column spaces of A (D, k) and B (D, m).

    With A = Q_a R_a and B = Q_b R_b (QR), the min(k, m) angles have as cosines the singular values
    of Q_a^T Q_b, and as sines those of the part of the narrower basis outside the other's span
    (Q_b - Q_a Q_a^T Q_b for m <= k). An angle below 45 degrees comes from its sine (arccos loses the
    small ones: cos of 1e-9 rounds to 1), the others from their cosine. Computed on the host in
    float64; A and B must have full column rank.
    """
    a, b = (_host_float64(M, name) for M, name in ((A, "A"), (B, "B")))
    for name, M in (("A", a), ("B", b)):
        if M.ndim != 2 or M.shape[1] > M.shape[0]:
            raise ShapeError(f"principal_angles: {name} must be (D, k) with k <= D, got shape {M.shape}")
        if not np.all(np.isfinite(M)):
            raise DataError(f"principal_angles: {name} has NaN or infinite values")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"principal_angles: A has {a.shape[0]} rows, B has {b.shape[0]}: both must live in R^D")
    qa, qb = _orthonormal_basis(a, "A"), _orthonormal_basis(b, "B")
    cross = qa.T @ qb
    cosines = np.linalg.svd(cross, compute_uv=False)  # descending: the angles ascending
    outside = qb - qa @ cross if qb.shape[1] <= qa.shape[1] else qa - qb @ cross.T
    sines = np.linalg.svd(outside, compute_uv=False)[::-1]  # ascending: the angles ascending
    small = cosines * cosines >= 0.5
    angles = np.where(small, np.arcsin(np.clip(sines, 0.0, 1.0)), np.arccos(np.clip(cosines, 0.0, 1.0)))
    return np.sort(np.degrees(angles))  # ascending also where the sines' and cosines' roundings meet


def _orthonormal_basis(M: np.ndarray, name: str) -> np.ndarray:
    """Q (D, k) of the QR factorization of M (D, k); refuses a rank-deficient M."""
    q, r = np.linalg.qr(M)
    diag = np.abs(np.diag(r))
    if diag.min() <= 1e-10 * max(diag.max(), np.finfo(np.float64).tiny):
        raise DataError(f"principal_angles: the columns of {name} are linearly dependent (rank < {M.shape[1]})")
    return q
