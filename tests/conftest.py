"""Shared test options and fixtures.

``pytest --device gpu`` (or ``SCRATCHAE_TEST_DEVICE=gpu``) runs every test that uses the
``device`` fixture on the GPU; where CuPy or a CUDA device is missing those tests are
skipped with the reason listed in the summary. ``--device gpu-standin`` runs them with the
device "gpu" on the host, CuPy played by tests/cupy_standin.py (its rules: see there) and the
CUDA kernels built for the host by g++ (skipped with the reason where they cannot be).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scratchae
from scratchae import Tensor, backend

TEST_DEVICES = ("cpu", "gpu", "gpu-standin")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        choices=TEST_DEVICES,
        default=os.environ.get("SCRATCHAE_TEST_DEVICE", "cpu"),
        help="device for the tests that use the 'device' fixture (default: $SCRATCHAE_TEST_DEVICE or cpu)",
    )
    parser.addoption(
        "--device-tests-only",
        action="store_true",
        help="run only the tests that use the 'device' or 'gpu' fixture (the ones --device changes)",
    )


DEVICE_FIXTURES = {"device", "gpu"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --device-tests-only, deselect the tests that --device leaves as they are."""
    if not config.getoption("--device-tests-only"):
        return
    kept, dropped = [], []
    for item in items:
        (kept if DEVICE_FIXTURES & set(getattr(item, "fixturenames", ())) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the ``slow`` marker; list every skipped test with its reason in the summary (as ``-rs``)."""
    config.addinivalue_line("markers", "slow: takes seconds (still runs by default; deselect with -m 'not slow')")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and "s" not in reporter.reportchars:
        reporter.reportchars += "s"


def pytest_report_header(config: pytest.Config) -> str:
    return f"scratchae test device: {config.getoption('--device')}"


@pytest.fixture
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The device named by ``--device``; skips the test when the GPU is asked for but missing.
    For ``gpu-standin``: "gpu", with the CuPy stand-in as the GPU's array module for the test."""
    name = request.config.getoption("--device")
    if name == "gpu" and not scratchae.gpu_available():
        pytest.skip("--device gpu: CuPy or a CUDA device is missing here (scratchae.gpu_available() is False)")
    if name == "gpu-standin":
        use_cupy_standin(monkeypatch)
        return "gpu"
    return name


@pytest.fixture
def gpu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For the GPU-only tests: skips unless a GPU is there or ``--device gpu-standin`` puts the stand-in there."""
    if request.config.getoption("--device") == "gpu-standin":
        use_cupy_standin(monkeypatch)
    elif not scratchae.gpu_available():
        pytest.skip("needs CuPy and a CUDA GPU (pip install 'scratchae[gpu-cuda12]'), or --device gpu-standin")


@functools.cache
def _standin_problem() -> str | None:
    """Why the stand-in cannot run the CUDA kernels here, or None (probed once per session)."""
    from cuda_host import build_problem

    return build_problem()


def use_cupy_standin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the test ends, CuPy is tests/cupy_standin.py's and the CUDA kernels run on the host."""
    from cupy_standin import CUPY

    problem = _standin_problem()
    if problem is not None:
        pytest.skip(f"--device gpu-standin: {problem}")
    monkeypatch.setattr(backend, "_cupy", CUPY)


@pytest.fixture(scope="module")
def digits() -> scratchae.data.Dataset:
    """The embedded 8x8 digits (loaded once per test module that uses them; do not modify)."""
    return scratchae.data.load("digits")


@pytest.fixture(scope="module")
def small_digits() -> scratchae.data.Dataset:
    """The digits with their first 512 training images (once per test module; do not modify)."""
    return scratchae.data.load("digits", n_train=512)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed NumPy generator, so every test draws the same numbers on every run."""
    return np.random.default_rng(1234)


@pytest.fixture
def tensor(device: str) -> Callable[..., Tensor]:
    """``tensor(array, requires_grad=False, dtype=None)``: a Tensor with that data on the test device."""

    def make(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        return Tensor(backend.as_float_array(data, dtype=dtype, device=device), requires_grad=requires_grad)

    return make


GRAD_RTOL = 1e-6


@pytest.fixture
def check_grads() -> Callable[..., scratchae.GradcheckReport]:
    """``check_grads(fn, inputs, **kw)``: float64 central differences vs backward, relative error < 1e-6."""

    def check(fn: Callable[..., Any], inputs: list[Any], **kwargs: Any) -> scratchae.GradcheckReport:
        report = scratchae.gradcheck(fn, inputs, rtol=GRAD_RTOL, **kwargs)
        assert report.rows, "gradcheck checked no tensor"
        assert report.ok and report.max_rel_error < GRAD_RTOL, report.table()
        return report

    return check
