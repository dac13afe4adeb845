"""benchmarks/kernels_micro.py runs through: its table and its parallel check, each case timed once;
benchmarks/gpu_check.sh runs the GPU benchmark, then the GPU tests, and writes their output to the folder asked for."""

from __future__ import annotations

import importlib.util
import os
import subprocess
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
    micro.parallel_check(np.dtype(np.float32))
    out = capsys.readouterr().out
    assert "serial" in out and "parallel" in out


def _stub_commands(tmp_path: Path, tests_status: int = 0, xdist: bool = False, gpu: bool = True) -> dict[str, str]:
    """Stand-ins for python and scratchae on PATH: each echoes its arguments, and appends them to
    ``tmp_path/calls``; ``python -c`` (the script's probes) exits 0 for CuPy when ``gpu``, for
    pytest-xdist when ``xdist``; pytest exits with ``tests_status``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cupy = "exit 0" if gpu else "echo \"ModuleNotFoundError: No module named 'cupy'\" >&2; exit 1"
    probes = f'case "$2" in *cupy*) {cupy};; *xdist*) exit {0 if xdist else 1};; esac'
    for name, status in (("python", tests_status), ("scratchae", 0)):
        stub = bin_dir / name
        stub.write_text(
            f'#!/bin/sh\nif [ "$1" = "-c" ]; then {probes}; fi\n'
            f'echo "{name} $*" >>"{tmp_path}/calls"\necho "{name} $*"\nexit {status}\n'
        )
        stub.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("where", ["argument", "default"])
def test_gpu_check_writes_its_logs_and_json_to_the_folder(tmp_path, where):
    """With stand-ins for python and scratchae on PATH: the commands it runs, in order (the benchmark
    first), and where their output goes: the folder given (made if need be), else the current one."""
    out = tmp_path / "out" / "gpu"
    env = _stub_commands(tmp_path)
    if where == "argument":
        args, cwd = [str(out)], tmp_path  # a folder not made yet: the script makes it
    else:
        out.mkdir(parents=True)
        args, cwd = [], out
    subprocess.run(["bash", str(GPU_CHECK), *args], env=env, check=True, capture_output=True, cwd=cwd)
    bench = f"scratchae bench --device gpu --json {out}/bench-gpu.json\n"
    tests = "python -m pytest -q --device gpu\n"
    assert (out / "bench-gpu.log").read_text() == bench
    assert (out / "gpu-tests.log").read_text() == tests
    assert (tmp_path / "calls").read_text() == bench + tests


def test_gpu_check_runs_the_tests_in_parallel_where_pytest_xdist_is_installed(tmp_path):
    out = tmp_path / "out"
    env = _stub_commands(tmp_path, xdist=True)
    subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, check=True, capture_output=True, cwd=tmp_path)
    assert (out / "gpu-tests.log").read_text() == "python -m pytest -q --device gpu -n 8\n"
    env["TEST_WORKERS"] = "3"
    subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, check=True, capture_output=True, cwd=tmp_path)
    assert (out / "gpu-tests.log").read_text() == "python -m pytest -q --device gpu -n 3\n"


def test_gpu_check_exits_with_the_tests_status_and_keeps_the_benchmark(tmp_path):
    out = tmp_path / "out"
    env = _stub_commands(tmp_path, tests_status=1)
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, cwd=tmp_path)
    assert done.returncode == 1
    assert (out / "bench-gpu.log").read_text().startswith("scratchae bench --device gpu")


def test_gpu_check_stops_a_part_at_its_time_limit_and_goes_on(tmp_path):
    """A benchmark that runs past BENCH_LIMIT_S is stopped; the tests still run, and the exit status is 124."""
    out = tmp_path / "out"
    env = _stub_commands(tmp_path)
    (tmp_path / "bin" / "scratchae").write_text("#!/bin/sh\necho started\nsleep 30\n")
    env["BENCH_LIMIT_S"] = "1"
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, cwd=tmp_path, timeout=20)
    assert done.returncode == 124
    assert (out / "bench-gpu.log").read_text() == "started\n"
    assert (out / "gpu-tests.log").read_text() == "python -m pytest -q --device gpu\n"


def test_gpu_check_without_a_gpu_says_so_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    env = _stub_commands(tmp_path, gpu=False)
    done = subprocess.run(["bash", str(GPU_CHECK), str(out)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("gpu_check: no GPU here, nothing run")
    assert done.stderr.rstrip().endswith("(ModuleNotFoundError: No module named 'cupy')")
    assert not (tmp_path / "calls").exists() and not list(out.iterdir())
