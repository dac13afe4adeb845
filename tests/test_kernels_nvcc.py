"""Every CUDA source compiles with ``nvcc --ptx`` for float and double, and matches its Python side.

The compiled module's kernels take exactly the parameters that ``kernels/gpu.py`` passes
(checked in the PTX), and the constants shared by the sources and the Python code agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from scratchae.kernels import gpu
from scratchae.kernels.args import ACTIVATION_CODES, GROUP

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH (install the CUDA toolkit)")
C_TYPES = sorted(gpu.C_TYPES.values())
PTX_TYPES = {"p": "u64", "q": "u64", "i": "u32"}  # "t": f32 or f64


def nvcc_ptx(source, c_type, out_dir):
    """Compile ``source`` (a path) to PTX with the options of gpu.py; the PTX text."""
    ptx = out_dir / f"{source.stem}-{c_type}.ptx"
    cmd = [NVCC, "--ptx", "-arch=sm_75", *gpu.OPTIONS, f"-Dsae_t={c_type}", "-I", str(gpu.HERE), str(source)]
    result = subprocess.run([*cmd, "-o", str(ptx)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return ptx.read_text()


@needs_nvcc
@pytest.mark.parametrize("c_type", C_TYPES)
@pytest.mark.parametrize("name", gpu.SOURCES)
def test_source_compiles(name, c_type, tmp_path):
    nvcc_ptx(gpu.HERE / name, c_type, tmp_path)


@needs_nvcc
@pytest.mark.parametrize("c_type", C_TYPES)
def test_module_kernels_take_the_parameters_gpu_py_passes(c_type, tmp_path):
    source = tmp_path / "module.cu"
    source.write_text(gpu.source())
    ptx = nvcc_ptx(source, c_type, tmp_path)
    entries = {m[1]: re.findall(r"\.param \.(\w+)", m[2]) for m in re.finditer(r"\.entry (\w+)\(([^)]*)\)", ptx)}
    scalar = "f32" if c_type == "float" else "f64"
    expected = {name: [PTX_TYPES.get(k, scalar) for k in kinds] for name, kinds in gpu.SIGNATURES.items()}
    assert entries == expected


def test_activation_codes_match_common_cu():
    text = (gpu.HERE / "common.cu").read_text()
    codes = {name.lower(): int(value) for name, value in re.findall(r"ACT_(\w+) = (\d+)", text)}
    assert codes == ACTIVATION_CODES


@pytest.mark.parametrize(
    ("file", "macro", "value"),
    [
        ("common.cu", "SAE_BLOCK", gpu.BLOCK),
        ("activations.cu", "SAE_TILE_X", gpu.TILE[0]),
        ("activations.cu", "SAE_TILE_Y", gpu.TILE[1]),
        ("optim.cu", "SAE_GROUP", GROUP),
    ],
)
def test_launch_sizes_match_the_sources(file, macro, value):
    text = (gpu.HERE / file).read_text()
    assert int(re.search(rf"#define {macro} (\d+)", text)[1]) == value
