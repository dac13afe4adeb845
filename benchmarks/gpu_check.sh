#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and CuPy: the whole test suite on the GPU, then the GPU benchmark.
#   pip install -e '.[dev,gpu-cuda12]'   (or gpu-cuda13; add '[bench]' for the PyTorch column)
#   offline, where numpy, numba, matplotlib, scikit-learn, pytest, hypothesis and CuPy are installed already:
#   pip install --no-deps --no-build-isolation -e .
# Without Fashion-MNIST in /usr/share/datasets/fashion-mnist the benchmark trains on 60,000 synthetic images.
#   bash benchmarks/gpu_check.sh [FOLDER]
# writes gpu-tests.log, bench-gpu.log and bench-gpu.json to FOLDER (default: $OUT where set, else here).
# The benchmark runs even when a test fails; the exit status is the tests', else the benchmark's.
set -euo pipefail
out="${1:-${OUT:-.}}"
mkdir -p "$out"
out="$(realpath "$out")"
cd "$(dirname "$0")/.."
tests=0
PYTHONUNBUFFERED=1 python -m pytest -q --device gpu 2>&1 | tee "$out/gpu-tests.log" || tests=$?
PYTHONUNBUFFERED=1 scratchae bench --device gpu --json "$out/bench-gpu.json" 2>&1 | tee "$out/bench-gpu.log"
exit "$tests"
