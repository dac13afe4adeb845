"""IDX reader and writer: round trips, every corruption raising a clear DataError, and a fuzz test."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchae.data import read_idx, write_idx
from scratchae.errors import DataError, DataNotFoundError, DTypeError, ScratchAEError, ShapeError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    arr = rng.uniform(max(info.min, -1e6), min(info.max, 1e6), size=(3, 4, 5)).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, arr)


def test_plain_file_layout_is_big_endian(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([258, -1], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFF])


def test_hand_written_mnist_labels_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_header(0x08, (4,)) + bytes([7, 2, 1, 0])))
    np.testing.assert_array_equal(read_idx(path), np.array([7, 2, 1, 0], dtype=np.uint8))


def test_write_refuses_unsupported_dtype_and_rank(tmp_path):
    with pytest.raises(DTypeError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ShapeError, match="shape"):
        write_idx(tmp_path / "x", np.uint8(3))


def test_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_idx(tmp_path / "nope-idx3-ubyte")


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (_header(0x0A, (2,)) + b"\x00\x00", "unknown dtype code 0x0A"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (b"\x00\x00", "truncated"),
        (_header(0x08, (2, 3))[:-2], "truncated"),
        (_header(0x0C, (2, 3)) + bytes(23), "truncated"),
        (_header(0x08, (2,)) + bytes(3), "trailing"),
        (_header(0x08, (1,) * 65) + bytes(1), "declares 65 dimensions, more than an array can have"),
    ],
    ids=["magic", "dtype-code", "no-dims", "short-magic", "short-header", "short-data", "trailing", "65-dims"],
)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_corrupt_files_raise_data_error(tmp_path, data, match, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    with pytest.raises(DataError, match=match):
        read_idx(path)


def test_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(_header(0x08, (100,)) + bytes(range(100)))
    path = tmp_path / "bad.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_lying_header_fails_fast_without_allocating(tmp_path, suffix):
    data = _header(0x08, (1000, 1000, 1000)) + bytes(10)  # claims 10**9 bytes, holds 10
    path = tmp_path / f"liar{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError, match="truncated"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 8 * 2**20, f"reading a lying header allocated {peak} bytes"


def _valid_file_bytes() -> bytes:
    return _header(0x0B, (3, 2)) + np.arange(6, dtype=">i2").tobytes()


def _check_loads_or_scratchae_error(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        arr = read_idx(path)
    except ScratchAEError:
        return
    assert isinstance(arr, np.ndarray) and arr.dtype.isnative


FUZZ = settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=64), gz=st.booleans())
def test_fuzz_random_bytes(tmp_path, data, gz):
    # random bytes, raw or as the content of a valid gzip stream
    _check_loads_or_scratchae_error(tmp_path / ("f.gz" if gz else "f"), gzip.compress(data) if gz else data)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 40),
    extra=st.binary(max_size=4),
    gz=st.booleans(),
)
def test_fuzz_mutated_valid_file(tmp_path, edits, cut, extra, gz):
    base = _valid_file_bytes()
    data = bytearray(gzip.compress(base) if gz else base)
    for pos, value in edits:
        data[pos % len(data)] = value
    data = bytes(data[: len(data) - cut % len(data)]) + extra
    _check_loads_or_scratchae_error(tmp_path / ("f.gz" if gz else "f"), data)
