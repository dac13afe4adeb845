"""The lesson scripts (dimension reduction, denoising, VAE generation, conditional VAE, gradient study,
loss discussion) run end to end with --quick: exit 0, print their findings, write valid PNGs and a
JSON of finite numbers."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SCRIPTS = {
    "dimension_reduction": (
        [],
        ["pca_vs_ae", "latent_ae", "latent_pca", "reconstructions"],
        ["test_sq_error_ae", "test_sq_error_pca", "probe_accuracy_2d"],
    ),
    "denoising": ([], ["masking", "gaussian", "salt_pepper"], ["plain_ae_clean_error", "noise"]),
    "vae_generation": (["--reference"], ["loss", "samples", "manifold", "latent"], ["history", "reference", "latent2"]),
    "conditional_vae": ([], ["grid"], ["generated_accuracy_per_class", "classifier_real_test_accuracy"]),
    "gradient_study": ([], ["errors"], ["trace", "gradcheck", "hand_derived_max_error"]),
    "loss_discussion": ([], ["a", "b", "c", "c2"], ["cases", "predictions"]),
}


def numbers(value: Any) -> list[float]:
    """Every int or float inside a JSON value (booleans and None excluded)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    return []


def run_script(name: str, extra: list[str], out: Path) -> subprocess.CompletedProcess:
    # one BLAS thread: the scripts' matrices are small, and on a busy machine a thread pool only waits
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    cmd = [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=EXAMPLES.parent)


Run = tuple[Path, str]  # (the script's output folder, its stdout)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """``run(name)``: the script run once with --quick (later calls reuse that run)."""
    done: dict[str, Run] = {}

    def get(name: str) -> Run:
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            proc = run_script(name, SCRIPTS[name][0], out)
            assert proc.returncode == 0, (
                f"{name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
            done[name] = (out, proc.stdout)
        return done[name]

    return get


def payload_of(run: Callable[[str], Run], name: str) -> dict[str, Any]:
    return json.loads((run(name)[0] / f"{name}.json").read_text())


@pytest.mark.parametrize("name", SCRIPTS)
def test_prints_its_findings(run: Callable[[str], Run], name: str) -> None:
    stdout = run(name)[1]
    assert "prediction:" in stdout, f"{name} printed no prediction"
    assert "wall time" in stdout
    assert not re.search(r"\b1 epochs\b|epoch\(s\)", stdout), f"{name} does not pluralise a count of epochs"


# the scripts whose predictions need training: with --quick, each miss says the training is too short
# (the gradient study's checks are exact whatever the training)
TRAINED_PREDICTIONS = sorted(set(SCRIPTS) - {"gradient_study"})


@pytest.mark.parametrize("name", TRAINED_PREDICTIONS)
def test_a_quick_miss_says_the_training_is_too_short(run: Callable[[str], Run], name: str) -> None:
    bare = [line for line in run(name)[1].splitlines() if re.search(r"did NOT hold(?! \(--quick)", line)]
    assert not bare, f"{name}: a --quick miss without the note: {bare}"


def test_dimension_reduction_says_why_unlabelled_data_get_no_probe(tmp_path, rng):
    np.save(tmp_path / "unlabelled.npy", rng.random((120, 8, 8)).astype(np.float32))
    proc = run_script("dimension_reduction", ["--data", str(tmp_path / "unlabelled.npy")], tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("2. "))
    first = next(line for line in lines[heading + 1 :] if not line.startswith("wrote "))  # past the figures
    assert "no class labels" in first and "linear-probe" not in proc.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_writes_valid_pngs(run: Callable[[str], Run], name: str) -> None:
    """Each figure is there, a PNG of a sensible size, and the script said where it wrote it."""
    out, stdout = run(name)
    for stem in SCRIPTS[name][1]:
        path = out / f"{name}_{stem}.png"
        assert path.is_file(), f"{path.name} missing; found {sorted(p.name for p in out.iterdir())}"
        assert f"wrote {path}" in stdout, f"{name} did not say that it wrote {path.name}"
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) >= 50, f"{path.name}: unexpected image shape {image.shape}"
        assert image.std() > 0, f"{path.name} is blank"


@pytest.mark.parametrize("name", SCRIPTS)
def test_writes_json_of_finite_numbers(run: Callable[[str], Run], name: str) -> None:
    payload = payload_of(run, name)
    for key in SCRIPTS[name][2]:
        assert key in payload, f"{name}.json lacks {key!r}"
    values = numbers(payload)
    assert values, f"{name}.json holds no numbers"
    bad = [v for v in values if not math.isfinite(v)]
    assert not bad, f"{name}.json has non-finite numbers: {bad[:5]}"
    assert payload["seconds"] > 0


def test_gradient_study_checks_pass(run: Callable[[str], Run]) -> None:
    """The gradient study's own verdicts: every op and every parameter within tolerance, the formulas exact."""
    payload = payload_of(run, "gradient_study")
    assert payload["trace_ok"] and payload["gradcheck_ok"]
    assert payload["trace_max_fd_error"] < 1e-6
    assert max(payload["hand_derived_max_error"].values()) < 1e-12
    assert {row["name"] for row in payload["gradcheck"]} >= {"encoder.head.W", "decoder.net.0.W"}


def test_vae_reference_bounds(run: Callable[[str], Run]) -> None:
    """IWAE with k samples is a tighter bound than the one-sample ELBO; PyTorch's twin ran when torch is there."""
    ref = payload_of(run, "vae_generation")["reference"]
    assert ref["iwae"] >= ref["elbo_on_iwae_images"]
    assert ref["test_elbo"] < 0
    try:
        import torch  # noqa: F401
    except ImportError:
        assert ref["torch"] is None
    else:
        assert ref["torch"]["test_elbo"] < 0


@pytest.fixture(scope="module")
def common() -> ModuleType:
    """examples/_common.py, the scripts' shared helpers."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import _common
    finally:
        sys.path.remove(str(EXAMPLES))
    return _common


def test_the_scripts_json_takes_numpy_values(common: ModuleType) -> None:
    """A NumPy bool or number among a script's findings is written as its Python value, not refused by json."""
    payload = {"held": np.float32(0.2) < 0.5, "error": np.float32(1.5), "counts": np.arange(3)}
    text = json.dumps(payload, default=common._python_value)
    assert json.loads(text) == {"held": True, "error": 1.5, "counts": [0, 1, 2]}
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        json.dumps({"bad": {1}}, default=common._python_value)


def test_counts_are_pluralised(common: ModuleType) -> None:
    assert [common.plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert [common.plural(n, "class") for n in (1, 3)] == ["1 class", "3 classes"]


ALL_SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("[a-z]*.py"))
# what each script needs of its data (examples/_common.py NEEDS); gradient_study draws no images
NEEDS_IMAGES = set(ALL_SCRIPTS) - {"gradient_study", "layerwise_pretraining"}
NEEDS_LABELS = {"conditional_vae", "layerwise_pretraining", "transfer_learning"}


def test_data_without_what_a_script_needs_ends_it_in_one_line(tmp_path, rng):
    """Flat rows without --image-shape, data without labels, pixels outside [0, 1], a negative seed, --out a file:
    each script stops at once with ``NAME.py: error: ...`` (exit 2) and no traceback."""
    np.save(tmp_path / "flat.npy", rng.random((60, 64)).astype(np.float32))
    np.save(tmp_path / "raw.npy", (rng.random((60, 8, 8)) * 16).astype(np.float32))
    np.save(tmp_path / "images.npy", rng.random((60, 8, 8)).astype(np.float32))
    cases = [(name, ["--data", str(tmp_path / "flat.npy")], "draws images") for name in sorted(NEEDS_IMAGES)]
    cases += [(name, ["--data", str(tmp_path / "images.npy")], "needs class labels") for name in sorted(NEEDS_LABELS)]
    cases += [(name, ["--data", str(tmp_path / "raw.npy")], r"needs targets in \[0, 1\]") for name in ("denoising",)]
    both = r"draws images and needs class labels, and .* has none: give --data images .*; give --data a data set"
    cases += [("conditional_vae", ["--data", str(tmp_path / "flat.npy")], both)]  # all it lacks, in one line
    cases += [("gradient_study", ["--data", str(tmp_path / "raw.npy")], r"needs targets in \[0, 1\]")]
    cases += [("vae_generation", ["--seed", "-1"], "argument --seed: must be an integer >= 0")]
    cases += [("conditional_vae", ["--epochs", "0"], "argument --epochs: must be a positive integer, got 0")]
    cases += [
        ("dimension_reduction", ["--out", str(tmp_path / "flat.npy")], r"--out .*flat.npy is a file, not a folder")
    ]
    (tmp_path / "empty").mkdir()  # a --data-dir without the IDX files: refused, not replaced by the system's copy
    cases += [("vae_generation", ["--data", "fashion-mnist", "--data-dir", str(tmp_path / "empty")], "empty .no IDX")]
    cases += [("denoising", ["--out", "/proc/no-such/out"], "--out /proc/no-such/out: No such file or directory")]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(tmp_path / name), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, extra, _ in cases
    ]
    for (name, extra, message), proc in zip(cases, procs, strict=True):
        _, err = proc.communicate(timeout=120)
        # one line, after argparse's usage lines for a flag it refuses itself
        lines = [line for line in err.splitlines() if not line.startswith(("scratchae: preparing", "usage:", " "))]
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in err, (name, extra, err)
        assert lines[0].startswith(f"{name}.py: error: ") and re.search(message, lines[0]), (name, lines[0])
