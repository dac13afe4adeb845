#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and CuPy: the GPU benchmark, then the whole test suite on the GPU.
#   pip install -e '.[dev,gpu-cuda12]'   (or gpu-cuda13; add '[bench]' for the PyTorch column)
#   offline, where numpy, numba, matplotlib, scikit-learn, pytest, hypothesis and CuPy are installed already:
#   pip install --no-deps --no-build-isolation -e .
# Without Fashion-MNIST in /usr/share/datasets/fashion-mnist the benchmark trains on 60,000 synthetic images.
#   bash benchmarks/gpu_check.sh [FOLDER]
# writes bench-gpu.log, bench-gpu.json and gpu-tests.log to FOLDER (default: the current folder).
# Without CuPy or a GPU it stops at once, exit status 2. The benchmark comes first, so its figures are
# there even if the tests are cut short. Each part runs under a time limit in seconds (BENCH_LIMIT_S,
# default 200; TESTS_LIMIT_S, default 340: the whole check within 10 minutes), and the tests run in
# TEST_WORKERS processes (default 8) where pytest-xdist is installed (pip install pytest-xdist).
# The exit status is the tests', else the benchmark's (124: a part ran past its limit).
set -euo pipefail
out="${1:-.}"
mkdir -p "$out"
out="$(realpath "$out")"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python="$(command -v python || command -v python3)"
if ! probe="$("$python" -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0" 2>&1)"; then
    echo "gpu_check: no GPU here, nothing run: CuPy does not import or sees no CUDA device (${probe##*$'\n'})" >&2
    exit 2
fi
bench=0
timeout "${BENCH_LIMIT_S:-200}" scratchae bench --device gpu --json "$out/bench-gpu.json" 2>&1 \
    | tee "$out/bench-gpu.log" || bench=$?
workers=()
if "$python" -c "import xdist" 2>/dev/null; then
    workers=(-n "${TEST_WORKERS:-8}")
fi
tests=0
timeout "${TESTS_LIMIT_S:-340}" "$python" -m pytest -q --device gpu "${workers[@]}" 2>&1 \
    | tee "$out/gpu-tests.log" || tests=$?
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
exit "$bench"
