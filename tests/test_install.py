"""A plain (non-editable) install ships every module, including ``kernels/`` as ``scratchae.kernels``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "runs", "venv", ".venv")


def _python_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.py") if "__pycache__" not in p.parts}


@pytest.mark.slow
def test_plain_install_contains_every_module_and_the_kernels_package(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the work tree
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    target = tmp_path / "installed"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*command, "--target", str(target), str(source)], capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, (
        "pip install failed (with --no-build-isolation the build backend's own requirements must be "
        f"installed, e.g. 'wheel' for setuptools < 70.1):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )

    installed = target / "scratchae"
    assert (installed / "kernels" / "__init__.py").is_file()
    expected = {f"scratchae/{f}" for f in _python_files(source / "scratchae")}
    expected |= {f"scratchae/kernels/{f}" for f in _python_files(source / "kernels")}
    missing = expected - {f"scratchae/{f}" for f in _python_files(installed)}
    assert not missing, f"modules left out of the install (add their packages in pyproject.toml): {sorted(missing)}"
    for cu in (source / "kernels").glob("*.cu"):
        assert (installed / "kernels" / cu.name).is_file(), f"CUDA source {cu.name} not shipped"

    env = {**os.environ, "PYTHONPATH": str(target)}  # ahead of the editable install; cwd away from the tree
    probe = "import scratchae, scratchae.kernels as k; print(scratchae.__file__); print(k.__file__)"
    imported = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert imported.returncode == 0, imported.stderr
    files = [Path(line).resolve() for line in imported.stdout.split()]
    assert files == [(installed / "__init__.py").resolve(), (installed / "kernels" / "__init__.py").resolve()]
