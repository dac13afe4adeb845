"""The dense layer's op: ``y = f(x @ W + b)`` as one node of the tape."""

from __future__ import annotations

from typing import Any

from .. import backend, kernels
from ..errors import ShapeError
from ..tensor import Function, Tensor
from .activations import Activation, activation_backward, fused, get_activation, kernel_param


class Linear(Function):
    """y = f(x W + b).  x: (N, in), W: (in, out), b: (out,) -> y: (N, out).

    Backward with g = dy * f'(.) (from y):  dx = g W^T,  dW = x^T g,  db = sum_n g.
    """

    def __init__(self, activation: Activation):
        self.activation = activation

    @property
    def formula(self) -> str:  # type: ignore[override]
        act = self.activation
        if act.name == "identity":
            return "dx = dy Wᵀ, dW = xᵀ dy, db = Σₙ dy"
        return f"{act.formula.replace('dx', 'g', 1)}; dx = g Wᵀ, dW = xᵀ g, db = Σₙ g"

    @property
    def name(self) -> str:
        act = self.activation
        return "linear" if act.name == "identity" else f"linear+{act.label}"

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0]:
            raise ShapeError(
                f"linear: x has shape {tuple(x.shape)} and W has shape {tuple(W.shape)}; "
                f"expected x (N, in) and W (in, out) with the same 'in'"
            )
        if b is not None and tuple(b.shape) != (W.shape[1],):
            raise ShapeError(
                f"linear: b has shape {tuple(b.shape)}, expected ({W.shape[1]},) to match W {tuple(W.shape)}"
            )
        z = x @ W  # BLAS / cuBLAS; bias and activation follow in one fused pass where kernels are on
        if fused(self.activation):
            y = kernels.bias_act_forward(z, b, self.activation.name, kernel_param(self.activation))
        else:
            if b is not None:
                z += b
            y = self.activation.forward(z, backend.array_module_of(z))
        self.save_for_backward(x, W, y)
        return y

    def backward(self, gy: Any) -> tuple:
        x, W, y = self.saved
        need = self.needs_input_grad
        g, gb = activation_backward(self.activation, gy, y, bias_grad=len(need) == 3 and need[2])
        gx = g @ W.T if need[0] else None
        gW = x.T @ g if need[1] else None
        return (gx, gW) if len(need) == 2 else (gx, gW, gb)


def linear(x: Any, W: Any, b: Any = None, activation: str | Activation | None = None, **params: float) -> Tensor:
    """y = f(x W + b), x (N, in), W (in, out), b (out,), ``activation`` f by name (default none);
    with g = dL/dy f'(.): dL/dx = g Wᵀ, dL/dW = xᵀ g, dL/db = Σ_n g."""
    fn = Linear(get_activation(activation, **params))
    return fn(x, W) if b is None else fn(x, W, b)
