"""The CUDA kernels, run on the host through ``kernels/gpu.py`` (tests/cuda_host.py), equal their
reference expressions: the cases of the CPU and GPU kernel tests, and the models of
test_kernels_models.py trained with them.

This runs the CUDA C sources' indexing, reductions and barriers, and gpu.py's launch sizes and
argument casts, wherever g++ exists; ``test_kernels_gpu.py`` runs the same cases on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from cuda_host import CXX, HOST_CUPY, RawModule
from kernel_cases import CASES, DTYPES, SHAPES, check_case
from scratchae.kernels import fused, gpu
from test_kernels_models import ATOL, BUILDERS, RTOL

from scratchae import DeviceUnavailableError, backend, kernels
from scratchae.data import load

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is not on PATH: the CUDA kernels cannot run on the host")


def run_cuda_on_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on every fused kernel call runs kernels/gpu.py, with HOST_CUPY as its CuPy, on NumPy arrays."""
    monkeypatch.setattr(gpu, "array_module", lambda device: HOST_CUPY)
    monkeypatch.setattr(gpu, "_functions", {})
    monkeypatch.setattr(fused, "_device", lambda a: gpu)


@pytest.fixture
def cuda_on_host(monkeypatch: pytest.MonkeyPatch) -> None:
    run_cuda_on_host(monkeypatch)


@pytest.mark.parametrize("edge", [False, True], ids=["random", "edge"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kernel_equals_reference(cuda_on_host, case, shape, dtype, edge):
    check_case(case, shape, dtype, edge, HOST_CUPY, np.asarray)


@pytest.mark.parametrize("shape", [(1, 300), (3000, 3), (1100, 256)])
def test_reductions_over_many_blocks(cuda_on_host, shape):
    """Sizes past one block, past the grid cap (grid-stride loops) and act_backward's row lanes."""
    rng = np.random.default_rng(7)
    z, t, gy = rng.standard_normal(shape), rng.random(shape), rng.standard_normal(shape)
    total, grad = kernels.bce_with_logits(z, t)
    np.testing.assert_allclose(total, np.sum(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))), rtol=1e-12)
    np.testing.assert_allclose(grad, 1 / (1 + np.exp(-z)) - t, rtol=1e-12, atol=1e-15)
    y = np.maximum(z, 0)
    g, gb = kernels.act_backward(gy, y, "relu")
    np.testing.assert_array_equal(g, gy * (y > 0))
    np.testing.assert_allclose(gb, g.sum(axis=0), rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def digits():
    return load("digits", n_train=512)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_training_with_the_cuda_kernels_matches_the_numba_kernels(monkeypatch, digits, name, optimizer):
    """Each model of the kernels-on/off test, trained 2 epochs with every fused kernel in CUDA C, ends
    with the weights it gets with the Numba kernels (float32: sums are added in another order)."""

    def trained() -> list[np.ndarray]:
        model = BUILDERS[name]("cpu")
        model.fit(digits.X_train, digits.y_train, epochs=2, batch_size=64, optimizer=optimizer, verbose=False)
        return [p.data.copy() for p in model.parameters()]

    with backend.use_kernels(True):
        numba = trained()
        run_cuda_on_host(monkeypatch)
        cuda = trained()
    for a, b in zip(cuda, numba, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_a_wrong_argument_type_is_caught():
    """The stand-in refuses what a GPU would misread: an int where the kernel takes a long long."""
    module = RawModule(gpu.source(), ("--fmad=false", "-Dsae_t=float"))
    kernel = module.get_function("mse")
    a = np.zeros(4, np.float32)
    partials = np.zeros(1, np.float64)
    with pytest.raises(TypeError, match="mse argument 4: the kernel takes a 8-byte integer, got a 4-byte integer"):
        kernel((1,), (gpu.BLOCK,), (a, a, a.copy(), partials, np.int32(4)))
    kernel((1,), (gpu.BLOCK,), (a, a, a.copy(), partials, np.int64(4)))  # the right type runs


def test_divergent_barriers_fail_the_launch():
    code = 'extern "C" __global__ void early_exit(int* out) { if (threadIdx.x == 0) return; __syncthreads(); }'
    kernel = RawModule(code).get_function("early_exit")
    with pytest.raises(RuntimeError, match="different __syncthreads"):
        kernel((1,), (4,), (np.zeros(1, np.int32),))


def test_a_compile_error_names_the_fix(cuda_on_host, monkeypatch):
    monkeypatch.setattr(gpu, "source", lambda: 'extern "C" __global__ void broken( { }')
    with pytest.raises(DeviceUnavailableError, match="compiling the CUDA kernels for float32 failed"):
        kernels.mse(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
