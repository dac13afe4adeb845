"""EarlyStopping: when it stops, which weights it leaves, what fit's checkpoint holds, its errors."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from test_models import build, digits

import scratchae
from scratchae import ArgumentError
from scratchae.callbacks import EarlyStopping


def values(model):
    return {name: scratchae.backend.to_numpy(p.data).copy() for name, p in model.named_parameters()}


def test_stops_after_patience_epochs_without_improvement_and_restores_the_best():
    """val_loss 3, 2, 2.5, 2.4, 2.6 with patience 3: epoch 2 is the best, epoch 5 the third without a gain."""
    model = build("ae_bce_sigmoid")
    stopper = EarlyStopping(patience=3, verbose=False)
    seen = {}
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.4, 2.6]):
        for p in model.parameters():
            p.data += 0.01  # a step of training
        seen[epoch + 1] = values(model)
        stop = stopper(epoch, {"loss": 1.0, "val_loss": loss}, model)
        assert stop == (epoch == 4)
    assert stopper.on_train_end(model) is True and stopper.on_train_end(model) is False  # put back once
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (2.0, 2, 5)
    for name, v in values(model).items():
        np.testing.assert_array_equal(v, seen[2][name], err_msg=name)


def test_min_delta_and_mode_max():
    model = build("ae_bce_sigmoid")
    stopper = EarlyStopping(monitor="accuracy", mode="max", patience=2, min_delta=0.05, verbose=False)
    stops = [stopper(e, {"accuracy": a}, model) for e, a in enumerate([0.5, 0.54, 0.56, 0.6])]
    assert stops == [False, False, False, False] and (stopper.best, stopper.best_epoch) == (0.56, 3)
    assert stopper(4, {"accuracy": 0.9}, model) is False and stopper.best_epoch == 5
    assert stopper(5, {"accuracy": 0.94}, model) is False  # 0.94 < 0.9 + 0.05: one epoch waited
    assert stopper(6, {"accuracy": 0.949}, model) is True and stopper.stopped_epoch == 7


def test_nan_never_improves():
    stopper = EarlyStopping(patience=2, verbose=False)
    model = build("ae_bce_sigmoid")
    assert [stopper(e, {"val_loss": float("nan")}, model) for e in range(2)] == [False, True]
    assert stopper.best is None and stopper.stopped_epoch == 2


def test_fit_stops_with_the_best_epochs_weights_in_the_model_and_its_checkpoint(tmp_path, capsys, device):
    """No epoch after the first beats it by 1e9: fit stops after 1 + patience epochs, and the model and
    its checkpoint hold the weights after epoch 1, the same as a run of one epoch (bit-identical)."""
    X, _ = digits(256)
    model = build("ae_bce_sigmoid", device)
    stopper = EarlyStopping(patience=2, min_delta=1e9)
    model.fit(X[:192], epochs=10, validation_data=X[192:], callbacks=[stopper], checkpoint_dir=tmp_path, verbose=False)
    assert len(model.history) == 3 and model.epochs_trained == 3 and stopper.stopped_epoch == 3
    err = capsys.readouterr().err
    assert "early stopping after epoch 3: val_loss did not improve for 2 epochs; best" in err
    assert "after epoch 1, whose weights the model now holds" in err
    one = build("ae_bce_sigmoid", device)
    one.fit(X[:192], epochs=1, verbose=False)
    saved = scratchae.load(tmp_path)
    for name, v in values(one).items():
        np.testing.assert_array_equal(values(model)[name], v, err_msg=name)
        np.testing.assert_array_equal(values(saved)[name], v, err_msg=name)
    assert stopper.best == model.history["val_loss"][0]


def test_a_run_that_does_not_stop_ends_with_the_best_epochs_weights(tmp_path, capsys):
    """Patience 10 is never reached in 3 epochs; the first is the best (min_delta 1e9): fit ends with its
    weights, in the model and the checkpoint, and says so."""
    X, _ = digits(256)
    model = build("ae_bce_sigmoid")
    stopper = EarlyStopping(patience=10, min_delta=1e9)
    model.fit(X[:192], epochs=3, validation_data=X[192:], callbacks=[stopper], checkpoint_dir=tmp_path, verbose=False)
    assert stopper.stopped_epoch is None and (stopper.best_epoch, stopper.weights_epoch) == (1, 1)
    assert "early stopping did not stop training; best val_loss" in capsys.readouterr().err
    one = build("ae_bce_sigmoid")
    one.fit(X[:192], epochs=1, verbose=False)
    for name, v in values(one).items():
        np.testing.assert_array_equal(values(model)[name], v, err_msg=name)
        np.testing.assert_array_equal(values(scratchae.load(tmp_path))[name], v, err_msg=name)
    assert model.epochs_trained == 3 and len(model.history) == 3


@pytest.mark.parametrize("weights_epoch", [2, 3])
def test_resume_takes_up_the_runs_past_epochs(weights_epoch):
    """A history of val_loss 3, 2, 2.5 with patience 2: best epoch 2, one epoch waited; one more epoch
    without a gain stops. The best weights are put back only if the model held them when resumed."""
    from scratchae.history import History

    model = build("ae_bce_sigmoid")
    model.history = History([{"epoch": e + 1, "val_loss": v} for e, v in enumerate([3.0, 2.0, 2.5])])
    model.epochs_trained, model.weights_epoch = 3, None if weights_epoch == 3 else weights_epoch
    held = values(model)
    stopper = EarlyStopping(patience=2, verbose=False)
    stopper.resume(model)
    assert (stopper.best, stopper.best_epoch, stopper.weights_epoch) == (2.0, 2, weights_epoch)
    for p in model.parameters():
        p.data += 1.0
    assert stopper(3, {"val_loss": 2.1}, model) is True and stopper.stopped_epoch == 4
    assert stopper.on_train_end(model) is (weights_epoch == 2)
    assert model.weights_epoch == (2 if weights_epoch == 2 else None)  # put back: the model holds epoch 2's
    after = values(model)
    for name in held:
        assert np.array_equal(after[name], held[name]) == (weights_epoch == 2), name
    other = build("ae_bce_sigmoid")
    other.history = History([{"epoch": 1, "loss": 1.0}])
    fresh = EarlyStopping()
    fresh.resume(other)  # no val_loss: nothing to take up
    assert fresh.best is None
    gappy = build("ae_bce_sigmoid")
    # no epoch keys; epochs without validation (no val_loss, or None) neither improve nor wait, a NaN waits
    gappy.history = History([{"val_loss": 2.0}, {"loss": 1.0}, {"val_loss": None}, {"val_loss": float("nan")}])
    gappy.epochs_trained = 4
    partial = EarlyStopping(patience=5)
    partial.resume(gappy)
    assert (partial.best, partial.best_epoch, partial._waited) == (2.0, 1, 1)


def test_an_instance_follows_one_model(capsys):
    """Its best weights are one model's: another model is refused, not given them, also one built where a
    deleted model was (the same id)."""
    gone = build("ae_bce_sigmoid")
    orphan = EarlyStopping(patience=1)
    orphan(0, {"val_loss": 1.0}, gone)
    del gone
    gc.collect()
    with pytest.raises(ArgumentError, match="follows one model"):
        orphan(1, {"val_loss": 1.0}, build("ae_bce_sigmoid"))
    first, second = build("ae_bce_sigmoid"), build("ae_bce_sigmoid")
    stopper = EarlyStopping(patience=1)
    stopper(0, {"val_loss": 1.0}, first)
    with pytest.raises(ArgumentError, match="EarlyStopping follows one model: give each model a fresh"):
        stopper(0, {"val_loss": 2.0}, second)
    with pytest.raises(ArgumentError, match="follows one model"):
        stopper.on_train_end(second)
    assert stopper(1, {"val_loss": 3.0}, first) is True and stopper.on_train_end(first) is True
    assert "did not improve for 1 epoch;" in capsys.readouterr().err


def test_the_best_weights_follow_the_model_to_another_device(device):
    """Kept on the CPU, put back after the model moved to the test device."""
    X, _ = digits(256)
    model = build("ae_bce_sigmoid")
    stopper = EarlyStopping(patience=5, min_delta=1e9, verbose=False)
    model.fit(X[:192], epochs=1, validation_data=X[192:], callbacks=[stopper], verbose=False)
    best = values(model)
    model.to(device)
    model.fit(X[:192], epochs=3, validation_data=X[192:], callbacks=[stopper], verbose=False)
    assert model.device == device and model.weights_epoch == 1
    for name, v in values(model).items():
        np.testing.assert_array_equal(v, best[name], err_msg=name)


def test_the_model_and_its_checkpoint_record_whose_weights_it_holds(tmp_path):
    """After a restore the model holds the best epoch's weights, not its last: model.weights_epoch says so,
    its checkpoint keeps it, and the next epoch trained clears it."""
    X, _ = digits(256)
    model = build("ae_bce_sigmoid")
    stopper = EarlyStopping(patience=1, min_delta=1e9, verbose=False)
    model.fit(X[:192], epochs=5, validation_data=X[192:], callbacks=[stopper], checkpoint_dir=tmp_path, verbose=False)
    assert (model.epochs_trained, model.weights_epoch) == (2, 1)
    loaded = scratchae.load(tmp_path)
    assert (loaded.epochs_trained, loaded.weights_epoch) == (2, 1)
    loaded.fit(X[:192], epochs=3, verbose=False)
    assert loaded.weights_epoch is None


def test_restore_best_false_keeps_the_last_weights():
    X, _ = digits(256)
    model = build("ae_bce_sigmoid")
    stopper = EarlyStopping(patience=1, min_delta=1e9, restore_best=False, verbose=False)
    model.fit(X[:192], epochs=5, validation_data=X[192:], callbacks=[stopper], verbose=False)
    two = build("ae_bce_sigmoid")
    two.fit(X[:192], epochs=2, verbose=False)
    for name, v in values(two).items():
        np.testing.assert_array_equal(values(model)[name], v, err_msg=name)


def test_a_missing_key_names_the_logs_keys_and_validation_data(tmp_path):
    """Monitoring val_loss without validation data is refused before the first epoch (no checkpoint is
    written); a key the logs turn out not to have is named with those they have."""
    X, _ = digits(64)
    model = build("ae_bce_sigmoid")
    with pytest.raises(ArgumentError, match=r"monitors 'val_loss', which fit reports only with validation data"):
        model.fit(X, epochs=2, callbacks=[EarlyStopping()], verbose=False, checkpoint_dir=tmp_path)
    assert model.epochs_trained == 0 and not (tmp_path / "checkpoint.npz").exists()
    with pytest.raises(ArgumentError, match=r"no 'val_kl'; they have epoch, loss, recon, val_loss, val_recon"):
        model.fit(X[:48], epochs=2, callbacks=[EarlyStopping("val_kl")], validation_data=X[48:], verbose=False)
    with pytest.raises(ArgumentError, match=r"no 'recon_typo'; they have epoch, loss"):
        model.fit(X, epochs=4, callbacks=[EarlyStopping("recon_typo")], verbose=False)
    with pytest.warns(UserWarning, match="nothing to train"):  # nothing to train: nothing to check either
        model.fit(X, epochs=model.epochs_trained, callbacks=[EarlyStopping()], verbose=False)


def test_a_callback_with_another_librarys_hooks_is_called_only_after_each_epoch():
    """fit's own hooks are before_fit(model, validation) and on_train_end(model): a callback written for
    another library's on_train_begin(logs) is left alone there."""

    class Elsewhere:
        def __init__(self):
            self.epochs = []

        def on_train_begin(self, logs=None):
            raise AssertionError("not fit's hook")

        def __call__(self, epoch, logs, model):
            self.epochs.append(epoch)

    seen = Elsewhere()
    build("ae_bce_sigmoid").fit(digits(64)[0], epochs=2, callbacks=[seen], verbose=False)
    assert seen.epochs == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="lowest"), "mode must be one of min, max, got 'lowest'"),
        (dict(patience=0), "patience must be a positive integer, got 0"),
        (dict(min_delta=-1.0), "min_delta must be a finite number >= 0, got -1.0"),
        (dict(min_delta=float("nan")), "min_delta must be a finite number >= 0, got nan"),
        (dict(min_delta="0.1"), "min_delta must be a finite number >= 0, got '0.1'"),
        (dict(monitor=5), "monitor must be the name of a history key \\(e.g. 'val_loss'\\), got 5"),
        (dict(monitor=""), "monitor must be the name of a history key"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        EarlyStopping(**kwargs)
    assert EarlyStopping(min_delta=np.float32(0.5), patience=np.int64(2)).min_delta == 0.5  # NumPy numbers will do
