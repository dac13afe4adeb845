"""``Module``: a container of parameters and sub-modules, in registration order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import backend
from ..errors import CheckpointError, DTypeError, ShapeError
from ..tensor import Tensor
from ..validation import beyond_range


class Parameter(Tensor):
    """A trainable tensor: ``requires_grad`` is True unless the parameter is frozen."""

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None):
        super().__init__(data, requires_grad=True, name=name)


class Module:
    """Base of layers and models. Attributes that are Parameters or Modules are registered
    in the order they are set; ``forward`` is called by ``module(x)``."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, in registration order, sub-modules depth first."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def num_parameters(self) -> int:
        """The number of parameter values (entries of every parameter, frozen ones included)."""
        return sum(p.size for p in self.parameters())

    def freeze(self) -> Module:
        """Stop gradients to every parameter (optimizers skip frozen parameters)."""
        for p in self.parameters():
            p.requires_grad = False
            p.grad = None
        return self

    def unfreeze(self) -> Module:
        for p in self.parameters():
            p.requires_grad = True
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    @property
    def device(self) -> str:
        params = self.parameters()
        return params[0].device if params else backend.get_default_device()

    @property
    def dtype(self) -> np.dtype:
        params = self.parameters()
        return params[0].dtype if params else backend.DEFAULT_DTYPE

    def to(self, device: str | None = None, dtype: Any = None) -> Module:
        """Move every parameter to ``device`` and/or convert it to ``dtype`` (in place); returns self."""
        device = backend.check_device(device) if device is not None else None
        dtype = backend.check_float_dtype(dtype) if dtype is not None else None
        for p in self.parameters():
            p.data = backend.as_float_array(p.data, dtype=dtype or p.dtype, device=device or p.device)
            p.grad = None
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name -> a host copy of its values."""
        return {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy values into the parameters; names and shapes must match exactly."""
        own = dict(self.named_parameters())
        missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
        if missing or unexpected:
            raise CheckpointError(
                f"state does not fit {type(self).__name__}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        values = {}  # every value converted and checked before any parameter changes
        for name, p in own.items():
            value = state[name]
            if tuple(np.shape(value)) != p.shape:
                raise ShapeError(f"parameter {name!r}: state has shape {tuple(np.shape(value))}, model has {p.shape}")
            top = beyond_range(value, p.dtype)
            if top is not None:
                raise CheckpointError(f"parameter {name!r}: state holds {top:.3g}, beyond the {p.dtype} range")
            try:
                values[name] = backend.as_float_array(value, dtype=p.dtype, device=p.device).copy()
            except DTypeError as exc:
                raise DTypeError(f"parameter {name!r}: {exc}") from exc
        for name, p in own.items():
            p.data = values[name]
            p.grad = None
