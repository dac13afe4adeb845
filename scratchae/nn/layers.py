"""Layers: ``Dense`` (one ``linear`` op) and ``Sequential``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError
from ..ops.activations import Activation, get_activation
from ..ops.linear import linear
from ..tensor import Tensor
from ..validation import check_positive_int
from .init import Initializer, get_initializer, placeholders_enabled
from .module import Module, Parameter


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A NumPy generator from a generator, a seed, or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Dense(Module):
    """y = f(x W + b).  x: (N, in) -> y: (N, out);  W: (in, out), b: (out,).

    ``init``: an initializer name (``"auto"``: He for the relu family, Glorot otherwise);
    weights are drawn on the host from ``rng`` so every device starts from the same values.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | Activation | None = None,
        init: str | Initializer = "auto",
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        device: str | None = None,
        **activation_params: float,
    ):
        self.in_features = check_positive_int("Dense: in_features", in_features)
        self.out_features = check_positive_int("Dense: out_features", out_features)
        self.activation = get_activation(activation, **activation_params)
        dtype = backend.check_float_dtype(dtype or backend.DEFAULT_DTYPE)
        init_fn = get_initializer(init, self.activation.name)
        shapes = ((self.in_features, self.out_features), (self.out_features,))
        if placeholders_enabled():
            xp = backend.array_module(device)
            w, b = (xp.broadcast_to(xp.zeros((), dtype), shape) for shape in shapes)
        else:
            w = backend.as_float_array(init_fn(as_generator(rng), *shapes[0]), dtype=dtype, device=device)
            b = backend.as_float_array(np.zeros(shapes[1]), dtype=dtype, device=device)
        self.W = Parameter(w)
        self.b = Parameter(b) if bias else None

    def forward(self, x: Any) -> Tensor:
        return linear(x, self.W, self.b, self.activation)

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, activation={self.activation.label!r})"


class Sequential(Module):
    """Modules applied in order: ``y = m_k(... m_2(m_1(x)))``."""

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise ArgumentError(
                    f"Sequential: layer {i} is of type {type(layer).__name__}, not a Module (e.g. Dense)"
                )
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(m) for m in self.layers)
        return f"Sequential(\n  {inner}\n)"
