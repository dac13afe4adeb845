"""Fuzzing the readers of untrusted files: checkpoints (``scratchae.load``) and the user's ``.npy``/``.npz``
arrays (``scratchae.data.load``). Random bytes, byte edits of a valid file, entries rewritten with a valid
CRC (so the damage gets past the zip layer to the .npy headers and the JSON header), and random JSON in
the header: every input loads or raises a ScratchAEError, within the deadline and allocating little.
The IDX reader has its own fuzz tests in test_data_idx.py.
"""

from __future__ import annotations

import io
import json
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scratchae
from scratchae import CheckpointError, ScratchAEError
from scratchae.checkpoint import ZIP_MAGIC
from scratchae.models import AutoEncoder, Classifier, ConditionalVAE

FUZZ = settings(max_examples=50, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_ALLOCATION = 16 * 2**20  # bytes; the valid files are a few kB and hold tiny models


def read_with_peak(read: Callable[[Path], Any], path: Path) -> tuple[ScratchAEError | None, int]:
    """(the ScratchAEError ``read(path)`` raised, or None; the peak bytes allocated meanwhile).
    Any other exception fails the test."""
    tracemalloc.start()
    try:
        try:
            read(path)
            error = None
        except ScratchAEError as exc:
            error = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


def load_or_refuse(read: Callable[[Path], Any], path: Path, data: bytes) -> None:
    path.write_bytes(data)
    _, peak = read_with_peak(read, path)
    assert peak < MAX_ALLOCATION, f"reading allocated {peak} bytes"


def saved_bytes(save: Callable[[Path], Any], name: str = "f.npz") -> bytes:
    """The bytes ``save(path)`` writes to a file ``name``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        save(path)
        return path.read_bytes()


def _valid_checkpoints() -> dict[str, bytes]:
    """One trained checkpoint (weights, Adam state, history) of three model kinds, a few kB each."""
    rng = np.random.default_rng(0)
    X, y = rng.random((16, 6)).astype(np.float32), np.arange(16) % 3
    models = [
        (AutoEncoder(6, (4,), 2), None),
        (Classifier(6, 3, encoder=AutoEncoder(6, (4,), 2).encoder), y),
        (ConditionalVAE(6, 3, (4,), 2), y),
    ]
    for model, labels in models:
        model.fit(X, labels, epochs=1, batch_size=8, verbose=False)
    return {model.kind: saved_bytes(model.save) for model, _ in models}


VALID = _valid_checkpoints()
KINDS = sorted(VALID)


def entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def rezip(items: list[tuple[str, bytes]]) -> bytes:
    """A zip archive of the entries (stored, with correct CRCs), as ``np.savez`` writes one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in items:
            z.writestr(name, content)
    return buffer.getvalue()


def edit(data: bytes, edits: list[tuple[int, int]], cut: int = 0, extra: bytes = b"") -> bytes:
    """``data`` with bytes replaced at positions (mod its length), ``cut`` bytes off the end, ``extra`` added."""
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[: len(out) - cut % len(out)]) + extra


def with_header(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """A checkpoint whose JSON header was changed by ``change(meta)``."""
    items = entries(data)
    i = next(i for i, (name, _) in enumerate(items) if name == "__meta__.npy")
    meta = json.loads(np.load(io.BytesIO(items[i][1])).tobytes().decode())
    change(meta)
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    items[i] = (items[i][0], buffer.getvalue())
    return rezip(items)


def test_the_seeds_of_the_mutations_load(tmp_path):
    """The valid files the mutations start from load: a refusal below is due to the damage."""
    for kind, data in VALID.items():
        (tmp_path / "c.npz").write_bytes(data)
        assert scratchae.load(tmp_path / "c.npz").kind == kind
        (tmp_path / "c.npz").write_bytes(with_header(data, lambda meta: None))
        assert scratchae.load(tmp_path / "c.npz").kind == kind


# ---------------------------------------------------------------- checkpoints


@FUZZ
@given(data=st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(lambda b: ZIP_MAGIC + b)))
def test_checkpoint_random_bytes(tmp_path, data):
    load_or_refuse(scratchae.load, tmp_path / "c.npz", data)


@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    edits=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 2**20),
    extra=st.binary(max_size=8),
    at_end=st.booleans(),
)
def test_checkpoint_byte_edits(tmp_path, kind, edits, cut, extra, at_end):
    """Edits anywhere, or (``at_end``) in the last 400 bytes: the zip directory, whose sizes no CRC protects."""
    data = VALID[kind]
    if at_end:
        edits, cut = [(len(data) - 1 - pos % 400, value) for pos, value in edits], 0
    load_or_refuse(scratchae.load, tmp_path / "c.npz", edit(data, edits, cut, extra))


NPY_HEADER_BYTES = st.sampled_from(list(b"0123456789(),: '<>|fiuObV\x00\xff"))


@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    which=st.integers(0, 100),
    edits=st.lists(st.tuples(st.integers(0, 127), NPY_HEADER_BYTES), min_size=1, max_size=4),
    cut=st.integers(0, 300),
)
def test_checkpoint_entry_edits_with_valid_crc(tmp_path, kind, which, edits, cut):
    """One entry's .npy header (shape, dtype, order) or length changed and the archive rebuilt."""
    items = entries(VALID[kind])
    i = which % len(items)
    name, content = items[i]
    items[i] = (name, edit(content, edits, cut))
    load_or_refuse(scratchae.load, tmp_path / "c.npz", rezip(items))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(kind=st.sampled_from(KINDS), which=st.integers(0, 100), in_config=st.booleans(), value=JSON)
def test_checkpoint_random_values_in_the_header(tmp_path, kind, which, in_config, value):
    """A header or config field set to any JSON value, huge sizes included."""

    def change(meta: dict[str, Any]) -> None:
        target = meta["config"] if in_config else meta
        target[sorted(target)[which % len(target)]] = value

    load_or_refuse(scratchae.load, tmp_path / "c.npz", with_header(VALID[kind], change))


@pytest.mark.parametrize("field", ["input_dim", "latent_dim", "hidden"])
@pytest.mark.parametrize("size", [2**62, 2**40, 10**9, 12345])
def test_a_planted_huge_size_is_refused_without_building_it(tmp_path, field, size):
    """A config asking for a network far larger than the weights in the file: refused, and the model of
    that size is never built (a 10**9-wide layer would take gigabytes and many seconds to draw)."""
    value = [size] if field == "hidden" else size
    (tmp_path / "c.npz").write_bytes(
        with_header(VALID["AutoEncoder"], lambda meta: meta["config"].update({field: value}))
    )
    error, peak = read_with_peak(scratchae.load, tmp_path / "c.npz")
    assert isinstance(error, CheckpointError), error
    assert "weights do not fit" in str(error) or "configuration does not fit" in str(error), error
    assert peak < MAX_ALLOCATION


@pytest.mark.parametrize("shape", [(10**13,), (2 * 10**8,), (3, -4), (-2, -3)])
def test_a_lying_array_header_is_refused_before_allocating(tmp_path, shape):
    """An entry whose .npy header declares a shape its bytes do not hold (np.load would allocate it first)."""
    items = entries(VALID["AutoEncoder"])
    i = next(i for i, (name, _) in enumerate(items) if name.startswith("param/"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    name, content = items[i]
    items[i] = (name, header.getvalue() + content[len(header.getvalue()) :])
    (tmp_path / "c.npz").write_bytes(rezip(items))
    error, peak = read_with_peak(scratchae.load, tmp_path / "c.npz")
    assert isinstance(error, CheckpointError) and str(shape) in str(error), error
    assert peak < MAX_ALLOCATION


# ---------------------------------------------------------------- the user's .npy / .npz arrays

ARRAYS = np.random.default_rng(1).random((12, 5)).astype(np.float32)
VALID_NPY = saved_bytes(lambda p: np.save(p, ARRAYS), "f.npy")
VALID_NPZ = saved_bytes(lambda p: np.savez(p, X=ARRAYS, y=np.arange(12) % 2))


def load_data(path: Path) -> Any:
    return scratchae.data.load(path, scale=None)


@FUZZ
@given(
    suffix=st.sampled_from([".npy", ".npz"]),
    edits=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 2**20),
    header=st.booleans(),
)
def test_data_file_edits(tmp_path, suffix, edits, cut, header):
    """Edits of a valid .npy or .npz file, anywhere or (``header``) in the .npy header's first 128 bytes."""
    data = VALID_NPY if suffix == ".npy" else VALID_NPZ
    if header and suffix == ".npy":
        edits, cut = [(pos % 128, value) for pos, value in edits], 0
    load_or_refuse(load_data, tmp_path / f"d{suffix}", edit(data, edits, cut))


@FUZZ
@given(
    which=st.integers(0, 1),
    edits=st.lists(st.tuples(st.integers(0, 127), NPY_HEADER_BYTES), min_size=1, max_size=4),
    cut=st.integers(0, 100),
)
def test_data_npz_entry_edits_with_valid_crc(tmp_path, which, edits, cut):
    items = entries(VALID_NPZ)
    name, content = items[which]
    items[which] = (name, edit(content, edits, cut))
    load_or_refuse(load_data, tmp_path / "d.npz", rezip(items))


def test_data_file_with_a_lying_header_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 5)})
    (tmp_path / "d.npy").write_bytes(header.getvalue() + ARRAYS.tobytes())
    error, peak = read_with_peak(load_data, tmp_path / "d.npy")
    assert isinstance(error, scratchae.DataError) and "(1000000000000, 5)" in str(error), error
    assert peak < MAX_ALLOCATION
