"""Reading ``.npy`` files and ``.npz`` archives safely: numeric arrays only, sizes checked first.

``np.load`` allocates the shape an array's header declares before it reads the data, so a
corrupt or planted header can ask for terabytes. Here each header is read first and the array
must fill exactly the bytes really there (for an ``.npz`` entry: its size in the archive, which
must fit in the archive, times at most deflate's largest expansion when compressed), so memory
grows only with the file. Object arrays are refused without being loaded: loading them would
unpickle. Damage raises :class:`DataError`, an object array :class:`DTypeError`; both messages
start with the file's path.
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import DataError, DTypeError, ScratchAEError

MAX_DEFLATE_RATIO = 1032  # the most that deflate can expand its input
# what the zipfile module and NumPy's header parser raise on damaged bytes
READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    SyntaxError,
    OverflowError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    tokenize.TokenError,
)


def _header(stream: IO[bytes], failure: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy header at the stream's start; ``failure`` begins the error."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(stream)
    except READ_ERRORS as exc:
        raise DataError(f"{failure}: {exc}") from exc
    raise DataError(f"{failure}: .npy format version {version[0]}.{version[1]} is not read (1.0 and 2.0 are)")


def _check_size(shape: tuple[int, ...], dtype: np.dtype, available: int, where: str) -> None:
    """The array a header declares must be numeric data filling exactly ``available`` bytes."""
    if dtype.hasobject:
        raise DTypeError(
            f"{where} is an object array (dtype {dtype}): loading it would unpickle, so it is refused "
            f"(numeric arrays only)"
        )
    if any(d < 0 for d in shape):
        raise DataError(f"{where} declares the shape {shape}, which has a negative size")
    need = math.prod(shape) * dtype.itemsize
    if need != available:
        raise DataError(
            f"{where} declares shape {shape} of {dtype} ({need} bytes) but holds {available} bytes: "
            f"truncated or corrupt"
        )


def read_npy(path: str | Path) -> np.ndarray:
    """The array of a ``.npy`` file (see the module docstring for what is refused)."""
    path = Path(path)
    failure = f"{path} is not a valid NumPy file"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            shape, _, dtype = _header(f, failure)
            _check_size(shape, dtype, size - f.tell(), str(path))
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except ScratchAEError:
        raise
    except READ_ERRORS as exc:
        raise DataError(f"{failure}: {exc}") from exc


class NpzArchive:
    """An ``.npz`` archive open for safe reading: ``keys()`` and ``read(key)`` (key "x" is the entry "x.npy").

    Use as a context manager; every problem raises DataError or DTypeError naming the file and entry.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._failure = f"{self.path} is not a valid .npz archive (truncated or corrupt)"
        try:
            self._size = self.path.stat().st_size
            self._zip = zipfile.ZipFile(self.path)
            self._entries = {_key(info.filename): info for info in self._zip.infolist()}
        except READ_ERRORS as exc:
            raise DataError(f"{self._failure}: {exc}") from exc

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._zip.close()

    def keys(self) -> list[str]:
        return list(self._entries)

    def read(self, key: str) -> np.ndarray:
        info = self._entries[key]
        where = f"{self.path}: entry {key!r}"
        if not info.filename.endswith(".npy"):
            raise DataError(f"{where} holds bytes that are not a .npy array (its name does not end in .npy)")
        try:
            self._check_entry(info, where)
            with self._zip.open(info) as f:
                shape, _, dtype = _header(f, f"{where} holds bytes that are not a .npy array")
                _check_size(shape, dtype, info.file_size - f.tell(), where)
            with self._zip.open(info) as f:
                array = np.lib.format.read_array(f, allow_pickle=False)
                f.read(1)  # reaching the end makes zipfile check the entry's CRC
            return array
        except ScratchAEError:
            raise
        except READ_ERRORS as exc:
            raise DataError(f"{self._failure}: {where}: {exc}") from exc

    def _check_entry(self, info: zipfile.ZipInfo, where: str) -> None:
        """The entry's sizes must fit the archive before anything is read from it."""
        ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: MAX_DEFLATE_RATIO}.get(info.compress_type)
        if ratio is None:
            raise DataError(f"{where} uses compression method {info.compress_type}: only stored or deflated entries")
        if info.header_offset + info.compress_size > self._size or info.file_size > ratio * info.compress_size:
            raise DataError(
                f"{self._failure}: {where} claims {info.file_size} bytes from {info.compress_size} stored bytes "
                f"at offset {info.header_offset} of a {self._size}-byte file"
            )


def _key(name: str) -> str:
    return name[: -len(".npy")] if name.endswith(".npy") else name
