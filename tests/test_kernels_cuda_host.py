"""The CUDA kernels, run on the host through ``kernels/gpu.py`` (tests/cuda_host.py), equal their
reference expressions: the cases of the CPU and GPU kernel tests, and the models of
test_kernels_models.py trained with them.

This runs the CUDA C sources' indexing, reductions and barriers, and gpu.py's launch sizes and
argument casts, wherever g++ exists; ``test_kernels_gpu.py`` runs the same cases on a GPU.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from cuda_host import HOST_CUPY, RawModule, build_problem
from kernel_cases import (
    CASES,
    DTYPES,
    LARGE_SHAPES,
    REDUCING,
    SHAPES,
    check_case,
    check_non_finite_activations,
    check_strided_gradients,
)
from scratchae.kernels import fused, gpu
from test_kernels_models import BUILDERS, assert_same_training, trained

from scratchae import DeviceUnavailableError, backend, kernels

PROBLEM = build_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=str(PROBLEM))


def run_cuda_on_host(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """From now on every fused kernel call runs kernels/gpu.py, with HOST_CUPY as its CuPy, on NumPy
    arrays; returns the count of launches per kernel, updated as they happen."""
    launches: Counter = Counter()
    launch = gpu._launch

    def counted(name: str, *args: Any) -> None:
        launches[name] += 1
        launch(name, *args)

    monkeypatch.setattr(gpu, "array_module", lambda device: HOST_CUPY)
    monkeypatch.setattr(gpu, "_functions", {})
    monkeypatch.setattr(gpu, "_launch", counted)
    monkeypatch.setattr(fused, "_device", lambda a: gpu)
    return launches


@pytest.fixture
def cuda_on_host(monkeypatch: pytest.MonkeyPatch) -> None:
    run_cuda_on_host(monkeypatch)


@pytest.mark.parametrize("edge", [False, True], ids=["random", "edge"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kernel_equals_reference(cuda_on_host, case, shape, dtype, edge):
    check_case(case, shape, dtype, edge, HOST_CUPY, np.asarray)


def test_optimizer_steps_take_strided_gradients(cuda_on_host):
    check_strided_gradients(HOST_CUPY, np.asarray)


def test_nan_and_inf_pass_the_activations_as_in_the_reference(cuda_on_host):
    check_non_finite_activations(HOST_CUPY, np.asarray)


@pytest.mark.parametrize("shape", LARGE_SHAPES, ids=str)
@pytest.mark.parametrize("case", REDUCING, ids=lambda c: c.name)
def test_reductions_over_many_blocks(cuda_on_host, case, shape):
    """Sizes past one block, past the grid cap (grid-stride loops) and act_backward's row lanes."""
    check_case(case, shape, np.dtype(np.float64), False, HOST_CUPY, np.asarray)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_training_with_the_cuda_kernels_matches_the_numba_kernels(monkeypatch, small_digits, name, optimizer):
    """Each model of the kernels-on/off test, trained 2 epochs with its fused kernels in CUDA C, ends with
    the weights and losses it gets with the Numba kernels (float32: sums are added in another order)."""

    with backend.use_kernels(True):
        numba = trained(name, "cpu", small_digits, optimizer)
        launches = run_cuda_on_host(monkeypatch)
        cuda = trained(name, "cpu", small_digits, optimizer)
    assert launches[f"{optimizer}_update"] > 0 and launches["bias_act_forward"] > 0, launches  # CUDA C ran
    assert ("vae" not in name) or launches["reparameterize_forward"] == launches["reparameterize_backward"] > 0
    assert_same_training(cuda, numba)


def test_a_wrong_argument_type_is_caught():
    """The stand-in refuses what a GPU could misread: an int for a long long, a float32 array for a double*."""
    kernel = RawModule(gpu.source(), gpu.OPTIONS + ("-Dsae_t=float",)).get_function("mse")
    a = np.zeros(4, np.float32)
    partials = np.zeros(1, np.float64)
    with pytest.raises(TypeError, match="mse argument 4: the kernel takes a 8-byte integer, got a 4-byte integer"):
        kernel((1,), (gpu.BLOCK,), (a, a, a.copy(), partials, np.int32(4)))
    with pytest.raises(
        TypeError, match="argument 3: the kernel takes a pointer to a 8-byte floating, got an array of float32"
    ):
        kernel((1,), (gpu.BLOCK,), (a, a, a.copy(), a.copy(), np.int64(4)))
    with pytest.raises(TypeError, match="grid must be a tuple"):
        kernel(1, (gpu.BLOCK,), (a, a, a.copy(), partials, np.int64(4)))
    with pytest.raises(ValueError, match="block \\(2048,\\)"):
        kernel((1,), (2048,), (a, a, a.copy(), partials, np.int64(4)))
    kernel((1,), (gpu.BLOCK,), (a, a, a.copy(), partials, np.int64(4)))  # the right types run


def host_kernel(code: str, name: str) -> Any:
    return RawModule(code, ("--fmad=false",)).get_function(name)


@pytest.mark.parametrize(
    "body",
    [
        "if (threadIdx.x == 0) return; __syncthreads();",  # one thread returns, the others wait
        "if (threadIdx.x == 0) { __syncthreads(); } else { __syncthreads(); }",  # two barriers
    ],
    ids=["return", "two-barriers"],
)
def test_divergent_barriers_fail_the_launch(body):
    kernel = host_kernel(f'extern "C" __global__ void divergent(int* out) {{ {body} }}', "divergent")
    with pytest.raises(RuntimeError, match="different __syncthreads"):
        kernel((1,), (4,), (np.zeros(1, np.int32),))


def test_shared_memory_starts_undefined_and_a_missing_barrier_shows():
    """Shared memory holds 0xff bytes at each block's start (not zeros, not the last block's values), and
    odd blocks run their threads in reverse: a read before the barrier that should order it goes wrong."""
    code = """extern "C" __global__ void racy(int* unset, int* seen) {
        __shared__ int s[2];
        unset[blockIdx.x] = s[1];
        if (threadIdx.x == 0) s[0] = 42;
        seen[blockIdx.x * blockDim.x + threadIdx.x] = s[0];  /* no __syncthreads() before this read */
    }"""
    unset, seen = np.zeros(2, np.int32), np.zeros(8, np.int32)
    host_kernel(code, "racy")((2,), (4,), (unset, seen))
    assert unset.tolist() == [-1, -1]
    assert seen.tolist() == [42, 42, 42, 42, 42, -1, -1, -1]


def test_a_compile_error_carries_the_compilers_message(cuda_on_host, monkeypatch):
    monkeypatch.setattr(gpu, "source", lambda: 'extern "C" __global__ void broken( { }')
    with pytest.raises(DeviceUnavailableError, match="compiling the CUDA kernels for float32 failed") as info:
        kernels.mse(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    assert "g++ could not compile" in str(info.value) and "error:" in str(info.value)
