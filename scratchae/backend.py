"""Devices, array modules, dtypes and random generators.

``"cpu"`` computes with NumPy (and Numba kernels), ``"gpu"`` with CuPy (and CUDA
kernels). Everything above this module asks it for the array module ``xp`` of a device
instead of importing NumPy or CuPy itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ArgumentError, DeviceError, DeviceUnavailableError, DTypeError, ShapeError

DEVICES = ("cpu", "gpu")
DEFAULT_DTYPE = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_default_device = "cpu"
_cupy: ModuleType | None = None

GPU_HINT = (
    "install CuPy and the CUDA libraries for your driver's CUDA version (pip install 'scratchae[gpu-cuda12]' "
    "or 'scratchae[gpu-cuda13]') on a machine with an NVIDIA GPU, or use device='cpu'"
)


def _import_cupy() -> ModuleType:
    """Import CuPy once and check that a CUDA device answers."""
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as exc:
            raise DeviceUnavailableError(
                f"device 'gpu' needs CuPy, which failed to import ({exc}): {GPU_HINT}"
            ) from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver or runtime missing
            raise DeviceUnavailableError(f"device 'gpu': CuPy found no usable CUDA device ({exc}); {GPU_HINT}") from exc
        if count < 1:
            raise DeviceUnavailableError(f"device 'gpu': no CUDA device found; {GPU_HINT}")
        _cupy = cupy
    return _cupy


KERNELS_OFF, KERNELS_ON = ("0", "false", "off", "no"), ("1", "true", "on", "yes", "")


def kernels_from_environment(value: str | None) -> bool:
    """``SCRATCHAE_KERNELS``: off for 0, false, off or no (any case), on when unset or 1, true, on, yes;
    any other value warns and leaves the kernels on."""
    word = (value or "").strip().lower()
    if word not in KERNELS_OFF + KERNELS_ON:
        warnings.warn(
            f"SCRATCHAE_KERNELS={value!r} is not one of {', '.join(KERNELS_OFF)} (off) or "
            f"{', '.join(KERNELS_ON[:-1])} (on): the fused kernels stay on",
            stacklevel=2,
        )
    return word not in KERNELS_OFF


_KERNELS_BY_DEFAULT = kernels_from_environment(os.environ.get("SCRATCHAE_KERNELS"))
_use_kernels: contextvars.ContextVar[bool] = contextvars.ContextVar("use_kernels", default=_KERNELS_BY_DEFAULT)


def kernels_enabled() -> bool:
    """Whether ops run the fused kernels: yes unless ``use_kernels(False)`` or ``SCRATCHAE_KERNELS=0`` (or off)."""
    return _use_kernels.get()


@contextlib.contextmanager
def context_value(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    """Context in which ``var`` holds ``value``; its earlier value comes back on exit (per thread and task)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def use_kernels(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Context in which ops use the fused kernels (True) or the plain NumPy/CuPy expressions (False)."""
    if not isinstance(enabled, (bool, np.bool_)):  # a string such as "off" would be true
        raise ArgumentError(f"use_kernels takes True or False, got {enabled!r}")
    return context_value(_use_kernels, bool(enabled))


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _import_cupy()
    except DeviceUnavailableError:
        return False
    return True


def check_device(device: str | None) -> str:
    """Return a valid device name: ``None`` means the default device."""
    if device is None:
        return _default_device
    if not isinstance(device, str) or device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "gpu":
        _import_cupy()
    return device


def get_default_device() -> str:
    """The device a model or array gets when none is named ("cpu" unless ``set_default_device`` changed it)."""
    return _default_device


def set_default_device(device: str) -> None:
    """Set the device used where none is given (the only global setting)."""
    global _default_device
    _default_device = check_device(device)


def array_module(device: str | None = None) -> ModuleType:
    """The array module of a device: ``numpy`` for cpu, ``cupy`` for gpu."""
    return np if check_device(device) == "cpu" else _import_cupy()


def is_gpu_array(x: Any) -> bool:
    """True for a CuPy array, also one made before anything here used the GPU (CuPy imported by the caller)."""
    cp = _cupy or sys.modules.get("cupy")
    return cp is not None and isinstance(x, cp.ndarray)


def is_read_only(a: Any) -> bool:
    """Whether an array cannot be updated in place: NumPy's read-only flag; on CuPy (no such flag) a
    broadcast view, whose elements share memory (a stride of 0 along an axis longer than 1)."""
    if is_gpu_array(a):
        return any(stride == 0 and n > 1 for stride, n in zip(a.strides, a.shape, strict=True))
    return not a.flags.writeable


def array_module_of(x: Any) -> ModuleType:
    """``cupy`` for a CuPy array, ``numpy`` for anything else."""
    return _import_cupy() if is_gpu_array(x) else np


def synchronize(device: str) -> None:
    """Wait until the device has finished the work queued on it (a no-op on the CPU), e.g. before reading a clock."""
    if check_device(device) == "gpu":
        _import_cupy().cuda.get_current_stream().synchronize()


def device_of(x: Any) -> str:
    """ "gpu" for a CuPy array, "cpu" for anything else."""
    return "gpu" if is_gpu_array(x) else "cpu"


def to_device(x: Any, device: str | None) -> Any:
    """Move an array to ``device`` (a no-op when it is already there)."""
    device = check_device(device)
    if device == "gpu":
        return _import_cupy().asarray(x)
    return to_numpy(x)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array on the host (copies from the GPU where needed)."""
    return x.get() if is_gpu_array(x) else np.asarray(x)


def check_float_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a NumPy dtype if it is float32 or float64, else raise."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"dtype {dtype!r} is not a dtype: expected float32 or float64") from exc
    if dt not in FLOAT_DTYPES:
        raise DTypeError(f"dtype {dt} is not supported: expected float32 or float64")
    return dt


def as_float_array(data: Any, dtype: Any = None, device: str | None = None) -> Any:
    """Convert ``data`` to a floating array on ``device``.

    A float32 or float64 array keeps its dtype unless ``dtype`` is given; anything else
    (lists, scalars, integers, bool, float16) becomes ``dtype`` or the default float32.
    Object, string and complex data are refused.
    """
    is_array = hasattr(data, "dtype")  # an array or NumPy scalar; not a list or a Python number
    if device is not None:
        check_device(device)
    try:  # checked and converted where the data is (the host for lists), then moved
        arr = array_module_of(data).asarray(data)
    except ValueError as exc:  # ragged nested sequences
        raise ShapeError(f"data is ragged (rows of different lengths) or not an array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"expected numeric data, got an array of dtype {arr.dtype}")
    if dtype is not None:
        target = check_float_dtype(dtype)
    elif is_array and arr.dtype in FLOAT_DTYPES:
        target = arr.dtype
    else:
        target = DEFAULT_DTYPE
    arr = arr if arr.dtype == target else arr.astype(target)
    return arr if device is None else to_device(arr, device)


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an int: an integer >= 0 (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"{name} must be an integer >= 0, got {seed!r}")
    return int(seed)


def new_rng(seed: int | None, device: str | None = None) -> Any:
    """A seeded random generator of the device's array module (``xp.random.default_rng``); None: unseeded."""
    return array_module(device).random.default_rng(None if seed is None else check_seed(seed))


def as_rng(rng: Any, device: str | None = None, what: str | None = None) -> Any:
    """``rng`` as a generator of the device's array module: a generator as it is, an int seeds a new one
    (``what``: the caller, named in the error)."""
    if isinstance(rng, array_module(device).random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return new_rng(rng, device)
    raise ArgumentError(
        f"{what + ': ' if what else ''}rng must be a random generator of the {check_device(device)} device's "
        f"array module (backend.new_rng(seed, device)), for data on that device, or an integer seed, got {rng!r:.80}"
    )


def to_float(x: Any) -> float:
    """A Python float from a 0-d array (one host transfer on the GPU)."""
    return float(to_numpy(x))
