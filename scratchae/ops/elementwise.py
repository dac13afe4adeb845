"""Arithmetic and shape ops: add, sub, neg, mul, matmul, sum, mean, reshape, concat, split."""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError, ShapeError
from ..tensor import Function, Tensor, as_tensor
from ._common import constant_like, unbroadcast

INTEGERS = (int, np.integer)  # an axis, a size or a number of sections: a Python or NumPy integer


def _broadcast_shape(op: str, a: Any, b: Any) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError as exc:
        raise ShapeError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from exc


class Add(Function):
    """y = a + b (broadcasting); da = dy, db = dy, each summed over its broadcast axes."""

    name = "add"
    formula = "da = dy, db = dy"

    def forward(self, a: Any, b: Any) -> Any:
        _broadcast_shape("add", a, b)
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, gy: Any) -> tuple:
        return unbroadcast(gy, self.shapes[0]), unbroadcast(gy, self.shapes[1])


class Sub(Function):
    """y = a - b (broadcasting); da = dy, db = -dy."""

    name = "sub"
    formula = "da = dy, db = -dy"

    def forward(self, a: Any, b: Any) -> Any:
        _broadcast_shape("sub", a, b)
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy: Any) -> tuple:
        return unbroadcast(gy, self.shapes[0]), unbroadcast(-gy, self.shapes[1])


class Neg(Function):
    """y = -x; dx = -dy."""

    name = "neg"
    formula = "dx = -dy"

    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Any) -> Any:
        return -gy


class Mul(Function):
    """y = a * b (broadcasting); da = dy * b, db = dy * a."""

    name = "mul"
    formula = "da = dy * b, db = dy * a"

    def forward(self, a: Any, b: Any) -> Any:
        _broadcast_shape("mul", a, b)
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy: Any) -> tuple:
        a, b = self.saved
        ga = unbroadcast(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class MatMul(Function):
    """y = a @ b.  a: (N, K), b: (K, M) -> y: (N, M);  da = dy bᵀ, db = aᵀ dy."""

    name = "matmul"
    formula = "da = dy bᵀ, db = aᵀ dy"

    def forward(self, a: Any, b: Any) -> Any:
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise ShapeError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not multiply (need (N, K) @ (K, M))"
            )
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy: Any) -> tuple:
        a, b = self.saved
        return (
            gy @ b.T if self.needs_input_grad[0] else None,
            a.T @ gy if self.needs_input_grad[1] else None,
        )


def _int_or_none(value: Any) -> int | None:
    """``value`` as an int where it is one: a Python or NumPy integer (not a bool) or a 0-d integer array."""
    if getattr(value, "ndim", None) == 0 and getattr(value, "dtype", None) is not None and value.dtype.kind in "iu":
        value = value.item()
    return int(value) if isinstance(value, INTEGERS) and not isinstance(value, bool) else None


def _integer(name: str, value: Any) -> int:
    """``value`` as an int (``_int_or_none``), else an ArgumentError naming ``name``."""
    number = _int_or_none(value)
    if number is None:
        raise ArgumentError(f"{name} must be an integer, got {value!r:.60}")
    return number


def _integers(name: str, value: Any) -> tuple[int, ...]:
    """An integer, or a sequence of integers, as a tuple of ints (an ArgumentError naming ``name``)."""
    number = _int_or_none(value)
    if number is not None:
        return (number,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or getattr(value, "ndim", None) == 0:
        raise ArgumentError(f"{name} must be an integer or a sequence of integers, got {value!r:.60}")
    return tuple(_integer(name, v) for v in value)


def _axis(op: str, axis: int, shape: tuple[int, ...]) -> int:
    """``axis`` (-ndim to ndim - 1) as an index in [0, ndim), else a ShapeError naming ``op`` and ``shape``."""
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(f"{op}: axis {axis} is out of range for an array of shape {tuple(shape)}")
    return axis % len(shape)


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """The sorted axes (each in [0, ndim)) that ``axis`` names; None: all of them."""
    if axis is None:
        return tuple(range(ndim))
    axes = _integers("axis", axis)
    for ax in axes:
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ShapeError(f"axis {ax} is out of range for an array of {ndim} dimensions")
    normal = tuple(sorted(ax % builtins.max(ndim, 1) for ax in axes))
    if len(set(normal)) != len(normal):
        raise ShapeError(f"axis {axis} names an axis more than once for an array of {ndim} dimensions")
    return normal


class Sum(Function):
    """y = sum of x over ``axis``; dx = dy broadcast back to x's shape (times 1/count for mean)."""

    formula = "dx = dy broadcast over the summed axes"

    def __init__(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, mean: bool = False):
        self.axis, self.keepdims, self.mean = axis, keepdims, mean
        if mean:
            self.formula = "dx = dy / count, broadcast over the averaged axes"

    @property
    def name(self) -> str:
        return "mean" if self.mean else "sum"

    def forward(self, x: Any) -> Any:
        self.axes = _axes(self.axis, x.ndim)
        self.in_shape = x.shape
        return (
            x.mean(axis=self.axes, keepdims=self.keepdims)
            if self.mean
            else x.sum(axis=self.axes, keepdims=self.keepdims)
        )

    def backward(self, gy: Any) -> Any:
        xp = backend.array_module_of(gy)
        if not self.keepdims:
            gy = gy.reshape([1 if i in self.axes else n for i, n in enumerate(self.in_shape)])
        if self.mean:
            gy = gy / builtins.max(math.prod(self.in_shape[ax] for ax in self.axes), 1)
        return xp.broadcast_to(gy, self.in_shape)


class Reshape(Function):
    """y = x viewed with a new shape; dx = dy reshaped back."""

    name = "reshape"
    formula = "dx = reshape(dy, x.shape)"

    def __init__(self, shape: int | Sequence[int]):
        self.shape = _integers("reshape: shape", shape)

    def forward(self, x: Any) -> Any:
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError as exc:
            raise ShapeError(f"reshape: cannot reshape an array of shape {tuple(x.shape)} into {self.shape}") from exc

    def backward(self, gy: Any) -> Any:
        return gy.reshape(self.in_shape)


class Concat(Function):
    """y = [x1, x2, ...] joined along ``axis``; dxi = the slice of dy that xi filled."""

    name = "concat"
    formula = "dxᵢ = dy[..., slice of xᵢ]"

    def __init__(self, axis: int = -1):
        self.axis = _integer("concat: axis", axis)

    def forward(self, *xs: Any) -> Any:
        ndim = xs[0].ndim
        axis = _axis("concat", self.axis, xs[0].shape)
        for x in xs[1:]:
            if x.ndim != ndim or any(x.shape[i] != xs[0].shape[i] for i in range(ndim) if i != axis):
                raise ShapeError(
                    f"concat: shapes {tuple(xs[0].shape)} and {tuple(x.shape)} differ off axis {self.axis}"
                )
        self.sizes = [x.shape[axis] for x in xs]
        self.axis_ = axis
        return backend.array_module_of(xs[0]).concatenate(xs, axis=axis)

    def backward(self, gy: Any) -> tuple:
        return tuple(_split_array(gy, self.sizes, self.axis_))


def _split_array(x: Any, sizes: Sequence[int], axis: int) -> list:
    """Views of ``x``: consecutive pieces of ``sizes`` along ``axis``."""
    pieces, start = [], 0
    index = [slice(None)] * x.ndim
    for size in sizes:
        index[axis] = slice(start, start + size)
        pieces.append(x[tuple(index)])
        start += size
    return pieces


class Split(Function):
    """(y1, y2, ...) = x cut along ``axis`` into pieces of ``sizes``; dx = [dy1, dy2, ...] joined."""

    name = "split"
    formula = "dx = concat(dy₁, dy₂, ...)"

    def __init__(self, sizes: Sequence[int], axis: int = -1):
        self.sizes, self.axis = list(_integers("split: sizes", sizes)), _integer("split: axis", axis)

    def forward(self, x: Any) -> tuple:
        self.axis_ = _axis("split", self.axis, x.shape)
        if builtins.any(s < 0 for s in self.sizes):
            raise ShapeError(f"split: sizes {self.sizes} contain a negative size; each must be >= 0")
        if builtins.sum(self.sizes) != x.shape[self.axis_]:
            raise ShapeError(
                f"split: sizes {self.sizes} add up to {builtins.sum(self.sizes)}, but axis {self.axis} of shape "
                f"{tuple(x.shape)} has length {x.shape[self.axis_]}"
            )
        return tuple(_split_array(x, self.sizes, self.axis_))

    def backward(self, *gys: Any) -> Any:
        return backend.array_module_of(gys[0]).concatenate(gys, axis=self.axis_)


def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting;  dL/da = dL/dy, dL/db = dL/dy, each summed over the axes it was broadcast on."""
    return Add()(constant_like(a, b), constant_like(b, a))


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting;  dL/da = dL/dy, dL/db = -dL/dy, each summed over the axes it was broadcast on."""
    return Sub()(constant_like(a, b), constant_like(b, a))


def neg(x: Any) -> Tensor:
    """-x;  dL/dx = -dL/dy."""
    return Neg()(x)


def mul(a: Any, b: Any) -> Tensor:
    """a * b elementwise with broadcasting;  dL/da = dL/dy b, dL/db = dL/dy a (summed over broadcast axes)."""
    return Mul()(constant_like(a, b), constant_like(b, a))


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b for 2-D a (N, K) and b (K, M);  dL/da = dL/dy bᵀ (N, K), dL/db = aᵀ dL/dy (K, M)."""
    return MatMul()(a, b)


def sum(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes by default);  dL/dx = dL/dy broadcast back over the summed axes."""
    return Sum(axis, keepdims)(x)


def mean(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes by default);  dL/dx = dL/dy / count, broadcast back over those axes."""
    return Sum(axis, keepdims, mean=True)(x)


def reshape(x: Any, shape: int | Sequence[int]) -> Tensor:
    """x viewed with ``shape`` (same size; one entry may be -1);  dL/dx = dL/dy reshaped back to x's shape."""
    return Reshape(shape)(x)


def concat(tensors: Sequence[Any], axis: int = -1) -> Tensor:
    """Join tensors along ``axis``;  dL/dx_i = the slice of dL/dy where x_i sits."""
    array = hasattr(tensors, "dtype") and hasattr(tensors, "ndim") and not isinstance(tensors, Tensor)
    unordered = isinstance(tensors, (str, bytes, Tensor, dict, set, frozenset)) or not hasattr(tensors, "__iter__")
    if unordered or (array and tensors.ndim < 2):
        what = f"a {tensors.ndim}-d array" if array else type(tensors).__name__
        raise ArgumentError(f"concat: tensors must be a sequence of tensors (or an array's rows), got {what}")
    tensors = list(tensors)
    if len(tensors) == 0:
        raise ArgumentError("concat: needs at least one tensor")
    return Concat(axis)(*tensors)


def split(x: Any, sections: int | Sequence[int], axis: int = -1) -> tuple[Tensor, ...]:
    """Cut ``x`` along ``axis``: into ``sections`` equal parts (an int) or parts of the given sizes;
    dL/dx = the parts' gradients joined along ``axis`` (zeros for a part nothing used)."""
    x = as_tensor(x)
    length = x.shape[_axis("split", _integer("split: axis", axis), x.shape)]
    parts = _int_or_none(sections)
    if parts is not None:
        sections = parts
        if sections <= 0 or length % sections:
            raise ShapeError(f"split: axis {axis} of length {length} does not split into {sections} equal parts")
        sizes = [length // sections] * sections
    else:
        sizes = list(_integers("split: sections", sections))
    return Split(sizes, axis)(x)


def _reshape_method(x: Tensor, *shape: Any) -> Tensor:
    return reshape(x, shape[0] if len(shape) == 1 else shape)


def _install_operators() -> None:
    """Give Tensor its operators: a + b, a - b, a * b, a @ b (and reflected), -a, a.sum, a.mean, a.reshape."""
    for name, fn in {
        "__add__": add,
        "__radd__": lambda a, b: add(b, a),
        "__sub__": sub,
        "__rsub__": lambda a, b: sub(b, a),
        "__mul__": mul,
        "__rmul__": lambda a, b: mul(b, a),
        "__matmul__": matmul,
        "__rmatmul__": lambda a, b: matmul(b, a),
        "__neg__": neg,
        "sum": sum,
        "mean": mean,
        "reshape": _reshape_method,
    }.items():
        setattr(Tensor, name, fn)


_install_operators()
