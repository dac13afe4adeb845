#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and CuPy: the fused kernels against their reference expressions on the
# device, the GPU benchmark, then every test that --device changes, run on the GPU.
#   pip install -e '.[dev,gpu-cuda12]'   (or gpu-cuda13; add '[bench]' for the PyTorch column)
#   offline, where numpy, numba, matplotlib, scikit-learn, pytest, hypothesis and CuPy are installed already:
#   python3 -m pip install --no-deps --no-build-isolation -e .
# Without Fashion-MNIST in /usr/share/datasets/fashion-mnist the benchmark trains on 60,000 synthetic images.
#   bash benchmarks/gpu_check.sh [FOLDER]
# writes gpu-kernels.log, bench-gpu.log, bench-gpu.json and gpu-tests.log to FOLDER (default: the current
# folder). Without CuPy or a GPU it stops at once, exit status 2. The kernel tests come first, then the
# benchmark, so their results are there even if a later part is cut short. Each part runs under a time
# limit in seconds (KERNELS_LIMIT_S, default 90; BENCH_LIMIT_S, 150; TESTS_LIMIT_S, 180: the whole check
# within 7 minutes), and the tests run in TEST_WORKERS processes (default 8) where pytest-xdist is
# installed (pip install pytest-xdist), each test under a limit of 120 s where pytest-timeout is. The
# kernel tests run in one process, so that it compiles the CUDA kernels into CuPy's cache once for the
# workers of the last part. The tests that --device leaves alone (the CPU-only ones) are not run: the
# CPU suite covers them; nor, in the last part, the kernel tests of the first. The interpreter is
# $PYTHON, else python3, else python.
# The exit status is the first failing part's (124: it ran past its limit).
set -euo pipefail
out="${1:-.}"
mkdir -p "$out"
out="$(realpath "$out")"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python="${PYTHON:-$(command -v python3 || command -v python)}"
probe_code="import sys, cupy; assert cupy.cuda.runtime.getDeviceCount() > 0; print(sys.executable, 'CuPy', cupy.__version__)"
if ! probe="$("$python" -c "$probe_code" 2>&1)"; then
    echo "gpu_check: no GPU here, nothing run: CuPy does not import or sees no CUDA device (${probe##*$'\n'})" >&2
    exit 2
fi
echo "gpu_check: $probe"
workers=()
if "$python" -c "import xdist" 2>/dev/null; then
    workers=(-n "${TEST_WORKERS:-8}")
fi
per_test=(-p no:cacheprovider)
if "$python" -c "import pytest_timeout" 2>/dev/null; then
    per_test+=(--timeout 120)
fi
kernels=0
timeout "${KERNELS_LIMIT_S:-90}" "$python" -m pytest -q --device gpu "${per_test[@]}" tests/test_kernels_gpu.py 2>&1 \
    | tee "$out/gpu-kernels.log" || kernels=$?
bench=0
timeout "${BENCH_LIMIT_S:-150}" "$python" -m scratchae bench --device gpu --json "$out/bench-gpu.json" 2>&1 \
    | tee "$out/bench-gpu.log" || bench=$?
tests=0
timeout "${TESTS_LIMIT_S:-180}" "$python" -m pytest -q --device gpu --device-tests-only "${per_test[@]}" "${workers[@]}" \
    --ignore tests/test_kernels_gpu.py 2>&1 \
    | tee "$out/gpu-tests.log" || tests=$?
for status in "$kernels" "$bench" "$tests"; do
    if [ "$status" -ne 0 ]; then exit "$status"; fi
done
exit 0
