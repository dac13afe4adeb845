"""Greedy layer-wise pretraining of a deep autoencoder, its stacks, and transfer of encoders to new heads.

Step l trains a one-hidden-layer autoencoder ``h_l -> h_{l+1} = act(h_l W_l + b_l) -> h_l`` on
the codes h_l of the layers trained before it (h_0 = X; labels unused). The trained layers then
stack into a deep encoder (``stack_encoder``), an unrolled deep autoencoder whose decoder runs the
step decoders in reverse (``stack_autoencoder``), or a classifier on the stacked encoder
(``stacked_classifier``), each fine-tuned with ``fit``. ``random_init_layers`` gives the same
stacks without pretraining, for comparison.

Reconstruction loss of each step: the input h_0 = X is rebuilt through a sigmoid with BCE (from
the logits) when X lies in [0, 1], else linearly with MSE (``output="auto"``). A hidden code h_l
(l >= 1) is rebuilt through the code activation itself: sigmoid codes lie in [0, 1] and use BCE,
codes of any other activation are not bounded to [0, 1] and use MSE. So each step's decoder is
exactly the layer the unrolled deep autoencoder uses in its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backend
from .data.noise import NOISE_KINDS, check_level, corrupt
from .errors import ArgumentError, ShapeError
from .history import History
from .models.autoencoder import AutoEncoder
from .models.base import Loss, Model
from .models.classifier import Classifier
from .models.networks import Encoder, check_activation, check_sizes
from .nn.layers import Dense
from .nn.module import Module
from .ops.activations import sigmoid
from .ops.losses import bce_with_logits, mse_loss
from .tensor import Tensor
from .validation import check_class_labels, check_matrix, check_positive_int

OUTPUTS = ("auto", "sigmoid", "linear")


class LayerAutoEncoder(Model):
    """One pretraining step: h (N, input_dim) -> code = act(h W + b) (N, code_dim) -> recon (N, input_dim).

    ``output``: the activation that rebuilds h from the code. "sigmoid": the decoder gives logits
    and the loss is BCE (``bce_with_logits``); any other: recon = output(code W' + b') and the loss
    is the squared error. Both summed over features, averaged over the batch. ``noise``,
    ``noise_level``: corrupt h before encoding (a denoising step, see ``scratchae.data.corrupt``).
    """

    def __init__(
        self,
        input_dim: int,
        code_dim: int,
        activation: str = "sigmoid",
        output: str = "sigmoid",
        noise: str | None = None,
        noise_level: float = 0.0,
        seed: int = 0,
        dtype: Any = "float32",
        device: str | None = None,
    ):
        config = dict(
            input_dim=input_dim,
            code_dim=code_dim,
            activation=activation,
            output=output,
            noise=noise,
            noise_level=noise_level,
        )
        super().__init__(config, seed, dtype, device)
        input_dim, code_dim = check_sizes("input_dim and code_dim", (input_dim, code_dim))
        check_activation(activation)
        check_activation(output)
        if noise is not None and noise not in NOISE_KINDS:
            raise ArgumentError(f"unknown noise {noise!r}: expected None or one of {', '.join(NOISE_KINDS)}")
        level = check_level(noise, noise_level, "noise_level") if noise is not None else 0.0
        self.noise, self.noise_level, self.output = noise, level, output
        rng = self.weight_rng()
        self.encoder = Dense(input_dim, code_dim, activation, rng=rng, dtype=self.dtype, device=self.device)
        last = None if output == "sigmoid" else output
        self.decoder = Dense(code_dim, input_dim, last, rng=rng, dtype=self.dtype, device=self.device)

    def batch_loss(self, x: Any, y: Any = None, rng: Any = None) -> Loss:
        h = x
        if self.noise is not None:
            h = corrupt(x, self.noise, self.noise_level, self.noise_rng(rng))
        out = self.decoder(self.encoder(h))
        loss = bce_with_logits(out, x) if self.output == "sigmoid" else mse_loss(out, x)
        return Loss(loss, {"recon": loss})

    def encode(self, X: Any) -> Any:
        """Codes (N, code_dim) of clean X (N, input_dim)."""
        return self.map_batches(self.encoder, self.check_input(X))

    def reconstruct(self, X: Any) -> Any:
        """The rebuilt input (N, input_dim), through the sigmoid for a BCE step."""

        def rebuild(x: Any) -> Tensor:
            out = self.decoder(self.encoder(x))
            return sigmoid(out) if self.output == "sigmoid" else out

        return self.map_batches(rebuild, self.check_input(X))


@dataclass
class LayerwiseResult:
    """The layers of a greedy stack. ``layers[l]`` is the step-l autoencoder (sizes[l] -> sizes[l+1]),
    trained in step l by ``pretrain_layerwise`` or untrained from ``random_init_layers``.

    ``output``: how the input is rebuilt ("sigmoid" with BCE, or "linear" with MSE).
    """

    sizes: tuple[int, ...]
    activation: str
    output: str
    layers: list[LayerAutoEncoder]

    @property
    def encoders(self) -> list[Dense]:
        return [m.encoder for m in self.layers]

    @property
    def decoders(self) -> list[Dense]:
        return [m.decoder for m in self.layers]

    @property
    def histories(self) -> list[History]:
        return [m.history for m in self.layers]

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].dtype

    @property
    def device(self) -> str:
        return self.layers[0].device


def _check_stack_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = check_sizes("sizes", sizes)
    if len(sizes) < 2:
        raise ArgumentError(f"sizes must be (input_dim, code_1, ..., code_L) with L >= 1, got {list(sizes)}")
    return sizes


def _build_layers(
    sizes: Sequence[int],
    activation: str,
    output: str,
    denoising: tuple[str, float] | None,
    seed: int,
    dtype: Any,
    device: str | None,
) -> LayerwiseResult:
    """The untrained step autoencoders of a stack; layer l draws its weights from seed (seed, l)."""
    sizes = _check_stack_sizes(sizes)
    check_activation(activation)
    if output not in ("sigmoid", "linear"):
        raise ArgumentError(f"output must be 'sigmoid' or 'linear', got {output!r}")
    if denoising is not None and (not isinstance(denoising, (tuple, list)) or len(denoising) != 2):
        raise ArgumentError(
            f"denoising must be None or a pair (noise kind, level), e.g. ('masking', 0.25); got {denoising!r}"
        )
    noise, level = denoising if denoising is not None else (None, 0.0)
    if noise is not None:  # in the caller's words; LayerAutoEncoder checks the noise kind
        level = check_level(noise, level, "denoising: the level")
    layers = [
        LayerAutoEncoder(
            sizes[i],
            sizes[i + 1],
            activation,
            ("sigmoid" if output == "sigmoid" else "identity") if i == 0 else activation,
            noise,
            level,
            seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
            dtype=dtype,
            device=device,
        )
        for i in range(len(sizes) - 1)
    ]
    return LayerwiseResult(sizes, activation, output, layers)


def random_init_layers(
    sizes: Sequence[int],
    activation: str = "sigmoid",
    output: str = "sigmoid",
    seed: int = 0,
    dtype: Any = "float32",
    device: str | None = None,
) -> LayerwiseResult:
    """The layers of a stack with their initial (random) weights, no pretraining: the baseline.

    With the same ``seed`` they are the weights ``pretrain_layerwise`` starts each step from.
    """
    return _build_layers(sizes, activation, output, None, seed, dtype, device)


def pretrain_layerwise(
    X: Any,
    sizes: Sequence[int],
    activation: str = "sigmoid",
    denoising: tuple[str, float] | None = None,
    *,
    output: str = "auto",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
    dtype: Any = "float32",
    device: str | None = None,
    verbose: bool = False,
) -> LayerwiseResult:
    """Greedy layer-wise pretraining on X (N, sizes[0]): step l trains ``layers[l]`` for ``epochs``
    epochs on the codes of steps < l (clean codes; each step corrupts its own input when
    ``denoising=(kind, level)`` is given). ``output="auto"``: "sigmoid" (BCE) when X lies in [0, 1],
    else "linear" (MSE). Returns the trained layers; their histories hold each step's loss.
    """
    sizes = _check_stack_sizes(sizes)
    if output not in OUTPUTS:
        raise ArgumentError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    device = backend.check_device(device)
    width = X.shape[1] if getattr(X, "ndim", 0) == 2 else None  # other inputs: check_matrix's errors
    if width is not None and width != sizes[0]:
        raise ShapeError(
            f"sizes run from the input's width to the code's: X has {width} features, so sizes[0] must be "
            f"{width}, got sizes {tuple(sizes)}"
        )
    H = check_matrix(X, "X", sizes[0], dtype, device)
    if output == "auto":
        in_unit_range = backend.to_float(H.min()) >= 0 and backend.to_float(H.max()) <= 1
        output = "sigmoid" if in_unit_range else "linear"
    result = _build_layers(sizes, activation, output, denoising, seed, dtype, device)
    for i, layer in enumerate(result.layers):
        if verbose:
            print(f"layer {i + 1}/{len(result.layers)}: {sizes[i]} -> {sizes[i + 1]}")
        layer.fit(H, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, verbose=verbose)
        H = layer.encode(H)
    return result


def _copy_weights(sources: Sequence[Module], targets: Sequence[Module]) -> None:
    for src, dst in zip(sources, targets, strict=True):
        dst.load_state_dict(src.state_dict())


def _check_result(result: Any, function: str) -> LayerwiseResult:
    """``result`` if it is a LayerwiseResult, else an ArgumentError naming ``function``."""
    if not isinstance(result, LayerwiseResult):
        raise ArgumentError(
            f"{function} takes the LayerwiseResult of pretrain_layerwise or random_init_layers, "
            f"got {type(result).__name__}"
        )
    return result


def stack_encoder(result: LayerwiseResult) -> Encoder:
    """The deep encoder sizes[0] -> ... -> sizes[-1] (every layer, the code layer included, applies the
    activation); layer l holds a copy of step l's encoder weights."""
    s = _check_result(result, "stack_encoder").sizes
    act = result.activation
    enc = Encoder(s[0], s[1:-1], s[-1], act, np.random.default_rng(0), result.dtype, result.device, code_activation=act)
    _copy_weights(result.encoders, enc.net.layers)
    return enc


def stack_autoencoder(result: LayerwiseResult, seed: int = 0) -> AutoEncoder:
    """The unrolled deep autoencoder: the stacked encoders, then the step decoders in reverse order
    (copies of their weights), trained end to end by ``fit``. ``seed`` seeds its own training."""
    s = _check_result(result, "stack_autoencoder").sizes
    model = AutoEncoder(
        s[0],
        hidden=s[1:-1],
        latent_dim=s[-1],
        activation=result.activation,
        code_activation=result.activation,
        output=result.output,
        loss="bce" if result.output == "sigmoid" else "mse",
        seed=seed,
        dtype=result.dtype,
        device=result.device,
    )
    _copy_weights(result.encoders, model.encoder.net.layers)
    _copy_weights(result.decoders[::-1], model.decoder.net.layers)
    return model


def stacked_classifier(
    result: LayerwiseResult,
    n_classes: int,
    hidden: Sequence[int] = (),
    activation: str = "relu",
    freeze_encoder: bool = False,
    seed: int = 0,
) -> Classifier:
    """A ``Classifier`` on a copy of the stacked encoder (trainable unless ``freeze_encoder``) with a
    new softmax head (``hidden`` layers of ``activation``), fine-tuned by ``fit(X, y)``."""
    return Classifier(
        _check_result(result, "stacked_classifier").sizes[0],
        n_classes,
        hidden,
        activation,
        encoder=stack_encoder(result),
        freeze_encoder=freeze_encoder,
        seed=seed,
        dtype=result.dtype,
        device=result.device,
    )


def transfer_head(
    source: Model | Module,
    X: Any,
    y: Any,
    n_classes: int | None = None,
    hidden: Sequence[int] = (),
    activation: str = "relu",
    unfreeze: bool = False,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
    verbose: bool = False,
) -> Classifier:
    """Train a new softmax head on a trained encoder (transfer learning) and return the ``Classifier``.

    ``source``: a model with an ``encoder`` (AutoEncoder, VAE: its posterior mean) or an encoder
    module. A copy of the encoder is used, so ``source`` never changes; it stays frozen unless
    ``unfreeze=True`` (then fine-tuned with the head). X: (N, input_dim), y: (N,) labels in
    [0, n_classes) (default n_classes: max(y) + 1).
    """
    encoder = getattr(source, "encoder", None) if isinstance(source, Model) else source
    if not isinstance(encoder, Module) or not hasattr(encoder, "latent_dim"):
        raise ArgumentError(f"source must be a model with an encoder or an encoder module, got {type(source).__name__}")
    if isinstance(source, Model) and encoder.input_dim != source.input_dim:
        raise ArgumentError(
            f"{source.kind}'s encoder takes {encoder.input_dim} inputs for {source.input_dim} features: it needs the "
            f"class label as input and cannot serve a classifier"
        )
    X = check_matrix(X, "X", None, encoder.dtype, encoder.device)
    if X.shape[1] != encoder.input_dim:
        raise ShapeError(f"X has {X.shape[1]} features, the encoder takes {encoder.input_dim}")
    if n_classes is None:
        n_classes = int(check_class_labels(y, len(X), None).max()) + 1
    clf = Classifier(
        encoder.input_dim,
        check_positive_int("n_classes", n_classes),
        hidden,
        activation,
        encoder=encoder,  # copied by Classifier
        freeze_encoder=not unfreeze,
        seed=seed,
        dtype=encoder.dtype,
        device=encoder.device,
    )
    clf.fit(X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, verbose=verbose)
    return clf
