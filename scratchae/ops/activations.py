"""Activations: forward from the input, backward from the output.

Each backward is written in terms of the output ``y`` (so ``linear`` need not keep its
pre-activation): relu ``y > 0``; leaky_relu ``1 | slope``; elu ``1 | y + alpha``;
sigmoid ``y (1 - y)``; tanh ``1 - y^2``; softplus ``1 - exp(-y)``. At the kink of relu
and leaky_relu (x = 0) the derivative taken is the left one (0, resp. slope).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import backend, kernels
from ..errors import ArgumentError
from ..tensor import Function, Tensor


def _sigmoid(x: Any, xp: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x: Any, xp: Any) -> Any:
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


@dataclass(frozen=True)
class Activation:
    """An activation ``y = f(x)`` with its backward ``dx = dy * f'(x)`` written from ``y``."""

    name: str
    forward: Callable[[Any, Any], Any] = field(repr=False)  # (x, xp) -> y
    backward: Callable[[Any, Any, Any], Any] = field(repr=False)  # (gy, y, xp) -> gx
    formula: str = ""
    params: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.name}({args})" if args else self.name


def _relu() -> Activation:
    return Activation("relu", lambda x, xp: xp.maximum(x, 0), lambda gy, y, xp: gy * (y > 0), "dx = dy * [y > 0]")


def _leaky_relu(negative_slope: float = 0.01) -> Activation:
    if negative_slope < 0:
        raise ArgumentError(f"leaky_relu: negative_slope must be >= 0, got {negative_slope}")
    s = float(negative_slope)
    return Activation(
        "leaky_relu",
        lambda x, xp: xp.where(x > 0, x, x * s),
        lambda gy, y, xp: xp.where(y > 0, gy, gy * s),
        "dx = dy * (1 if y > 0 else slope)",
        (("negative_slope", s),),
    )


def _elu(alpha: float = 1.0) -> Activation:
    if alpha <= 0:
        raise ArgumentError(f"elu: alpha must be > 0, got {alpha}")
    a = float(alpha)
    return Activation(
        "elu",
        lambda x, xp: xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * a),
        lambda gy, y, xp: xp.where(y > 0, gy, gy * (y + a)),
        "dx = dy * (1 if y > 0 else y + alpha)",
        (("alpha", a),),
    )


def _sigmoid_act() -> Activation:
    return Activation("sigmoid", _sigmoid, lambda gy, y, xp: gy * y * (1 - y), "dx = dy * y * (1 - y)")


def _tanh() -> Activation:
    return Activation("tanh", lambda x, xp: xp.tanh(x), lambda gy, y, xp: gy * (1 - y * y), "dx = dy * (1 - y^2)")


def _softplus_act() -> Activation:
    return Activation(
        "softplus",
        _softplus,
        lambda gy, y, xp: gy * -xp.expm1(-y),
        "dx = dy * (1 - exp(-y))",  # 1 - exp(-softplus(u)) = sigmoid(u), in terms of y as the others
    )


def _identity() -> Activation:
    return Activation("identity", lambda x, xp: x, lambda gy, y, xp: gy, "dx = dy")


ACTIVATIONS: dict[str, Callable[..., Activation]] = {
    "identity": _identity,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "sigmoid": _sigmoid_act,
    "tanh": _tanh,
    "softplus": _softplus_act,
}


def get_activation(activation: str | Activation | None = None, **params: float) -> Activation:
    """An :class:`Activation` by name (``None`` and ``"linear"``, the models' word for an output layer
    without one, are identity); ``params`` such as ``alpha``."""
    if isinstance(activation, Activation):
        return activation
    name = "identity" if activation is None or activation == "linear" else activation
    if not isinstance(name, str) or name not in ACTIVATIONS:
        known = ", ".join(ACTIVATIONS).replace("identity", "identity (or linear)")
        raise ArgumentError(f"unknown activation {name!r}: expected one of {known}")
    try:
        return ACTIVATIONS[name](**params)
    except TypeError as exc:
        raise ArgumentError(f"activation {activation or name!r} does not take {', '.join(params)}") from exc


def fused(activation: Activation) -> bool:
    """Whether the fused kernels run this activation now."""
    return backend.kernels_enabled() and activation.name in kernels.ACTIVATIONS


def kernel_param(activation: Activation) -> float | None:
    """The activation's one parameter (leaky_relu's slope, elu's alpha) for the fused kernels, else None."""
    return activation.params[0][1] if activation.params else None


def activation_backward(activation: Activation, gy: Any, y: Any, bias_grad: bool) -> tuple[Any, Any]:
    """(g, gb): g = dy * f'(x) from y, gb = sum of g over rows (or None); one fused pass where kernels are on."""
    if fused(activation):
        return kernels.act_backward(gy, y, activation.name, kernel_param(activation), bias_grad)
    g = activation.backward(gy, y, backend.array_module_of(gy))
    return g, (g.sum(axis=0) if bias_grad else None)


class Activate(Function):
    """y = f(x) elementwise; dx = dy * f'(x), computed from y.  x: any shape -> y: same."""

    def __init__(self, activation: Activation):
        self.activation = activation
        self.formula = activation.formula

    @property
    def name(self) -> str:
        return self.activation.label

    def forward(self, x: Any) -> Any:
        y = self.activation.forward(x, backend.array_module_of(x))
        self.save_for_backward(y)
        return y

    def backward(self, gy: Any) -> Any:
        (y,) = self.saved
        return activation_backward(self.activation, gy, y, bias_grad=False)[0]


def activate(x: Any, activation: str | Activation, **params: float) -> Tensor:
    """Apply an activation by name: ``activate(x, "elu", alpha=0.5)``."""
    return Activate(get_activation(activation, **params))(x)


def relu(x: Any) -> Tensor:
    """y = max(x, 0);  dL/dx = dL/dy [y > 0].  Any shape."""
    return activate(x, "relu")


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """y = x if x > 0 else negative_slope x;  dL/dx = dL/dy (1 if y > 0 else negative_slope).  Any shape."""
    return activate(x, "leaky_relu", negative_slope=negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """y = x if x > 0 else alpha (exp(x) - 1);  dL/dx = dL/dy (1 if y > 0 else y + alpha).  Any shape."""
    return activate(x, "elu", alpha=alpha)


def sigmoid(x: Any) -> Tensor:
    """y = 1 / (1 + exp(-x)), computed without overflow;  dL/dx = dL/dy y (1 - y).  Any shape."""
    return activate(x, "sigmoid")


def tanh(x: Any) -> Tensor:
    """y = (exp(x) - exp(-x)) / (exp(x) + exp(-x));  dL/dx = dL/dy (1 - y^2).  Any shape."""
    return activate(x, "tanh")


def softplus(x: Any) -> Tensor:
    """y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|));  dL/dx = dL/dy (1 - exp(-y)) = dL/dy sigmoid(x)."""
    return activate(x, "softplus")
