"""benchmarks/kernels_micro.py runs through: its table and its parallel check, each case timed once;
benchmarks/gpu_check.sh runs the GPU kernel tests, the GPU benchmark, then the device tests, and writes their output
to the folder asked for."""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels_micro.py"
GPU_CHECK = SCRIPT.with_name("gpu_check.sh")


@pytest.fixture
def micro(monkeypatch):
    spec = importlib.util.spec_from_file_location("kernels_micro", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def once(fn, sync, budget=0.2):
        fn()
        sync()
        return 1e-6

    monkeypatch.setattr(module, "best_time", once)
    monkeypatch.setattr(module, "BATCHES", (4,))
    return module


def test_the_kernel_table_covers_every_kernel(micro, capsys):
    micro.run_table("cpu", np.dtype(np.float32))
    out = capsys.readouterr().out
    for name in ("bias_act_forward", "act_backward", "bce_with_logits", "gaussian_kl", "adam_update"):
        assert name in out


def test_the_parallel_check_calls_the_kernels_with_their_signatures(micro, capsys):
    """One timed line per batch size and variant: the serial kernels and their parallel=True builds both ran."""
    micro.parallel_check(np.dtype(np.float32))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"batch     4 step with {label:8s} kernels:     0.00 ms" for label in ("serial", "parallel")]


def _stub_python(
    tmp_path: Path,
    statuses: tuple[int, int, int] = (0, 0, 0),
    xdist: bool = False,
    gpu: bool = True,
    bench: str = "",
    timeout: bool = False,
) -> dict[str, str]:
    """A stand-in for python3 on PATH: it echoes its arguments and appends them to
    ``tmp_path/calls``; ``-c`` (the script's probes) exits 0 for CuPy when ``gpu``, for pytest-xdist when
    ``xdist``, for pytest-timeout when ``timeout``; the kernel tests, the benchmark and the device tests
    exit with ``statuses`` in that order, the benchmark after running ``bench`` (shell commands) when given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    cupy = "exit 0" if gpu else "echo \"ModuleNotFoundError: No module named 'cupy'\" >&2; exit 1"
    probes = (
        f'case "$2" in *cupy*) {cupy};; *xdist*) exit {0 if xdist else 1};; '
        f"*pytest_timeout*) exit {0 if timeout else 1};; esac"
    )
    kernels, benchmark, tests = statuses
    parts = (
        f'case "$*" in *device-tests-only*) exit {tests};; *test_kernels_gpu*) exit {kernels};; '
        f'*"scratchae bench"*) {bench} exit {benchmark};; esac'
    )
    stub = bin_dir / "python3"
    stub.write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then {probes}; fi\n'
        f'echo "python $*" >>"{tmp_path}/calls"\necho "python $*"\n{parts}\n'
    )
    stub.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


KERNELS = "python -m pytest -q --device gpu -p no:cacheprovider tests/test_kernels_gpu.py\n"
TESTS = "python -m pytest -q --device gpu --device-tests-only -p no:cacheprovider"
IGNORED = " --ignore tests/test_kernels_gpu.py\n"  # run in the first part


@pytest.mark.parametrize("where", ["argument", "default"])
def test_gpu_check_writes_its_logs_and_json_to_the_folder(tmp_path, where):
    """With a stand-in for python on PATH: the commands it runs, in order (the kernel tests, the
    benchmark, the device tests), and where their output goes: the folder given (made if need be),
    else the current one."""
    out = tmp_path / "out" / "gpu"
    env = _stub_python(tmp_path)
    if where == "argument":
        args, cwd = [str(out)], tmp_path  # a folder not made yet: the script makes it
    else:
        out.mkdir(parents=True)
        args, cwd = [], out
    subprocess.run(["bash", str(GPU_CHECK), *args], env=env, check=True, capture_output=True, cwd=cwd)
    bench = f"python -m scratchae bench --device gpu --json {out}/bench-gpu.json\n"
    assert (out / "gpu-kernels.log").read_text() == KERNELS
    assert (out / "bench-gpu.log").read_text() == bench
    assert (out / "gpu-tests.log").read_text() == TESTS + IGNORED
    assert (tmp_path / "calls").read_text() == KERNELS + bench + TESTS + IGNORED


def test_gpu_check_runs_the_tests_in_parallel_where_pytest_xdist_is_installed(tmp_path):
    """The device tests in 8 workers (TEST_WORKERS); the kernel tests in one process, which compiles the
    CUDA kernels into CuPy's cache once."""
    out = tmp_path / "out"
    env = _stub_python(tmp_path, xdist=True)
    subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, check=True, capture_output=True, cwd=tmp_path)
    assert (out / "gpu-tests.log").read_text() == TESTS + " -n 8" + IGNORED
    assert (out / "gpu-kernels.log").read_text() == KERNELS
    env["TEST_WORKERS"] = "3"
    subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, check=True, capture_output=True, cwd=tmp_path)
    assert (out / "gpu-tests.log").read_text() == TESTS + " -n 3" + IGNORED


@pytest.mark.parametrize("statuses, expected", [((0, 0, 1), 1), ((1, 0, 0), 1), ((0, 3, 1), 3), ((0, 0, 0), 0)])
def test_gpu_check_runs_every_part_and_exits_with_the_first_failing_ones_status(tmp_path, statuses, expected):
    out = tmp_path / "out"
    env = _stub_python(tmp_path, statuses=statuses)
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, cwd=tmp_path)
    assert done.returncode == expected
    assert (tmp_path / "calls").read_text().count("\n") == 3


def test_gpu_check_stops_a_part_at_its_time_limit_and_goes_on(tmp_path):
    """A benchmark that runs past BENCH_LIMIT_S is stopped; the tests still run, and the exit status is 124."""
    out = tmp_path / "out"
    env = _stub_python(tmp_path, bench="echo started; sleep 30;")
    env["BENCH_LIMIT_S"] = "1"
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, cwd=tmp_path, timeout=20)
    assert done.returncode == 124
    assert (out / "bench-gpu.log").read_text().endswith("started\n")
    assert (out / "gpu-tests.log").read_text() == TESTS + IGNORED


def test_gpu_check_limits_each_test_where_pytest_timeout_is_installed(tmp_path):
    out = tmp_path / "out"
    env = _stub_python(tmp_path, timeout=True)
    subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, check=True, capture_output=True, cwd=tmp_path)
    assert (out / "gpu-kernels.log").read_text() == KERNELS.replace(" tests/", " --timeout 120 tests/")
    assert (out / "gpu-tests.log").read_text() == TESTS + " --timeout 120" + IGNORED


def test_gpu_check_takes_python3_before_python_and_PYTHON_before_both(tmp_path):
    """python3 and python both on PATH: python3 runs; PYTHON names another interpreter: that one runs.
    The probe's line (the interpreter, CuPy's version) is printed first."""
    out = tmp_path / "out"
    env = _stub_python(tmp_path)
    (tmp_path / "bin" / "python").write_text("#!/bin/sh\necho wrong interpreter >&2\nexit 5\n")
    (tmp_path / "bin" / "python").chmod(0o755)
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and (out / "gpu-kernels.log").read_text() == KERNELS, done.stderr
    assert done.stdout.startswith("gpu_check: ")
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "bin" / "python3").rename(other / "py")
    env["PYTHON"] = str(other / "py")
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and (out / "gpu-tests.log").read_text() == TESTS + IGNORED, done.stderr


def test_gpu_check_without_a_gpu_says_so_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    env = _stub_python(tmp_path, gpu=False)
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("gpu_check: no GPU here, nothing run")
    assert done.stderr.rstrip().endswith("(ModuleNotFoundError: No module named 'cupy')")
    assert not (tmp_path / "calls").exists() and not list(out.iterdir())


def test_device_tests_only_keeps_the_tests_that_use_the_device_fixtures():
    """--device-tests-only (what gpu_check runs on the GPU) keeps exactly test_backend's tests that take the
    device or gpu fixture (none of them takes it through another fixture)."""
    import test_backend

    root = Path(__file__).resolve().parents[1]
    args = ["-m", "pytest", "-q", "--collect-only", "tests/test_backend.py"]
    names = {}
    for flag in ([], ["--device-tests-only"]):
        listed = subprocess.run([sys.executable, *args, *flag], capture_output=True, text=True, cwd=root, check=True)
        names[bool(flag)] = {line.split("::")[1].split("[")[0] for line in listed.stdout.splitlines() if "::" in line}
    takes = {n for n in names[False] if {"device", "gpu"} & set(inspect.signature(getattr(test_backend, n)).parameters)}
    assert takes and names[False] - takes  # both kinds are there
    assert names[True] == takes
