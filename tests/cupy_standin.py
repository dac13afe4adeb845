"""A stand-in for CuPy on the host, so that ``device="gpu"`` runs through the whole engine without a GPU.

:data:`CUPY` plays the ``cupy`` module; its arrays (:class:`ndarray`) hold NumPy arrays but follow
CuPy's rules, not NumPy's:
- the module, ``ndarray``, ``random``, ``random.Generator`` and ``linalg`` have only the names CuPy
  14.2 has (``cupy_api.json``, with the command that recorded it); a name CuPy lacks is an
  AttributeError, one it has but the stand-in does not implement a NotImplementedError;
- an ndarray never turns into a NumPy array implicitly: ``np.asarray(a)`` raises CuPy's TypeError,
  and CuPy's functions, ufuncs and operators refuse NumPy arrays as operands. NumPy's functions
  and ufuncs given an ndarray run CuPy's function of the same name (CuPy's ``__array_function__``
  and ``__array_ufunc__``) and fail where CuPy has none;
- reductions and indexing to one element return 0-d arrays, never scalars;
- :data:`TRANSFERS` counts what crosses between host and device: ``to_host`` for ``get``,
  ``item``, ``tolist``, ``float()`` / ``int()`` / ``bool()`` and printing,
  and for the operations whose result size CuPy reads back from the device (a boolean mask
  index, ``nonzero``, one-argument ``where``, ``unique`` ...); ``to_device`` for arrays made
  from host data (``asarray`` of a NumPy array or a list, setting items from one, indexing with
  one); ``synchronize`` for stream synchronizations. Members that move data in ways not modelled
  (``tobytes``, ``set``, ``asnumpy`` ...) raise NotImplementedError;
- ``RawModule`` builds the CUDA sources for the host (:class:`cuda_host.RawModule`) and runs the
  kernels on the arrays' buffers.
It cannot show CuPy's own behaviour beyond these rules: its numerics (cuBLAS, libdevice), its
type promotion, asynchrony, memory and speed.
"""

from __future__ import annotations

import json
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from cuda_host import RawModule as HostRawModule
from numpy.lib.mixins import NDArrayOperatorsMixin

_RECORDED = json.loads(Path(__file__).with_name("cupy_api.json").read_text(encoding="utf-8"))
API = {table: frozenset(_RECORDED[table]) for table in ("module", "ufuncs", "ndarray", "random", "Generator", "linalg")}
TRANSFERS: Counter = Counter()

IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)
# Functions whose output size depends on the values: CuPy reads it back from the device.
SIZE_FROM_VALUES = frozenset({"nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract"})
# ndarray members that read or share the device memory in ways the stand-in does not model.
UNMODELLED = frozenset({"set", "tobytes", "tofile", "dump", "dumps", "toDlpack", "cstruct", "mdspan", "device", "data"})
# Functions that make a device array of host data (NumPy arrays, lists, numbers) given as the first argument.
FROM_HOST = frozenset({"array", "asarray", "asanyarray"})
# Functions whose first argument must be a device array already.
DEVICE_ONLY = frozenset({"ascontiguousarray", "asfortranarray"})
# Python scalars CuPy takes as ufunc operands (exact types); NumPy scalars are taken too.
SCALARS = (int, float, bool, complex)


def _missing(where: str, name: str, table: str) -> Exception:
    if name in API[table]:
        return NotImplementedError(f"the CuPy stand-in does not implement {where}.{name} (CuPy has it): add it there")
    return AttributeError(f"{where} has no attribute {name!r} (CuPy 14.2 has none)")


def _device_value(x: Any) -> Any:
    """A CuPy operand as the NumPy value it holds; a NumPy array is refused, as CuPy refuses it."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)([_device_value(v) for v in x])
    return x


def _host_value(x: Any) -> Any:
    """The data of a new device array: a device array's value, or a copy of host data (a transfer)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (list, tuple)) and any(isinstance(v, ndarray) for v in x):
        return _device_value(x)
    TRANSFERS["to_device"] += 1
    return np.array(x, copy=True)  # device memory of its own, never the host array's


def _wrap(y: Any, given: tuple = ()) -> Any:
    """NumPy results as device arrays (scalars as 0-d arrays); a ``given`` array handed back is itself."""
    if isinstance(y, np.ndarray):
        for x in given:
            if isinstance(x, ndarray) and x._a is y:
                return x
        return ndarray._of(y)
    if isinstance(y, np.generic):
        return ndarray._of(np.asarray(y))
    if isinstance(y, tuple):
        return tuple([_wrap(v, given) for v in y])
    if isinstance(y, list):
        return [_wrap(v, given) for v in y]
    return y


def _calling(fn: Callable[..., Any], name: str, owner: ndarray | None = None) -> Callable[..., Any]:
    """NumPy's ``fn`` as CuPy's ``name`` (a method of ``owner``): device operands in, device arrays out."""
    from_host = name in FROM_HOST and owner is None

    def call(*args: Any, **kwargs: Any) -> Any:
        given = (owner, *args, *kwargs.values())
        if name in DEVICE_ONLY and not isinstance(args[0], ndarray):
            raise TypeError(f"Argument 'a' has incorrect type (expected cupy.ndarray, got {type(args[0]).__name__})")
        if from_host and args:
            values = (_host_value(args[0]), *_device_value(args[1:]))
        else:
            values = _device_value(args)
        if name in SIZE_FROM_VALUES or (name == "where" and len(args) == 1):
            TRANSFERS["to_host"] += 1
        return _wrap(fn(*values, **{k: _device_value(v) for k, v in kwargs.items()}), given)

    call.__name__ = name
    return call


def _to_host(a: np.ndarray) -> np.ndarray:
    TRANSFERS["to_host"] += 1
    return a


def _index(key: Any) -> Any:
    """An index as NumPy takes it: device arrays unwrapped (a boolean mask reads its count back), host
    arrays and lists moved to the device."""
    if isinstance(key, tuple):
        return tuple([_index(k) for k in key])
    if isinstance(key, ndarray):
        if key.dtype == np.bool_:
            TRANSFERS["to_host"] += 1
        return key._a
    if isinstance(key, (np.ndarray, list)):
        TRANSFERS["to_device"] += 1
    return key


def _basic(key: Any) -> bool:
    """An index of integers, slices, Ellipsis and None only (a view; no index array)."""
    keys = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)) for k in keys)


class _Flags:
    """CuPy's flags: c_contiguous, f_contiguous and owndata, nothing else (no ``writeable``)."""

    def __init__(self, a: np.ndarray):
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata


class ndarray(NDArrayOperatorsMixin):  # noqa: N801 (CuPy's name)
    """A device array: a NumPy array behind CuPy's rules (see the module's docstring)."""

    __slots__ = ("_a",)
    _a: np.ndarray

    @classmethod
    def _of(cls, a: np.ndarray) -> ndarray:
        obj = object.__new__(cls)
        obj._a = a
        return obj

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: ndarray._of(self._a.T))
    flags = property(lambda self: _Flags(self._a))
    base = property(lambda self: None if self._a.base is None else ndarray._of(self._a.base))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in API["ndarray"] or name in UNMODELLED or not hasattr(self._a, name):
            raise _missing("cupy.ndarray", name, "ndarray")
        value = getattr(self._a, name)
        return _calling(value, name, self) if callable(value) else _wrap(value)

    # what crosses to the host
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
        host = np.array(_to_host(self._a), order=order)
        if out is None:
            return host
        out[...] = host
        return out

    def item(self) -> Any:
        return _to_host(self._a).item()

    def tolist(self) -> Any:
        return _to_host(self._a).tolist()

    def __float__(self) -> float:
        return float(_to_host(self._a))

    def __int__(self) -> int:
        return int(_to_host(self._a))

    def __bool__(self) -> bool:
        return bool(_to_host(self._a))

    def __format__(self, spec: str) -> str:
        return format(_to_host(self._a), spec)

    def __repr__(self) -> str:
        return repr(_to_host(self._a))

    def __str__(self) -> str:
        return str(_to_host(self._a))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(IMPLICIT)

    # the rest stays on the device
    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key: Any) -> ndarray:
        index = _index(key)
        y = self._a[index]
        if isinstance(y, np.generic):  # integers all the way: CuPy returns a 0-d view, not a copy
            y = self._a[(*(index if isinstance(index, tuple) else (index,)), ...)]
        return _wrap(y, (self,))

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, (np.ndarray, list, tuple)) and np.ndim(value) > 0:
            if _basic(key):  # CuPy fills a basic selection, and fill takes a scalar only
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            TRANSFERS["to_device"] += 1
            self._a[_index(key)] = value
        else:
            self._a[_index(key)] = _device_value(value)

    def __copy__(self) -> ndarray:
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo: dict) -> ndarray:
        return ndarray._of(self._a.copy())

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        known = API["ufuncs"] if method != "__call__" else API["module"]  # cupy.matmul is a function, not a ufunc
        if ufunc.__name__ not in known:
            return NotImplemented
        return _apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        table = {"numpy": CUPY, "numpy.linalg": CUPY.linalg}.get(func.__module__)
        name = func.__name__
        if table is None or name not in API["linalg" if table is CUPY.linalg else "module"]:
            return NotImplemented
        return getattr(table, name)(*args, **kwargs)


def _apply_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``ufunc.method(*inputs, **kwargs)`` on device operands; ``out`` arrays are written and returned."""
    out = kwargs.get("out")
    if out is not None:
        out = out if isinstance(out, tuple) else (out,)
        kwargs = {**kwargs, "out": out}
    for x in inputs:
        if not isinstance(x, (ndarray, np.generic)) and type(x) not in SCALARS:
            raise TypeError(f"Unsupported type {type(x)}")
    values = {k: _device_value(v) for k, v in kwargs.items()}
    result = getattr(ufunc, method)(*_device_value(inputs), **values)
    if out is not None:
        return out[0] if len(out) == 1 else out
    return _wrap(result, inputs)


class UFunc:
    """A CuPy ufunc: called, or by its methods reduce, accumulate, outer, at and reduceat."""

    METHODS = ("reduce", "accumulate", "outer", "at", "reduceat")

    def __init__(self, ufunc: np.ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        return _apply_ufunc(self._ufunc, "__call__", inputs, kwargs)

    def __getattr__(self, method: str) -> Any:
        if method not in self.METHODS:
            raise AttributeError(f"cupy.ufunc has no attribute {method!r}")
        return lambda *inputs, **kwargs: _apply_ufunc(self._ufunc, method, inputs, kwargs)


def _as_device(y: Any) -> ndarray:
    return y if isinstance(y, ndarray) else ndarray._of(np.asarray(y))


class Generator:
    """``cupy.random.Generator``: NumPy's generator of the same seed behind CuPy's methods (no ``normal``,
    ``permutation``, ``choice`` ...); ``uniform`` takes a dtype; draws are device arrays, 0-d without a size.
    The streams are NumPy's, not CuPy's XORWOW: equal to the CPU's draws, as a real GPU's are not."""

    def __init__(self, host: np.random.Generator):
        self._host = host

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None, dtype: Any = np.float64) -> ndarray:
        return ndarray._of(np.asarray(self._host.uniform(low, high, size)).astype(dtype))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in API["Generator"]:
            raise _missing("cupy.random.Generator", name, "Generator")
        draw = _calling(getattr(self._host, name), name)
        return lambda *args, **kwargs: _as_device(draw(*args, **kwargs))


class _Stream:
    def synchronize(self) -> None:
        TRANSFERS["synchronize"] += 1


class _Namespace(types.ModuleType):
    """A module of the stand-in: its own attributes, then NumPy's of a name CuPy's ``table`` has."""

    def __init__(self, name: str, table: str, numpy_module: Any, **own: Any):
        super().__init__(name)
        self._table, self._numpy = table, numpy_module
        self.__dict__.update(own)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in API[self._table] or not hasattr(self._numpy, name):
            raise _missing(self.__name__, name, self._table)
        value = getattr(self._numpy, name)
        if isinstance(value, np.ufunc):
            value = UFunc(value)
        elif callable(value) and not isinstance(value, type):
            value = _calling(value, name)
        setattr(self, name, value)
        return value


class RawModule:
    """``cupy.RawModule``: the source built for the host; its kernels run on the device arrays' buffers."""

    def __init__(self, code: str, options: tuple[str, ...] = ()):
        self._host = HostRawModule(code, options)

    def get_function(self, name: str) -> Callable[[tuple, tuple, tuple], None]:
        kernel = self._host.get_function(name)

        def launch(grid: tuple, block: tuple, args: tuple) -> None:
            kernel(grid, block, tuple([_device_value(a) for a in args]))

        return launch


CUPY = _Namespace(
    "cupy",
    "module",
    np,
    ndarray=ndarray,
    RawModule=RawModule,
    random=_Namespace(
        "cupy.random",
        "random",
        types.SimpleNamespace(),
        Generator=Generator,
        default_rng=lambda seed=None: Generator(np.random.default_rng(seed)),
    ),
    linalg=_Namespace("cupy.linalg", "linalg", np.linalg),
    cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
        get_current_stream=_Stream,
    ),
)
