#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and CuPy: the whole test suite on the GPU, then the GPU benchmark.
#   pip install -e '.[dev,gpu-cuda12]'   (or gpu-cuda13; add '[bench]' for the PyTorch column)
#   offline, where numpy, numba, matplotlib, scikit-learn, pytest, hypothesis and CuPy are installed already:
#   pip install --no-deps --no-build-isolation -e .
# Without Fashion-MNIST in /usr/share/datasets/fashion-mnist the benchmark trains on 60,000 synthetic images.
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q --device gpu
scratchae bench --device gpu --json bench-gpu.json
