"""The CUDA kernels equal their reference expressions on CuPy arrays (the cases of the CPU tests)."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import CASES, DTYPES, LARGE_SHAPES, SHAPES, check_case, check_non_finite_activations

from scratchae import DeviceError, backend, kernels
from scratchae.backend import to_numpy

pytestmark = pytest.mark.usefixtures("gpu")


@pytest.mark.parametrize("edge", [False, True], ids=["random", "edge"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kernel_equals_reference(case, shape, dtype, edge):
    check_case(case, shape, dtype, edge, backend.array_module("gpu"), to_numpy)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [*LARGE_SHAPES, (300, 1001), (4096, 32)], ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kernel_equals_reference_on_large_arrays(case, shape, dtype):
    """Past the grid cap every grid-stride loop and the partial sums take several passes, as the small
    shapes never make them (the host emulation runs the reductions at LARGE_SHAPES in float64)."""
    check_case(case, shape, dtype, True, backend.array_module("gpu"), to_numpy)


def test_nan_and_inf_pass_the_activations_as_in_the_reference():
    check_non_finite_activations(backend.array_module("gpu"), to_numpy)


def test_arrays_on_two_devices_are_refused():
    cp = backend.array_module("gpu")
    with pytest.raises(DeviceError, match="target is on cpu but pred is on gpu"):
        kernels.mse(cp.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
