"""Devices, dtypes, transfers and the error types."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest

import scratchae
from scratchae import ArgumentError, DeviceError, DeviceUnavailableError, DTypeError, ShapeError, backend, errors, nn


@pytest.mark.parametrize("name", ["tpu", "cuda", "GPU", "", 0, ("cpu",)], ids=repr)
def test_unknown_device_names_the_choices(name):
    with pytest.raises(DeviceError, match=r"unknown device .*expected one of cpu, gpu") as info:
        backend.check_device(name)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: scratchae.set_default_device("cuda"),
        lambda: backend.array_module("cuda"),
        lambda: backend.as_float_array([1.0], device="cuda"),
        lambda: nn.Dense(2, 2, device="cuda"),
    ],
    ids=["set_default_device", "array_module", "as_float_array", "Dense"],
)
def test_every_entry_point_checks_the_device(call):
    with pytest.raises(DeviceError, match="'cuda'"):
        call()
    assert scratchae.get_default_device() == "cpu"


def test_none_means_the_default_device():
    assert backend.check_device(None) == scratchae.get_default_device() == "cpu"
    scratchae.set_default_device("cpu")
    assert backend.array_module(None) is np


def test_gpu_without_cupy_names_the_fix():
    if scratchae.gpu_available():
        pytest.skip("a GPU and CuPy are present here: the missing-GPU error cannot be provoked")
    for call in (
        lambda: backend.check_device("gpu"),
        lambda: scratchae.set_default_device("gpu"),
        lambda: nn.Dense(2, 2, device="gpu"),
    ):
        with pytest.raises(DeviceUnavailableError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, RuntimeError)
        assert "pip install" in message and "scratchae[gpu-cuda12]" in message and "device='cpu'" in message
    assert scratchae.get_default_device() == "cpu"


def test_transfers_round_trip_on_the_test_device(device):
    host = np.arange(6.0).reshape(2, 3)
    on_device = backend.to_device(host, device)
    assert backend.device_of(on_device) == device
    assert backend.array_module_of(on_device) is backend.array_module(device)
    back = backend.to_numpy(on_device)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    assert backend.to_float(on_device.sum()) == 15.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", "float64"])
def test_as_float_array_converts_to_a_requested_dtype(device, dtype):
    arr = backend.as_float_array(np.arange(3), dtype=dtype, device=device)
    assert arr.dtype == np.dtype(dtype) and backend.device_of(arr) == device


@pytest.mark.parametrize("dtype", [np.float16, np.int32, "complex128", "not-a-dtype", object])
def test_check_float_dtype_refuses_others(dtype):
    with pytest.raises(DTypeError, match="expected float32 or float64") as info:
        backend.check_float_dtype(dtype)
    assert isinstance(info.value, TypeError)


def test_seeded_generators_repeat(device):
    a, b = backend.new_rng(5, device), backend.new_rng(5, device)
    np.testing.assert_array_equal(backend.to_numpy(a.standard_normal(4)), backend.to_numpy(b.standard_normal(4)))


@pytest.mark.parametrize(
    "error, builtin",
    [
        (errors.ShapeError, ValueError),
        (errors.DTypeError, TypeError),
        (errors.ArgumentError, ValueError),
        (errors.DeviceError, ValueError),
        (errors.DeviceUnavailableError, RuntimeError),
        (errors.DataError, ValueError),
        (errors.DataNotFoundError, FileNotFoundError),
        (errors.CheckpointError, ValueError),
        (errors.DivergenceError, FloatingPointError),
        (errors.GradcheckError, AssertionError),
        (errors.GraphError, RuntimeError),
    ],
)
def test_errors_derive_from_scratchae_error_and_a_builtin(error, builtin):
    assert issubclass(error, errors.ScratchAEError) and issubclass(error, builtin)
    assert getattr(scratchae, error.__name__) is error


def test_a_cupy_array_is_recognised_before_anything_here_used_the_gpu(monkeypatch):
    """A CuPy array the caller made (CuPy imported, ``backend`` not yet asked for the GPU) is a GPU array,
    so it is never handed to NumPy or the Numba kernels. A stand-in module plays CuPy here."""
    fake_cupy = types.ModuleType("cupy")

    class FakeGPUArray:
        pass

    fake_cupy.ndarray = FakeGPUArray
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(backend, "_cupy", None)
    assert backend.is_gpu_array(FakeGPUArray()) and backend.device_of(FakeGPUArray()) == "gpu"
    assert not backend.is_gpu_array(np.ones(2)) and backend.device_of(np.ones(2)) == "cpu"


def test_ragged_data_is_refused_for_every_device(device):
    with pytest.raises(ShapeError, match="ragged"):
        backend.as_float_array([[1.0, 2.0], [3.0]], device=device)
    with pytest.raises(DTypeError, match="numeric"):
        backend.as_float_array(np.array(["a", "b"]), device=device)


def test_synchronize_checks_the_device(device):
    backend.synchronize(device)  # waits for queued GPU work; nothing to wait for on the CPU
    with pytest.raises(DeviceError, match="'cuda'"):
        backend.synchronize("cuda")


class CompileException(Exception):
    """Stands for CuPy's cupy.cuda.compiler.CompileException (NVRTC ran and refused the sources)."""


def _failing_compiler(monkeypatch: pytest.MonkeyPatch, error: Exception) -> Any:
    """kernels.gpu with a CuPy whose RawModule raises ``error``, and no kernel compiled yet."""
    from scratchae.kernels import gpu

    class Failing:
        def RawModule(self, **kwargs):
            raise error

    monkeypatch.setattr(gpu, "array_module", lambda device: Failing())
    monkeypatch.setattr(gpu, "_functions", {})
    return gpu


def test_a_cuda_compiler_failure_names_the_fix(monkeypatch):
    """When NVRTC (or a CUDA library) cannot be loaded, the first GPU kernel says what to install."""
    gpu = _failing_compiler(monkeypatch, RuntimeError("libnvrtc.so.13: cannot open shared object file"))
    with pytest.raises(
        DeviceUnavailableError, match=r"compiling the CUDA kernels for float32 failed .*libnvrtc"
    ) as info:
        gpu._function("adam_update", np.dtype(np.float32))
    assert "pip install 'scratchae[gpu-cuda12]'" in str(info.value) and isinstance(info.value, RuntimeError)


class CUDADriverError(RuntimeError):
    """Stands for CuPy's cupy.cuda.driver.CUDADriverError (the driver ran and refused)."""


@pytest.mark.parametrize(
    "error, dtype, message",
    [
        # a PTX newer than the driver: the libraries are there, so the driver's message comes without the hint
        (
            CUDADriverError("CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
            np.float32,
            r"loading the CUDA kernels for float32 failed \(CUDADriverError: CUDA_ERROR_UNS",
        ),
        # NVRTC's own error (CuPy's CompileException) is passed on as it is
        (
            CompileException("kernel.cu(12): error: identifier 'sae_t' is undefined"),
            np.float64,
            r"NVRTC could not compile the CUDA kernels for float64: .*sae_t",
        ),
    ],
    ids=["driver", "compiler"],
)
def test_a_device_or_compiler_refusal_is_not_called_an_installation_problem(monkeypatch, error, dtype, message):
    """Where the CUDA libraries loaded and then refused the kernels, the message is theirs, without the install hint."""
    gpu = _failing_compiler(monkeypatch, error)
    with pytest.raises(DeviceUnavailableError, match=message) as info:
        gpu._function("mse", np.dtype(dtype))
    assert "pip install" not in str(info.value)


@pytest.mark.parametrize("value, enabled", [("0", False), ("off", False), (" False ", False), ("1", True), ("", True)])
def test_scratchae_kernels_in_the_environment_sets_the_default(value, enabled):
    import os
    import subprocess

    code = "from scratchae import backend; print(backend.kernels_enabled())"
    env = {**os.environ, "SCRATCHAE_KERNELS": value}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(enabled) and "SCRATCHAE_KERNELS" not in done.stderr


def test_an_unknown_scratchae_kernels_value_warns_and_leaves_the_kernels_on():
    with pytest.warns(UserWarning, match=r"SCRATCHAE_KERNELS='maybe' is not one of 0, false, off, no \(off\)"):
        assert backend.kernels_from_environment("maybe") is True


@pytest.mark.parametrize("value", ["off", "no", 0, None])
def test_use_kernels_takes_a_bool_only(value):
    before = backend.kernels_enabled()
    with pytest.raises(ArgumentError, match=f"use_kernels takes True or False, got {value!r}"):
        backend.use_kernels(value)
    assert backend.kernels_enabled() == before
    with backend.use_kernels(np.bool_(False)):
        assert not backend.kernels_enabled()
