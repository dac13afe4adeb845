"""Deterministic autoencoders: ``AutoEncoder`` and ``DenoisingAutoEncoder``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data.noise import NOISE_KINDS, check_level, corrupt
from ..errors import ArgumentError
from ..ops.losses import bce_with_logits, mse_loss
from ..tensor import Tensor
from ..validation import check_matrix
from .base import Loss, Model
from .networks import Decoder, Encoder, check_activation, check_sizes

LOSSES = ("bce", "mse")


class AutoEncoder(Model):
    """x (N, input_dim) -> code (N, latent_dim) -> reconstruction (N, input_dim).

    ``loss="bce"`` (with ``output="sigmoid"``): per-example sum over features of BCE,
    computed from the decoder's logits by ``bce_with_logits``. ``loss="mse"``: per-example
    sum of squared errors of the decoder's output (``output`` sigmoid or linear). The loss
    is averaged over the batch. ``code_activation``: an activation on the code layer (linear
    by default; a layer-wise pretrained stack uses its hidden activation there). With ``hidden=()``,
    ``activation="identity"``, ``output="linear"``, ``loss="mse"`` it is the linear autoencoder that PCA solves.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int] = (256,),
        latent_dim: int = 32,
        activation: str = "relu",
        output: str = "sigmoid",
        loss: str = "bce",
        code_activation: str | None = None,
        seed: int = 0,
        dtype: Any = "float32",
        device: str | None = None,
    ):
        config = dict(
            input_dim=input_dim,
            hidden=hidden,
            latent_dim=latent_dim,
            activation=activation,
            output=output,
            loss=loss,
            code_activation=code_activation,
        )
        super().__init__(config, seed, dtype, device)
        input_dim, latent_dim = check_sizes("input_dim and latent_dim", (input_dim, latent_dim))
        hidden = check_sizes("hidden", hidden)
        check_activation(activation)
        if loss not in LOSSES:
            raise ArgumentError(f"unknown loss {loss!r}: expected one of {', '.join(LOSSES)}")
        if loss == "bce" and output != "sigmoid":
            raise ArgumentError(f"loss='bce' needs output='sigmoid' (probabilities), got output={output!r}")
        self.loss_name = loss
        rng = self.weight_rng()
        if code_activation is not None:
            check_activation(code_activation)
        self.encoder = Encoder(
            input_dim, hidden, latent_dim, activation, rng, self.dtype, self.device, code_activation=code_activation
        )
        self.decoder = Decoder(
            latent_dim, hidden[::-1], input_dim, activation, output, loss == "bce", rng, self.dtype, self.device
        )

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    def reconstruction_loss(self, out: Tensor, x: Any, reduction: str = "batchmean") -> Tensor:
        """BCE (from logits) or squared error between the decoder's output and x, summed over features."""
        return bce_with_logits(out, x, reduction) if self.loss_name == "bce" else mse_loss(out, x, reduction)

    def encoder_input(self, x: Any, rng: Any = None, noisy: Any = None) -> Any:
        """What the encoder sees during training: the clean input here (``noisy`` is refused)."""
        if noisy is not None:
            raise ArgumentError(
                f"{self.kind} takes no noisy input: its encoder sees the clean x (noisy= is for a DenoisingAutoEncoder)"
            )
        return x

    def batch_loss(self, x: Any, y: Any = None, rng: Any = None, noisy: Any = None) -> Loss:
        out = self.decoder(self.encoder(self.encoder_input(x, rng, noisy)))
        recon = self.reconstruction_loss(out, x)
        return Loss(recon, {"recon": recon})

    def encode(self, X: Any) -> Any:
        """Codes (N, latent_dim) of X (N, input_dim)."""
        return self.map_batches(self.encoder, self.check_input(X))

    def decode(self, Z: Any) -> Any:
        """Reconstructions (N, input_dim) in data space from codes (N, latent_dim)."""
        return self.map_batches(self.decoder.mean, check_matrix(Z, "Z", self.latent_dim, self.dtype, self.device))

    def reconstruct(self, X: Any) -> Any:
        """decode(encode(X))."""
        return self.map_batches(lambda x: self.decoder.mean(self.encoder(x)), self.check_input(X))

    @property
    def unit_interval_loss(self) -> tuple[str, str] | None:
        return ("loss='bce'", "loss='mse', output='linear'") if self.loss_name == "bce" else None

    def reconstruction_error(self, X: Any) -> Any:
        """Per-example loss (N,): the training loss's sum over features, without noise."""
        X = self.check_targets(X)
        return self.map_batches(
            lambda x: self.reconstruction_loss(self.decoder(self.encoder(x)), x, "none").data.sum(axis=1), X
        )

    transform = encode
    inverse_transform = decode

    def fit_transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """fit(X) then encode(X): the codes (N, latent_dim); ``y`` is ignored, as ``fit`` ignores it."""
        self.fit(X, y, **kwargs)
        return self.encode(X)


class DenoisingAutoEncoder(AutoEncoder):
    """An autoencoder trained to undo noise: the encoder sees ``corrupt(x)``, the loss targets x.

    ``noise``: ``"gaussian"`` (x + level * N(0, 1)), ``"masking"`` (each entry zeroed with
    probability level) or ``"salt_pepper"`` (each entry set to 0 or 1 with probability
    level). A fresh corruption is drawn every time an example is seen.
    """

    def __init__(self, input_dim: int, *args: Any, noise: str = "masking", noise_level: float = 0.25, **kwargs: Any):
        if noise not in NOISE_KINDS:
            raise ArgumentError(f"unknown noise {noise!r}: expected one of {', '.join(NOISE_KINDS)}")
        noise_level = check_level(noise, noise_level, "noise_level")
        super().__init__(input_dim, *args, **kwargs)
        self.noise, self.noise_level = noise, noise_level
        self.config.update(noise=noise, noise_level=self.noise_level)

    def corrupt(self, X: Any, rng: Any = None) -> Any:
        """A noisy copy of X (drawn from ``rng``, or the model's own generator)."""
        return self.encoder_input(self.check_input(X), rng)

    def encoder_input(self, x: Any, rng: Any = None, noisy: Any = None) -> Any:
        if noisy is not None:
            return noisy
        rng = self.noise_rng(rng)
        return corrupt(x, self.noise, self.noise_level, rng)

    def denoise(self, X: Any) -> Any:
        """Clean estimates of (noisy) X: decode(encode(X))."""
        return self.reconstruct(X)
