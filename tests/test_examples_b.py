"""The example scripts for the uses of autoencoders (linear AE vs PCA, layer-wise pretraining,
transfer learning), each run as a user would with ``--quick``: exit status, figures, numbers."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SCRIPTS = {
    "linear_ae_vs_pca": [
        "linear_ae_vs_pca.png",
        "linear_ae_vs_pca_reconstructions.png",
        "linear_ae_vs_pca_latent.png",
    ],
    "layerwise_pretraining": [
        "layerwise_pretraining.png",
        "layerwise_pretraining_filters.png",
        "layerwise_pretraining_reconstructions.png",
    ],
    "transfer_learning": ["transfer_learning.png", "transfer_learning_reconstructions.png"],
}


def numbers(value: Any) -> list[float]:
    """Every int and float inside a JSON value (booleans excluded)."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


Run = tuple[str, Path, dict, str]
_runs: dict[str, Run] = {}


def run_example(name: str, factory: pytest.TempPathFactory) -> Run:
    """(name, output folder, its JSON, its stdout) of ``python examples/NAME.py --quick --out DIR``, run once."""
    if name not in _runs:
        out = factory.mktemp(name)
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        _runs[name] = (name, out, json.loads((out / f"{name}.json").read_text()), proc.stdout)
    return _runs[name]


@pytest.fixture(params=sorted(SCRIPTS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_example(request.param, tmp_path_factory)


def test_writes_valid_figures(run: Run) -> None:
    name, out, _, stdout = run
    for figure in SCRIPTS[name]:
        path = out / figure
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{figure} is not a PNG"
        image = imread(path)
        assert image.shape[0] > 50 and image.shape[1] > 50, f"{figure} is only {image.shape[:2]} pixels"
        assert image[..., :3].std() > 0.01, f"{figure} is blank"
        assert f"wrote {path}" in stdout
    assert not re.search(r"\b1 epochs\b", stdout), f"{name} does not pluralise a count of epochs"


def test_json_numbers_are_finite(run: Run) -> None:
    name, _, result, _ = run
    values = numbers(result)
    assert len(values) > 10, f"{name}.json holds only {len(values)} numbers"
    assert all(math.isfinite(v) for v in values), f"{name}.json has a non-finite number"
    assert result["data"] == "digits" and result["seconds"]["total"] > 0


def test_linear_ae_vs_pca_numbers(tmp_path_factory: pytest.TempPathFactory) -> None:
    _, _, result, stdout = run_example("linear_ae_vs_pca", tmp_path_factory)
    k = result["pca"]["k"]
    angles = result["linear_ae"]["principal_angles_deg"]
    assert len(angles) == k and all(0 <= a <= 90 for a in angles) and angles == sorted(angles)
    sweep = result["latent_sweep"]
    assert set(sweep["test_squared_error"]) >= {"PCA", "linear AE"}
    pca_errors = sweep["test_squared_error"]["PCA"]
    assert len(pca_errors) == len(sweep["sizes"])
    assert pca_errors == sorted(pca_errors, reverse=True), "PCA's test error must fall as components are added"
    # the sweep truncates one larger PCA: at k it must match the k-component fit
    assert pca_errors[sweep["sizes"].index(k)] == pytest.approx(result["pca"]["test_squared_error"], rel=1e-6)
    eigenvalues = result["pca"]["eigenvalues"]
    assert len(eigenvalues) == max(*sweep["sizes"], k + 1) and eigenvalues == sorted(eigenvalues, reverse=True)
    assert result["shallow_ae"]["test_bce_per_pixel"] > result["shallow_ae"]["target_entropy_per_pixel"]
    assert "principal angles" in stdout


def test_layerwise_pretraining_numbers(tmp_path_factory: pytest.TempPathFactory) -> None:
    _, _, result, _ = run_example("layerwise_pretraining", tmp_path_factory)
    cfg = result["settings"]
    assert len(result["final"]) == 3 and "random init" in result["final"]
    for run in result["curves"].values():
        assert set(run["classifier"]) == set(result["fine_tuning"]) and len(run["classifier"]) == 2
        for curves in run["classifier"].values():
            assert len(curves["test_error_percent"]) == len(curves["train_cross_entropy"]) == cfg["classifier_epochs"]
            assert all(0 <= e <= 100 for e in curves["test_error_percent"])
        assert len(run["autoencoder"]["test_squared_error"]) == cfg["autoencoder_epochs"]
    pretrained = result["pretraining_loss_per_layer"]
    assert len(pretrained) == 2, "the plain and the denoising stack are pretrained, random init is not"
    for layers in pretrained.values():
        assert [len(h) for h in layers] == [cfg["pretrain_epochs"]] * (len(cfg["sizes"]) - 1)


def test_transfer_learning_label_axis_reads_plain_numbers(tmp_path: Path) -> None:
    """The log axis of label counts names the counts in plain digits, with no 6x10^1 between them."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import transfer_learning
    finally:
        sys.path.remove(str(EXAMPLES))
    counts = [50, 300]
    by_count = {n: {"probe": 0.5 + n / 1000, "head": 0.6} for n in counts}
    svg = transfer_learning.figure(by_count, counts[-1], "digits", tmp_path / "t.svg").read_text()
    texts = re.findall(r"<!-- (.*?) -->", svg)  # matplotlib keeps each text drawn as paths in a comment
    assert {str(n) for n in counts} <= set(texts)
    assert not [t for t in texts if "times" in t or "^" in t], texts


def test_transfer_learning_numbers(tmp_path_factory: pytest.TempPathFactory) -> None:
    _, _, result, _ = run_example("transfer_learning", tmp_path_factory)
    by_labels = result["test_accuracy_by_labels"]
    assert str(result["n_train"]) in by_labels and len(by_labels) >= 2
    for accs in by_labels.values():
        assert len(accs) == 6
        assert all(0 <= a <= 1 for a in accs.values())
