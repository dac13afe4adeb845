"""Bad input gets a clear error: a ScratchAEError that is also the matching builtin, whose message names
the argument and what was expected against what was found; on the command line, one line on stderr and a
non-zero exit status, never a traceback.

Covered elsewhere, not repeated here: wrong input width and NaN/inf in X (test_models, test_train), labels
out of range or missing (test_models, test_vae), corrupt/truncated/wrong-magic IDX (test_data_idx), .npz
without its keys, ragged or non-numeric CSV (test_data_load), damaged, foreign, pickled or mis-shaped
checkpoints (test_checkpoint), unknown device and "gpu" without CuPy (test_backend), unknown activation,
loss and optimizer names, non-positive batch size, lr and epochs (test_models, test_train), and the command
line's own argument errors (test_cli). This file adds the cases those leave out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchae import (
    ArgumentError,
    DataError,
    DTypeError,
    ScratchAEError,
    ShapeError,
    metrics,
    pretrain_layerwise,
    transfer_head,
)
from scratchae.callbacks import EarlyStopping
from scratchae.data import binarize, load
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder
from scratchae.nn import Sequential
from scratchae.optim import Adam, make_optimizer
from scratchae.pca import principal_angles
from scratchae.pretrain import random_init_layers, stack_encoder, stacked_classifier
from scratchae.tensor import Tensor

D, C = 16, 3  # features, classes
X = np.random.default_rng(0).random((12, D)).astype(np.float32)
Y = np.arange(12) % C


def ae() -> AutoEncoder:
    return AutoEncoder(D, (8,), 2)


def cvae() -> ConditionalVAE:
    return ConditionalVAE(D, C, (8,), 2)


def fit(model: Any, X: Any = X, y: Any = None, **kwargs: Any) -> Any:
    return model.fit(X, y, **{"epochs": 1, "batch_size": 4, "verbose": False, **kwargs})


def huge() -> np.ndarray:
    X64 = X.astype(np.float64)
    X64[3, 5] = 1e300  # finite in float64, inf in float32
    return X64


BUILTIN = {ShapeError: ValueError, DTypeError: TypeError, ArgumentError: ValueError, DataError: ValueError}

# (case, call, error type, regex the message must match)
API_CASES: list[tuple[str, Callable[[], Any], type, str]] = [
    # the input array
    ("ragged list", lambda: fit(ae(), [[0.5] * D, [0.5] * (D - 1)]), ShapeError, "X is ragged"),
    (
        "rank 3",
        lambda: fit(ae(), X[:, :, None]),
        ShapeError,
        r"X must be a 2-D array \(N, 16\), got shape \(12, 16, 1\)",
    ),
    ("rank 0", lambda: ae().encode(3.0), ShapeError, r"2-D array \(N, 16\), got shape \(\)"),
    ("empty batch", lambda: fit(ae(), X[:0]), ShapeError, r"X is empty \(shape \(0, 16\)\)"),
    ("empty encode", lambda: ae().encode(np.zeros((0, D))), ShapeError, "X is empty"),
    (
        "object array",
        lambda: fit(ae(), X.astype(object)),
        DTypeError,
        "X must be numeric, got an array of dtype object",
    ),
    ("strings", lambda: ae().encode(np.full((2, D), "a")), DTypeError, "X must be numeric, got an array of dtype <U1"),
    ("complex", lambda: ae().encode(X + 1j), DTypeError, "X must be numeric, got an array of dtype complex64"),
    ("None", lambda: fit(ae(), None), DTypeError, "X must be numeric"),
    (
        "beyond float32",
        lambda: fit(ae(), huge()),
        DataError,
        r"X has 1 NaN or infinite values \(first rows: \[3\]\); values beyond the float32 range",
    ),
    ("validation empty", lambda: fit(ae(), validation_data=X[:0]), ShapeError, "validation X is empty"),
    # labels
    (
        "fractional labels",
        lambda: fit(cvae(), y=Y + 0.5),
        DataError,
        "y must hold integer class labels, got dtype float64 with the value 0.5",
    ),
    ("NaN label", lambda: fit(cvae(), y=np.where(Y == 1, np.nan, Y)), DataError, "integer class labels.*nan"),
    ("string labels", lambda: fit(cvae(), y=Y.astype(str)), DTypeError, "integer class labels, got dtype <U"),
    ("bool labels", lambda: fit(cvae(), y=Y > 0), DTypeError, "got dtype bool"),
    ("ragged labels", lambda: fit(cvae(), y=[[0], [1, 2]] * 6), ShapeError, "y is ragged"),
    ("2-D labels", lambda: fit(Classifier(D, C), y=Y[:, None]), ShapeError, r"y has shape \(12, 1\), expected \(12,\)"),
    ("short labels", lambda: fit(Classifier(D, C), y=Y[:5]), ShapeError, r"y has shape \(5,\), expected \(12,\)"),
    ("huge float label", lambda: fit(cvae(), y=np.full(12, 1e30)), DataError, r"y must lie in \[0, 2\].*1e\+30"),
    ("negative label", lambda: fit(cvae(), y=Y - 1), DataError, r"\[0, 2\] \(3 classes\), got values from -1 to 1"),
    ("one label 1.5", lambda: cvae().sample(2, y=1.5), DataError, "value 1.5"),
    ("one label 'a'", lambda: cvae().sample(2, y="a"), DTypeError, "integer class labels, got dtype <U1"),
    ("one label NaN", lambda: cvae().sample(2, y=np.nan), DataError, "value nan"),
    ("score labels", lambda: Classifier(D, C).score(X, Y[:3]), ShapeError, r"expected \(12,\)"),
    # names and numbers
    (
        "activation list",
        lambda: AutoEncoder(D, activation=["relu"]),
        ArgumentError,
        r"unknown activation \['relu'\]: expected one of identity \(or linear\), relu",
    ),
    ("optimizer list", lambda: fit(ae(), optimizer=["adam"]), ArgumentError, r"unknown optimizer \['adam'\]"),
    ("lr text", lambda: fit(ae(), lr="fast"), ArgumentError, "lr must be a finite number > 0, got 'fast'"),
    ("one callback", lambda: fit(ae(), callbacks=print), ArgumentError, "callbacks must be a list of functions"),
    ("elbo seed -1", lambda: metrics.elbo(VAE(D, (8,), 2), X, seed=-1), ArgumentError, "seed must be an integer >= 0"),
    ("elbo seed 1.5", lambda: metrics.elbo(VAE(D, (8,), 2), X, seed=1.5), ArgumentError, "got 1.5"),
    ("labels for an AE", lambda: metrics.reconstruction_mse(ae(), X, Y), ArgumentError, "AutoEncoder takes none"),
    ("labels for a VAE", lambda: metrics.elbo(VAE(D, (8,), 2), X, Y), ArgumentError, "VAE takes none"),
    (
        "probe labels of text",
        lambda: metrics.linear_probe_accuracy(X, np.array(["a"] * len(X)), X, Y),
        DTypeError,
        "y_train must hold integer class labels",
    ),
    ("sample rng text", lambda: VAE(D, (8,), 2).sample(3, rng="seed"), ArgumentError, "rng must be a random"),
    ("corrupt rng list", lambda: DenoisingAutoEncoder(D).corrupt(X, rng=[1]), ArgumentError, "or an integer seed"),
    ("a callback that is not", lambda: fit(ae(), callbacks=[1]), ArgumentError, "1 is not"),
    (
        "bce targets above 1",
        lambda: fit(ae(), X * 16),
        DataError,
        r"X holds values from 0\.\d+ to 15\.\d+, but AutoEncoder's loss='bce' needs targets in \[0, 1\]: scale .*"
        r"or use a squared-error loss \(loss='mse', output='linear'\)",
    ),
    (
        "bce target just above 1",
        lambda: fit(ae(), np.vstack([X[:-1], np.full((1, D), 1.0000001)])),
        DataError,
        r"X holds values from 0\.\d+ to 1\.0000001, but",
    ),
    (
        "bernoulli validation targets below 0",
        lambda: fit(cvae(), y=Y, validation_data=(X - 0.5, Y)),
        DataError,
        r"validation X holds values from -0\.\d+ to 0\.\d+, but ConditionalVAE's likelihood='bernoulli' needs",
    ),
    (
        "elbo of pixels in 0..255",
        lambda: VAE(D, (8,), 2).elbo(X * 255),
        DataError,
        r"X holds values from 0\.\d+ to 2\d\d\.\d+, but VAE's likelihood='bernoulli' needs targets in \[0, 1\].*"
        r"or use a squared-error loss \(likelihood='gaussian'\)",
    ),
    ("lr inf", lambda: fit(ae(), lr=float("inf")), ArgumentError, "lr must be a finite number > 0, got inf"),
    # labels to condition on, given to a model that takes none (the user may have meant a ConditionalVAE);
    # fit, evaluate_loss and trace take y and ignore it there (the fit(X, y=None) of unsupervised estimators)
    ("decode labels", lambda: VAE(D, (8,), 2).decode(np.zeros((3, 2)), y=3), ArgumentError, "VAE takes none"),
    ("encode labels", lambda: VAE(D, (8,), 2).encode(X, y=Y), ArgumentError, "VAE takes none"),
    ("sample labels", lambda: VAE(D, (8,), 2).sample(4, y=1), ArgumentError, "VAE takes none"),
    ("elbo labels", lambda: VAE(D, (8,), 2).elbo(X, y=Y), ArgumentError, "VAE takes none"),
    (
        "batch size text",
        lambda: fit(ae(), batch_size="4"),
        ArgumentError,
        "batch_size must be a positive integer, got '4'",
    ),
    (
        "unknown option",
        lambda: fit(ae(), optimizer_options=dict(momentum=0.9)),
        ArgumentError,
        "optimizer 'adam' takes no option momentum: it takes betas, eps, weight_decay",
    ),
    (
        "betas",
        lambda: Adam(ae().parameters(), betas=0.9),
        ArgumentError,
        r"betas must be a pair of numbers \(beta1, beta2\), got 0.9",
    ),
    (
        "sgd option",
        lambda: make_optimizer("sgd", ae().parameters(), 0.1, betas=(0.9, 0.9)),
        ArgumentError,
        "'sgd' takes no option betas",
    ),
    ("seed negative", lambda: AutoEncoder(D, seed=-1), ArgumentError, "seed must be an integer >= 0, got -1"),
    ("seed float", lambda: AutoEncoder(D, seed=1.5), ArgumentError, "seed must be an integer >= 0, got 1.5"),
    ("seed None", lambda: AutoEncoder(D, seed=None), ArgumentError, "seed must be an integer >= 0, got None"),
    (
        "hidden int",
        lambda: AutoEncoder(D, hidden=8),
        ArgumentError,
        r"hidden must be a sequence of positive integers such as \(256, 64\), got 8",
    ),
    ("hidden None", lambda: AutoEncoder(D, hidden=None), ArgumentError, "hidden must be a sequence"),
    (
        "noise level",
        lambda: DenoisingAutoEncoder(D, noise="masking", noise_level=2),
        ArgumentError,
        r"noise_level for 'masking' must be a probability in \[0, 1\], got 2",
    ),
    (
        "noise level NaN",
        lambda: DenoisingAutoEncoder(D, noise="gaussian", noise_level=float("nan")),
        ArgumentError,
        "noise_level for 'gaussian' must be a finite number >= 0",
    ),
    (
        "encoder list",
        lambda: Classifier(D, C, encoder=[]),
        ArgumentError,
        r"encoder must be an encoder module \(Encoder or GaussianEncoder\), its spec \(a dict\) or None, got list",
    ),
    (
        "a model as the encoder",
        lambda: Classifier(D, C, encoder=ae()),
        ArgumentError,
        r"got AutoEncoder: give its encoder \(AutoEncoder.encoder\)",
    ),
    ("optimizer on a module", lambda: Adam(ae()), ArgumentError, "takes a list of parameters.*got AutoEncoder"),
    ("optimizer on arrays", lambda: Adam([np.ones(3)]), ArgumentError, "parameter 0 is of type ndarray, not a Tensor"),
    ("sequential of numbers", lambda: Sequential(1, 2), ArgumentError, "layer 0 is of type int, not a Module"),
    ("transfer without labels", lambda: transfer_head(ae(), X, None), ArgumentError, r"y is required"),
    ("transfer string labels", lambda: transfer_head(ae(), X, Y.astype(str)), DTypeError, "integer class labels"),
    (
        "pretrain noise level",
        lambda: pretrain_layerwise(X, (D, 4), denoising=("masking", "x")),
        ArgumentError,
        "denoising: the level must be a number, got 'x'",
    ),
    ("pretrain sizes", lambda: random_init_layers(8, 5), ArgumentError, "sizes must be a sequence of positive"),
    ("stack a number", lambda: stack_encoder(5), ArgumentError, "stack_encoder takes the LayerwiseResult.*got int"),
    (
        "classifier on a number",
        lambda: stacked_classifier(5, 3),
        ArgumentError,
        "stacked_classifier takes the LayerwiseResult.*got int",
    ),
    (
        "angles of text",
        lambda: principal_angles([["a"]], np.eye(2)),
        DTypeError,
        "principal_angles: A: expected numeric data",
    ),
    ("angles ragged", lambda: principal_angles(np.eye(2), [[1, 2], [3]]), ShapeError, "principal_angles: B: .*ragged"),
    (
        "standardize widths",
        lambda: metrics.standardize(np.ones((3, 2)), np.ones((3, 3))),
        ShapeError,
        r"array 1 after Z_train has shape \(3, 3\): it must be \(N, 2\)",
    ),
    (
        "probe negative labels",
        lambda: metrics.linear_probe_accuracy(np.ones((4, 2)), [-1, 0, 1, 0], np.ones((2, 2)), [0, 1]),
        DataError,
        r"y_train holds -1: class labels are 0, 1, 2",
    ),
    ("binarize threshold", lambda: binarize(X, threshold="a"), ArgumentError, "threshold must be a finite number"),
    ("load a number", lambda: load(5), ArgumentError, "name must be a data set's name or a file's path, got int"),
    ("early stopping monitor", lambda: EarlyStopping(monitor=5), ArgumentError, "monitor must be the name"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_bad_input_raises_a_clear_error(call, error, message):
    """The error type (a ScratchAEError and its builtin) and a message naming the argument, expected and found."""
    with pytest.raises(error, match=message) as info:
        call()
    assert isinstance(info.value, ScratchAEError) and isinstance(info.value, BUILTIN[error])


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.uint8, np.bool_])
def test_other_numeric_inputs_are_converted_to_the_models_dtype(dtype):
    """float16, float64, integer and bool inputs are converted to the model's float32 (documented in
    check_matrix): the codes equal those of the converted float32 array."""
    model = ae()
    data = (X * 4).astype(dtype)
    np.testing.assert_array_equal(model.encode(data), model.encode(data.astype(np.float32)))


def test_an_integer_seed_serves_as_rng():
    """rng=5 draws the same samples from models of other seeds (whose own generators differ), and
    differs from the model's own generator."""
    a, b = VAE(D, (8,), 2, seed=0), VAE(D, (8,), 2, seed=1)
    b.load_state_dict(a.state_dict())  # one set of weights: only the draws can differ
    np.testing.assert_array_equal(a.sample(3, rng=5), b.sample(3, rng=5))
    assert not np.array_equal(a.sample(3, rng=5), a.sample(3, rng=6))
    assert not np.array_equal(a.sample(3, rng=5), a.sample(3))


def test_lists_can_be_standardized():
    train, test = metrics.standardize([[1.0, 2.0], [3.0, 6.0]], [[2.0, 4.0]])
    np.testing.assert_allclose(train, [[-1, -1], [1, 1]])
    np.testing.assert_allclose(test, [[0, 0]])


def test_squared_error_models_take_data_of_any_range():
    """Only a BCE / Bernoulli loss needs targets in [0, 1]; loss='mse' and likelihood='gaussian' train on any
    scale, and their loss goes down."""
    for model in (AutoEncoder(D, (8,), 2, output="linear", loss="mse"), VAE(D, (8,), 2, likelihood="gaussian")):
        history = model.fit(X * 16 - 4, epochs=5, lr=1e-2, verbose=False)
        assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0], model.kind


def test_a_tensor_is_accepted_wherever_an_array_is():
    """A Tensor passed as data is read through its array (not refused as dtype object)."""
    model = ae()
    np.testing.assert_array_equal(model.encode(Tensor(X)), model.encode(X))


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bad data files and checkpoints, one of each kind of damage."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    (root / "ragged.csv").write_text("1,2,3\n4,5\n")
    (root / "text.csv").write_text("1,2,3\n4,x,6\n")
    (root / "notes.txt").write_text("1,2,3\n")
    np.savez(root / "nokeys.npz", features=np.zeros((20, 4)))
    with_nan = rng.random((40, 64)).astype(np.float32)
    with_nan[3, 4] = np.nan
    np.save(root / "nan.npy", with_nan)
    np.save(root / "object.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    np.save(root / "rank4.npy", rng.random((5, 2, 2, 2)).astype(np.float32))
    np.save(root / "narrow.npy", rng.random((5, 10)).astype(np.float32))
    np.save(root / "good.npy", rng.random((5, 64)).astype(np.float32))
    np.save(root / "raw16.npy", np.arange(5 * 64).reshape(5, 64).astype(np.float32) % 17)
    for name, labels in {"big": np.full(5, 12), "short": np.zeros(3, int), "frac": np.full(5, 1.5)}.items():
        np.save(root / f"labels_{name}.npy", labels)
    idx = root / "idx"
    idx.mkdir()
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (idx / stem).write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")  # 3 dims declared, 1 given
    for name, model in {"ae": AutoEncoder(64, (8,), 2), "cvae": ConditionalVAE(64, 10, (8,), 2)}.items():
        model.save(root / name / "checkpoint.npz")
    data = (root / "ae" / "checkpoint.npz").read_bytes()
    (root / "truncated").mkdir()
    (root / "truncated" / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    (root / "vae_resume").mkdir()
    AutoEncoder(64, (8,), 2).save(root / "vae_resume" / "checkpoint.npz")  # another kind than the vae resumed
    return root


TRAIN = ["--epochs", "1", "--limit", "100", "--hidden", "8", "-q"]
CLI_CASES: list[tuple[list[str], str]] = [
    (["train", "ae", "--data", "ragged.csv"], "ragged.csv: line 2 has 2 fields, expected 3 as on line 1"),
    (["train", "ae", "--data", "text.csv"], "line 2, column 2: 'x' is not a number"),
    (["train", "ae", "--data", "nokeys.npz"], r"has no features array: expected key X or x .*found \['features'\]"),
    (["train", "ae", "--data", "nan.npy"], "X_train has 1 NaN and 0 infinite values .*row 3, column 4"),
    (["train", "ae", "--data", "object.npy"], "object array .*refused"),
    (["train", "ae", "--data", "rank4.npy"], r"must have shape \(N, D\) or \(N, H, W\), got shape \(5, 2, 2, 2\)"),
    (["train", "ae", "--data", "mnist", "--data-dir", "idx"], "IDX file .*truncated: the header needs 12 bytes"),
    (["train", "ae", "--lr", "0"], "--lr: must be a finite number > 0, got 0"),
    (["train", "ae", "--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
    (["train", "ae", "--activation", "swish"], "unknown activation 'swish'"),
    (["train", "ae", "--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["train", "ae", "--resume", "--overwrite"], "give one of them"),
    (["train", "stacked", "--resume", "--pretrain-epochs", "2"], "a resumed one goes on fine-tuning"),
    (
        ["train", "dae", "--noise", "masking", "--noise-level", "2"],
        r"--noise-level for 'masking' must be a probability in \[0, 1\]",
    ),
    (["train", "vae", "--out", "vae_resume", "--resume"], "holds an AutoEncoder, not a VAE"),
    (["train", "stacked", "--out", "cvae", "--resume"], "holds a ConditionalVAE, not the AutoEncoder of a stacked run"),
    (
        ["train", "ae", "--hidden", "16", "--latent", "2", "--out", "ae", "--resume"],
        r"--hidden 16: the run in ae was trained with --hidden [\d,]+; --resume goes on with the run's own model",
    ),
    (["encode", "ae", "narrow.npy", "-o", "c.npy"], r"narrow.npy has 10 features \(shape \(5, 10\)\), the model"),
    (["encode", "ae", "rank4.npy", "-o", "c.npy"], r"got shape \(5, 2, 2, 2\)"),
    (["encode", "ae", "object.npy", "-o", "c.npy"], "object array"),
    (["encode", "ae", "good.npy", "-o", "good.npy"], "is the data file itself"),
    (
        ["encode", "ae", "raw16.npy", "-o", "c.npy"],
        r"raw16.npy holds values from 0 to 16, but the run's AutoEncoder \(a BCE loss\) takes data in \[0, 1\]: "
        r"give data in \[0, 1\], as the run's were$",  # a model saved by the API: no run.json, no scale of its own
    ),
    (["encode", "ae", "text.csv", "-o", "c.npy"], "line 2, column 2: 'x' is not a number"),
    (["encode", "ae", "notes.txt", "-o", "c.npy"], r"encode reads a \.npy file .*an \.npz \(its X\) or a \.csv"),
    (
        ["encode", "cvae", "good.npy", "-o", "c.npy", "--labels", "labels_big.npy"],
        r"y must lie in \[0, 9\] \(10 classes\), got values from 12 to 12",
    ),
    (
        ["encode", "cvae", "good.npy", "-o", "c.npy", "--labels", "labels_short.npy"],
        r"y has shape \(3,\), expected \(5,\)",
    ),
    (
        ["encode", "cvae", "good.npy", "-o", "c.npy", "--labels", "labels_frac.npy"],
        "integer class labels, got dtype float64 with the value 1.5",
    ),
    (["eval", "truncated"], "not a readable checkpoint.*truncated or corrupt"),
    (["eval", "ae", "--iwae-k", "10"], "--iwae-k applies to vae and cvae runs"),
    (["eval", "."], r"no run at \.: it holds no checkpoint.npz \(give a folder written by 'scratchae train'\); the"),
    (["trace", "vae", "--examples", "100000"], r"--examples 100000: the digits. training part has \d+ examples"),
    (["eval", "ae", "--json", "."], r"--json \. is a folder: give a file name"),
    (["sample", "truncated"], "not a readable checkpoint"),
]


def test_the_command_line_reports_each_error_in_one_line(files):
    """Every case at once (interpreter start-ups overlap): exit status 1 or 2, one stderr line, no traceback."""
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scratchae", *(args[:2] + TRAIN + args[2:] if args[0] == "train" else args)],
            cwd=files,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _ in CLI_CASES
    ]
    failures = []
    for (args, message), proc in zip(CLI_CASES, procs, strict=True):
        _, err = proc.communicate(timeout=120)
        lines = [line for line in err.splitlines() if not line.startswith("scratchae: compiling")]
        one_line = len(lines) == 1 and lines[0].startswith("scratchae: error: ") and "Traceback" not in err
        if proc.returncode not in (1, 2) or not one_line or not re.search(message, lines[0]):
            failures.append(f"{' '.join(args)}: exit {proc.returncode}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert not list(files.glob("runs/*/checkpoint.npz"))  # nothing was trained by the refused commands


def test_a_refused_train_command_leaves_the_run_folders_as_they_were(files, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes((files / "ae" / "checkpoint.npz").read_bytes())
    record = '{"kind": "ae", "data": "digits", "data_dir": null, "limit": 100, "image_shape": [8, 8]}'
    (run / "run.json").write_text(record)
    commands = [
        ["train", "vae", *TRAIN, "--out", str(run), "--resume"],  # a VAE cannot resume an AutoEncoder
        ["train", "ae", *TRAIN, "--activation", "swish", "--out", str(tmp_path / "fresh")],
    ]
    for args in commands:
        result = subprocess.run([sys.executable, "-m", "scratchae", *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and result.stderr.startswith("scratchae: error: "), result.stderr
    assert (run / "run.json").read_text() == record
    assert not (tmp_path / "fresh").exists()
