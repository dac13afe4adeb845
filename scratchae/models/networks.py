"""The networks inside the models: MLP stacks, encoders and decoders (each a ``Module``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..nn.layers import Dense, Sequential
from ..nn.module import Module
from ..ops.activations import get_activation, sigmoid
from ..ops.elementwise import split
from ..tensor import Tensor


def check_sizes(name: str, sizes: Any) -> tuple[int, ...]:
    """Layer widths (a sequence) as positive ints, or an ArgumentError naming the bad one."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise ArgumentError(f"{name} must be a sequence of positive integers such as (256, 64), got {sizes!r}")
    sizes = list(sizes)
    out = []
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise ArgumentError(f"{name} must be positive integers, got {sizes}")
        out.append(int(s))
    return tuple(out)


def mlp(
    sizes: Sequence[int],
    activation: str,
    last_activation: str | None,
    rng: np.random.Generator,
    dtype: Any,
    device: str,
) -> Sequential:
    """Dense layers sizes[0] -> sizes[1] -> ... with ``activation`` between and ``last_activation`` last."""
    n = len(sizes) - 1
    layers = []
    for i in range(n):
        act = activation if i < n - 1 else last_activation
        layers.append(Dense(sizes[i], sizes[i + 1], act, rng=rng, dtype=dtype, device=device))
    return Sequential(*layers)


class Encoder(Module):
    """x: (N, input_dim) -> code: (N, latent_dim), an MLP whose code layer is linear, or applies
    ``code_activation`` (as a greedily pretrained stack does: code = act(... act(x W_1 + b_1) ... W_L + b_L))."""

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int],
        latent_dim: int,
        activation: str,
        rng: np.random.Generator,
        dtype: Any,
        device: str | None,
        code_activation: str | None = None,
    ):
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.spec = dict(
            input_dim=input_dim,
            hidden=list(hidden),
            latent_dim=latent_dim,
            activation=activation,
            code_activation=code_activation,
        )
        self.net = mlp((input_dim, *hidden, latent_dim), activation, code_activation, rng, dtype, device)

    def forward(self, x: Any) -> Tensor:
        return self.net(x)


class GaussianEncoder(Module):
    """x: (N, input_dim) -> (mu, logvar), each (N, latent_dim): an MLP body, one Dense head split in two.

    logvar = log sigma^2 of the diagonal Gaussian q(z|x) = N(mu, diag(exp(logvar))).
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int],
        latent_dim: int,
        activation: str,
        rng: np.random.Generator,
        dtype: Any,
        device: str | None,
    ):
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.spec = dict(input_dim=input_dim, hidden=list(hidden), latent_dim=latent_dim, activation=activation)
        self.body = mlp((input_dim, *hidden), activation, activation, rng, dtype, device)
        self.head = Dense((hidden[-1] if hidden else input_dim), 2 * latent_dim, rng=rng, dtype=dtype, device=device)

    def forward(self, x: Any) -> tuple[Tensor, Tensor]:
        mu, logvar = split(self.head(self.body(x)), 2, axis=1)
        return mu, logvar


OUTPUTS = ("sigmoid", "linear")


class Decoder(Module):
    """z: (N, latent_dim) -> (N, output_dim).

    With ``logits=True`` the last layer is linear and ``forward`` gives logits (the
    Bernoulli likelihood goes through ``bce_with_logits``); ``mean`` applies the sigmoid.
    Otherwise the last layer has the ``output`` activation and ``mean == forward``.
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: Sequence[int],
        output_dim: int,
        activation: str,
        output: str,
        logits: bool,
        rng: np.random.Generator,
        dtype: Any,
        device: str | None,
    ):
        if output not in OUTPUTS:
            raise ArgumentError(f"unknown output {output!r}: expected one of {', '.join(OUTPUTS)}")
        self.latent_dim, self.output_dim, self.output, self.logits = latent_dim, output_dim, output, logits
        last = None if logits or output == "linear" else output
        self.net = mlp((latent_dim, *hidden, output_dim), activation, last, rng, dtype, device)

    def forward(self, z: Any) -> Tensor:
        return self.net(z)

    def mean(self, z: Any) -> Tensor:
        """The decoder's output in data space (probabilities for a sigmoid output)."""
        out = self.net(z)
        return sigmoid(out) if self.logits else out


def check_activation(activation: str) -> str:
    """``activation`` itself, once it names a known activation."""
    get_activation(activation)  # raises ArgumentError for an unknown name
    return activation
