"""Variational autoencoders: ``VAE`` and ``ConditionalVAE``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError
from ..ops.elementwise import concat
from ..ops.gaussian import gaussian_kl, reparameterize
from ..ops.losses import bce_with_logits, mse_loss
from ..tensor import Tensor
from ..validation import check_matrix, check_no_labels, check_number, check_positive_int
from .base import Loss, Model
from .networks import Decoder, GaussianEncoder, check_activation, check_sizes

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_2PI = math.log(2 * math.pi)


IWAE_ROWS = {"cpu": 4096, "gpu": 65536}  # rows (examples x k) through the decoder at once, by device


class VAE(Model):
    """q(z|x) = N(mu(x), diag(exp(logvar(x)))), p(z) = N(0, I), p(x|z) Bernoulli or Gaussian.

    Loss per batch = reconstruction_weight * (-log p(x|z), summed over features)
    + beta_t * KL(q(z|x) || p(z)), averaged over the batch, with z = mu + exp(logvar/2) * eps
    and a fresh eps ~ N(0, I) each time an example is seen. ``beta_t`` ramps linearly from
    beta/kl_warmup to beta over the first ``kl_warmup`` epochs (0: no warm-up).
    Bernoulli: -log p(x|z) = bce_with_logits(decoder(z), x). Gaussian with fixed std s:
    -log p(x|z) = |x - decoder(z)|^2 / (2 s^2) + D log(s sqrt(2 pi)).
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int] = (400,),
        latent_dim: int = 20,
        activation: str = "relu",
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        kl_warmup: int = 0,
        reconstruction_weight: float = 1.0,
        gaussian_std: float = 1.0,
        seed: int = 0,
        dtype: Any = "float32",
        device: str | None = None,
    ):
        config = dict(
            input_dim=input_dim,
            hidden=hidden,
            latent_dim=latent_dim,
            activation=activation,
            likelihood=likelihood,
            beta=beta,
            kl_warmup=kl_warmup,
            reconstruction_weight=reconstruction_weight,
            gaussian_std=gaussian_std,
        )
        super().__init__(self.extra_config(config), seed, dtype, device)
        input_dim, latent_dim = check_sizes("input_dim and latent_dim", (input_dim, latent_dim))
        hidden = check_sizes("hidden", hidden)
        check_activation(activation)
        if likelihood not in LIKELIHOODS:
            raise ArgumentError(f"unknown likelihood {likelihood!r}: expected one of {', '.join(LIKELIHOODS)}")
        for name, value in (("beta", beta), ("reconstruction_weight", reconstruction_weight)):
            check_number(name, value, allow_zero=True)
        check_number("gaussian_std", gaussian_std)
        smallest = math.sqrt(0.5 / float(np.finfo(self.dtype).max))  # 1 / (2 std^2) within the dtype's range
        if likelihood == "gaussian" and gaussian_std < smallest:
            raise ArgumentError(
                f"gaussian_std {gaussian_std!r} is too small for {self.dtype}: the squared error's scale "
                f"1 / (2 std^2) would be beyond its range (std must exceed about {smallest:.3g})"
            )
        if isinstance(kl_warmup, bool) or not isinstance(kl_warmup, numbers.Integral) or kl_warmup < 0:
            raise ArgumentError(f"kl_warmup must be an integer >= 0 (epochs), got {kl_warmup!r}")
        self.likelihood, self.beta, self.kl_warmup = likelihood, float(beta), int(kl_warmup)
        self.reconstruction_weight, self.gaussian_std = float(reconstruction_weight), float(gaussian_std)
        self.kl_weight = self.beta
        c = self.n_classes
        rng = self.weight_rng()
        self.encoder = GaussianEncoder(input_dim + c, hidden, latent_dim, activation, rng, self.dtype, self.device)
        self.decoder = Decoder(
            latent_dim + c,
            hidden[::-1],
            input_dim,
            activation,
            "sigmoid" if likelihood == "bernoulli" else "linear",
            likelihood == "bernoulli",
            rng,
            self.dtype,
            self.device,
        )

    def extra_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return config

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    # --- conditioning (identity here; the conditional VAE appends one-hot labels) ---
    def condition(self, t: Any, y: Any) -> Any:
        """The encoder's or decoder's input: x (N, D) or z (N, latent_dim) as it is (labels: none here)."""
        return t

    def prepare_labels(self, y: Any, n: int) -> Any:
        """The labels (n,) an inference method passes on: none for a VAE (any given are refused)."""
        check_no_labels(y, self.kind)
        return None

    # --- the loss ---
    def on_epoch_start(self, epoch: int) -> None:
        self.kl_weight = self.beta * min(1.0, (epoch + 1) / self.kl_warmup) if self.kl_warmup else self.beta

    def on_epoch_end(self) -> None:
        self.kl_weight = self.beta  # the warm-up weight is for the training batches only

    def negative_log_likelihood(self, out: Tensor, x: Any, reduction: str = "batchmean") -> Tensor:
        """-log p(x|z) from the decoder's output (logits or Gaussian mean), summed over features."""
        if self.likelihood == "bernoulli":
            return bce_with_logits(out, x, reduction)
        s = self.gaussian_std
        n, d = x.shape
        elements = {"none": 1, "mean": 1, "batchmean": d, "sum": n * d}[reduction]
        return mse_loss(out, x, reduction) * (1.0 / (2 * s * s)) + elements * (math.log(s) + 0.5 * LOG_2PI)

    @property
    def unit_interval_loss(self) -> tuple[str, str] | None:
        return ("likelihood='bernoulli'", "likelihood='gaussian'") if self.likelihood == "bernoulli" else None

    def draw_eps(self, shape: tuple[int, ...], rng: Any = None) -> Any:
        """eps ~ N(0, I) of ``shape`` in the model's dtype, from ``rng`` (default: the model's generator)."""
        return self.noise_rng(rng).standard_normal(shape, dtype=self.dtype)

    def batch_loss(self, x: Any, y: Any = None, rng: Any = None, eps: Any = None) -> Loss:
        mu, logvar = self.encoder(self.condition(x, y))
        eps = self.draw_eps(mu.shape, rng) if eps is None else eps
        z = reparameterize(mu, logvar, eps)
        recon = self.negative_log_likelihood(self.decoder(self.condition(z, y)), x)
        kl = gaussian_kl(mu, logvar)
        total = _weighted(recon, self.reconstruction_weight) + _weighted(kl, self.kl_weight)
        weights = {name: w for name, w in (("recon", self.reconstruction_weight), ("kl", self.kl_weight)) if w != 1.0}
        return Loss(total, {"recon": recon, "kl": kl}, weights)

    # --- using a trained model ---
    def encode(self, X: Any, y: Any = None) -> tuple[Any, Any]:
        """(mu, logvar) of q(z|x), each (N, latent_dim)."""
        X = self.check_input(X)
        return self.map_batches(lambda x, yy: self.encoder(self.condition(x, yy)), X, self.prepare_labels(y, len(X)))

    def transform(self, X: Any, y: Any = None) -> Any:
        """The posterior means mu (N, latent_dim): the VAE as a dimension reducer."""
        return self.encode(X, y)[0]

    def decode(self, Z: Any, y: Any = None) -> Any:
        """The decoder's mean in data space (probabilities for Bernoulli) for codes Z (N, latent_dim)."""
        Z = check_matrix(Z, "Z", self.latent_dim, self.dtype, self.device)
        return self.map_batches(
            lambda z, yy: self.decoder.mean(self.condition(z, yy)), Z, self.prepare_labels(y, len(Z))
        )

    inverse_transform = decode

    def fit_transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """fit(X[, y]) then transform(X[, y]): the posterior means (N, latent_dim)."""
        self.fit(X, y, **kwargs)
        return self.transform(X, y if self.needs_labels else None)

    def reconstruct(self, X: Any, y: Any = None) -> Any:
        """decode(mu(X)): the deterministic reconstruction through the posterior mean."""
        return self.decode(self.transform(X, y), y)

    def sample(self, n: int, y: Any = None, rng: Any = None) -> Any:
        """n draws of the decoder's mean at z ~ N(0, I): (n, input_dim)."""
        n = check_positive_int("n", n)
        return self.decode(self.draw_eps((n, self.latent_dim), rng), y)

    def per_example_terms(self, x: Any, y: Any, eps: Any) -> tuple[Any, Any]:
        """(-log p(x|z), KL) per example (N,) at z = mu + std * eps, no tape."""
        mu, logvar = self.encoder(self.condition(x, y))
        z = reparameterize(mu, logvar, eps)
        nll = self.negative_log_likelihood(self.decoder(self.condition(z, y)), x, "none").data.sum(axis=1)
        kl = gaussian_kl(mu, logvar, "none").data.sum(axis=1)
        return nll, kl

    def elbo(self, X: Any, y: Any = None, rng: Any = None) -> Any:
        """ELBO per example (N,): E_q[log p(x|z)] - KL, one-sample estimate (beta = 1)."""
        X, rng = self.check_targets(X), self.noise_rng(rng)

        def one(x: Any, yy: Any) -> Any:
            nll, kl = self.per_example_terms(x, yy, self.draw_eps((len(x), self.latent_dim), rng))
            return -(nll + kl)

        return self.map_batches(one, X, self.prepare_labels(y, len(X)))

    def log_likelihood(
        self,
        X: Any,
        y: Any = None,
        k: int = 1000,
        rng: Any = None,
        max_rows: int | None = None,
        progress: bool = False,
    ) -> Any:
        """Importance-weighted estimate of log p(x) per example (N,) with k samples from q(z|x).

        log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], computed with the
        max-shift trick in float64, batched so that at most ``max_rows`` rows (examples x k) pass
        the decoder at once, or one example's k rows when k exceeds it (default: 4,096 on the CPU,
        where larger batches only cost memory, and 65,536 on the GPU). Each example is encoded once.
        k = 1 gives an ELBO estimate; it increases towards log p(x) with k. ``progress``: a progress
        bar on stderr.
        """
        k = check_positive_int("k", k)
        X, rng = self.check_targets(X), self.noise_rng(rng)
        xp = backend.array_module(self.device)
        rows = IWAE_ROWS[self.device] if max_rows is None else check_positive_int("max_rows", max_rows)
        per_batch = max(1, rows // k)

        def one(x: Any, yy: Any) -> Any:
            b, d = x.shape[0], self.latent_dim
            mu, logvar = (xp.repeat(h.data, k, axis=0) for h in self.encoder(self.condition(x, yy)))
            xk = xp.repeat(x, k, axis=0)
            yk = xp.repeat(yy, k, axis=0) if yy is not None else None
            eps = self.draw_eps((b * k, d), rng)
            z = reparameterize(mu, logvar, eps).data
            nll = self.negative_log_likelihood(self.decoder(self.condition(z, yk)), xk, "none").data.sum(axis=1)
            log_pz = -0.5 * (z * z).sum(axis=1)
            log_qz = -0.5 * (eps * eps + logvar).sum(axis=1)  # the 2 pi terms cancel with log p(z)'s
            log_w = (-nll + log_pz - log_qz).astype(np.float64).reshape(b, k)
            top = log_w.max(axis=1, keepdims=True)
            return (top[:, 0] + xp.log(xp.exp(log_w - top).mean(axis=1))).astype(self.dtype)

        bar = f"log p(x), k={k}" if progress else None
        return self.map_batches(one, X, self.prepare_labels(y, len(X)), batch_size=per_batch, progress=bar)


class ConditionalVAE(VAE):
    """A VAE given the class: the one-hot label is appended to the encoder's input and to z.

    q(z|x, c), p(x|z, c); ``fit(X, y)``, ``sample(n, y=label_or_labels)`` generates that class.
    """

    needs_labels = True

    def __init__(
        self, input_dim: int, n_classes: int, hidden: Sequence[int] = (400,), latent_dim: int = 20, **kwargs: Any
    ):
        self.n_classes = check_positive_int("n_classes", n_classes)
        super().__init__(input_dim, hidden, latent_dim, **kwargs)

    def extra_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"input_dim": config.pop("input_dim"), "n_classes": self.n_classes, **config}

    def one_hot(self, y: Any) -> Any:
        """Integer labels (N,) as one-hot rows (N, n_classes) of the model's dtype."""
        xp = backend.array_module(self.device)
        return xp.eye(self.n_classes, dtype=self.dtype)[y]

    def condition(self, t: Any, y: Any) -> Any:
        """[t, onehot(y)]: x (N, D) or z (N, latent_dim) with the class appended, (N, ... + n_classes)."""
        return concat([t, self.one_hot(y)], axis=1)

    def prepare_labels(self, y: Any, n: int) -> Any:
        if isinstance(y, (numbers.Number, str, bytes)) or getattr(y, "shape", None) == ():  # one label for all
            y = np.full(n, backend.to_numpy(y) if hasattr(y, "dtype") else y)
        return self.check_labels(y, n)

    def batch_loss(self, x: Any, y: Any = None, rng: Any = None, eps: Any = None) -> Loss:
        if y is None:
            raise ArgumentError("ConditionalVAE needs labels y for every batch")
        return super().batch_loss(x, y, rng, eps)


def _weighted(term: Tensor, weight: float) -> Tensor:
    """weight * term, recorded on the tape only for a weight other than 1 (the default loss is recon + KL)."""
    return term if weight == 1.0 else term * weight
