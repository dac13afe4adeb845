"""The ``scratchae`` command end to end, by subprocess (``python -m scratchae``), on tiny settings.

Independent commands run side by side (``run_all``) to keep the interpreter start-ups short.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from test_train import drop_fit_settings

import scratchae
from scratchae import cli
from scratchae.cli import args as cli_args
from scratchae.cli import report as cli_report
from scratchae.cli import runs as cli_runs
from scratchae.cli import train as cli_train
from scratchae.cli import use as cli_use
from scratchae.run_info import RunInfo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--epochs", "1", "--limit", "300", "--hidden", "16", "-q"]
IWAE = {"vae": ["--iwae-k", "8"], "cvae": ["--iwae-k", "8"]}  # the test IWAE of VAE runs, kept small
FIGURES = {
    "ae": {"loss.png", "reconstructions.png", "latent.png"},
    "dae": {"loss.png", "denoising.png", "latent.png"},
    "vae": {"loss.png", "reconstructions.png", "latent.png", "samples.png", "manifold.png"},
    "cvae": {"loss.png", "reconstructions.png", "latent.png", "class_samples.png"},
}


def run_all(*commands: list[str], cwd: Path | None = None) -> list[subprocess.CompletedProcess]:
    """Run ``python -m scratchae ARGS`` for each command at once; their results in order."""
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scratchae", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        for args in commands
    ]
    results = []
    for args, p in zip(commands, procs, strict=True):
        out, err = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, p.returncode, out, err))
    return results


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    img = imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) > 50 and img[..., :3].std() > 0.05, path


def read_history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run of each kind on the bundled digits: {kind: run folder}."""
    root = tmp_path_factory.mktemp("runs")
    kinds = list(FIGURES)
    images = (np.random.default_rng(0).random((60, 6, 7)) * 255).astype(np.uint8)
    np.save(root / "images.npy", images)  # the user's own unlabelled images
    own = ["train", "ae", "--data", "images.npy", "--epochs", "2", "--hidden", "9", "-q", "--out", "own"]
    results = run_all(
        *(["train", kind, *TINY, *IWAE.get(kind, []), "--out", str(root / kind)] for kind in kinds), own, cwd=root
    )
    for result in results:
        ok(result)
        assert "Summary" in result.stdout and "test recon_sq_error" in result.stdout, result.stdout
    return {kind: root / kind for kind in [*kinds, "own"]}


@pytest.mark.parametrize("kind", list(FIGURES))
def test_train_writes_checkpoint_metrics_history_and_figures(runs, kind):
    folder = runs[kind]
    model = scratchae.load(folder)
    assert model.epochs_trained == 1 and model.config["hidden"] == [16]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["n_train"] == 270 and metrics["n_test"] == 300
    test = metrics["test"]
    assert math.isfinite(test["recon_sq_error"]) and test["recon_sq_error"] > 0
    if kind in ("vae", "cvae"):
        assert test["iwae_k"] == 8 and test["elbo"] < 0
        # the importance-weighted bound is at least as tight as the ELBO (up to Monte Carlo noise)
        assert test["log_px_iwae"] > test["elbo"] - 0.5
    else:
        assert test["recon_loss"] > 0
    if kind == "dae":  # the denoising figures: its corrupted input and its reconstruction from it
        assert test["noisy_sq_error"] > 0 and test["denoised_sq_error"] > 0
    else:
        assert "denoised_sq_error" not in test
    rows = read_history(folder)
    assert len(rows) == 1 and {"loss", "val_loss"} <= rows[0].keys()
    if kind in ("vae", "cvae"):
        assert {"recon", "kl", "val_recon", "val_kl"} <= rows[0].keys()
    pngs = {p.name for p in folder.glob("*.png")}
    assert pngs == FIGURES[kind]
    for name in pngs:
        assert_png(folder / name)


def test_a_run_on_the_users_own_images(runs, tmp_path):
    folder = runs["own"]
    # no labels: no latent scatter; the (6, 7) image shape comes from the file's 3-D array
    assert {p.name for p in folder.glob("*.png")} == {"loss.png", "reconstructions.png"}
    info = json.loads((folder / "run.json").read_text())
    assert info["image_shape"] == [6, 7] and info["n_classes"] is None and Path(info["data"]).is_absolute()
    (ev,) = run_all(["eval", str(folder)], cwd=tmp_path)  # from elsewhere: run.json finds the data
    assert "recon_loss" in ok(ev).stdout and "(12)" in ev.stdout


def test_flat_rows_get_a_note_on_the_image_shape(tmp_path, rng):
    np.save(tmp_path / "rows.npy", rng.random((60, 12)))
    common = ["train", "ae", "--data", "rows.npy", "--epochs", "1", "--hidden", "5", "--latent", "2", "-q"]
    flat, shaped = run_all(
        [*common, "--out", "flat"], [*common, "--image-shape", "3x4", "--out", "shaped"], cwd=tmp_path
    )
    assert "for the figures of images give --image-shape HxW" in ok(flat).stdout
    assert {p.name for p in (tmp_path / "flat").glob("*.png")} == {"loss.png"}
    assert "--image-shape" not in ok(shaped).stdout
    assert {p.name for p in (tmp_path / "shaped").glob("*.png")} == {"loss.png", "reconstructions.png"}


def test_eval_sample_encode(runs, tmp_path, rng):
    images = (rng.random((7, 8, 8)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", np.arange(7) % 10)
    trained_samples = (runs["vae"] / "samples.png").read_bytes()
    ev, s_npy, s_png, s_cls, s_default, enc, enc_c = run_all(
        ["eval", str(runs["vae"]), "--iwae-k", "20", "--json", str(tmp_path / "eval.json")],
        ["sample", str(runs["vae"]), "-n", "12", "-o", str(tmp_path / "s.npy")],
        ["sample", str(runs["cvae"]), "-n", "20", "-o", str(tmp_path / "grid.png")],
        ["sample", str(runs["cvae"]), "--class", "3", "-n", "6"],
        ["sample", str(runs["vae"]), "-n", "9", "--seed", "4"],
        ["encode", str(runs["ae"]), str(tmp_path / "x.npy"), "-o", str(tmp_path / "codes.npy")],
        ["encode", str(runs["cvae"]), str(tmp_path / "x.npy"), "-o", str(tmp_path / "c.npy"), "--labels",
         str(tmp_path / "y.npy")],
    )  # fmt: skip
    assert "log_px_iwae" in ok(ev).stdout
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["test"]["iwae_k"] == 20 and report["test"]["log_px_iwae"] < 0

    ok(s_npy)
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (12, 64) and samples.min() >= 0 and samples.max() <= 1
    ok(s_png)
    assert_png(tmp_path / "grid.png")
    assert "wrote 6 samples" in ok(s_cls).stdout
    assert_png(runs["cvae"] / "samples_class3_seed0.png")
    assert "wrote 9 samples" in ok(s_default).stdout
    assert_png(runs["vae"] / "samples_seed4.png")
    assert (runs["vae"] / "samples.png").read_bytes() == trained_samples  # training's figure is kept

    ok(enc)
    codes = np.load(tmp_path / "codes.npy")
    ae = scratchae.load(runs["ae"])
    assert codes.shape == (7, 8)
    np.testing.assert_allclose(codes, ae.encode(images.reshape(7, 64) / 255.0), rtol=1e-5, atol=1e-6)
    ok(enc_c)
    assert np.load(tmp_path / "c.npy").shape == (7, 2)


def test_resume_continues_to_the_total_epochs(runs, tmp_path):
    out = tmp_path / "vae"
    first, *_ = run_all(["train", "vae", *TINY, *IWAE["vae"], "--out", str(out)])
    ok(first)
    (second,) = run_all(["train", "vae", *TINY[2:], *IWAE["vae"], "--epochs", "2", "--resume", "--out", str(out)])
    ok(second)
    resumed, single = read_history(out), read_history(runs["vae"])
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    # the first epoch is the one the fixture's run of the same settings trained
    assert float(resumed[0]["loss"]) == pytest.approx(float(single[0]["loss"]), rel=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["epochs_this_run"]) == (2, 1)
    assert re.search(r"epochs\s+2 \(epoch 2 in \d+\.\d s\)", second.stdout), second.stdout
    (third,) = run_all(["train", "vae", *TINY[2:], *IWAE["vae"], "--epochs", "4", "--resume", "--out", str(out)])
    assert re.search(r"epochs\s+4 \(epochs 3-4 in \d+\.\d s\)", ok(third).stdout), third.stdout


def test_resume_takes_the_runs_own_data_and_refuses_other_data(tmp_path):
    out = tmp_path / "vae"
    ok(run_all(["train", "vae", *TINY, *IWAE["vae"], "--val-fraction", "0.2", "--out", str(out)])[0])
    first = json.loads((out / "metrics.json").read_text())
    resumed, other_limit, other_data = run_all(
        ["train", "vae", "--epochs", "2", "-q", "--iwae-k", "8", "--resume", "--out", str(out)],
        ["train", "vae", "--epochs", "3", "--resume", "--limit", "200", "--out", str(out)],
        ["train", "vae", "--epochs", "3", "--resume", "--data", "fashion-mnist", "--out", str(out)],
    )
    ok(resumed)
    second = json.loads((out / "metrics.json").read_text())
    # --limit 300 and --val-fraction 0.2 came from run.json: about 240 training examples (270 with the
    # default fraction, 1,437 with all the data) and the 300 test ones, as before
    assert (second["n_train"], second["n_test"], second["epochs"]) == (first["n_train"], first["n_test"], 2)
    assert 230 <= first["n_train"] <= 250 and first["n_test"] == 300
    assert json.loads((out / "run.json").read_text())["limit"] == 300
    for refused, flag in ((other_limit, "--limit 200"), (other_data, "--data fashion-mnist")):
        assert refused.returncode == 1 and f"scratchae: error: {flag}: the run in" in refused.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2  # the refused resumes changed nothing


def test_sample_and_encode_refuse_to_write_onto_the_runs_data_file(tmp_path, rng):
    """run.json names the file a run was trained on: sample -o and encode -o refuse it, through any path."""
    data, out = tmp_path / "train.npy", tmp_path / "run"
    np.save(data, rng.uniform(0, 1, (120, 12)))
    ok(run_all(["train", "ae", *TINY, "--data", str(data), "--out", str(out)])[0])
    np.save(tmp_path / "other.npy", rng.uniform(0, 1, (5, 12)))
    before = data.read_bytes()
    (sample,) = run_all(["sample", str(out), "-n", "4", "-o", "train.npy"], cwd=tmp_path)
    (encode,) = run_all(["encode", ".", "../other.npy", "-o", "../train.npy"], cwd=out)
    one_line_error(sample, 1, "-o train.npy is the data file the run in", "was trained on: write to another file")
    one_line_error(encode, 1, "-o ../train.npy is the data file the run in")
    assert data.read_bytes() == before


def test_resume_and_eval_refuse_a_data_file_that_changed_since_training(tmp_path, rng):
    """run.json records a hash of each part: after the file changes, --resume and eval of the run's own
    data are refused (they would train on, or test on, other examples), and nothing is written; eval of
    the file given as --data evaluates it as asked."""
    data, out = tmp_path / "data.npz", tmp_path / "run"
    X = rng.uniform(0, 1, (200, 12))
    np.savez(data, X=X, X_test=X[:40])
    ok(run_all(["train", "ae", *TINY, "--data", str(data), "--out", str(out)])[0])
    np.savez(data, X=X, X_test=X[40:80])  # a new test part, the training part as it was
    metrics = (out / "metrics.json").read_bytes()
    resume, evaluate, other = run_all(
        ["train", "ae", "--epochs", "2", "-q", "--resume", "--out", str(out)],
        ["eval", str(out)],
        ["eval", str(out), "--data", str(data)],
    )
    for refused, command in ((resume, "--resume"), (evaluate, "eval")):
        one_line_error(refused, 1, f"{command}: the data {data} have changed since the run", "test part differs")
    assert "give --data to evaluate on other data" in evaluate.stderr
    assert "recon_sq_error" in ok(other).stdout
    np.savez(data, X=X[:150], X_test=X[:40])  # the test part as trained on a new training part
    resume, evaluate = run_all(
        ["train", "ae", "--epochs", "2", "-q", "--resume", "--out", str(out)], ["eval", str(out)]
    )
    one_line_error(resume, 1, "--resume: the data", "(their train part differs from the run's")
    assert "recon_sq_error" in ok(evaluate).stdout
    assert (out / "metrics.json").read_bytes() == metrics


def test_resume_refuses_a_run_of_another_kind_and_keeps_its_record(runs, tmp_path):
    """An ae run holds an AutoEncoder, as a stacked run does: run.json's kind tells them apart, and
    'train stacked --resume' of the ae run (or 'train ae --resume' of a stacked one) changes nothing."""
    run = tmp_path / "ae"
    shutil.copytree(runs["ae"], run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    (stacked,) = run_all(["train", "stacked", "--epochs", "3", "-q", "--resume", "--out", str(run)])
    one_line_error(stacked, 1, f"train stacked --resume: the run in {run} was trained with 'train ae'")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_damaged_run_json_is_named_in_one_line(runs, tmp_path):
    """Fields of the wrong type, and bytes that are not UTF-8: eval, sample and --resume each stop with one
    line naming run.json and the field, and change nothing."""
    damages = {"image_shape": "8x8", "data": 5, "grey_scale": [1], "limit": -3, "bytes": None}
    commands, expected = [], []
    for field, value in damages.items():
        run = tmp_path / field
        shutil.copytree(runs["vae"], run)
        if field == "bytes":
            (run / "run.json").write_bytes(b"\xff\xfe{")
            message = "run.json is not a scratchae run description"
        else:
            info = json.loads((run / "run.json").read_text())
            (run / "run.json").write_text(json.dumps({**info, field: value}))
            message = f'run.json is damaged: "{field}" is {json.dumps(value)}, expected'
        for args in (
            ["eval", str(run)],
            ["sample", str(run), "-n", "4"],
            ["train", "vae", "--resume", "--out", str(run)],
        ):
            commands.append(args)
            expected.append(message)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for result, message in zip(run_all(*commands), expected, strict=True):
        one_line_error(result, 1, message)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_folder_holding_a_run_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    ok(run_all(["train", "vae", *TINY, *IWAE["vae"], "--out", str(out)])[0])
    own = ("notes.txt", "samples_my_seedling.png", "samples_seed7_for_paper.png", "samples_class3_seed0_final.png")
    for name in own:  # the user's own files (not names that sample writes)
        (out / name).write_text("the user's own file")
    (out / "samples_seed3.png").write_text("a sample figure of the run's")
    np.save(tmp_path / "raw.npy", np.arange(60 * 64, dtype=np.float32).reshape(60, 64) % 17)  # not in [0, 1]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again, bad_data = run_all(
        ["train", "vae", *TINY, *IWAE["vae"], "--out", str(out)],
        ["train", "ae", *TINY, "--overwrite", "--data", str(tmp_path / "raw.npy"), "--out", str(out)],
    )
    assert again.returncode == 1 and "holds a run (checkpoint.npz)" in again.stderr and "--overwrite" in again.stderr
    assert bad_data.returncode == 1 and "ae --loss bce needs targets in [0, 1]" in bad_data.stderr
    assert "(--scale minmax, or in the file), or use --loss mse" in bad_data.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # both refused: the run is whole
    (replaced,) = run_all(["train", "ae", *TINY, "--overwrite", "--out", str(out)])
    ok(replaced)
    assert scratchae.load(out).kind == "AutoEncoder"
    # the VAE's figures went with it; the user's files stayed
    assert {p.name for p in out.iterdir()} == FIGURES["ae"] | {
        "checkpoint.npz",
        "metrics.json",
        "history.csv",
        "run.json",
        *own,
    }
    assert json.loads((out / "run.json").read_text())["kind"] == "ae"


def test_overwrite_in_a_folder_without_a_run_deletes_nothing(tmp_path):
    out = tmp_path / "pictures"
    out.mkdir()
    (out / "loss.png").write_bytes(b"a picture of the user's")
    (out / "samples.png").write_bytes(b"another")
    (out / "notes.txt").write_text("the user's notes")
    (refused,) = run_all(["train", "ae", *TINY, "--out", str(out)])
    one_line_error(refused, 1, "holds no run but files that train would write (loss.png, samples.png)", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "notes.txt", "samples.png"]
    (out / "loss.png").unlink()
    (out / "samples.png").rename(out / "my_samples.png")
    (out / "run.json").write_text("{}")  # not a run description: the user's, kept
    (refused,) = run_all(["train", "ae", *TINY, "--out", str(out)])
    one_line_error(refused, 1, "holds no run but files that train would write (run.json)")
    RunInfo("ae", "digits", None, 300, [8, 8], 10, None, 0.1).write(out)  # a run stopped before its checkpoint
    ok(run_all(["train", "ae", *TINY, "--out", str(out)])[0])
    (out / "metrics.json").unlink()
    (out / "metrics.json").mkdir()
    (refused,) = run_all(["train", "ae", *TINY, "--overwrite", "--out", str(out)])
    one_line_error(refused, 1, "holds folders where train writes files: metrics.json")
    (out / "metrics.json").rmdir()
    (out / "checkpoint.npz").unlink()
    (out / "my_samples.png").rename(out / "samples.png")
    (result,) = run_all(["train", "ae", *TINY, "--overwrite", "--out", str(out)])
    ok(result)  # a new run: its loss.png replaces the file of that name, samples.png (not an AE's) stays
    assert (out / "samples.png").read_bytes() == b"another" and (out / "checkpoint.npz").is_file()


def test_gradcheck_checks_at_biases_off_zero(monkeypatch, capsys):
    """With zero biases, seed 7's dae (and seed 10's ae) had an example whose encoder units were all off, so
    that every entry of the decoder's bias sat on relu's kink and the check failed with a right backward:
    the biases are drawn, from a generator of their own (the data stay the seed's)."""
    from scratchae.cli import checks

    for kind, seed in (("dae", "7"), ("ae", "10")):
        assert cli.main(["gradcheck", kind, "--seed", seed]) == 0
        assert "biases ~ N(0, 0.1^2)" in capsys.readouterr().out
    monkeypatch.setattr(checks, "BIAS_STD", 0.0)  # the same data at zero biases: the false failure
    assert cli.main(["gradcheck", "dae", "--seed", "7"]) == 1
    assert "NO (every entry at a kink)" in capsys.readouterr().out


def test_gradcheck_and_trace():
    results = run_all(
        *(["gradcheck", kind] for kind in cli_args.CHECK_KINDS),
        ["trace", "ae", "--max-entries", "0"],
        ["trace", "vae", "--max-entries", "5"],
    )
    injected = {"ae": None, "dae": "the corrupted input injected", "vae": "eps injected", "cvae": "eps injected"}
    for kind, result in zip(cli_args.CHECK_KINDS, results, strict=False):
        assert "PASS" in ok(result).stdout, kind
        assert "encoder" in result.stdout and "decoder" in result.stdout
        assert "5 random examples in [0.05, 0.95]" in result.stdout
        assert ("injected" in result.stdout) == (injected[kind] is not None)
        assert injected[kind] is None or injected[kind] in result.stdout
    assert "all entries per input" in ok(results[-2]).stdout
    out = ok(results[-1]).stdout
    positions = [
        out.index(name) for name in ("linear+relu", "split", "reparameterize", "bce_with_logits", "gaussian_kl")
    ]
    assert positions == sorted(positions)  # the forward table lists them in forward order
    assert "Backward" in out and "dmu = dz" in out and "PASS" in out and "\x1b[" not in out


def test_python_m_and_bench():
    version, bench_help = run_all(["--version"], ["bench", "--help"])
    assert ok(version).stdout.strip() == f"scratchae {scratchae.__version__}"
    assert "scratchae bench" in ok(bench_help).stdout


def test_patience_stops_the_run_with_the_best_epochs_weights(tmp_path):
    """lr 0.05 on the digits: the validation loss stalls within 40 epochs; the run stops 2 epochs after
    its best, records it, and its checkpoint holds the weights its test metrics were taken with."""
    out = tmp_path / "run"
    args = ["train", "ae", "--epochs", "40", "--patience", "2", "--lr", "0.05", "--hidden", "16", "--out", str(out)]
    train = ok(run_all(args)[0])
    m = json.loads((out / "metrics.json").read_text())
    stop = m["early_stopping"]
    assert m["epochs"] == stop["stopped_epoch"] == stop["best_epoch"] + 2 < 40 and stop["patience"] == 2
    history = read_history(out)
    assert len(history) == m["epochs"]
    val = [float(r["val_loss"]) for r in history]
    assert stop["best_val_loss"] == pytest.approx(min(val), rel=1e-9) and val.index(min(val)) + 1 == stop["best_epoch"]
    assert f"early stopping after epoch {m['epochs']}" in train.stderr and stop["weights_epoch"] == stop["best_epoch"]
    assert f"stopped after epoch {m['epochs']}; best val_loss" in train.stdout
    again = ok(run_all(["eval", str(out), "--json", str(tmp_path / "eval.json")])[0])
    assert json.loads((tmp_path / "eval.json").read_text())["test"] == m["test"], again.stdout
    # --resume goes on from the best epoch's weights, and --patience counts the run's past epochs: at lr 0.5
    # the next epoch is worse than the best, and the patience that had run out stops the run after it
    resumed = ok(run_all([*args, "--resume", "--lr", "0.5"])[0])
    note = f"holds the weights of epoch {stop['best_epoch']}, its best of {m['epochs']} epochs (--patience kept them)"
    assert note in resumed.stdout
    m2 = json.loads((out / "metrics.json").read_text())
    val = [float(r["val_loss"]) for r in read_history(out)]
    stop2 = m2["early_stopping"]
    assert stop2["best_val_loss"] == pytest.approx(min(val), rel=1e-9) and stop2["weights_epoch"] == stop2["best_epoch"]
    assert stop2["best_epoch"] == stop["best_epoch"] and stop2["stopped_epoch"] == m["epochs"] + 1
    assert m2["epochs"] == len(val) > m["epochs"] and val[: m["epochs"]] == pytest.approx(
        [float(v) for v in (r["val_loss"] for r in history)], rel=1e-12
    )


@pytest.mark.parametrize(
    "settings, mu, hints",
    [
        (dict(likelihood="gaussian"), 0.0, ["a smaller --gaussian-std (now 1;", "a --kl-warmup of a few epochs"]),
        (dict(likelihood="gaussian", gaussian_std=0.05, beta=50.0), 0.0, ["a smaller --beta (now 50)"]),
        (dict(kl_warmup=3), 0.0, ["none of its settings leans that way"]),
        (dict(beta=0.0), 0.0, ["none of its settings leans that way"]),  # a warm-up changes nothing at beta 0
        (dict(reconstruction_weight=0.0), 0.0, ["a reconstruction_weight above 0 (the model's is 0"]),
        ({}, 1.0, None),
    ],
)
def test_a_collapsed_posterior_is_warned_of(settings, mu, hints):
    """A VAE whose KL term on the test part is below 0.1 nats per example gets a warning naming what in its
    settings leans that way. The encoder's head zeroed gives mu = logvar = 0, a KL of 0; a mu of 1 in both
    coordinates gives a KL of 1."""
    vae = scratchae.models.VAE(8, (4,), 2, **settings)
    vae.encoder.head.W.data[:] = 0
    vae.encoder.head.b.data[:] = [mu, mu, 0, 0]  # (mu, logvar)
    X = np.full((5, 8), 0.5, np.float32)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cli_report.warn_collapse(vae, X)
    messages = [str(w.message) for w in seen]
    if hints is None:
        assert messages == []
        return
    assert len(messages) == 1 and "the KL term is 0 nats per test example" in messages[0]
    for hint in hints:
        assert hint in messages[0], messages[0]
    assert ("--gaussian-std" in messages[0]) == ("a smaller --gaussian-std (now 1;" in hints)


def test_train_warns_of_a_collapsed_posterior(tmp_path, monkeypatch, capsys):
    """The check runs on the test part after training (here with a threshold no KL is under)."""
    monkeypatch.setattr(cli_report, "COLLAPSE_KL", float("inf"))
    assert cli.main(["train", "vae", *TINY, *IWAE["vae"], "--out", str(tmp_path / "run")]) == 0
    assert "scratchae: warning: the KL term is" in capsys.readouterr().err


def test_the_traversal_shows_the_most_active_coordinates_most_active_first(tmp_path, monkeypatch):
    """12 latent coordinates: 8 rows of distinct coordinates, drawn in decreasing order of their KL terms."""
    from scratchae import plots

    drawn = {}
    real = plots.latent_traversal

    def capture(images, shape, path, dims, values, title=None, limits=None, kl=None):
        drawn.update(dims=list(dims), kl=list(kl))
        return real(images, shape, path, dims, values, title, limits=limits, kl=kl)

    monkeypatch.setattr(plots, "latent_traversal", capture)
    assert cli.main(["train", "vae", *TINY, *IWAE["vae"], "--latent", "12", "--out", str(tmp_path / "run")]) == 0
    assert len(set(drawn["dims"])) == 8 and drawn["kl"] == sorted(drawn["kl"], reverse=True)
    assert drawn["kl"] != [drawn["kl"][i] for i in np.argsort(drawn["dims"])]  # not in the coordinates' order


def test_a_vae_whose_latent_is_not_2d_gets_a_traversal_figure(runs, tmp_path):
    """traversal.png instead of manifold.png; a file of the run's, as every file train writes is (RUN_OUTPUTS:
    what --overwrite replaces and sample -o refuses to write onto)."""
    out = tmp_path / "run"
    train = ok(run_all(["train", "vae", *TINY, *IWAE["vae"], "--latent", "3", "--out", str(out)])[0])
    assert "traversal.png" in train.stdout and not (out / "manifold.png").exists()
    assert_png(out / "traversal.png")
    for folder in [out, *runs.values()]:
        for path in folder.iterdir():
            assert cli_runs.is_run_output(path.name), path
    (refused,) = run_all(["sample", str(out), "-n", "4", "-o", str(out / "traversal.png")])
    one_line_error(refused, 1, "is a file of the run in")


def test_errors_are_one_line_without_traceback(runs, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "checkpoint.npz").write_bytes(b"not a checkpoint")
    np.save(tmp_path / "unlabelled.npy", np.random.default_rng(0).random((20, 64), dtype=np.float32))
    cases = [
        (["eval", str(runs["cvae"]), "--data", "unlabelled.npy"], 1, "needs class labels, and the data"),
        (["train", "ae", "--data", "unlabelled.npy", "--csv-labels", "last"], 1, "--csv-labels applies to a .csv file"),
        (["train", "vae", "--epochs", "0"], 2, "--epochs"),
        (["train", "vae", "--data", "nope"], 1, "unknown data set 'nope'"),
        (["train", "ae", "--data", "mnist", "--data-dir", str(tmp_path)], 1, "not found"),
        (["train", "vae", "--device", "tpu"], 2, "--device"),
        (["train", "ae", "--beta", "2"], 1, "--beta applies to vae and cvae"),
        (["train", "ae", "--iwae-k", "5"], 1, "--iwae-k applies to vae and cvae, not to ae"),
        (["train", "ae", "--patience", "2", "--val-fraction", "0"], 1, "--patience watches the validation loss"),
        (["train", "ae", "--patience", "0"], 2, "--patience"),
        (["train", "vae", "--gaussian-std", "0.1"], 1, "--gaussian-std is the Gaussian decoder's: it applies with"),
        (["train", "ae", "--gaussian-std", "0.1"], 1, "--gaussian-std applies to vae and cvae, not to ae"),
        (["train", "vae", "--hidden", "12,x"], 2, "--hidden"),
        (["frobnicate"], 2, "invalid choice"),
        (["train", "vae", "--bogus"], 2, "unrecognized arguments: --bogus (see scratchae train --help)"),
        (["eval", "somewhere", "--frob", "1"], 2, "unrecognized arguments: --frob 1 (see scratchae eval --help)"),
        (["train", "ae", "--data", "mnist", "--data-dir", str(bad / "checkpoint.npz")], 1, "is a file, not a folder"),
        (["eval", str(tmp_path / "nothing")], 1, "no run at"),
        (["eval", str(bad)], 1, "checkpoint.npz"),
        (["sample", str(runs["ae"])], 1, "needs a vae or cvae run"),
        (["sample", str(runs["cvae"]), "--class", "12"], 1, "--class must be in [0, 9]"),
        (["encode", str(runs["cvae"]), str(tmp_path / "missing.npy"), "-o", "c.npy"], 1, "no file at"),
    ]
    if not scratchae.gpu_available():
        cases.append((["train", "vae", "--device", "gpu"], 1, "or use --device cpu"))
    results = run_all(*(args for args, _, _ in cases), cwd=tmp_path)
    for (args, code, message), result in zip(cases, results, strict=True):
        assert result.returncode == code, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("scratchae: error: "), result.stderr
        assert message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "runs").exists()  # nothing was trained by the refused commands


def test_bench_writes_a_row_per_implementation(tmp_path, capsys):
    """A small bench run: fused and plain rows with min <= median, and ratios taken from the minima."""
    from scratchae import bench

    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"device": "cpu", "rows": [], "first_run_with_compile_s": 1.0}))  # an earlier table
    args = ["--models", "vae", "--batch-sizes", "256", "--repeats", "2", "--examples", "600", "--no-torch"]
    assert bench.main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["examples"] == 600 and result["torch"] is False and "blas_threads" in result
    assert result["torch_threads"] is None  # no PyTorch column, no thread count
    assert [(r["model"], r["batch_size"], r["impl"]) for r in result["rows"]] == [
        ("vae", 256, "scratchae fused"),
        ("vae", 256, "scratchae plain"),
    ]
    for r in result["rows"]:
        assert 0 < r["min_s"] <= r["median_s"] and r["ratio_to_torch"] is None
        assert r["ratio_to_gemm"] == pytest.approx(r["min_s"] / r["gemm_bound_s"])
        assert r["ratio_to_gemm_sequence"] == pytest.approx(r["min_s"] / r["gemm_sequence_s"])
    assert "of the sequence" in capsys.readouterr().out


def test_bench_bound_and_sequence_time_the_same_products():
    """step_products: per layer forward x W, backward xᵀ g and g Wᵀ but for the first layer's dx, in step order;
    the bound's FLOPs are those of an epoch of them, the full batches and the tail batch."""
    from scratchae import bench

    model = bench.MODELS["vae"]("cpu")  # 784-400-40 | 20-400-784
    shapes = [(a.shape, b.shape) for a, b in bench.step_products(model, 8)]
    assert shapes[:4] == [((8, 784), (784, 400)), ((8, 400), (400, 40)), ((8, 20), (20, 400)), ((8, 400), (400, 784))]
    assert shapes[4:6] == [((8, 784), (784, 400)), ((400, 8), (8, 784))]  # the last layer: g Wᵀ, xᵀ g
    assert shapes[-1] == ((784, 8), (8, 400)) and len(shapes) == 4 + 2 * 4 - 1  # no dx for the data
    per_example = sum(2.0 * a[0] * a[1] * b[1] for a, b in shapes) / 8
    _, flops = bench.gemm_bound_seconds(model, 20, 8)  # 2 full batches and a tail of 4
    assert flops == pytest.approx(per_example * 20)


def test_bench_sequence_runs_each_steps_products_in_order(monkeypatch):
    """gemm_sequence_seconds: per (rows, count) of the epoch, a warm-up and then count steps of step_products."""
    from scratchae import bench

    done = []

    class Operand:
        def __init__(self, name):
            self.name = name

        def __matmul__(self, other):
            done.append((self.name, other.name))

    monkeypatch.setattr(bench, "step_products", lambda model, rows: [(Operand(f"x{rows}"), Operand("W"))])
    assert bench.gemm_sequence_seconds(bench.MODELS["vae"]("cpu"), 20, 8) >= 0
    assert done == [("x8", "W")] * 3 + [("x4", "W")] * 2  # 2 full steps and the tail step, each after a warm-up


@pytest.mark.parametrize(
    "env, expected",
    [({}, "default"), ({"OMP_NUM_THREADS": "2"}, "2"), ({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}, "1")],
)
def test_bench_records_the_blas_threads_asked_for(monkeypatch, env, expected):
    from scratchae import bench

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert bench.blas_threads() == expected
    assert bench.torch_threads() == (None if expected == "default" else int(expected))  # PyTorch gets as many


def test_the_pytorch_twin_is_the_same_vae():
    """The PyTorch reference VAE (bench's twin, also in examples/vae_generation.py) with scratchae's weights
    and the same eps gives scratchae's mean -ELBO: the same layers, (mu, logvar) split and loss."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: there is no twin to compare")
    from scratchae import bench
    from scratchae.models import VAE

    vae = VAE(12, hidden=(7,), latent_dim=3, dtype="float64", seed=1)
    x = np.random.default_rng(0).uniform(0.05, 0.95, (5, 12))
    encoder, decoder = bench.torch_vae(12, 7, 3)
    weights = dict(vae.named_parameters())
    pairs = {
        encoder[0]: "encoder.body.0",
        encoder[2]: "encoder.head",
        decoder[0]: "decoder.net.0",
        decoder[2]: "decoder.net.1",
    }
    encoder.double(), decoder.double()
    with torch.no_grad():
        for layer, name in pairs.items():
            layer.weight.copy_(torch.from_numpy(weights[f"{name}.W"].data.T.copy()))
            layer.bias.copy_(torch.from_numpy(weights[f"{name}.b"].data.copy()))
        torch.manual_seed(3)
        theirs = bench.torch_negative_elbo(encoder, decoder, torch.from_numpy(x)).numpy()
    torch.manual_seed(3)
    eps = torch.randn(5, 3, dtype=torch.float64).numpy()  # the draws randn_like(mu) made
    ours = float(vae.batch_loss(x, eps=eps).total.data)  # the batch's mean -ELBO
    assert theirs.shape == (5,) and theirs.mean() == pytest.approx(ours, rel=1e-12)


def test_bench_gives_pytorch_the_blas_threads(monkeypatch):
    """Under OPENBLAS_NUM_THREADS=1, which PyTorch does not read, its epoch runs on one thread too."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: its thread count is not set")
    from scratchae import bench

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    try:
        X = np.random.default_rng(0).random((64, 784), dtype=np.float32)
        assert bench.torch_epoch_seconds("vae", X, 32, "cpu") > 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bench_says_when_the_machine_speed_varied(monkeypatch, capsys):
    """Epoch times that vary by more than SPREAD_NOTE between repeats get a note that the ratios use the best."""
    from scratchae import bench

    times = iter([1.0, 2.0, 1.0, 1.0] * 2)
    monkeypatch.setattr(bench, "epoch_seconds", lambda *args: next(times))
    monkeypatch.setattr(bench, "gemm_bound_seconds", lambda model, n, batch: (0.5, 1e9))
    monkeypatch.setattr(bench, "gemm_sequence_seconds", lambda model, n, batch: 0.6)
    result = bench.run(["vae"], [128], "cpu", 2, 600, False, sys.stdout)
    fused = result["rows"][0]
    assert (fused["min_s"], fused["median_s"]) == (1.0, 1.5)
    assert "note: a median is 1.50x its best time" in capsys.readouterr().out


def one_line_error(result: subprocess.CompletedProcess, code: int, *parts: str) -> None:
    """``result`` failed with exit status ``code`` and one stderr line ``scratchae: error: ...`` holding ``parts``."""
    assert result.returncode == code, (result.args, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("scratchae: error: "), result.stderr
    for part in parts:
        assert part in result.stderr, (result.args, result.stderr)


def test_data_dir_must_hold_the_idx_files(tmp_path):
    missing, empty, digits = run_all(
        ["train", "vae", "--data", "fashion-mnist", "--data-dir", str(tmp_path / "nonexistent")],
        ["train", "vae", "--data", "fashion-mnist", "--data-dir", str(tmp_path)],
        ["train", "vae", "--data-dir", str(tmp_path)],
        cwd=tmp_path,
    )
    one_line_error(missing, 1, f"--data-dir {tmp_path / 'nonexistent'}: no such folder")
    # not the system's copy in its stead
    one_line_error(empty, 1, f"{tmp_path} (no IDX files)", f"{tmp_path / 'fashion-mnist'} (no IDX files)")
    assert "/usr/share" not in empty.stderr
    one_line_error(digits, 1, "--data-dir applies to fashion-mnist and mnist, not to --data digits")
    assert not (tmp_path / "runs").exists()


def fit_settings(folder: Path) -> dict:
    from scratchae.checkpoint import read_checkpoint

    settings = read_checkpoint(folder / "checkpoint.npz").meta["fit_settings"]
    return {k: settings[k] for k in ("batch_size", "lr", "optimizer")}


def test_resume_goes_on_with_the_runs_own_settings(runs, tmp_path):
    assert fit_settings(runs["vae"]) == {"batch_size": 32, "lr": 3e-3, "optimizer": "adam"}  # the defaults
    mine, other = tmp_path / "mine", tmp_path / "other"
    own = ["--batch-size", "16", "--lr", "0.01", "--optimizer", "momentum"]
    ok_first = run_all(
        ["train", "ae", *TINY, *own, "--out", str(mine)], ["train", "ae", *TINY, *own, "--out", str(other)]
    )
    for result in ok_first:
        ok(result)
    resumed, changed = run_all(
        ["train", "ae", *TINY[2:], "--epochs", "2", "--resume", "--out", str(mine)],
        ["train", "ae", *TINY[2:], "--epochs", "2", "--resume", "--lr", "0.02", "--out", str(other)],
    )
    ok(resumed)
    assert fit_settings(mine) == {"batch_size": 16, "lr": 0.01, "optimizer": "momentum"}
    ok(changed)
    assert fit_settings(other) == {"batch_size": 16, "lr": 0.02, "optimizer": "momentum"}


def test_a_run_saved_before_fit_settings_resumes_with_the_command_lines_defaults(tmp_path):
    out = tmp_path / "old"
    ok(run_all(["train", "ae", *TINY, "--optimizer", "sgd", "--out", str(out)])[0])
    drop_fit_settings(out / "checkpoint.npz")
    ok(run_all(["train", "ae", *TINY[2:], "--epochs", "2", "--resume", "--out", str(out)])[0])
    assert fit_settings(out) == {"batch_size": 32, "lr": 3e-3, "optimizer": "sgd"}  # sgd: from the header


def test_resume_takes_the_runs_model_flags(tmp_path):
    """--resume builds the run's own model: its flags need not be repeated; a flag that differs is refused."""
    out, quick = tmp_path / "vae", ["--limit", "300", "-q", "--iwae-k", "8", "--out", str(tmp_path / "vae")]
    flags = ["--hidden", "12", "--latent", "3", "--beta", "0.5", "--kl-warmup", "2", "--loss", "mse", "--seed", "4"]
    ok(run_all(["train", "vae", "--epochs", "1", *flags, "--gaussian-std", "0.2", *quick])[0])
    config = scratchae.load(out).config
    assert config["gaussian_std"] == 0.2 and config["likelihood"] == "gaussian"
    ok(run_all(["train", "vae", "--epochs", "2", "--resume", *quick])[0])
    assert scratchae.load(out).epochs_trained == 2 and scratchae.load(out).config == config
    refused, hidden, fresh, same = run_all(
        ["train", "vae", "--epochs", "3", "--resume", "--latent", "4", *quick],
        ["train", "vae", "--epochs", "3", "--resume", "--hidden", "12,6", *quick],
        ["train", "vae", "--epochs", "3", "--resume", *quick[:-1], str(tmp_path / "fresh")],
        ["train", "vae", "--epochs", "3", "--resume", *flags, *quick],
    )
    one_line_error(refused, 1, f"--latent 4: the run in {out} was trained with --latent 3; --resume goes on with")
    one_line_error(hidden, 1, f"--hidden 12,6: the run in {out} was trained with --hidden 12; ")
    one_line_error(fresh, 1, f"--resume: {tmp_path / 'fresh'} holds no run to go on with (no checkpoint.npz): train it")
    ok(same)  # the run's own flags, repeated: taken
    assert scratchae.load(out).epochs_trained == 3


def test_resume_reads_a_flags_other_spelling_as_the_same_and_writes_no_layers_as_empty(tmp_path):
    out = tmp_path / "ae"
    quick = ["--limit", "100", "-q", "--out", str(out)]
    ok(run_all(["train", "ae", "--epochs", "1", "--activation", "linear", "--hidden", "", *quick])[0])
    ok(run_all(["train", "ae", "--epochs", "2", "--activation", "identity", "--resume", *quick])[0])  # as linear
    assert scratchae.load(out).config["activation"] == "linear" and scratchae.load(out).epochs_trained == 2
    (other,) = run_all(["train", "ae", "--epochs", "3", "--hidden", "16", "--resume", *quick])
    one_line_error(other, 1, f'--hidden 16: the run in {out} was trained with --hidden ""; --resume goes on')


def test_a_folder_whose_run_stopped_before_its_first_checkpoint_says_so(tmp_path):
    """A run.json of train's: the run stopped before its first epoch ended; a foreign one: no run at all."""
    (tmp_path / "stopped").mkdir()
    RunInfo("ae", "digits", None, 300, [8, 8], 10, None, 0.1).write(tmp_path / "stopped")
    for name, text in (("foreign", '{"hello": 1}'), ("broken", "not json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(text)
    stopped, foreign, broken = run_all(*(["eval", str(tmp_path / name)] for name in ("stopped", "foreign", "broken")))
    one_line_error(stopped, 1, f"no run at {tmp_path / 'stopped'} yet: its run.json is of a run stopped before")
    for result, name in ((foreign, "foreign"), (broken, "broken")):
        one_line_error(result, 1, f"no run at {tmp_path / name}: it holds no checkpoint.npz (give a folder written")


def test_resume_of_a_finished_run_says_so_and_changes_nothing(tmp_path):
    out = tmp_path / "vae"
    ok(run_all(["train", "vae", *TINY, *IWAE["vae"], "--out", str(out)])[0])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (again,) = run_all(["train", "vae", *TINY[2:], *IWAE["vae"], "--epochs", "1", "--resume", "--out", str(out)])
    assert "already has 1 epoch, --epochs 1 in all: nothing was trained" in ok(again).stdout
    assert "Summary" not in again.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_train_refuses_bad_settings_naming_the_flags(tmp_path):
    np.save(tmp_path / "two.npy", np.ones((2, 4), dtype=np.float32))
    (tmp_path / "afile").write_text("")
    results = run_all(
        ["train", "vae", "--hidden", "64,,32"],
        ["train", "vae", "--kl-warmup", "-1"],
        ["train", "vae", "--data", "mnist"],
        ["train", "vae", "--limit", "5"],
        ["train", "ae", "--data", "two.npy"],
        ["train", "ae", "--image-shape", "3x3"],
        ["train", "ae", *TINY, "--out", str(tmp_path / "afile" / "run")],
        ["train", "ae", *TINY, "--out", str(tmp_path / "afile")],
        cwd=tmp_path,
    )
    hidden, warmup, mnist, limit, two, shape, under_file, on_file = results
    one_line_error(hidden, 2, "--hidden", "'64,,32'", "see scratchae train --help")
    one_line_error(warmup, 2, "--kl-warmup", "an integer >= 0, got -1")
    one_line_error(mnist, 1, "no --data-dir was given", "pass --data-dir <folder")
    one_line_error(limit, 1, "--val-fraction 0.1 of 5 training examples", "--limit")
    one_line_error(two, 1, "a test part of 0.2 of the 2 examples", "X_test")
    one_line_error(shape, 1, "--image-shape (3, 3) does not fit 64 features")
    for result in results[2:6]:
        assert not any(word in result.stderr for word in ("data_dir", "test_fraction", "image_shape")), result.stderr
    one_line_error(under_file, 1, f"--out {tmp_path / 'afile' / 'run'}: cannot create the run folder")
    one_line_error(on_file, 1, f"--out {tmp_path / 'afile'} is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "two.npy"]


def test_kl_warmup_zero_is_the_default_and_accepted(tmp_path):
    ok(run_all(["train", "vae", *TINY, *IWAE["vae"], "--kl-warmup", "0", "--out", str(tmp_path / "run")])[0])
    assert scratchae.load(tmp_path / "run").config["kl_warmup"] == 0


REAL_FIT = cli_train._fit


def interrupt_at_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Make ``train`` stop as if by Ctrl-C in the first batch of epoch ``epoch`` (counted from 1)."""

    def fit(model, X, y, fit_args, out, resume):
        real_batch_loss = model.batch_loss

        def batch_loss(*args, **kwargs):
            if model.epochs_trained + 1 == epoch:
                raise KeyboardInterrupt
            return real_batch_loss(*args, **kwargs)

        model.batch_loss = batch_loss
        return REAL_FIT(model, X, y, fit_args, out, resume)

    monkeypatch.setattr(cli_train, "_fit", fit)


def test_interrupted_train_says_which_epoch_the_checkpoint_holds(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    args = ["train", "ae", "--epochs", "5", "--limit", "100", "--hidden", "8", "-q", "--out", str(out)]
    interrupt_at_epoch(monkeypatch, 3)
    assert cli.main(args) == 130
    err = capsys.readouterr().err
    assert err == (
        f"scratchae: interrupted; {out / 'checkpoint.npz'} holds epoch 2: continue with --resume, or end the run "
        f"there with --resume --epochs 2 (which writes its metrics and figures)\n"
    )
    assert scratchae.load(out).epochs_trained == 2
    interrupt_at_epoch(monkeypatch, 3)  # resumed, and stopped again in its first epoch
    assert cli.main([*args, "--resume"]) == 130
    err = capsys.readouterr().err
    assert "no epoch ended, nothing was saved" in err and "holds epoch 2 from before" in err
    interrupt_at_epoch(monkeypatch, 1)
    assert cli.main([*args[:-1], str(tmp_path / "fresh")]) == 130
    assert capsys.readouterr().err == f"scratchae: interrupted; no checkpoint was saved in {tmp_path / 'fresh'}\n"
    monkeypatch.setattr(cli_train, "_fit", REAL_FIT)
    ended = [*args[:2], "--epochs", "2", *args[4:], "--resume"]
    real_figures = cli_train.write_figures

    def interrupted_figures(*a, **k):
        real_figures(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_train, "write_figures", interrupted_figures)  # Ctrl-C as the last figure is drawn
    assert cli.main(ended) == 130 and not (out / "metrics.json").exists()  # written last: the run is not done
    monkeypatch.setattr(cli_train, "write_figures", real_figures)
    capsys.readouterr()
    assert cli.main(ended) == 0  # the interrupted run ended at its 2 epochs: its outputs are written
    assert "already has 2 epochs, --epochs 2 in all: nothing to train; writing the metrics" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2 and (out / "loss.png").is_file()
    assert len(list(csv.DictReader((out / "history.csv").open()))) == 2
    assert scratchae.load(out).epochs_trained == 2
    assert cli.main(ended) == 0  # now complete: left as it is
    assert "nothing was trained, the run is as it was" in capsys.readouterr().out


def test_sample_and_encode_write_only_the_files_they_name(runs, tmp_path):
    images = (np.random.default_rng(1).random((4, 8, 8)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", images)
    txt, bare, enc_txt, enc_upper, svg = run_all(
        ["sample", str(runs["vae"]), "-o", "out.txt"],
        ["sample", str(runs["vae"]), "-o", "out"],
        ["encode", str(runs["ae"]), "x.npy", "-o", "c.txt"],
        ["encode", str(runs["ae"]), "x.npy", "-o", "C.NPY"],
        ["sample", str(runs["vae"]), "-n", "5", "-o", "s.svg"],
        cwd=tmp_path,
    )
    one_line_error(txt, 1, "-o out.txt", ".txt", ".npy", ".npz", ".png", ".pdf")
    one_line_error(bare, 1, "-o out", "no suffix", ".png")
    one_line_error(enc_txt, 1, "-o c.txt", ".npy")
    assert "wrote codes of shape (4, 8) to C.NPY" in ok(enc_upper).stdout
    assert np.load(tmp_path / "C.NPY").shape == (4, 8)
    assert "wrote 5 samples to s.svg" in ok(svg).stdout and b"<svg" in (tmp_path / "s.svg").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C.NPY", "s.svg", "x.npy"]  # nothing else was written


def test_outputs_never_replace_the_runs_own_files_or_a_folder(runs, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(runs["vae"], run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    (tmp_path / "d.npy").mkdir()
    ckpt = str(run / "checkpoint.npz")
    cases = [
        (["eval", str(run), "--json", ckpt], "--json", "is a file of the run"),
        (["eval", ckpt, "--json", ckpt], "--json", f"is the checkpoint {ckpt} itself: write to another file"),
        (["eval", str(run), "--json", str(run / "run.json")], "--json", "is a file of the run"),
        (["eval", str(run), "--json", str(run / "history.csv")], "--json", "is a file of the run"),
        (["eval", str(run), "--json", str(tmp_path)], "--json", "is a folder: give a file name"),
        (["sample", str(run), "-o", ckpt], "-o", "is a file of the run"),
        (["sample", str(run), "-o", str(run / "samples.png")], "-o", "is a file of the run"),
        (["sample", str(run), "-o", "d.npy"], "-o d.npy is a folder: give a file name, e.g. d.npy/samples.npy"),
        (["encode", str(run), str(tmp_path / "x.npy"), "-o", "d.npy"], "-o d.npy is a folder"),
        (["sample", str(run), "-o", str(run)], f"-o {run} is a folder"),
        (["encode", str(runs["cvae"]), "x.npy", "--labels", "l.npy", "-o", "l.npy"], "is the --labels file itself"),
        (["sample", str(runs["cvae"]), "-n", "4", "-o", "d"], "-o d is a folder"),
        (["sample", str(runs["cvae"]), "-n", "4", "-o", "q.npy"], "-o: the classes' file q_labels.npy is a folder"),
        (["sample", "bare.npz", "--image-shape", "8x8", "-o", "bare.npz"], "-o bare.npz is the checkpoint bare.npz"),
    ]
    shutil.copy(ckpt, tmp_path / "bare.npz")  # a checkpoint alone in a folder that is no run
    (tmp_path / "d").mkdir()
    (tmp_path / "q_labels.npy").mkdir()
    for result, (_, *parts) in zip(run_all(*(args for args, *_ in cases), cwd=tmp_path), cases, strict=True):
        one_line_error(result, 1, *parts)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert not (tmp_path / "q.npy").exists() and not (tmp_path / "l.npy").exists()
    ok(run_all(["eval", str(run), "--iwae-k", "2", "--json", str(run / "eval.json")])[0])  # a file of its own: fine
    assert json.loads((run / "eval.json").read_text())["model"] == "VAE"


def test_cvae_sample_n_counts_all_samples_and_keeps_their_classes(runs, tmp_path):
    npy, npz, png, one_class, vae_npz, one_class_npy = run_all(
        ["sample", str(runs["cvae"]), "-n", "8", "-o", "s.npy"],
        ["sample", str(runs["cvae"]), "-n", "13", "-o", "s.npz"],
        ["sample", str(runs["cvae"]), "-n", "8", "-o", "s.png"],
        ["sample", str(runs["cvae"]), "--class", "4", "-n", "3", "-o", "four.npz"],
        ["sample", str(runs["vae"]), "-n", "3", "-o", "v.npz"],
        ["sample", str(runs["cvae"]), "--class", "2", "-n", "3", "-o", "two.npy"],
        cwd=tmp_path,
    )
    assert "wrote 8 samples to s.npy and their classes to s_labels.npy" in ok(npy).stdout
    assert np.load(tmp_path / "s.npy").shape == (8, 64)
    np.testing.assert_array_equal(np.load(tmp_path / "s_labels.npy"), np.arange(8))
    ok(npz)
    with np.load(tmp_path / "s.npz") as archive:
        assert archive["X"].shape == (13, 64)
        np.testing.assert_array_equal(archive["y"], np.arange(13) % 10)
    assert "wrote 8 samples to s.png" in ok(png).stdout
    assert_png(tmp_path / "s.png")
    ok(one_class)
    with np.load(tmp_path / "four.npz") as archive:
        assert archive["X"].shape == (3, 64) and list(archive["y"]) == [4, 4, 4]
    ok(vae_npz)
    with np.load(tmp_path / "v.npz") as archive:
        assert archive.files == ["X"] and archive["X"].shape == (3, 64)
    assert "wrote 3 samples to two.npy and their classes to two_labels.npy" in ok(one_class_npy).stdout
    assert np.load(tmp_path / "two_labels.npy").tolist() == [2, 2, 2]  # never a stale file of another run


def test_bench_arguments_are_checked_in_one_line(monkeypatch, tmp_path, capsys):
    from scratchae import bench

    monkeypatch.setattr(bench, "run", lambda *args: pytest.fail("the benchmark ran"))
    (tmp_path / "a.txt").write_text("a file where the folder would be")
    cases = [
        (["--repeats", "0"], 2, "argument --repeats: must be a positive integer, got 0"),
        (["--models", "vae,nope"], 2, "unknown model(s) 'nope'"),
        (["--batch-sizes", "128,"], 2, "argument --batch-sizes"),
        (["--frobnicate"], 2, "unrecognized arguments: --frobnicate"),
        (["--json", str(tmp_path / "a.txt" / "b.json")], 1, "a.txt/b.json: cannot make its folder"),
        (["--json", str(tmp_path)], 1, f"--json {tmp_path} is a folder: give a file name"),
        (["--json", str(tmp_path / "a.txt")], 1, "a.txt exists and holds no benchmark table: give another file"),
        (["--examples", "100", "--batch-sizes", "64,128"], 1, "--examples 100 is fewer than the batch size 128"),
    ]
    for args, code, message in cases:
        assert cli.main(["bench", *args]) == code, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("scratchae: error: ") and message in err, err
    assert (tmp_path / "a.txt").read_text() == "a file where the folder would be"
    assert cli.main(["bench", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for default in ("default cpu", "default 128,1024", "default 3", "default 60000", "written there as JSON"):
        assert default in out


def test_bench_notes_a_missing_pytorch(monkeypatch, tmp_path, capsys):
    from scratchae import bench

    real = bench.importlib.util.find_spec
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None if name == "torch" else real(name))
    monkeypatch.setattr(bench, "torch_available", lambda device: False)
    table = {"device": "cpu", "first_run_with_compile_s": 0.5, "rows": []}
    monkeypatch.setattr(bench, "run", lambda *args: table)
    out = tmp_path / "new" / "b.json"  # its folder is made, as eval --json makes its own
    assert cli.main(["bench", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("note: PyTorch is not installed") and "vs torch" in lines[0]
    assert lines[-1] == f"wrote {out}" and json.loads(out.read_text()) == table
    assert cli.main(["bench", "--no-torch", "--json", str(out)]) == 0  # the table it wrote is replaced
    assert "PyTorch" not in capsys.readouterr().out


def test_a_library_warning_is_one_line_and_the_summary_counts_the_classes(tmp_path):
    X = np.random.default_rng(0).random((60, 12)).astype(np.float32)
    y = np.arange(60) % 3
    y[0] = 5  # classes 3 and 4 have no example
    np.savez(tmp_path / "d.npz", X=X, y=y)
    (result,) = run_all(
        ["train", "cvae", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--out", str(tmp_path / "r")]
    )
    warning = [line for line in ok(result).stderr.splitlines() if "warning" in line]
    assert warning == [
        "scratchae: warning: d.npz: the labels run from 0 to 5, so 6 classes, but 2 of them have no training "
        "example (3, 4): check the labels (or --limit, which may have left them out)"
    ]
    assert "train, 12 test, 6 classes)" in result.stdout
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["n_classes"] == 6


def test_sample_takes_an_image_shape_for_a_checkpoint_that_records_none(runs, tmp_path):
    """A checkpoint saved from Python has no run.json, so no image shape: --image-shape gives one."""
    bare = tmp_path / "bare.npz"
    shutil.copy(runs["vae"] / "checkpoint.npz", bare)
    refused, drawn, misfit = run_all(
        ["sample", str(bare), "-n", "4"],
        ["sample", str(bare), "-n", "4", "--image-shape", "8x8", "-o", "s.png"],
        ["sample", str(bare), "-n", "4", "--image-shape", "7x8", "-o", "t.png"],
        cwd=tmp_path,
    )
    assert refused.returncode == 1 and "records no image shape: give one (--image-shape HxW)" in refused.stderr
    assert "wrote 4 samples to s.png" in ok(drawn).stdout
    assert_png(tmp_path / "s.png")
    assert misfit.returncode == 1 and "--image-shape 7x8 does not fit the model's 64 features" in misfit.stderr
    assert not (tmp_path / "t.png").exists()


def test_a_csv_with_labels_first_and_pixels_to_255_trains_with_its_flags_recorded(tmp_path):
    """--csv-labels and --scale go into run.json: eval reads the same test part, --resume refuses others."""
    rng = np.random.default_rng(0)
    rows = [f"{i % 3}," + ",".join(str(v) for v in rng.integers(0, 256, 16)) for i in range(90)]
    (tmp_path / "k.csv").write_text("label," + ",".join(f"p{j}" for j in range(16)) + "\n" + "\n".join(rows) + "\n")
    data = ["--data", str(tmp_path / "k.csv"), "--csv-labels", "first", "--scale", "minmax", "--image-shape", "4x4"]
    out = tmp_path / "run"
    (trained,) = run_all(["train", "cvae", *data, "--epochs", "1", "--iwae-k", "2", "-q", "--out", str(out)])
    assert "3 classes" in ok(trained).stdout
    info = json.loads((out / "run.json").read_text())
    assert (info["csv_labels"], info["scale"], info["n_classes"]) == ("first", "minmax", 3)
    assert info["grey_scale"] == [0.0, 1.0]  # the scaled data's range: the scale sample draws its figures on
    evaluated, other_scale = run_all(
        ["eval", str(out), "--iwae-k", "2"],
        ["train", "cvae", "--resume", "--scale", "auto", "--epochs", "2", "--out", str(out)],
    )
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert f"{metrics['recon_sq_error']:.5g}" in ok(evaluated).stdout  # the same test part, scaled alike
    assert other_scale.returncode == 1 and "--scale auto: the run in" in other_scale.stderr
    assert "was trained with minmax" in other_scale.stderr


def test_encode_reads_the_array_files_train_reads(runs, tmp_path):
    X = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", X=X)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    (tmp_path / "x.txt").write_text("1,2\n")
    results = run_all(
        *(["encode", str(runs["ae"]), f"x.{ext}", "-o", f"{ext}.npy"] for ext in ("npy", "npz", "csv", "txt")),
        cwd=tmp_path,
    )
    for result in results[:3]:
        ok(result)
    reference = np.load(tmp_path / "npy.npy")
    np.testing.assert_allclose(np.load(tmp_path / "npz.npy"), reference)
    np.testing.assert_allclose(np.load(tmp_path / "csv.npy"), reference, rtol=1e-5, atol=1e-6)  # CSV's decimals
    assert results[3].returncode == 1 and "an .npz (its X) or a .csv" in results[3].stderr


def test_a_test_part_beyond_the_training_range_is_refused_before_training(tmp_path):
    """--scale minmax maps the training part's range onto [0, 1]: test pixels beyond it would fail the
    BCE check after the last epoch; they are refused before the first, with X_test named."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 200, (60, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, X_test=X[:10] + 55)
    (result,) = run_all(
        ["train", "vae", "--data", str(tmp_path / "d.npz"), "--scale", "minmax", "--out", "r"], cwd=tmp_path
    )
    assert result.returncode == 1 and "X_test holds values from" in result.stderr
    assert "--scale minmax maps the training part's range onto it, which the test part leaves" in result.stderr
    assert not (tmp_path / "r").exists()


def test_encode_reads_new_data_as_the_run_read_its_own(tmp_path):
    """A run on a CSV with its labels first and pixels 0..255 mapped by --scale minmax: encode drops the
    label column (a cvae takes it as the classes), and maps the pixels with the run's recorded range."""
    rng = np.random.default_rng(1)
    table = np.column_stack([np.arange(50) % 2, rng.integers(0, 256, (50, 16))]).astype(float)
    np.savetxt(tmp_path / "k.csv", table, delimiter=",", fmt="%d")
    out = tmp_path / "run"
    flags = ["--csv-labels", "first", "--scale", "minmax", "--epochs", "1", "--iwae-k", "2", "-q"]
    (trained,) = run_all(["train", "cvae", "--data", str(tmp_path / "k.csv"), *flags, "--out", str(out)])
    ok(trained)
    lo, hi = json.loads((out / "run.json").read_text())["minmax"]
    assert 0 <= lo < hi <= 255
    (encoded,) = run_all(["encode", str(out), "k.csv", "-o", "codes.npy"], cwd=tmp_path)
    ok(encoded)
    model = scratchae.load(out)
    expected = model.transform(((table[:, 1:] - lo) / (hi - lo)).astype(np.float32), table[:, 0].astype(int))
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), expected, rtol=1e-5, atol=1e-6)
    table[:, 1:] = table[:, 1:] * 0.5 + 0.75 * hi  # pixels beyond the run's range
    np.savetxt(tmp_path / "beyond.csv", table, delimiter=",", fmt="%g")
    (refused,) = run_all(["encode", str(out), "beyond.csv", "-o", "codes.npy"], cwd=tmp_path)
    low = (table[:, 1:].min() - lo) / (hi - lo)
    one_line_error(
        refused,
        1,
        f"beyond.csv holds values from {table[:, 1:].min():.8g} to {table[:, 1:].max():.8g} ({low:.5g}",
        f"as the run scales them), but the run's ConditionalVAE (a BCE loss) takes data in [0, 1]: the run maps "
        f"its training data's range {lo:g} to {hi:g} onto [0, 1] (--scale minmax)",
    )


def test_encode_warns_of_uint8_digits_divided_as_pixels(runs, tmp_path):
    """The digits hold 0..16, and a digits run's data were divided by 16 (run.json records it): uint8 rows
    of them are divided by 255, as uint8 pixels are, with a warning that says so and how to pass them."""
    from scratchae.data.sources import load_digits

    raw = load_digits().X[:20].reshape(20, 64).astype(np.uint8)
    np.save(tmp_path / "digits_u8.npy", raw)
    np.save(tmp_path / "pixels_u8.npy", raw * 15)
    np.save(tmp_path / "digits_float.npy", raw.astype(np.float64))
    digits, pixels, floats = run_all(
        ["encode", str(runs["ae"]), "digits_u8.npy", "-o", "d.npy"],
        ["encode", str(runs["ae"]), "pixels_u8.npy", "-o", "p.npy"],
        ["encode", str(runs["ae"]), "digits_float.npy", "-o", "f.npy"],
        cwd=tmp_path,
    )
    one_line_error(
        floats, 1, "digits_float.npy holds values from 0 to 16, but", "divided by 16: give floats divided by 16"
    )
    assert json.loads((runs["ae"] / "run.json").read_text())["full_scale"] == 16
    assert "scratchae: warning: digits_u8.npy: its uint8 values run from 0 to 16 and are divided by 255" in (
        ok(digits).stderr
    )
    assert "store floats divided by 16" in digits.stderr and "warning" not in ok(pixels).stderr
    expected = scratchae.load(runs["ae"]).transform(raw.astype(np.float32) / 255)
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), expected, rtol=1e-5, atol=1e-6)


def test_eval_reads_the_runs_own_data_as_the_run_did(runs):
    """On the run's own data, --scale or --csv-labels other than the run's would read other numbers."""
    refused, same = run_all(["eval", str(runs["ae"]), "--scale", "none"], ["eval", str(runs["ae"]), "--scale", "auto"])
    assert refused.returncode == 1 and "--scale none: the run's data were read with --scale auto" in refused.stderr
    assert "recon_sq_error" in ok(same).stdout


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    """sample -n 10**12 asks NumPy for terabytes: one line that says so and what to ask for instead."""

    def allocate(args):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000000000, 2)")

    monkeypatch.setitem(cli.COMMANDS, "sample", allocate)
    assert cli.main(["sample", "runs/vae", "-n", "1000000000000"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scratchae: error: out of memory (Unable to allocate 7.28 TiB")
    assert "ask for less (a smaller -n" in err


def test_encode_reads_a_bool_labels_file_as_train_reads_labels(runs, tmp_path):
    """A bool column is classes 0 and 1 in a training file, and so in encode's --labels file."""
    from scratchae.data.sources import load_digits

    X = (load_digits().X[:6].reshape(6, 64) / 16).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "flags.npy", np.arange(6) % 2 == 1)
    np.save(tmp_path / "ints.npy", np.arange(6) % 2)
    by_flag, by_int = run_all(
        ["encode", str(runs["cvae"]), "x.npy", "--labels", "flags.npy", "-o", "f.npy"],
        ["encode", str(runs["cvae"]), "x.npy", "--labels", "ints.npy", "-o", "i.npy"],
        cwd=tmp_path,
    )
    ok(by_flag), ok(by_int)
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), np.load(tmp_path / "i.npy"))


def test_an_output_that_cannot_be_written_is_refused_before_the_work(runs, tmp_path, monkeypatch, capsys):
    """eval --json, sample -o and encode -o onto a folder without write permission (or a read-only file
    system) stop at once, naming it, instead of after the evaluation (root may write anywhere: os.access
    plays the read-only folder)."""
    locked, read_only = tmp_path / "locked", tmp_path / "read_only.json"
    locked.mkdir()
    (locked / "old.json").write_text("{}")
    read_only.write_text("{}")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) in (locked, read_only) else real(p, mode))
    monkeypatch.setattr(cli_use, "test_metrics", lambda *args, **kwargs: pytest.fail("the evaluation ran"))
    np.save(tmp_path / "x.npy", np.full((3, 64), 0.5, np.float32))
    for args in (
        ["eval", str(runs["vae"]), "--json", str(locked / "e.json")],
        ["eval", str(runs["vae"]), "--json", str(locked / "old.json")],  # replaced by a rename: the folder counts
        ["sample", str(runs["vae"]), "-n", "2", "-o", str(locked / "new" / "s.npy")],
        ["encode", str(runs["vae"]), str(tmp_path / "x.npy"), "-o", str(locked / "c.npy")],
    ):
        assert cli.main(args) == 1, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"its folder {locked} cannot be written" in err, err
    assert sorted(p.name for p in locked.iterdir()) == ["old.json"]
    # a read-only file in a writable folder: eval --json renames its new file over it, as before
    monkeypatch.setattr(cli_use, "test_metrics", lambda *args, **kwargs: {"elbo": -1.5})
    assert cli.main(["eval", str(runs["vae"]), "--json", str(read_only)]) == 0
    assert json.loads(read_only.read_text())["test"] == {"elbo": -1.5}
