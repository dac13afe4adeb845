"""binarize, corrupt (noise for denoising AEs) and iterate_minibatches.

The ``device`` fixture (tests/conftest.py) runs the array tests on cpu, or on gpu with ``--device gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest

from scratchae import backend
from scratchae.data import NOISE_KINDS, binarize, corrupt, iterate_minibatches
from scratchae.errors import ArgumentError, DataError


def _data(device, shape=(200, 100), dtype=np.float32):
    return backend.to_device(np.random.default_rng(0).random(shape).astype(dtype), device)


# ---- binarize


def test_binarize_fixed_threshold():
    X = np.array([[0.1, 0.5, 0.51, 0.9]], dtype=np.float32)
    np.testing.assert_array_equal(binarize(X), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(binarize(X, threshold=0.05), [[1, 1, 1, 1]])
    assert binarize(X).dtype == np.float32 and binarize(X.astype(np.float64)).dtype == np.float64


def test_binarize_stochastic_mean_and_seed(device):
    X = backend.to_device(np.full((400, 250), 0.3, dtype=np.float32), device)
    B = backend.to_numpy(binarize(X, rng=5))
    assert set(np.unique(B)) == {0.0, 1.0}
    assert abs(B.mean() - 0.3) < 0.01  # 1e5 draws: std of the mean ~0.0015
    np.testing.assert_array_equal(B, backend.to_numpy(binarize(X, rng=5)))
    assert not np.array_equal(B, backend.to_numpy(binarize(X, rng=6)))
    gen = backend.new_rng(5, device)
    np.testing.assert_array_equal(B, backend.to_numpy(binarize(X, rng=gen)))


def test_binarize_stochastic_edges_and_errors():
    X = np.array([[0.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(binarize(X, rng=0), [[0.0, 1.0]])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        binarize(X + 0.5, rng=0)
    with pytest.raises(ArgumentError, match="not both"):
        binarize(X, threshold=0.5, rng=0)
    with pytest.raises(ArgumentError, match="rng must be"):
        binarize(X, rng="seed")


# ---- corrupt


def test_gaussian_noise_statistics(device):
    X = _data(device)
    noise = backend.to_numpy(corrupt(X, "gaussian", 0.2, backend.new_rng(1, device)) - X)
    assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.2) < 0.005  # 2e4 draws
    out = corrupt(X, "gaussian", 0.5, backend.new_rng(1, device))
    assert backend.to_numpy(out).min() < 0.0  # not clipped
    assert out.dtype == X.dtype and backend.device_of(out) == device


def test_masking_fraction(device):
    X = _data(device) + 0.1  # no zeros before masking
    out = backend.to_numpy(corrupt(X, "masking", 0.3, backend.new_rng(2, device)))
    zeroed = out == 0
    assert abs(zeroed.mean() - 0.3) < 0.01
    np.testing.assert_array_equal(out[~zeroed], backend.to_numpy(X)[~zeroed])


def test_salt_pepper_fractions(device):
    X = backend.to_device(np.full((200, 100), 0.5, dtype=np.float32), device)
    out = backend.to_numpy(corrupt(X, "salt_pepper", 0.4, backend.new_rng(3, device)))
    assert abs((out == 0).mean() - 0.2) < 0.01 and abs((out == 1).mean() - 0.2) < 0.01
    assert abs((out == 0.5).mean() - 0.6) < 0.01


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_corrupt_is_a_pure_function_of_data_and_rng(device, kind):
    X = _data(device, dtype=np.float64)
    a = corrupt(X, kind, 0.25, backend.new_rng(7, device))
    b = corrupt(X, kind, 0.25, 7)
    np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert a.dtype == np.float64
    assert not np.array_equal(backend.to_numpy(a), backend.to_numpy(corrupt(X, kind, 0.25, 8)))
    np.testing.assert_array_equal(backend.to_numpy(corrupt(X, kind, 0.0, 7)), backend.to_numpy(X))


@pytest.mark.parametrize(
    "kind, level, match",
    [
        ("blur", 0.1, "unknown noise kind 'blur'"),
        ("masking", 1.5, r"probability in \[0, 1\]"),
        ("salt_pepper", -0.1, r"probability in \[0, 1\]"),
        ("gaussian", -1.0, ">= 0"),
        ("gaussian", float("nan"), ">= 0"),
        ("masking", "lots", "must be a number"),
    ],
)
def test_corrupt_bad_arguments(kind, level, match):
    with pytest.raises(ArgumentError, match=match):
        corrupt(np.zeros((2, 2), dtype=np.float32), kind, level, 0)


# ---- mini-batches


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 10), (10, 64), (1, 1), (128, 32)])
def test_minibatches_cover_every_index_once(n, batch_size):
    batches = list(iterate_minibatches(n, batch_size, rng=0))
    sizes = [len(b) for b in batches]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))
    assert all(b.dtype == np.int64 for b in batches)


def test_minibatches_shuffle_is_seeded():
    first = np.concatenate(list(iterate_minibatches(100, 7, rng=np.random.default_rng(4))))
    again = np.concatenate(list(iterate_minibatches(100, 7, rng=np.random.default_rng(4))))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, np.arange(100))
    gen = np.random.default_rng(4)
    epoch1 = np.concatenate(list(iterate_minibatches(100, 7, rng=gen)))
    epoch2 = np.concatenate(list(iterate_minibatches(100, 7, rng=gen)))
    assert not np.array_equal(epoch1, epoch2)  # one generator gives each epoch a new order
    ordered = np.concatenate(list(iterate_minibatches(100, 7, shuffle=False)))
    np.testing.assert_array_equal(ordered, np.arange(100))


@pytest.mark.parametrize("n, batch_size", [(10, 0), (10, -1), (0, 4), (10, 2.5), (10, True)])
def test_minibatches_bad_sizes_fail_at_call(n, batch_size):
    with pytest.raises(ArgumentError, match="must be a positive integer"):
        iterate_minibatches(n, batch_size)
