"""Argument checks shared by the CPU and GPU kernels (NumPy only; imports no compiler).

Activations travel to the kernels as integer codes; ``common.cu`` defines the same
numbers (a test compares the two).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import FLOAT_DTYPES, device_of, is_gpu_array
from ..errors import ArgumentError, DeviceError, DTypeError, ShapeError

ACTIVATION_CODES = {
    "identity": 0,
    "relu": 1,
    "leaky_relu": 2,
    "elu": 3,
    "sigmoid": 4,
    "tanh": 5,
    "softplus": 6,
}
PARAM_NAMES = {"leaky_relu": "negative_slope", "elu": "alpha"}
GROUP = 8  # parameters an optimizer kernel updates in one pass (one launch on the GPU); SAE_GROUP in optim.cu


def activation_args(act: str, param: float | None, dtype: np.dtype) -> tuple[int, Any]:
    """``(code, param)`` for a kernel: the activation's code and its parameter as a ``dtype`` scalar.

    ``param`` is the slope of leaky_relu or the alpha of elu (required for those two) and
    is ignored by the other activations.
    """
    if act not in ACTIVATION_CODES:
        raise ArgumentError(f"unknown activation {act!r}: expected one of {', '.join(ACTIVATION_CODES)}")
    if act in PARAM_NAMES and param is None:
        raise ArgumentError(f"activation {act!r} needs param ({PARAM_NAMES[act]}), got None")
    return ACTIVATION_CODES[act], dtype.type(0.0 if param is None else param)


def float_dtype(op: str, **arrays: Any) -> np.dtype:
    """The common dtype of ``arrays`` (keyword = argument name): all on one device, all float32 or all float64."""
    values = tuple(arrays.values())
    kind, dtype = type(values[0]), getattr(values[0], "dtype", None)
    if kind is np.ndarray or is_gpu_array(values[0]):  # the common case, checked in one pass
        if dtype in FLOAT_DTYPES and all(type(a) is kind and a.dtype == dtype for a in values):
            return dtype
    for name, a in arrays.items():
        if not hasattr(a, "dtype") or not hasattr(a, "shape"):
            raise DTypeError(f"{op}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
    (first_name, first), *rest = arrays.items()
    dtype = np.dtype(first.dtype)
    if dtype not in FLOAT_DTYPES:
        raise DTypeError(f"{op}: {first_name} has dtype {dtype}, expected float32 or float64")
    for name, a in rest:
        if device_of(a) != device_of(first):
            raise DeviceError(
                f"{op}: {name} is on {device_of(a)} but {first_name} is on {device_of(first)}; "
                f"all arrays must be on one device"
            )
        if a.dtype != dtype:
            raise DTypeError(f"{op}: {name} has dtype {a.dtype} but {first_name} has dtype {dtype}; they must match")
    return dtype


def parameter_group(op: str, updated: tuple[str, ...], **groups: Any) -> np.dtype | None:
    """The common dtype of an optimizer step's arrays, None for an empty group.

    ``groups`` (keyword = argument name): lists or tuples with one array per parameter, all of
    one length; the arrays float32 or float64, one dtype, on one device; the k-th arrays of
    every list of one shape; those of the lists named in ``updated`` (changed in place) C-contiguous.
    """
    for name, seq in groups.items():
        if not isinstance(seq, (list, tuple)):
            got = type(seq).__name__
            raise ArgumentError(f"{op}: {name} must be a list or tuple of arrays, one per parameter, got {got}")
    seqs = tuple(groups.values())
    n = len(seqs[0])
    if any(len(seq) != n for seq in seqs):
        lengths = ", ".join(f"{name} {len(seq)}" for name, seq in groups.items())
        raise ArgumentError(f"{op}: every list needs one array per parameter, got lengths {lengths}")
    if n == 0:
        return None
    first = seqs[0][0]
    kind, dtype = type(first), getattr(first, "dtype", None)
    if (
        (kind is np.ndarray or is_gpu_array(first))
        and dtype in FLOAT_DTYPES
        and _uniform(seqs, kind, dtype)
        and all(_updatable(a) for name in updated for a in groups[name])
    ):  # the common case, checked in one pass
        return dtype
    named = {f"{name}[{k}]": a for name, seq in groups.items() for k, a in enumerate(seq)}
    dtype = float_dtype(op, **named)
    for k in range(n):
        same_shape(op, **{f"{name}[{k}]": seq[k] for name, seq in groups.items()})
    writable(op, **{f"{name}[{k}]": a for name in updated for k, a in enumerate(groups[name])})
    return dtype


def _uniform(seqs: tuple[Any, ...], kind: type, dtype: np.dtype) -> bool:
    """Every array of ``seqs`` is a ``kind`` of ``dtype`` (the very object), the k-th arrays of one shape."""
    for arrays in zip(*seqs, strict=True):
        shape = arrays[0].shape
        for a in arrays:
            if type(a) is not kind or a.dtype is not dtype or a.shape != shape:
                return False
    return True


def _updatable(a: Any) -> bool:
    """C-contiguous and, for NumPy, writeable (CuPy arrays have no such flag)."""
    flags = a.flags
    return flags.c_contiguous and getattr(flags, "writeable", True)


def per_parameter(op: str, n: int, **numbers: Any) -> None:
    """Each of ``numbers`` (keyword = argument name) is a list or tuple of ``n`` numbers, one per parameter."""
    for name, seq in numbers.items():
        if not isinstance(seq, (list, tuple)) or len(seq) != n:
            got = f"{len(seq)} values" if isinstance(seq, (list, tuple)) else repr(seq)
            raise ArgumentError(f"{op}: {name} must be a list or tuple of {n} numbers, one per parameter, got {got}")


def same_shape(op: str, **arrays: Any) -> None:
    """Raise a ShapeError naming both arrays unless ``arrays`` (keyword = argument name) share one shape."""
    (first_name, first), *rest = arrays.items()
    for name, a in rest:
        if a.shape != first.shape:
            raise ShapeError(
                f"{op}: {name} has shape {tuple(a.shape)} but {first_name} has shape {tuple(first.shape)}; "
                f"they must be equal"
            )


def writable(op: str, **arrays: Any) -> None:
    """Arrays updated in place must be C-contiguous (so the kernels' flat views alias them) and writeable."""
    for name, a in arrays.items():
        if not a.flags.c_contiguous:
            raise ArgumentError(f"{op}: {name} is updated in place and must be C-contiguous, got strides {a.strides}")
        if not getattr(a.flags, "writeable", True):
            raise ArgumentError(f"{op}: {name} is updated in place and must be writeable, got a read-only array")


def bias_shape(op: str, z: Any, b: Any) -> None:
    """``b`` is None or has shape (D,) for ``z`` of shape (..., D)."""
    d = z.shape[-1] if z.ndim else 1
    if b is not None and tuple(b.shape) != (d,):
        raise ShapeError(f"{op}: b has shape {tuple(b.shape)}, expected ({d},) for z of shape {tuple(z.shape)}")


def rows(a: Any) -> Any:
    """A C-contiguous array as a 2-D view (rows, last axis): (N, D) stays, (D,) -> (1, D), () -> (1, 1)."""
    d = a.shape[-1] if a.ndim else 1
    return a.reshape(a.size // d if d else 0, d)
