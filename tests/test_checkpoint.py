"""Checkpoints: ``scratchae.load`` rebuilds every model kind with equal outputs; damaged, foreign or
pickled files are refused with CheckpointError; resume refuses another kind, configuration or
optimizer; divergence leaves the last good checkpoint in place; writes are atomic."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_models import D, build, digits, host, labels_for

import scratchae
from scratchae import ArgumentError, CheckpointError, DataNotFoundError, DivergenceError
from scratchae import functional as F
from scratchae.checkpoint import read_checkpoint
from scratchae.models import VAE, AutoEncoder, Classifier, Loss, Model
from scratchae.nn import Dense, Sequential


def outputs(model: Any, X: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """What a model computes deterministically from X (and y)."""
    if isinstance(model, Classifier):
        return [host(model.predict_logits(X))]
    if model.needs_labels:
        return [host(model.transform(X, y)), host(model.reconstruct(X, y))]
    return [host(model.transform(X)), host(model.reconstruct(X))]


def trained(name: str, device: str, tmp_path: Path, **kwargs: Any) -> tuple[Any, Path]:
    X, y = digits(128)
    model = build(name, device, **kwargs)
    model.fit(X, labels_for(model, y), epochs=2, batch_size=64, verbose=False, checkpoint_dir=tmp_path)
    return model, tmp_path / "checkpoint.npz"


def assert_same_model(a: Any, b: Any) -> None:
    X, y = digits(64)
    assert type(a) is type(b) and a.config == b.config
    assert a.epochs_trained == b.epochs_trained and a.history.records == b.history.records
    for out_a, out_b in zip(outputs(a, X, y), outputs(b, X, y), strict=True):
        np.testing.assert_array_equal(out_a, out_b)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "name", ["ae_bce_sigmoid", "ae_mse_linear", "dae_gaussian", "vae_gaussian", "cvae", "classifier"]
)
def test_load_rebuilds_each_model_kind(name, device, tmp_path):
    model, path = trained(name, device, tmp_path)
    loaded = scratchae.load(path, device=device)
    assert_same_model(model, loaded)
    assert loaded.device == device and loaded.fit_settings == model.fit_settings
    saved, restored = model.optimizer.state_dict(), loaded.optimizer.state_dict()  # a later fit goes on from it
    assert saved["steps"] == restored["steps"] and saved["arrays"].keys() == restored["arrays"].keys()
    for key, arr in saved["arrays"].items():
        np.testing.assert_array_equal(restored["arrays"][key], arr, err_msg=key)
    if name == "dae_gaussian":
        assert (loaded.noise, loaded.noise_level) == ("gaussian", 0.2)


@pytest.mark.parametrize("source", ["ae_bce_sigmoid", "vae_bernoulli"])
def test_load_rebuilds_a_classifier_on_a_frozen_encoder(source, device, tmp_path):
    X, y = digits(128)
    base = build(source, device)
    base.fit(X, epochs=1, verbose=False)
    clf = Classifier(D, 10, hidden=(8,), encoder=base.encoder, device=device)
    clf.fit(X, y, epochs=2, verbose=False)
    loaded = scratchae.load(clf.save(tmp_path / "clf.npz"), device=device)
    assert_same_model(clf, loaded)
    assert type(loaded.encoder) is type(clf.encoder)
    assert all(not p.requires_grad for p in loaded.encoder.parameters())
    assert all(p.requires_grad for p in loaded.head.parameters())


def frozen_names(model: Any) -> set[str]:
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def test_checkpoints_keep_which_parameters_are_frozen(tmp_path):
    """An encoder unfrozen for fine-tuning comes back trainable, one frozen by hand comes back frozen,
    and a resumed fine-tuning run equals the uninterrupted one."""
    X, y = digits(128)
    base = build("ae_bce_sigmoid")
    base.fit(X, epochs=1, verbose=False)
    clf = Classifier(D, 10, encoder=base.encoder)
    clf.fit(X, y, epochs=1, verbose=False)
    clf.encoder.unfreeze()
    clf.fit(X, y, epochs=2, verbose=False, checkpoint_dir=tmp_path / "run")
    loaded = scratchae.load(tmp_path / "run")
    assert frozen_names(loaded) == set() and frozen_names(Classifier(**clf.config)) != set()
    resumed = Classifier(**clf.config)  # built frozen, as the config says; the checkpoint unfreezes it
    with pytest.warns(
        UserWarning, match=r"freezes nothing, the model froze encoder.net.0.W, .*as it was trained"
    ) as seen:
        resumed.fit(X, y, epochs=4, verbose=False, resume_from=tmp_path / "run")
    assert seen[0].filename == __file__  # the warning points at the call of fit
    clf.fit(X, y, epochs=4, verbose=False)
    for a, b in zip(outputs(clf, X, y), outputs(resumed, X, y), strict=True):
        np.testing.assert_array_equal(a, b)
    assert clf.history["loss"] == resumed.history["loss"] and frozen_names(resumed) == set()
    base.encoder.freeze()
    assert frozen_names(scratchae.load(base.save(tmp_path / "ae.npz"))) == frozen_names(base) != set()
    again = Classifier(**clf.config)
    again.encoder.unfreeze()  # as the checkpoint has it: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.fit(X, y, epochs=4, verbose=False, resume_from=tmp_path / "run")


def test_load_accepts_the_folder_and_keeps_the_dtype(tmp_path):
    model, _ = trained("vae_bernoulli", "cpu", tmp_path)
    assert_same_model(model, scratchae.load(tmp_path))
    wide = AutoEncoder(D, (16,), 4).to(dtype="float64")
    loaded = scratchae.load(wide.save(tmp_path / "wide.npz"))
    assert loaded.dtype == np.float64 and loaded.encoder.net[0].W.dtype == np.float64


class Shrink(Model):
    """A model of the user's own: a tanh bottleneck fitted with MSE; ``config`` holds its arguments."""

    def __init__(self, input_dim: int, width: int, seed: int = 0, dtype: str = "float32", device: str | None = None):
        super().__init__({"input_dim": input_dim, "width": width}, seed, dtype, device)
        rng = self.weight_rng()
        self.net = Sequential(
            Dense(input_dim, width, "tanh", rng=rng, dtype=self.dtype, device=self.device),
            Dense(width, input_dim, rng=rng, dtype=self.dtype, device=self.device),
        )

    def batch_loss(self, x, y=None, rng=None) -> Loss:
        loss = F.mse_loss(self.net(x), x)
        return Loss(loss, {"mse": loss})


def test_load_rebuilds_a_model_of_the_users_own_class(device, tmp_path):
    X, _ = digits(128)
    model = Shrink(D, 5, device=device)
    model.net[0].freeze()
    model.fit(X, epochs=2, batch_size=64, verbose=False)
    loaded = scratchae.load(model.save(tmp_path / "own.npz"), device=device, model_class=Shrink)
    assert type(loaded) is Shrink and loaded.config == model.config and loaded.epochs_trained == 2
    assert not loaded.net[0].W.requires_grad and loaded.net[1].W.requires_grad
    model.fit(X, epochs=4, verbose=False)
    loaded.fit(X, epochs=4, verbose=False)  # the optimizer's state came back too: the same two epochs follow
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        np.testing.assert_array_equal(host(a.data), host(b.data))


def test_load_names_the_class_a_users_model_needs(tmp_path):
    path = Shrink(D, 5).save(tmp_path / "own.npz")
    with pytest.raises(CheckpointError, match=r"kind .Shrink.*scratchae.load\(path, model_class=Shrink\)"):
        scratchae.load(path)
    with pytest.raises(CheckpointError, match="holds a Shrink, not an AutoEncoder"):
        scratchae.load(path, model_class=AutoEncoder)
    for wrong in (Shrink(D, 5), Dense, "Shrink"):
        with pytest.raises(ArgumentError, match="model_class must be a subclass of scratchae.models.Model"):
            scratchae.load(path, model_class=wrong)


class Tied(Shrink):
    """A model whose constructor writes into a weight (the decoder starts as the encoder's transpose)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.net[1].W.data[...] = self.net[0].W.data.T


def test_a_constructor_that_writes_into_its_weights_is_named_on_loading(tmp_path):
    """Loading builds the layers on read-only placeholders: a constructor that writes into them is told so,
    with what to do instead, rather than 'the configuration does not fit'."""
    path = Tied(D, 5).save(tmp_path / "tied.npz")
    with pytest.raises(CheckpointError, match=r"Tied's constructor writes into its weights .*read-only placeholders"):
        scratchae.load(path, model_class=Tied)


def test_numpy_scalar_arguments_are_saved_as_plain_numbers(tmp_path):
    """Sizes and weights given as NumPy scalars go into the JSON header as Python numbers."""
    cases = [
        AutoEncoder(np.int64(D), hidden=(np.int64(16),), latent_dim=np.int32(4)),
        VAE(D, (8,), 2, beta=np.float32(0.5), gaussian_std=np.float64(0.3), kl_warmup=np.int64(2)),
        Classifier(D, np.int64(10), hidden=[np.int16(8)]),
    ]
    for i, model in enumerate(cases):
        loaded = scratchae.load(model.save(tmp_path / f"{i}.npz"))
        assert loaded.config == model.config
        assert all(type(v) in (int, float, str, bool, list, type(None)) for v in loaded.config.values())
    ae = AutoEncoder(D, hidden=(8,), latent_dim=2)
    ae.fit(np.full((20, D), 0.5, np.float32), epochs=1, batch_size=np.int64(8), checkpoint_dir=tmp_path, verbose=False)
    assert scratchae.load(tmp_path).fit_settings["batch_size"] == 8  # the fit settings too


def test_save_is_atomic_and_overwrites(tmp_path):
    """Only the target file is left behind (the temporary file was renamed over it)."""
    model, path = trained("ae_bce_sigmoid", "cpu", tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]
    model.fit(digits(128)[0], epochs=3, verbose=False, checkpoint_dir=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]
    assert scratchae.load(path).epochs_trained == 3


def test_a_checkpoint_is_written_when_a_callback_stops_training(tmp_path):
    ae = build("ae_bce_sigmoid")
    ae.fit(digits(64)[0], epochs=10, checkpoint_every=5, checkpoint_dir=tmp_path, verbose=False,
           callbacks=[lambda epoch, logs, model: epoch == 2])  # fmt: skip
    assert scratchae.load(tmp_path).epochs_trained == 3


def test_checkpoint_every_controls_the_writes(tmp_path):
    written: list[int] = []

    def record(epoch: int, logs: dict[str, float], model: Any) -> None:
        path = tmp_path / "checkpoint.npz"
        written.append(read_checkpoint(path).meta["epochs_trained"] if path.exists() else 0)

    ae = build("ae_bce_sigmoid")
    ae.fit(digits(64)[0], epochs=5, checkpoint_every=2, checkpoint_dir=tmp_path, verbose=False, callbacks=[record])
    assert written == [0, 2, 2, 4, 5]  # seen by the callback, after this epoch's write where one is due
    assert scratchae.load(tmp_path).epochs_trained == 5  # the last epoch is always written


def test_a_callback_that_raises_leaves_its_epoch_saved(tmp_path):
    def fail(epoch: int, logs: dict[str, float], model: Any) -> None:
        raise RuntimeError("stop here")

    ae = build("ae_bce_sigmoid")
    with pytest.raises(RuntimeError, match="stop here"):
        ae.fit(digits(64)[0], epochs=3, checkpoint_dir=tmp_path, verbose=False, callbacks=[fail])
    assert ae.epochs_trained == scratchae.load(tmp_path).epochs_trained == 1


# ---------------------------------------------------------------- damaged and foreign files


def npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def rewrite(path: Path, change: Callable[[dict[str, Any], dict[str, np.ndarray]], None]) -> Path:
    """A copy of the checkpoint at ``path`` with its header and arrays changed by ``change(meta, arrays)``."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    change(meta, arrays)
    out = path.with_name("changed.npz")
    out.write_bytes(npz_bytes(__meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays))
    return out


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model, path = trained("vae_bernoulli", "cpu", tmp_path)
    return path


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.98])
def test_a_truncated_file_is_refused(keep, saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        scratchae.load(saved)


def test_random_bytes_and_other_files_are_refused(tmp_path):
    cases = {
        "random.npz": np.random.default_rng(0).bytes(4096),
        "empty.npz": b"",
        "array.npz": (lambda b: (np.save(b, np.zeros(3)), b.getvalue())[1])(io.BytesIO()),
        "text.npz": b'{"format": "scratchae-checkpoint"}',
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=r"not a checkpoint: expected an \.npz \(zip\) archive"):
            scratchae.load(tmp_path / name)


def test_a_zip_member_that_is_not_an_array_is_refused(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__meta__.npy", b"not an array")
    with pytest.raises(CheckpointError, match="'__meta__' holds bytes that are not a .npy array"):
        scratchae.load(path)


def test_a_pickled_object_array_is_refused(saved):
    """An .npz whose entry is an object array (loading it would unpickle) is refused without unpickling."""
    planted = rewrite(saved, lambda meta, arrays: arrays.update({"param/evil": np.array([{"x": 1}], dtype=object)}))
    with pytest.raises(CheckpointError, match="pickle"):
        scratchae.load(planted)
    with pytest.raises(CheckpointError, match="pickle"):
        build("vae_bernoulli").fit(digits(64)[0], epochs=3, resume_from=planted, verbose=False)


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match="no checkpoint at .*nowhere.npz"):
        scratchae.load(tmp_path / "nowhere.npz")


def set_key(key: str, value: Any) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    return lambda meta, arrays: meta.update({key: value})


def drop(key: str) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    return lambda meta, arrays: meta.pop(key)


def replace_array(key: str, value: np.ndarray) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    return lambda meta, arrays: arrays.update({key: value})


DAMAGE = [
    (set_key("format", "something-else"), "not a scratchae-checkpoint file"),
    (set_key("version", 99), "checkpoint version 99"),
    (drop("kind"), "lacks 'kind'"),
    (drop("history"), "lacks 'history'"),
    (set_key("kind", "Transformer"), "unknown model kind 'Transformer'"),
    (set_key("kind", 3), "'kind' must be a model name"),
    (set_key("config", [1, 2]), "'config' must be a dict"),
    (set_key("epochs_trained", "two"), "'epochs_trained' must be an integer"),
    (set_key("epochs_trained", -1), "'epochs_trained' must be an integer >= 0"),
    (set_key("history", [1, 2]), "'history' must hold one dict per epoch"),
    (set_key("optimizer", "adam"), "'optimizer' must be null"),
    (set_key("fit_settings", "fast"), "'fit_settings' must be null or"),
    (set_key("weights_epoch", 0), r"'weights_epoch' must be null \(the last epoch's\) or an earlier epoch in \[1, "),
    (set_key("weights_epoch", True), "'weights_epoch' must be null"),
    (set_key("weights_epoch", 2), r"an earlier epoch in \[1, 1\], got 2"),  # the last epoch's weights: null
    (set_key("frozen", "encoder"), "'frozen' must be a list of parameter names"),
    (set_key("frozen", ["encoder.head.W", 3]), "'frozen' must be a list of parameter names"),
    (set_key("frozen", ["encoder.tail.W"]), "freezes parameters the model does not have: encoder.tail.W"),
    (
        set_key("fit_settings", {"batch_size": 0, "optimizer": "adam", "lr": 1e-3, "optimizer_options": {}}),
        "'fit_settings' must be null or",
    ),
    (lambda meta, arrays: meta["config"].update(latent_dim=-4), "configuration does not fit VAE"),
    (lambda meta, arrays: meta["config"].update(colour="red"), "configuration does not fit VAE"),
    (replace_array("param/encoder.head.W", np.zeros((3, 3), np.float32)), "weights do not fit"),
    (replace_array("param/encoder.head.W", np.zeros((3, 3), bool)), "dtype bool, expected a numeric array"),
    (
        lambda meta, arrays: arrays.pop("param/decoder.net.0.b"),
        r"\.npz: the weights do not fit.*missing.*decoder.net.0.b",
    ),
    (lambda meta, arrays: arrays["param/encoder.head.b"].put(1, np.nan), "weight encoder.head.b holds NaN or inf"),
    (lambda meta, arrays: arrays["optim/0.v"].put(0, np.inf), "optimizer state 0.v holds NaN or infinite values"),
]


@pytest.mark.parametrize("change, needle", DAMAGE, ids=[needle for _, needle in DAMAGE])
def test_a_damaged_header_or_array_is_refused(change, needle, saved):
    with pytest.raises(CheckpointError, match=needle):
        scratchae.load(rewrite(saved, change))


def test_a_header_that_is_not_json_is_refused(saved):
    bad = rewrite(saved, lambda meta, arrays: None)
    with np.load(bad) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["__meta__"] = np.frombuffer(b"\xff{not json", dtype=np.uint8)
    bad.write_bytes(npz_bytes(**arrays))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        scratchae.load(bad)


# ---------------------------------------------------------------- resume from the wrong checkpoint


def test_resume_refuses_another_kind(saved):
    with pytest.raises(CheckpointError, match="holds a VAE, not an AutoEncoder"):
        build("ae_bce_sigmoid").fit(digits(64)[0], epochs=3, resume_from=saved, verbose=False)


@pytest.mark.parametrize("override", [dict(latent_dim=5), dict(hidden=(32,)), dict(beta=2.0), dict(seed=1)])
def test_resume_refuses_another_configuration(override, saved):
    key = next(iter(override))
    model = build("vae_bernoulli", **override)
    before = model.state_dict()
    with pytest.raises(CheckpointError, match=f"another configuration.*{key}"):
        model.fit(digits(64)[0], epochs=3, resume_from=saved, verbose=False)
    assert model.epochs_trained == 0
    for name, w in model.state_dict().items():
        np.testing.assert_array_equal(w, before[name])


def test_resume_refuses_another_optimizer(saved):
    with pytest.raises(CheckpointError, match="trained with adam, resuming with sgd"):
        build("vae_bernoulli").fit(digits(64)[0], epochs=3, optimizer="sgd", resume_from=saved, verbose=False)


def test_resume_from_a_damaged_file_fails_before_training(saved):
    saved.write_bytes(saved.read_bytes()[:100])
    model = build("vae_bernoulli")
    with pytest.raises(CheckpointError, match="not a valid .npz archive"):
        model.fit(digits(64)[0], epochs=3, resume_from=saved, verbose=False)
    assert model.epochs_trained == 0 and len(model.history) == 0


# ---------------------------------------------------------------- divergence keeps the last good checkpoint


@pytest.fixture
def quiet_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow warnings on the way to inf
        yield


def test_divergence_keeps_the_checkpoint_of_the_earlier_fit(device, tmp_path, quiet_overflow):
    X, _ = digits(256)
    ae = build("ae_mse_linear", device)
    ae.fit(X, epochs=2, batch_size=64, checkpoint_dir=tmp_path, verbose=False)
    good = ae.state_dict()
    with pytest.raises(DivergenceError, match=r"became (inf|nan) in epoch 3, batch(es \d+-| )\d+"):
        ae.fit(X, epochs=6, batch_size=16, optimizer="sgd", lr=1e6, checkpoint_dir=tmp_path, verbose=False)
    loaded = scratchae.load(tmp_path, device=device)
    assert loaded.epochs_trained == 2
    for name, w in loaded.state_dict().items():
        np.testing.assert_array_equal(w, good[name], err_msg=name)
    assert np.all(np.isfinite(host(loaded.reconstruct(X))))


def test_non_finite_weights_are_never_checkpointed(tmp_path, quiet_overflow):
    """One batch per epoch: the loss of the epoch is finite but its update makes the weights infinite;
    training stops before that epoch is recorded or written."""
    X, _ = digits(128)
    ae = build("ae_mse_linear")
    ae.fit(X, epochs=1, checkpoint_dir=tmp_path, verbose=False)
    with pytest.raises(DivergenceError, match="weights .* became NaN or infinite in epoch 2"):
        ae.fit(X, epochs=5, batch_size=1000, optimizer="sgd", lr=1e38, checkpoint_dir=tmp_path, verbose=False)
    assert ae.epochs_trained == 1 and len(ae.history) == 1
    loaded = scratchae.load(tmp_path)
    assert loaded.epochs_trained == 1
    assert all(np.all(np.isfinite(w)) for w in loaded.state_dict().values())


def test_a_users_model_with_a_config_that_is_not_json_is_refused_when_built():
    class Odd(Model):
        def __init__(self, squash=np.tanh, seed: int = 0, dtype: str = "float32", device: str | None = None):
            super().__init__({"input_dim": D, "squash": squash}, seed, dtype, device)

    with pytest.raises(ArgumentError, match="Odd: config values must be JSON"):
        Odd()


def test_a_header_whose_sizes_its_arrays_do_not_hold_is_refused_without_allocating_them(saved):
    """A 10 KB file whose config claims a 4000-3000 network: the layers load as placeholders that allocate
    nothing (a weight of 48 MB is never made), and the mismatch with the stored arrays is refused."""
    lying = rewrite(saved, lambda meta, arrays: meta["config"].update(input_dim=4000, hidden=[3000]))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError):
            scratchae.load(lying)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"loading allocated {peak} bytes"


@pytest.mark.parametrize("prefix", ["param/", "optim/"])
def test_float64_values_beyond_the_models_float32_range_are_refused(saved, prefix):
    """A float32 model's weight (or Adam moment) stored as float64 1e39 would load as inf and surface later
    as a divergence: loading names it instead."""

    def enlarge(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        key = next(k for k in sorted(arrays) if k.startswith(prefix) and arrays[k].ndim == 2)
        arrays[key] = np.full(arrays[key].shape, 1e39)

    planted = rewrite(saved, enlarge)
    what = "parameter" if prefix == "param/" else "optimizer state"
    with pytest.raises(CheckpointError, match=rf"{what} .* holds 1e\+39, beyond the float32 range"):
        scratchae.load(planted).fit(digits(64)[0], epochs=3, verbose=False)


def test_resuming_into_a_model_of_another_configuration_names_the_values(tmp_path):
    path = VAE(D, (8,), 2).save(tmp_path / "vae.npz")
    with pytest.raises(CheckpointError, match=r"differs in latent_dim 2 in the file, 3 in the model\)"):
        VAE(D, (8,), 3).fit(digits(32)[0], epochs=2, verbose=False, resume_from=path)
