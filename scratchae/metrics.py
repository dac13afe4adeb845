"""Evaluation: reconstruction error, ELBO, importance-weighted log-likelihood, linear-probe accuracy.

Per-example metrics return an array (N,) on the model's device, summed over the D features
(the per-example loss of training); average it for a data set's figure.
"""

from __future__ import annotations

from typing import Any

from . import backend
from .errors import ArgumentError, DataError, DTypeError, ShapeError
from .models.classifier import Classifier
from .ops.gaussian import gaussian_kl
from .ops.losses import bce_loss
from .pca import PCA
from .validation import as_array, check_matrix, check_no_labels, check_unit_interval


def _reconstruction(model: Any, X: Any, y: Any) -> tuple[Any, Any]:
    """(X as the model takes it, model.reconstruct(X[, y])), both (N, D)."""
    if not hasattr(model, "reconstruct"):
        raise ArgumentError(f"{type(model).__name__} has no reconstruct(X): expected an autoencoder, VAE or PCA")
    X = check_matrix(X, "X", None, model.dtype, model.device)
    return X, model.reconstruct(X) if _labels_for(model, y) is None else model.reconstruct(X, y)


def _labels_for(model: Any, y: Any) -> Any:
    """``y``, refused for a model that takes no labels (only a conditional model does)."""
    if not getattr(model, "needs_labels", False):
        check_no_labels(y, type(model).__name__)
    return y


def reconstruction_mse(model: Any, X: Any, y: Any = None) -> Any:
    """Per-example squared error (N,): sum_d (x_d - xhat_d)^2 with xhat = model.reconstruct(X[, y])
    (the decoder's mean: probabilities for a Bernoulli decoder, the posterior mean's decoding for a VAE)."""
    X, R = _reconstruction(model, X, y)
    diff = X - R
    return (diff * diff).sum(axis=1)


def denoising_mse(model: Any, X: Any, seed: int | None = None) -> tuple[Any, Any]:
    """Per-example squared errors (N,) against the clean X of a denoising autoencoder's corrupted input
    x~ = model.corrupt(X) and of its reconstruction from it: (sum_d (x~_d - x_d)^2, sum_d (g(f(x~))_d - x_d)^2).
    ``seed`` fixes the noise (default: the model's own generator)."""
    if not hasattr(model, "corrupt"):
        raise ArgumentError(f"{type(model).__name__} has no corrupt(X): expected a DenoisingAutoEncoder")
    X = check_matrix(X, "X", None, model.dtype, model.device)
    noisy = model.corrupt(X, _rng(model, seed))
    noise, error = noisy - X, model.reconstruct(noisy) - X
    return (noise * noise).sum(axis=1), (error * error).sum(axis=1)


def reconstruction_bce(model: Any, X: Any, y: Any = None) -> Any:
    """Per-example binary cross-entropy (N,): -sum_d [x_d log p_d + (1 - x_d) log(1 - p_d)] with
    p = model.reconstruct(X[, y]) clipped to [eps, 1 - eps] (eps: 1e-7 in float32, 1e-12 in float64).
    X must lie in [0, 1]."""
    X, P = _reconstruction(model, X, y)
    check_unit_interval(X, "X", "reconstruction_bce")
    return bce_loss(P, X, "none").data.sum(axis=1)


def _variational(model: Any, method: str) -> Any:
    if not hasattr(model, method):
        raise ArgumentError(f"{type(model).__name__} has no {method}: expected a VAE or ConditionalVAE")
    return getattr(model, method)


def _rng(model: Any, seed: int | None) -> Any:
    return None if seed is None else backend.new_rng(seed, model.device)


def elbo(model: Any, X: Any, y: Any = None, seed: int | None = None) -> Any:
    """Per-example ELBO (N,) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), one sample of z per example,
    from ``model.elbo``; ``seed`` fixes the draws (default: the model's own generator)."""
    method = _variational(model, "elbo")
    return method(X, _labels_for(model, y), rng=_rng(model, seed))


def iwae(model: Any, X: Any, k: int = 100, y: Any = None, seed: int | None = None, progress: bool = False) -> Any:
    """Per-example importance-weighted estimate of log p(x) (N,) with k samples of q(z|x)
    (``model.log_likelihood``): log (1/k) sum_i p(x, z_i) / q(z_i|x), >= the ELBO on average.
    ``progress``: a progress bar on stderr."""
    method = _variational(model, "log_likelihood")
    return method(X, _labels_for(model, y), k=k, rng=_rng(model, seed), progress=progress)


def kl_per_dimension(model: Any, X: Any, y: Any = None) -> Any:
    """The KL term per latent coordinate (latent_dim,), averaged over the examples: mean_n 0.5 (mu_nd^2 +
    exp(logvar_nd) - logvar_nd - 1) with (mu, logvar) = model.encode(X[, y]). A coordinate near 0 is
    unused (its posterior is the prior for every x); the active ones carry what the codes say."""
    _variational(model, "elbo")  # a VAE: encode gives (mu, logvar)
    mu, logvar = model.encode(X, _labels_for(model, y))
    return gaussian_kl(mu, logvar, "none").data.mean(axis=0)  # the op's per-element KL, (N, latent_dim)


def standardize(Z_train: Any, *others: Any) -> list[Any]:
    """Z_train and the others shifted and scaled by Z_train's per-feature mean and standard deviation
    (features with standard deviation 0 are only shifted). Arrays (N, F) of one device, or nested lists."""
    Z_train, *others = (backend.as_float_array(as_array(Z, "Z")) for Z in (Z_train, *others))
    if Z_train.ndim != 2:
        raise ShapeError(f"standardize: Z_train must be 2-D (N, F), got shape {tuple(Z_train.shape)}")
    for k, Z in enumerate(others, start=1):
        if Z.ndim != 2 or Z.shape[1] != Z_train.shape[1]:
            raise ShapeError(
                f"standardize: array {k} after Z_train has shape {tuple(Z.shape)}: it must be (N, "
                f"{Z_train.shape[1]}), Z_train's features"
            )
    mean = Z_train.mean(axis=0)
    std = Z_train.std(axis=0)
    xp = backend.array_module_of(std)
    std = xp.where(std > 0, std, 1)
    return [(Z - mean) / std for Z in (Z_train, *others)]


def linear_probe_accuracy(
    Z_train: Any,
    y_train: Any,
    Z_test: Any,
    y_test: Any,
    epochs: int = 50,
    lr: float = 1e-2,
    batch_size: int = 128,
    seed: int = 0,
    device: str | None = None,
) -> float:
    """Test accuracy of a softmax regression (``Classifier`` with hidden=()) trained with Adam on
    standardized features Z_train (N, F), y_train (N,); evaluated on Z_test (M, F), y_test (M,).
    The features are standardized with the training part's mean and standard deviation."""
    device = backend.check_device(device)
    Z_train = check_matrix(Z_train, "Z_train", None, "float32", device)
    Z_test = check_matrix(Z_test, "Z_test", Z_train.shape[1], "float32", device)
    Z_train, Z_test = standardize(Z_train, Z_test)
    labels = [backend.to_numpy(as_array(y, name)) for y, name in ((y_train, "y_train"), (y_test, "y_test"))]
    for lab, name in zip(labels, ("y_train", "y_test"), strict=True):
        if lab.dtype.kind not in "iuf":
            raise DTypeError(f"{name} must hold integer class labels, got dtype {lab.dtype}")
        if lab.size and not lab.min() >= 0:
            raise DataError(f"{name} holds {lab.min()}: class labels are 0, 1, 2, ...")
    n_classes = max(int(max(lab.max() for lab in labels if lab.size)) + 1, 2)  # a softmax needs two classes
    clf = Classifier(Z_train.shape[1], n_classes, hidden=(), seed=seed, device=device)
    clf.fit(Z_train, labels[0], epochs=epochs, lr=lr, batch_size=batch_size, verbose=False)
    return clf.score(Z_test, labels[1])


def pca_reconstruction_error(X_train: Any, X_test: Any, k: int, device: str | None = None) -> Any:
    """Per-example squared error (N_test,) of the rank-k PCA fitted on X_train: the best any
    k-dimensional linear autoencoder can do on the training part."""
    return PCA(k, device=device).fit(X_train).reconstruction_error(X_test)
