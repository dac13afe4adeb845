"""The CUDA kernels run on the host: a stand-in for the part of CuPy that ``kernels/gpu.py`` uses.

:data:`HOST_CUPY` is NumPy plus :class:`RawModule`: a module's CUDA source is compiled by
g++ with ``cuda_host.h`` (threads as fibers, ``__shared__`` as statics: see there) and each
kernel is called as CuPy calls one, ``kernel(grid, block, args)``. Every argument's C type
(pointer, integer, floating or bool, and its size) must be the kernel parameter's, with
CuPy's rules for Python numbers (int -> 64-bit integer, float -> double), so a wrong cast in
gpu.py fails here as it would misread on a GPU. Arrays must be C-contiguous.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CXX = shutil.which("g++")
HEADER = Path(__file__).with_name("cuda_host.h")
KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(')
KINDS = ("pointer", "integer", "floating", "bool")  # sae_host::Kind
STATUS = {1: "threads of one block reached different __syncthreads() barriers", 2: "an empty grid or block"}
MAX_PARAMETERS = 32

_build_dir: Path | None = None
_libraries: dict[str, ctypes.CDLL] = {}


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
        f'extern "C" int sae_parameters_{k}(int* kinds, int* sizes) '
        f"{{ return sae_host::parameters({k}, kinds, sizes); }}\n"
        for k in KERNEL.findall(code)
    )
    source, library = _build_dir / f"{key}.cu", _build_dir / f"{key}.so"
    source.write_text(code + "\n" + launchers, encoding="utf-8")
    command = [CXX, "-std=c++20", "-O1", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC"]
    command += ["-include", str(HEADER), *defines, "-x", "c++", str(source), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"g++ could not compile the CUDA source for the host:\n{result.stderr}")
    _libraries[key] = ctypes.CDLL(str(library))
    return _libraries[key]


def _c_value(arg: Any) -> tuple[Any, str]:
    """(ctypes value, kind) of one kernel argument, as CuPy would pass it."""
    if isinstance(arg, np.ndarray):
        if not arg.flags.c_contiguous:
            raise TypeError("a kernel argument is an array that is not C-contiguous")
        return ctypes.c_void_p(arg.ctypes.data), "pointer"
    if isinstance(arg, (bool, np.bool_)):
        return ctypes.c_bool(bool(arg)), "bool"
    c_types = {np.int32: ctypes.c_int32, np.int64: ctypes.c_int64, np.float32: ctypes.c_float}
    c_types.update({np.float64: ctypes.c_double, int: ctypes.c_int64, float: ctypes.c_double})
    for python_type, c_type in c_types.items():
        if type(arg) is python_type:
            return c_type(arg), "integer" if c_type in (ctypes.c_int32, ctypes.c_int64) else "floating"
    raise TypeError(f"a kernel argument of type {type(arg).__name__} has no C type")


def _dims(value: int | tuple[int, ...]) -> list[int]:
    dims = [value] if isinstance(value, int) else list(value)
    return dims + [1] * (3 - len(dims))


class Function:
    """One kernel of a :class:`RawModule`, called as ``kernel(grid, block, args)``."""

    def __init__(self, library: ctypes.CDLL, name: str):
        self.name = name
        self._launch = getattr(library, f"sae_launch_{name}")
        kinds, sizes = (ctypes.c_int * MAX_PARAMETERS)(), (ctypes.c_int * MAX_PARAMETERS)()
        count = getattr(library, f"sae_parameters_{name}")(kinds, sizes)
        self.parameters = [(KINDS[kinds[i]], sizes[i]) for i in range(count)]

    def __call__(self, grid: int | tuple[int, ...], block: int | tuple[int, ...], args: tuple) -> None:
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments, got {len(args)}")
        values = []
        for i, (arg, (kind, size)) in enumerate(zip(args, self.parameters, strict=True)):
            value, got = _c_value(arg)
            if got != kind or (kind != "pointer" and ctypes.sizeof(value) != size):
                raise TypeError(
                    f"{self.name} argument {i}: the kernel takes a {size}-byte {kind}, "
                    f"got a {ctypes.sizeof(value)}-byte {got} ({type(arg).__name__})"
                )
            values.append(value)
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        status = self._launch(*_dims(grid), *_dims(block), pointers)
        if status:
            raise RuntimeError(f"{self.name}: {STATUS[status]}")


class RawModule:
    """``cupy.RawModule(code=..., options=...)`` compiled for the host; options: ``--fmad=false``, ``-D...``."""

    def __init__(self, code: str, options: tuple[str, ...] = ()):
        unknown = [o for o in options if o != "--fmad=false" and not o.startswith("-D")]
        if unknown:
            raise ValueError(f"options the host build does not know: {unknown}")
        self._library = _compile(code, sorted(o for o in options if o.startswith("-D")))

    def get_function(self, name: str) -> Function:
        return Function(self._library, name)


class _HostCuPy:
    """NumPy's functions and types, and :class:`RawModule`."""

    RawModule = RawModule

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


HOST_CUPY = _HostCuPy()
