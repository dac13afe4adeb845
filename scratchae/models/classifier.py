"""``Classifier``: a softmax head, optionally on top of a (frozen) trained encoder."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..errors import ArgumentError
from ..nn.module import Module
from ..ops.losses import softmax_cross_entropy
from ..validation import check_positive_int
from .base import Loss, Model
from .networks import Encoder, GaussianEncoder, check_activation, check_sizes, mlp

ENCODERS = {"Encoder": Encoder, "GaussianEncoder": GaussianEncoder}


def encoder_spec(encoder: Module) -> dict[str, Any]:
    """What rebuilds an encoder: its class name and constructor sizes."""
    return {"kind": type(encoder).__name__, **encoder.spec}


class Classifier(Model):
    """logits = head(features(x)), trained with softmax cross-entropy; features = encoder(x)
    (the posterior mean for a VAE encoder) or x itself.

    x: (N, input_dim) -> logits: (N, n_classes). ``encoder``: an encoder module, which is copied
    (the model it came from stays as it was and trains on its own), its spec, or None.
    ``freeze_encoder=True`` keeps the encoder's weights fixed (transfer learning / linear probe);
    ``unfreeze()`` of ``clf.encoder`` lets fine-tuning reach it.
    """

    needs_labels = True

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        encoder: Module | dict[str, Any] | None = None,
        freeze_encoder: bool = True,
        seed: int = 0,
        dtype: Any = "float32",
        device: str | None = None,
    ):
        self.n_classes = check_positive_int("n_classes", n_classes)
        if self.n_classes < 2:
            raise ArgumentError("n_classes must be at least 2: a softmax over one class has loss 0 and learns nothing")
        if not (encoder is None or isinstance(encoder, (dict, *ENCODERS.values()))):
            hint = f": give its encoder ({type(encoder).__name__}.encoder)" if hasattr(encoder, "encoder") else ""
            raise ArgumentError(
                f"encoder must be an encoder module (Encoder or GaussianEncoder), its spec (a dict) or None, "
                f"got {type(encoder).__name__}{hint}"
            )
        spec = encoder if isinstance(encoder, dict) or encoder is None else encoder_spec(encoder)
        config = dict(
            input_dim=input_dim,
            n_classes=n_classes,
            hidden=hidden,
            activation=activation,
            encoder=spec,
            freeze_encoder=freeze_encoder,
        )
        super().__init__(config, seed, dtype, device)
        input_dim = check_sizes("input_dim", (input_dim,))[0]
        hidden = check_sizes("hidden", hidden)
        check_activation(activation)
        if isinstance(encoder, Module):
            encoder = copy.deepcopy(encoder)  # the model it came from stays as it was
        elif isinstance(encoder, dict):
            kind = encoder.get("kind")
            if not isinstance(kind, str) or kind not in ENCODERS:
                raise ArgumentError(
                    f"unknown encoder kind {kind!r} in the encoder spec: expected one of {list(ENCODERS)}"
                )
            args = {k: v for k, v in encoder.items() if k != "kind"}
            try:
                encoder = ENCODERS[kind](**args, rng=self.weight_rng(), dtype=self.dtype, device=self.device)
            except TypeError as exc:
                raise ArgumentError(f"the {kind} spec {args} does not fit: {exc}") from exc
        if encoder is not None and getattr(encoder, "input_dim", input_dim) != input_dim:
            raise ArgumentError(f"encoder takes {encoder.input_dim} features per example, but input_dim is {input_dim}")
        if encoder is not None:
            encoder.to(self.device, self.dtype)
            if freeze_encoder:
                encoder.freeze()
            self.encoder = encoder
        features = encoder.latent_dim if encoder is not None else input_dim
        self.head = mlp(
            (features, *hidden, self.n_classes), activation, None, self.weight_rng(), self.dtype, self.device
        )

    def features(self, x: Any) -> Any:
        """What the head sees: the encoder's code (N, latent_dim), its mu for a VAE's, or x (N, input_dim)."""
        encoder = getattr(self, "encoder", None)
        if encoder is None:
            return x
        out = encoder(x)
        return out[0] if isinstance(out, tuple) else out

    def forward(self, x: Any) -> Any:
        """x (N, input_dim) -> logits (N, n_classes), on the tape."""
        return self.head(self.features(x))

    def batch_loss(self, x: Any, y: Any = None, rng: Any = None) -> Loss:
        loss = softmax_cross_entropy(self(x), y)
        return Loss(loss, {"xent": loss})

    def predict_logits(self, X: Any) -> Any:
        """Logits (N, n_classes) of an array X (N, input_dim), not recorded."""
        return self.map_batches(self, self.check_input(X))

    def predict(self, X: Any) -> Any:
        """Class labels (N,)."""
        return self.predict_logits(X).argmax(axis=1)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy in [0, 1]."""
        X = self.check_input(X)
        y = self.check_labels(y, len(X))
        return backend.to_float((self.predict(X) == y).mean())
