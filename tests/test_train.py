"""The training loop: history, callbacks, seeds, exact resume, optimizers by name, argument and data
checks, divergence, the progress line and ``History``."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_models import D, build, digits, labels_for

import scratchae
import scratchae.functional as F
from scratchae import ArgumentError, CheckpointError, DataError, DivergenceError, GraphError, ShapeError
from scratchae.history import History
from scratchae.models import AutoEncoder
from scratchae.models.base import Loss
from scratchae.optim import SGD, Adam, Momentum
from scratchae.progress import ProgressBar


def weights(model: Any) -> dict[str, np.ndarray]:
    return model.state_dict()


def assert_same_weights(a: Any, b: Any, exact: bool) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        if exact:
            np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
        else:
            np.testing.assert_allclose(wa[name], wb[name], rtol=1e-5, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------- history and callbacks


@pytest.mark.parametrize(
    "name, terms",
    [
        ("ae_bce_sigmoid", ["loss", "recon"]),
        ("dae_masking", ["loss", "recon"]),
        ("vae_bernoulli", ["loss", "recon", "kl"]),
        ("cvae", ["loss", "recon", "kl"]),
        ("classifier", ["loss", "xent"]),
    ],
)
def test_history_has_one_record_per_epoch_with_the_loss_terms(name, terms, device):
    X, y = digits(192)
    model = build(name, device)
    yy = labels_for(model, y)
    val = (X[:64], y[:64]) if model.needs_labels else X[:64]
    history = model.fit(X, yy, epochs=3, batch_size=64, validation_data=val, verbose=False)
    assert history is model.history and len(history) == 3
    assert history.keys() == ["epoch", *terms, *(f"val_{t}" for t in terms), "seconds"]
    assert history["epoch"] == [1, 2, 3]
    assert all(s > 0 for s in history["seconds"])
    assert all(np.isfinite(history[k]).all() for k in history.keys())
    assert model.epochs_trained == 3


def test_history_without_validation_has_no_val_keys(device):
    model = build("vae_bernoulli", device)
    history = model.fit(digits(64)[0], epochs=1, verbose=False)
    assert history.keys() == ["epoch", "loss", "recon", "kl", "seconds"]


def test_validation_loss_is_the_models_loss_on_the_validation_set(device):
    """val_loss after the last epoch equals evaluate_loss on the validation data (deterministic for an AE)."""
    from scratchae.train import evaluate_loss

    X, _ = digits(256)
    ae = build("ae_bce_sigmoid", device)
    history = ae.fit(X[:192], epochs=2, validation_data=X[192:], verbose=False)
    assert history["val_loss"][-1] == pytest.approx(evaluate_loss(ae, X[192:])["loss"], rel=1e-6)


def test_a_callback_stops_training_and_every_callback_sees_every_epoch(device):
    X, _ = digits(128)
    ae = build("ae_bce_sigmoid", device)
    seen: list[tuple[int, float, Any]] = []
    other: list[int] = []

    def stop_after_second(epoch: int, logs: dict[str, float], model: Any) -> bool:
        seen.append((epoch, logs["loss"], model))
        return epoch == 1

    history = ae.fit(X, epochs=10, verbose=False, callbacks=[stop_after_second, lambda e, logs, m: other.append(e)])
    assert [e for e, _, _ in seen] == [0, 1] and other == [0, 1]
    assert all(m is ae for _, _, m in seen)
    assert [loss for _, loss, _ in seen] == history["loss"]
    assert len(history) == 2 and ae.epochs_trained == 2


def test_a_callback_returning_an_array_is_named(tmp_path):
    """A callback's return value says whether to stop: NumPy's True stops, an array (neither true nor
    false) is an ArgumentError naming the callback, after that epoch's checkpoint was written."""
    X, _ = digits(64)
    ae = build("ae_bce_sigmoid")
    ae.fit(X, epochs=5, verbose=False, callbacks=[lambda e, logs, m: np.bool_(e == 1)])
    assert ae.epochs_trained == 2

    def losses(epoch: int, logs: dict[str, float], model: Any) -> np.ndarray:
        return np.array([logs["loss"], logs["loss"]])

    with pytest.raises(ArgumentError, match=r"callback .*losses returned a ndarray, which is neither true nor false"):
        ae.fit(X, epochs=5, verbose=False, callbacks=[losses], checkpoint_dir=tmp_path)
    assert ae.epochs_trained == 3 and scratchae.load(tmp_path).epochs_trained == 3


def test_fit_continues_counting_epochs(device):
    """``epochs`` is the total: a second fit(epochs=3) after 2 epochs trains one more."""
    X, _ = digits(128)
    ae = build("ae_bce_sigmoid", device)
    ae.fit(X, epochs=2, verbose=False)
    ae.fit(X, epochs=3, verbose=False)
    assert ae.epochs_trained == 3 and ae.history["epoch"] == [1, 2, 3]


# ---------------------------------------------------------------- seeds and resume


@pytest.mark.parametrize("name", ["dae_salt_pepper", "vae_bernoulli", "cvae"])
def test_same_seed_same_weights_other_seed_other_weights(name, device):
    X, y = digits(192)

    def run(seed: int) -> Any:
        model = build(name, device, seed=seed)
        model.fit(X, labels_for(model, y), epochs=2, batch_size=64, verbose=False)
        return model

    a, b, c = run(3), run(3), run(4)
    assert_same_weights(a, b, exact=device == "cpu")
    assert a.history["loss"] == b.history["loss"] or device != "cpu"
    assert any(not np.array_equal(w, weights(c)[k]) for k, w in weights(a).items())


@pytest.mark.parametrize(
    "name, optimizer, kwargs",
    [
        ("vae_bernoulli", "adam", dict(kl_warmup=3)),
        ("dae_masking", "momentum", {}),
        ("cvae", "sgd", {}),
    ],
)
def test_resume_continues_exactly_like_an_uninterrupted_run(name, optimizer, kwargs, device, tmp_path):
    """fit 4 epochs vs fit 2 with checkpoints, then a NEW instance fit(epochs=4, resume_from=...):
    the same weights (bit-identical on the CPU) and the same loss history."""
    X, y = digits(192)
    fit_args = dict(batch_size=64, optimizer=optimizer, lr=1e-2, verbose=False)
    whole = build(name, device, **kwargs)
    whole.fit(X, labels_for(whole, y), epochs=4, **fit_args)

    first = build(name, device, **kwargs)
    first.fit(X, labels_for(first, y), epochs=2, checkpoint_dir=tmp_path, **fit_args)
    resumed = build(name, device, **kwargs)
    resumed.fit(X, labels_for(resumed, y), epochs=4, resume_from=tmp_path, **fit_args)

    assert resumed.epochs_trained == 4
    assert_same_weights(whole, resumed, exact=device == "cpu")
    for key in [k for k in whole.history.keys() if k != "seconds"]:
        if device == "cpu":
            assert resumed.history[key] == whole.history[key], key
        else:
            assert resumed.history[key] == pytest.approx(whole.history[key], rel=1e-5), key
    if kwargs.get("kl_warmup"):
        assert resumed.kl_weight == whole.kl_weight == 1.0


def test_resume_takes_the_checkpoints_settings_unless_given(device, tmp_path):
    """fit(resume_from=...) without batch_size / optimizer / lr / options goes on with those the checkpoint
    recorded (the same weights as the uninterrupted run); a setting given in the call wins."""
    X, _ = digits(192)
    settings = dict(batch_size=32, optimizer="momentum", lr=5e-3, optimizer_options={"nesterov": True})
    whole = build("dae_masking", device)
    whole.fit(X, epochs=3, verbose=False, **settings)
    first = build("dae_masking", device)
    first.fit(X, epochs=1, checkpoint_dir=tmp_path, verbose=False, **settings)
    resumed = build("dae_masking", device)
    resumed.fit(X, epochs=3, resume_from=tmp_path, verbose=False)
    assert resumed.fit_settings == whole.fit_settings == {**settings, "lr": 5e-3}
    assert resumed.optimizer.nesterov and resumed.optimizer.steps == whole.optimizer.steps == 18
    assert_same_weights(whole, resumed, exact=device == "cpu")
    again = build("dae_masking", device)
    again.fit(X, epochs=2, resume_from=tmp_path, lr=1e-3, verbose=False)
    assert again.optimizer.lr == 1e-3 and again.fit_settings["batch_size"] == 32


def test_a_later_fit_goes_on_like_one_long_fit(device, tmp_path):
    """fit(2 epochs) then fit(4) on the same model, or on the model loaded from its checkpoint, continues
    with the optimizer's state and the recorded settings: the same weights as fit(4) at once. New
    optimizer options start a new optimizer."""
    X, _ = digits(192)
    settings = dict(batch_size=64, lr=3e-3)
    whole = build("vae_bernoulli", device)
    whole.fit(X, epochs=4, verbose=False, **settings)
    twice = build("vae_bernoulli", device)
    twice.fit(X, epochs=2, checkpoint_dir=tmp_path, verbose=False, **settings)
    twice.fit(X, epochs=4, verbose=False)
    loaded = scratchae.load(tmp_path, device=device)
    loaded.fit(X, epochs=4, verbose=False)
    for model in (twice, loaded):
        assert model.optimizer.steps == whole.optimizer.steps == 12
        assert_same_weights(whole, model, exact=device == "cpu")
    loaded.fit(X, epochs=5, optimizer_options={"betas": (0.8, 0.99)}, verbose=False)
    assert loaded.optimizer.steps == 3 and loaded.fit_settings["batch_size"] == 64


def drop_fit_settings(checkpoint: Path) -> None:
    """Rewrite ``checkpoint`` as the code before recorded fit settings wrote it: no 'fit_settings' in its header."""
    with np.load(checkpoint) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    del meta["fit_settings"]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(checkpoint, **arrays)


def test_a_checkpoint_from_before_fit_settings_resumes_with_its_optimizer(tmp_path):
    """A header without 'fit_settings' (older checkpoints) still names its optimizer, which a resume keeps."""
    X, _ = digits(128)
    first = build("ae_bce_sigmoid")
    first.fit(X, epochs=1, optimizer="sgd", lr=1e-2, checkpoint_dir=tmp_path, verbose=False)
    drop_fit_settings(tmp_path / "checkpoint.npz")
    resumed = build("ae_bce_sigmoid")
    resumed.fit(X, epochs=2, resume_from=tmp_path, verbose=False)
    assert type(resumed.optimizer) is SGD and resumed.fit_settings["batch_size"] == 128


def test_resume_with_other_optimizer_settings_names_the_difference(tmp_path):
    X, _ = digits(128)
    build("ae_bce_sigmoid").fit(
        X, epochs=1, optimizer="sgd", optimizer_options={"momentum": 0.9}, checkpoint_dir=tmp_path, verbose=False
    )
    with pytest.raises(CheckpointError, match="trained with sgd, resuming with adam"):
        build("ae_bce_sigmoid").fit(X, epochs=2, optimizer="adam", resume_from=tmp_path, verbose=False)
    with pytest.raises(CheckpointError, match="'0.velocity' is not kept by SGD with these options"):
        build("ae_bce_sigmoid").fit(X, epochs=2, optimizer_options={}, resume_from=tmp_path, verbose=False)


def test_resume_restores_the_optimizer_state(device, tmp_path):
    X, _ = digits(128)
    a = build("ae_bce_sigmoid", device)
    a.fit(X, epochs=2, batch_size=64, checkpoint_dir=tmp_path, verbose=False)
    b = build("ae_bce_sigmoid", device)
    with pytest.warns(UserWarning, match="nothing to train"):
        b.fit(X, epochs=2, resume_from=tmp_path, verbose=False)  # nothing left to train: the state is restored
    assert b.optimizer.steps == a.optimizer.steps == 4
    for key, arr in a.optimizer.state_dict()["arrays"].items():
        np.testing.assert_array_equal(arr, b.optimizer.state_dict()["arrays"][key], err_msg=key)


# ---------------------------------------------------------------- optimizers and arguments


@pytest.mark.parametrize("optimizer, lr, cls", [("sgd", 1e-2, SGD), ("momentum", 1e-3, Momentum), ("adam", 1e-2, Adam)])
def test_optimizers_by_name_train(optimizer, lr, cls, device):
    X, _ = digits(256)
    ae = build("ae_mse_linear", device)
    history = ae.fit(X, epochs=4, batch_size=32, optimizer=optimizer, lr=lr, verbose=False)
    assert type(ae.optimizer) is cls and ae.optimizer.lr == lr
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]


def test_optimizer_options_reach_the_optimizer(device):
    ae = build("ae_mse_linear", device)
    ae.fit(digits(64)[0], epochs=1, optimizer="sgd", optimizer_options=dict(momentum=0.5, nesterov=True), verbose=False)
    assert ae.optimizer.momentum == 0.5 and ae.optimizer.nesterov


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (dict(epochs=0), "epochs must be a positive integer, got 0"),
        (dict(epochs=-3), "epochs must be a positive integer"),
        (dict(epochs=2.0), "epochs must be a positive integer"),
        (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
        (dict(batch_size=-1), "batch_size must be a positive integer"),
        (dict(checkpoint_every=0), "checkpoint_every"),
        (dict(lr=-1.0), "lr must be a finite number > 0"),
        (dict(validation_data=(1, 2, 3)), "validation_data"),
    ],
)
def test_fit_refuses_bad_arguments(kwargs, needle, device):
    ae = build("ae_bce_sigmoid", device)
    with pytest.raises(ArgumentError, match=needle):
        ae.fit(digits(32)[0], verbose=False, **kwargs)
    assert ae.epochs_trained == 0


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
        (dict(batch_size=-1), "batch_size must be a positive integer, got -1"),
        (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
        (dict(seed="a"), "seed must be an integer >= 0, got 'a'"),
    ],
)
def test_evaluate_loss_refuses_bad_arguments(kwargs, needle):
    with pytest.raises(ArgumentError, match=needle):
        scratchae.evaluate_loss(build("ae_bce_sigmoid", "cpu"), digits(32)[0], **kwargs)


def test_fit_refuses_a_checkpoint_dir_it_cannot_make_before_training(tmp_path, monkeypatch):
    """A file where the folder (or one of its parents) should be: an ArgumentError naming it, and a folder
    that cannot be made (no write permission): a CheckpointError; no epoch trained."""
    (tmp_path / "afile").write_text("mine")
    ae = build("ae_bce_sigmoid", "cpu")
    for folder in (tmp_path / "afile", tmp_path / "afile" / "run"):
        with pytest.raises(ArgumentError, match=rf"checkpoint_dir {folder}: a file is in the way .*give a folder"):
            ae.fit(digits(32)[0], verbose=False, checkpoint_dir=folder)

    def refused(self, *args, **kwargs):  # as in a folder without write permission (root may write anywhere)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(CheckpointError, match=rf"checkpoint_dir {tmp_path / 'run'}: .* made \(Permission denied\)"):
        ae.fit(digits(32)[0], verbose=False, checkpoint_dir=tmp_path / "run")
    assert ae.epochs_trained == 0 and (tmp_path / "afile").read_text() == "mine"


def test_fit_refuses_nan_in_the_data_naming_it(device):
    X = digits(64)[0].copy()
    X[5, 10] = np.nan
    X[9, 0] = np.inf
    ae = build("ae_bce_sigmoid", device)
    with pytest.raises(DataError, match=r"X has 2 NaN or infinite values \(first rows: \[5, 9\]\)"):
        ae.fit(X, verbose=False)
    with pytest.raises(DataError, match="validation X has 2 NaN"):
        ae.fit(digits(64)[0], validation_data=X, verbose=False)
    assert ae.epochs_trained == 0


def test_fit_refuses_data_of_the_wrong_shape(device):
    ae = build("ae_bce_sigmoid", device)
    with pytest.raises(ShapeError, match="X has 63 features"):
        ae.fit(np.zeros((10, 63)), verbose=False)
    with pytest.raises(ShapeError, match="2-D"):
        ae.fit(np.zeros(64), verbose=False)
    with pytest.raises(ShapeError, match="validation X has 10 features"):
        ae.fit(digits(32)[0], validation_data=np.zeros((4, 10)), verbose=False)


def test_divergence_names_the_epoch_and_the_batch(device):
    """A learning rate so large that the loss overflows stops training with a DivergenceError, and
    nothing else: NumPy's overflow warnings on the way to inf are not shown (an error here)."""
    X, _ = digits(256)
    ae = build("vae_bernoulli", device)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(DivergenceError, match=r"the loss became (inf|nan) in epoch 1, batch \d+; the weights were"):
            ae.fit(X, epochs=3, batch_size=16, optimizer="sgd", lr=1e6, verbose=False)
    assert ae.epochs_trained == 0 and len(ae.history) == 0


def test_one_batch_or_unshuffled_epochs_work(device):
    X, _ = digits(100)
    ae = build("ae_bce_sigmoid", device)
    ae.fit(X, epochs=2, batch_size=1000, verbose=False)
    assert ae.optimizer.steps == 2
    a, b = build("ae_bce_sigmoid", device), build("ae_bce_sigmoid", device, seed=9)
    a.fit(X, epochs=1, batch_size=30, shuffle=False, verbose=False)
    b.load_state_dict(build("ae_bce_sigmoid", device).state_dict())  # same start, other seed
    b.fit(X, epochs=1, batch_size=30, shuffle=False, verbose=False)
    assert_same_weights(a, b, exact=device == "cpu")  # without shuffling the seed does not matter for an AE
    assert b.optimizer.steps == 4  # 30 + 30 + 30 + 10


# ---------------------------------------------------------------- progress and History


def test_verbose_fit_prints_one_line_per_epoch(capsys, device):
    build("vae_bernoulli", device).fit(digits(64)[0], epochs=2, batch_size=32, verbose=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 [") and " 2/2 " in lines[0]
    assert "loss" in lines[1] and "kl" in lines[1] and "ex/s" in lines[1]


def test_quiet_fit_prints_nothing(capsys):
    build("ae_bce_sigmoid").fit(digits(64)[0], epochs=1, verbose=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_bar_line(tmp_path):
    with open(tmp_path / "log.txt", "w+") as stream:
        bar = ProgressBar(4, "epoch 1/1", stream=stream, width=8)
        bar.update(2, 64)
        assert bar.line("loss 1").startswith("epoch 1/1 [####----] 2/4 ")
        bar.draw("loss 1")  # not a terminal: nothing drawn until close
        bar.close("loss 0.5")
        stream.seek(0)
        assert stream.read().endswith("loss 0.5\n")
    assert bar.elapsed > 0 and not bar.due()


def test_history_access_and_csv(tmp_path):
    h = History([{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.0, "val_loss": 2.5}])
    assert h["loss"] == [3.0, 2.0] and len(h) == 2
    assert np.isnan(h["val_loss"][0]) and h["val_loss"][1] == 2.5
    assert h.last() == {"epoch": 2, "loss": 2.0, "val_loss": 2.5}
    assert h.to_dict()["epoch"] == [1, 2]
    with pytest.raises(KeyError, match="no 'kl'.*epoch, loss, val_loss"):
        h["kl"]
    h.to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"epoch": "1", "loss": "3.0", "val_loss": ""}, {"epoch": "2", "loss": "2.0", "val_loss": "2.5"}]
    assert History().last() == {} and "0 epochs" in repr(History())


def test_validation_rows_as_a_list_are_validation_x(capsys):
    X, _ = digits(64)
    ae = build("ae_bce_sigmoid")
    ae.fit(X, epochs=1, validation_data=X[:2].tolist(), verbose=False)  # two rows, not an (X, y) pair
    assert "val_loss" in ae.history.keys()
    before = ae.state_dict()
    with pytest.warns(UserWarning, match="AutoEncoder has trained 1 epoch, epochs=1 in all: nothing to train") as seen:
        ae.fit(X, epochs=1, verbose=False)  # quiet or not: the fit does nothing, and says so
    assert "epochs=2 trains one more" in str(seen[0].message) and seen[0].filename == __file__
    assert ae.epochs_trained == 1 and all(np.array_equal(w, before[k]) for k, w in ae.state_dict().items())


def test_a_fit_with_nothing_to_train_keeps_the_optimizer_and_settings():
    """fit(epochs=2) again with another optimizer and lr trains nothing, so it changes nothing: the next fit
    goes on with the first fit's Adam and its moments, as one fit of 4 epochs does."""
    X, _ = digits(128)
    twice, once = build("ae_bce_sigmoid"), build("ae_bce_sigmoid")
    twice.fit(X, epochs=2, batch_size=64, verbose=False)
    settings, optimizer = dict(twice.fit_settings), twice.optimizer
    with pytest.warns(UserWarning, match="nothing to train"):
        twice.fit(X, epochs=2, optimizer="sgd", lr=0.5, verbose=False)
    assert twice.fit_settings == settings and twice.optimizer is optimizer
    for bad, error in (
        (dict(optimizer="bogus"), "unknown optimizer 'bogus'"),
        (dict(lr=-1.0), "lr must be a finite number > 0"),
        (dict(optimizer_options={"nope": 1}), "nope"),
        (dict(checkpoint_dir=Path(__file__)), "a file is in the way"),
    ):  # its arguments are checked all the same
        with pytest.raises(ArgumentError, match=error):
            twice.fit(X, epochs=2, verbose=False, **bad)
    folder = Path(__file__).parent / "no-such-folder" / "ck"
    with pytest.raises(ArgumentError, match="unknown optimizer"):  # refused before any folder is made
        twice.fit(X, epochs=2, verbose=False, optimizer="bogus", checkpoint_dir=folder)
    assert not folder.parent.exists()
    twice.fit(X, epochs=4, verbose=False)
    once.fit(X, epochs=4, batch_size=64, verbose=False)
    assert all(np.array_equal(w, once.state_dict()[k]) for k, w in twice.state_dict().items())


def test_fit_checks_the_label_range_once_not_per_step(monkeypatch):
    """fit checks every label before training; its steps' softmax cross-entropy skips the range check (a
    host sync per step on the GPU), which the op still runs when called outside fit."""
    from scratchae.models import Classifier
    from scratchae.ops import losses

    calls = []
    check = losses.check_label_range
    monkeypatch.setattr(losses, "check_label_range", lambda labels, c: (calls.append(c), check(labels, c)))
    X, y = digits(64)
    model = Classifier(64, 10, hidden=(8,))
    model.fit(X, y, epochs=2, batch_size=16, verbose=False)
    assert calls == []
    with pytest.raises(DataError, match="labels must lie in"):
        scratchae.functional.softmax_cross_entropy(model(X[:2]), [0, 10])
    assert calls == [10]


class PerExample(AutoEncoder):
    """A model of the user's own whose batch_loss reports a per-example term by mistake."""

    def batch_loss(self, x, y=None, rng=None, noisy=None):
        loss = super().batch_loss(x, y, rng, noisy)
        return Loss(loss.total, {"recon": loss.total, "per_example": F.sum(self.decoder(self.encoder(x)), axis=1)})


def test_a_loss_term_of_more_than_one_element_is_named():
    model = PerExample(D, (8,), 2)
    before = model.state_dict()
    with pytest.raises(GraphError, match=r"PerExample.batch_loss: the term 'per_example' is shape \(32,\)"):
        model.fit(digits(64)[0], epochs=1, batch_size=32, verbose=False)
    assert model.epochs_trained == 0 and all(np.array_equal(w, before[k]) for k, w in model.state_dict().items())


def test_model_fit_names_every_keyword_of_train_fit():
    """help(model.fit) lists what fit takes: every keyword argument of scratchae.train.fit, and its defaults."""
    import inspect

    keywords = [p for p in inspect.signature(scratchae.train.fit).parameters if p not in ("model", "X", "y")]
    doc = AutoEncoder.fit.__doc__
    assert all(name in doc for name in keywords), [name for name in keywords if name not in doc]
    defaults = scratchae.train.FIT_DEFAULTS
    assert f"batch_size {defaults['batch_size']}, Adam, lr {defaults['lr']:.0e}".replace("e-03", "e-3") in doc
    assert defaults["optimizer"] == "adam"


def test_the_training_module_and_evaluate_loss_come_with_the_package():
    """In a fresh interpreter, `import scratchae` alone gives scratchae.train and scratchae.evaluate_loss
    (they were there only once a fit had imported them)."""
    import subprocess
    import sys

    code = "import scratchae; assert scratchae.train.fit and scratchae.evaluate_loss is scratchae.train.evaluate_loss"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
