"""The CUDA kernels run on the host: a stand-in for the part of CuPy that ``kernels/gpu.py`` uses.

:data:`HOST_CUPY` is NumPy plus :class:`RawModule`: a module's CUDA source is compiled by
g++ with ``cuda_host.h`` (threads as fibers, ``__shared__`` as poisoned statics, blocks and
threads in alternating orders: see there) and each kernel is called as CuPy calls one,
``kernel(grid, block, args)`` with grid and block tuples. Stricter than CuPy, so that a launch
bug fails here even where a GPU might get by:
- every argument's C type (pointer, integer, floating or bool) and size must be the kernel
  parameter's, with CuPy's rules for Python numbers (int -> 64-bit integer, float -> double,
  bool -> bool), and an array must be C-contiguous with the element type its pointer parameter has;
- grid and block must have 1 to 3 dimensions, each >= 1, within CUDA's limits (1024 threads
  a block, block z <= 64, grid y and z <= 65535);
- the module must be compiled with ``--fmad=false``, as gpu.py does.
Not modelled: the ``-ftz=true`` CuPy adds (float32 subnormals flushed to 0 on a GPU, kept here),
which moves results by less than about 1e-38, far inside the tests' tolerances.
Launches are serialized (the fibers' scheduler is one per process).
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import operator
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

CXX = shutil.which("g++")
HEADER = Path(__file__).with_name("cuda_host.h")
KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(')
KINDS = ("pointer", "integer", "floating", "bool")  # sae_host::Kind
DTYPE_KINDS = {"i": "integer", "u": "integer", "f": "floating", "b": "bool"}
STATUS = {
    1: "threads of one block waited at different __syncthreads() barriers, or some returned while others waited",
    2: "grid or block dimensions outside CUDA's limits",
    3: "a C++ exception in the launch (out of memory?)",
}
MAX_PARAMETERS = 64  # sae_host::MAX_PARAMETERS
# (C type, kind) of the scalars a kernel can take, by their Python type (CuPy's conversions).
SCALARS = {
    np.int32: (ctypes.c_int32, "integer"),
    np.int64: (ctypes.c_int64, "integer"),
    np.float32: (ctypes.c_float, "floating"),
    np.float64: (ctypes.c_double, "floating"),
    np.bool_: (ctypes.c_bool, "bool"),
    bool: (ctypes.c_bool, "bool"),
    int: (ctypes.c_int64, "integer"),
    float: (ctypes.c_double, "floating"),
}

_build_dir: Path | None = None
_libraries: dict[str, ctypes.CDLL] = {}
_launch_lock = threading.Lock()


def _compile(code: str, defines: list[str]) -> ctypes.CDLL:
    """The shared library of ``code`` and a launcher per kernel, built once per source and defines."""
    global _build_dir
    key = hashlib.sha256("\0".join([code, *defines]).encode()).hexdigest()[:16]
    if key in _libraries:
        return _libraries[key]
    if CXX is None:
        raise RuntimeError("g++ is not on PATH: the CUDA kernels cannot be compiled for the host")
    if _build_dir is None:
        _build_dir = Path(tempfile.mkdtemp(prefix="scratchae-cuda-host-"))
        atexit.register(shutil.rmtree, _build_dir, True)
    launchers = "".join(
        f'extern "C" int sae_launch_{k}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, '
        f"void** p) {{ return sae_host::launch({k}, gx, gy, gz, bx, by, bz, p); }}\n"
        f'extern "C" int sae_parameters_{k}(int* kinds, int* sizes, int* pointee_kinds, int* pointee_sizes) '
        f"{{ return sae_host::parameters({k}, kinds, sizes, pointee_kinds, pointee_sizes); }}\n"
        for k in KERNEL.findall(code)
    )
    source, library = _build_dir / f"{key}.cu", _build_dir / f"{key}.so"
    source.write_text(code + "\n" + launchers, encoding="utf-8")
    command = [CXX, "-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-include", str(HEADER)]
    command += [*defines, "-x", "c++", str(source), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"g++ could not compile the CUDA source for the host:\n{result.stderr}")
    _libraries[key] = ctypes.CDLL(str(library))
    return _libraries[key]


def _c_value(arg: Any) -> tuple[Any, str, np.dtype | None]:
    """(ctypes value, kind, element dtype for an array) of one kernel argument, as CuPy passes it."""
    if isinstance(arg, np.ndarray):
        if not arg.flags.c_contiguous:
            raise TypeError("a kernel argument is an array that is not C-contiguous")
        return ctypes.c_void_p(arg.ctypes.data), "pointer", arg.dtype
    if type(arg) not in SCALARS:
        raise TypeError(f"a kernel argument of type {type(arg).__name__} has no C type")
    c_type, kind = SCALARS[type(arg)]
    return c_type(arg), kind, None


LIMITS = {"grid": (2**31 - 1, 65535, 65535), "block": (1024, 1024, 64)}  # CUDA's, per dimension
MAX_THREADS = 1024  # a block's


def _dims(name: str, value: Any) -> list[int]:
    """A grid or block tuple as three dimensions (missing ones 1), each from 1 to CUDA's limit."""
    if not isinstance(value, tuple):
        raise TypeError(f"{name} must be a tuple, as CuPy's kernel call takes it, got {type(value).__name__}")
    dims = [operator.index(d) for d in value]
    dims += [1] * (3 - len(dims))
    in_limits = len(dims) == 3 and all(1 <= d <= top for d, top in zip(dims, LIMITS[name], strict=True))
    if not in_limits or (name == "block" and dims[0] * dims[1] * dims[2] > MAX_THREADS):
        raise ValueError(
            f"{name} {value}: 1 to 3 dimensions, each from 1 to {LIMITS[name]}"
            + (f", {MAX_THREADS} threads in all" if name == "block" else "")
        )
    return dims


class Function:
    """One kernel of a :class:`RawModule`, called as ``kernel(grid, block, args)``."""

    def __init__(self, library: ctypes.CDLL, name: str):
        self.name = name
        self._launch = getattr(library, f"sae_launch_{name}")
        self._launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p]
        self._launch.restype = ctypes.c_int
        tables = [(ctypes.c_int * MAX_PARAMETERS)() for _ in range(4)]
        count = getattr(library, f"sae_parameters_{name}")(*tables)
        kinds, sizes, pointee_kinds, pointee_sizes = ([t[i] for i in range(count)] for t in tables)
        self.parameters = [
            (KINDS[k], size, KINDS[pk], psize)
            for k, size, pk, psize in zip(kinds, sizes, pointee_kinds, pointee_sizes, strict=True)
        ]

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
        dims = _dims("grid", grid) + _dims("block", block)
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments, got {len(args)}")
        values = [self._checked(i, arg) for i, arg in enumerate(args)]
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        with _launch_lock:
            status = self._launch(*dims, pointers)
        if status:
            raise RuntimeError(f"{self.name} {grid} x {block}: {STATUS[status]}")

    def _checked(self, i: int, arg: Any) -> Any:
        """Argument ``i`` as a ctypes value, refused unless its C type is parameter ``i``'s."""
        kind, size, pointee_kind, pointee_size = self.parameters[i]
        value, got, dtype = _c_value(arg)
        if kind == "pointer" and got == "pointer":
            if DTYPE_KINDS.get(dtype.kind) != pointee_kind or dtype.itemsize != pointee_size:
                raise TypeError(
                    f"{self.name} argument {i}: the kernel takes a pointer to a {pointee_size}-byte {pointee_kind}, "
                    f"got an array of {dtype}"
                )
        elif got != kind or ctypes.sizeof(value) != size:
            raise TypeError(
                f"{self.name} argument {i}: the kernel takes a {size}-byte {kind}, "
                f"got a {ctypes.sizeof(value)}-byte {got} ({type(arg).__name__})"
            )
        return value


class RawModule:
    """``cupy.RawModule(code=..., options=...)`` built for the host; options ``--fmad=false`` (required), ``-D...``."""

    def __init__(self, code: str, options: tuple[str, ...] = ()):
        unknown = [o for o in options if o != "--fmad=false" and not o.startswith("-D")]
        if unknown or "--fmad=false" not in options:
            raise ValueError(f"options {options}: the host build takes --fmad=false (required) and -D... only")
        self._library = _compile(code, sorted(o for o in options if o.startswith("-D")))

    def get_function(self, name: str) -> Function:
        return Function(self._library, name)


class _HostCuPy:
    """NumPy's functions and types, and :class:`RawModule`."""

    RawModule = RawModule

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


HOST_CUPY = _HostCuPy()


def build_problem() -> str | None:
    """Why the kernels cannot run on the host here (no g++, or the fibers do not build or run), or None."""
    probe = 'extern "C" __global__ void probe(int* out) { __syncthreads(); out[threadIdx.x] = 1; }'
    try:
        out = np.zeros(2, np.int32)
        RawModule(probe, ("--fmad=false",)).get_function("probe")((1,), (2,), (out,))
    except (RuntimeError, OSError) as exc:
        return f"the CUDA kernels cannot run on the host: {str(exc).splitlines()[0]}"
    return None if out.tolist() == [1, 1] else "the CUDA kernels cannot run on the host: the probe kernel misran"
