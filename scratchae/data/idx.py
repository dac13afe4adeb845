"""Read and write IDX files, the format of MNIST and Fashion-MNIST (plain or gzip).

Layout: a 4-byte magic ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the ``prod(dims)`` items in C order, big-endian. The reader checks the
header against the bytes really present before it allocates anything, so a corrupt or lying
header raises :class:`DataError` instead of a huge allocation or a crash inside NumPy.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import DataError, DataNotFoundError, DTypeError, ShapeError

# dtype code -> big-endian item dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_CHUNK = 1 << 20


def _open(path: Path, mode: str) -> IO[bytes]:
    """Open for binary ``mode`` ("rb" or "wb"), through gzip when the name ends in ``.gz``."""
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def _read_exact(stream: IO[bytes], n: int, path: Path, what: str) -> bytes:
    """Read exactly ``n`` bytes in chunks (memory grows only with the bytes really there)."""
    chunks = []
    got = 0
    while got < n:
        chunk = stream.read(min(_CHUNK, n - got))
        if not chunk:
            raise DataError(f"IDX file {path} is truncated: {what} needs {n} bytes, the file has only {got}")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _parse(stream: IO[bytes], path: Path) -> np.ndarray:
    magic = _read_exact(stream, 4, path, "the magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{path} is not an IDX file: magic starts with {magic[:2].hex()}, expected 0000")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"IDX file {path} has unknown dtype code 0x{code:02X}: expected one of {known}")
    if ndim == 0:
        raise DataError(f"IDX file {path} declares 0 dimensions: expected at least 1")
    dims = tuple(int(d) for d in np.frombuffer(_read_exact(stream, 4 * ndim, path, "the header"), dtype=">u4"))
    dtype = IDX_DTYPES[code]
    n_bytes = math.prod(dims) * dtype.itemsize
    body = _read_exact(stream, n_bytes, path, f"the data of shape {dims} ({dtype.name})")
    if stream.read(1):
        raise DataError(f"IDX file {path} has trailing bytes after the {n_bytes} data bytes its header declares")
    try:
        return np.frombuffer(body, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(dims)
    except ValueError as exc:  # more dimensions than NumPy's arrays can have (64)
        raise DataError(f"IDX file {path} declares {ndim} dimensions, more than an array can have: {exc}") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed) into a native-endian array of its declared shape.

    Raises :class:`DataNotFoundError` for a missing file and :class:`DataError` for a wrong magic,
    an unknown dtype code, a truncated file, trailing bytes or a corrupt gzip stream.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"IDX file {path} does not exist or is not a file")
    try:
        with _open(path, "rb") as stream:
            return _parse(stream, path)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"IDX file {path} cannot be read (corrupt gzip stream or I/O error): {exc}") from exc


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64; 1 to 255 dims) as IDX.

    A path ending in ``.gz`` is gzip-compressed.
    """
    path = Path(path)
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(dt.name for dt in _CODES)
        raise DTypeError(f"write_idx: array dtype {arr.dtype} has no IDX code: expected one of {names}")
    if not 1 <= arr.ndim <= 255 or any(d >= 2**32 for d in arr.shape):
        raise ShapeError(f"write_idx: array shape {arr.shape} does not fit IDX: 1 to 255 dims, each < 2**32")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    with _open(path, "wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes())
