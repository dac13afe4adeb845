"""Models: each one learns the digits, the AE/DAE/Classifier API (shapes, encoder and decoder alone,
per-example errors), argument checks, and a classifier on a frozen encoder.

The helpers ``digits`` and ``build`` are shared with the other model, training and checkpoint tests.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from scratchae import ArgumentError, DataError, ShapeError, Tensor, backend
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder
from scratchae.train import evaluate_loss

D = 64  # 8 x 8 digits

# name -> (class, constructor arguments); small networks so that a few epochs take well under a second
MODELS: dict[str, tuple[type, dict[str, Any]]] = {
    "ae_bce_sigmoid": (AutoEncoder, dict(hidden=(32,), latent_dim=8)),
    "ae_mse_sigmoid": (AutoEncoder, dict(hidden=(32,), latent_dim=8, loss="mse")),
    "ae_mse_linear": (AutoEncoder, dict(hidden=(32,), latent_dim=8, output="linear", loss="mse")),
    "dae_gaussian": (DenoisingAutoEncoder, dict(hidden=(32,), latent_dim=8, noise="gaussian", noise_level=0.2)),
    "dae_masking": (DenoisingAutoEncoder, dict(hidden=(32,), latent_dim=8, noise="masking", noise_level=0.3)),
    "dae_salt_pepper": (DenoisingAutoEncoder, dict(hidden=(32,), latent_dim=8, noise="salt_pepper", noise_level=0.2)),
    "vae_bernoulli": (VAE, dict(hidden=(64,), latent_dim=4)),
    "vae_gaussian": (VAE, dict(hidden=(64,), latent_dim=4, likelihood="gaussian", gaussian_std=0.3)),
    "cvae": (ConditionalVAE, dict(n_classes=10, hidden=(64,), latent_dim=4)),
    "classifier": (Classifier, dict(n_classes=10, hidden=(32,))),
}


@functools.cache
def digits(n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training digits: X (n, 64) float32 in [0, 1], y (n,) int64 (shared, do not modify)."""
    from scratchae.data import load

    ds = load("digits", n_train=n)
    return ds.X_train, ds.y_train


def build(name: str, device: str = "cpu", **overrides: Any) -> Any:
    """A fresh model of the ``MODELS`` entry ``name`` for 64 features."""
    cls, kwargs = MODELS[name]
    return cls(D, **{**kwargs, "device": device, **overrides})


def labels_for(model: Any, y: np.ndarray) -> np.ndarray | None:
    return y if model.needs_labels else None


def host(a: Any) -> np.ndarray:
    return backend.to_numpy(a.data if isinstance(a, Tensor) else a)


# ---------------------------------------------------------------- learning


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_learns_the_digits(name, device):
    """After 6 epochs the loss (same fixed noise before and after) is below 0.7 of the untrained loss,
    and the last epoch's training loss is below the first's."""
    X, y = digits()
    model = build(name, device)
    yy = labels_for(model, y)
    before = evaluate_loss(model, X, yy)["loss"]
    history = model.fit(X, yy, epochs=6, batch_size=64, lr=3e-3, verbose=False)
    after = evaluate_loss(model, X, yy)["loss"]
    assert np.isfinite(before) and np.isfinite(after)
    assert after < 0.7 * before, f"{name}: loss {before:.4g} -> {after:.4g}"
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]


def test_classifier_beats_chance_after_training(device):
    X, y = digits()
    clf = build("classifier", device)
    clf.fit(X, y, epochs=8, batch_size=64, lr=3e-3, verbose=False)
    assert clf.score(X, y) > 0.8  # 10 classes: chance is 0.1
    assert host(clf.predict(X)).shape == (len(X),)


# ---------------------------------------------------------------- autoencoder API


@pytest.mark.parametrize("name", ["ae_bce_sigmoid", "ae_mse_linear", "dae_masking"])
def test_autoencoder_shapes(name, device):
    X, _ = digits(100)
    ae = build(name, device)
    codes = ae.encode(X)
    assert host(codes).shape == (100, 8) and host(codes).dtype == np.float32
    np.testing.assert_array_equal(host(ae.transform(X)), host(codes))
    assert host(ae.decode(codes)).shape == (100, D)
    np.testing.assert_array_equal(host(ae.inverse_transform(codes)), host(ae.decode(codes)))
    np.testing.assert_allclose(host(ae.reconstruct(X)), host(ae.decode(codes)), rtol=1e-5, atol=1e-6)
    assert host(ae.reconstruction_error(X)).shape == (100,)


def test_sigmoid_output_stays_in_unit_interval_and_linear_output_does_not_have_to(device):
    X, _ = digits(100)
    Z = 30 * np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    sig = host(build("ae_bce_sigmoid", device).decode(Z))
    lin = host(build("ae_mse_linear", device).decode(Z))
    assert sig.min() >= 0 and sig.max() <= 1
    assert lin.min() < 0 or lin.max() > 1


def test_encoder_and_decoder_work_alone(device):
    """``model.encoder(x)`` gives the codes of ``encode``; ``model.decoder.mean(z)`` the images of ``decode``."""
    X, _ = digits(50)
    ae = build("ae_bce_sigmoid", device)
    x = backend.as_float_array(X, device=device)
    z = ae.encoder(x)
    assert isinstance(z, Tensor) and z.shape == (50, 8)
    np.testing.assert_allclose(host(z), host(ae.encode(X)), rtol=1e-6, atol=1e-6)
    images = ae.decoder.mean(z)
    assert images.shape == (50, D)
    np.testing.assert_allclose(host(images), host(ae.decode(host(z))), rtol=1e-6, atol=1e-6)
    # the Bernoulli decoder's forward gives logits; mean applies the sigmoid to them
    np.testing.assert_allclose(host(images), 1 / (1 + np.exp(-host(ae.decoder(z)))), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ae_bce_sigmoid", "ae_mse_sigmoid", "ae_mse_linear"])
def test_reconstruction_error_per_example_matches_the_formula_and_the_training_loss(name, device):
    X, _ = digits(80)
    ae = build(name, device)
    err = host(ae.reconstruction_error(X)).astype(np.float64)
    p = host(ae.reconstruct(X)).astype(np.float64)
    if name == "ae_bce_sigmoid":
        expected = -(X * np.log(p) + (1 - X) * np.log1p(-p)).sum(axis=1)
    else:
        expected = ((p - X) ** 2).sum(axis=1)
    np.testing.assert_allclose(err, expected, rtol=1e-4)
    batch = ae.batch_loss(backend.as_float_array(X, device=device))
    np.testing.assert_allclose(backend.to_float(batch.total.data), err.mean(), rtol=1e-5)


def test_denoising_loss_targets_the_clean_input(device):
    """batch_loss(x, noisy=n) = loss(decoder(encoder(n)), x): the noise enters the encoder only."""
    X, _ = digits(40)
    dae = build("dae_masking", device)
    x = backend.as_float_array(X, device=device)
    noisy = dae.corrupt(X, rng=backend.new_rng(3, device))
    got = backend.to_float(dae.batch_loss(x, noisy=noisy).total.data)
    want = backend.to_float(dae.reconstruction_loss(dae.decoder(dae.encoder(noisy)), x).data)
    clean = backend.to_float(dae.batch_loss(x, noisy=x).total.data)
    assert got == pytest.approx(want, rel=1e-6)
    assert got != pytest.approx(clean, rel=1e-3)  # the noise changed the loss


@pytest.mark.parametrize("noise, level", [("gaussian", 0.3), ("masking", 0.4), ("salt_pepper", 0.4)])
def test_dae_corrupt_draws_the_named_noise(noise, level, device):
    X, _ = digits(200)
    dae = build("dae_masking", device, noise=noise, noise_level=level)
    out = host(dae.corrupt(X, rng=backend.new_rng(0, device)))
    again = host(dae.corrupt(X, rng=backend.new_rng(0, device)))
    np.testing.assert_array_equal(out, again)
    if noise == "gaussian":
        assert np.std(out - X) == pytest.approx(level, rel=0.05)
        return
    # masking zeroes entries, salt and pepper sets them to 0 or 1: count them where X is neither
    inside = (X > 0) & (X < 1)
    hit = out[inside] != X[inside]
    assert set(np.unique(out[inside][hit])) == ({0.0} if noise == "masking" else {0.0, 1.0})
    assert hit.mean() == pytest.approx(level, abs=0.03)


def test_denoising_autoencoder_denoises_better_than_a_plain_one(device):
    """Trained on masked inputs, the DAE reconstructs clean digits from masked ones closer than the AE does."""
    X, _ = digits(2000)  # all 1438 training digits
    kwargs = dict(epochs=25, batch_size=64, lr=3e-3, verbose=False)
    dae = build("dae_masking", device, noise_level=0.5)
    dae.fit(X, **kwargs)
    ae = build("ae_bce_sigmoid", device)
    ae.fit(X, **kwargs)
    noisy = dae.corrupt(X, rng=backend.new_rng(7, device))
    dae_err = np.mean((host(dae.denoise(noisy)) - X) ** 2)
    ae_err = np.mean((host(ae.reconstruct(noisy)) - X) ** 2)
    assert dae_err < 0.85 * ae_err, (dae_err, ae_err)


@pytest.mark.parametrize("name", ["ae_mse_linear", "vae_bernoulli", "cvae"])
def test_fit_transform_returns_the_codes_after_training(device, name):
    """An AE's codes, a VAE's posterior means (a CVAE's given the labels), after fit."""
    X, y = digits(128)
    model = build(name, device)
    labels = labels_for(model, y)
    codes = model.fit_transform(X, labels, epochs=2, verbose=False)
    assert model.epochs_trained == 2
    expected = model.transform(X) if labels is None else model.transform(X, labels)
    np.testing.assert_array_equal(host(codes), host(expected))


def test_linear_autoencoder_without_hidden_layers(device):
    """hidden=() with identity activations and linear output: one Dense each way (the PCA-like AE)."""
    ae = AutoEncoder(D, hidden=(), latent_dim=3, activation="identity", output="linear", loss="mse", device=device)
    assert [name for name, _ in ae.named_parameters()] == [
        "encoder.net.0.W",
        "encoder.net.0.b",
        "decoder.net.0.W",
        "decoder.net.0.b",
    ]
    X, _ = digits(64)
    W, b = host(ae.encoder.net[0].W), host(ae.encoder.net[0].b)
    np.testing.assert_allclose(host(ae.encode(X)), X @ W + b, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(loss="l1"), "loss"),
        (dict(loss="bce", output="linear"), "output"),
        (dict(output="tanh", loss="mse"), "output"),
        (dict(hidden=(32, 0)), "hidden"),
        (dict(latent_dim=0), "latent_dim"),
        (dict(latent_dim=2.5), "latent_dim"),
        (dict(activation="swish"), "swish"),
    ],
)
def test_autoencoder_refuses_bad_arguments(kwargs, needle):
    with pytest.raises(ArgumentError, match=needle):
        AutoEncoder(D, **kwargs)


def test_dae_refuses_an_unknown_noise():
    with pytest.raises(ArgumentError, match="noise 'speckle'"):
        DenoisingAutoEncoder(D, noise="speckle")


def test_models_refuse_inputs_of_the_wrong_width_or_with_nan(device):
    ae = build("ae_bce_sigmoid", device)
    with pytest.raises(ShapeError, match="X has 10 features"):
        ae.encode(np.zeros((4, 10)))
    with pytest.raises(ShapeError, match="Z has 3 features"):
        ae.decode(np.zeros((4, 3)))
    bad = np.zeros((4, D))
    bad[2, 5] = np.nan
    with pytest.raises(DataError, match=r"X has 1 NaN .*rows: \[2\]"):
        ae.reconstruct(bad)


# ---------------------------------------------------------------- classifier on an encoder


def test_classifier_on_a_frozen_encoder_trains_only_its_head(device):
    X, y = digits()
    ae = build("ae_bce_sigmoid", device)
    ae.fit(X, epochs=3, lr=3e-3, verbose=False)
    clf = Classifier(D, 10, encoder=ae.encoder, device=device)
    enc_before = clf.encoder.state_dict()
    head_before = clf.head.state_dict()
    clf.fit(X, y, epochs=3, lr=3e-3, verbose=False)
    for name, w in clf.encoder.state_dict().items():
        np.testing.assert_array_equal(w, enc_before[name], err_msg=name)
    assert all(not np.array_equal(w, head_before[name]) for name, w in clf.head.state_dict().items())
    assert all(not p.requires_grad for p in clf.encoder.parameters())
    # the features are the encoder's codes
    codes = host(clf.features(backend.to_device(X, device)))  # a module's forward: on the model's device
    np.testing.assert_allclose(codes, host(ae.encode(X)), rtol=1e-6, atol=1e-6)


def test_classifier_on_an_unfrozen_encoder_fine_tunes_it(device):
    X, y = digits(256)
    vae = build("vae_bernoulli", device)
    clf = Classifier(D, 10, encoder=vae.encoder, freeze_encoder=False, device=device)
    # on a VAE encoder the features are the posterior means mu
    codes = host(clf.features(backend.to_device(X, device)))
    np.testing.assert_allclose(codes, host(vae.transform(X)), rtol=1e-6, atol=1e-6)
    before = clf.encoder.state_dict()
    clf.fit(X, y, epochs=2, lr=3e-3, verbose=False)
    changed = [not np.array_equal(w, before[name]) for name, w in clf.encoder.state_dict().items()]
    assert any(changed)
    for name, w in vae.encoder.state_dict().items():  # fine-tuned a copy: the VAE's own encoder is as it was
        np.testing.assert_array_equal(w, before[name], err_msg=name)


def test_fit_refuses_a_model_whose_parameters_are_all_frozen():
    X, y = digits(64)
    ae = build("ae_bce_sigmoid")
    ae.freeze()
    before = ae.state_dict()
    with pytest.raises(ArgumentError, match="every parameter of the AutoEncoder is frozen: nothing to train"):
        ae.fit(X, epochs=1, verbose=False)
    assert ae.epochs_trained == 0 and ae.optimizer is None
    assert all(np.array_equal(w, before[name]) for name, w in ae.state_dict().items())
    ae.decoder.unfreeze()
    ae.fit(X, epochs=1, verbose=False)
    assert ae.epochs_trained == 1


def test_classifier_refuses_a_mismatched_encoder_and_bad_labels(device):
    ae = AutoEncoder(D, hidden=(16,), latent_dim=4, device=device)
    with pytest.raises(ArgumentError, match="encoder takes 64 features.*input_dim is 32"):
        Classifier(32, 10, encoder=ae.encoder)
    with pytest.raises(ArgumentError, match="n_classes"):
        Classifier(D, 0)
    with pytest.raises(ArgumentError, match="n_classes must be at least 2: a softmax over one class"):
        Classifier(D, 1)
    X, y = digits(64)
    clf = build("classifier", device)
    with pytest.raises(DataError, match=r"\[0, 9\]"):
        clf.fit(X, y + 5, epochs=1, verbose=False)
    with pytest.raises(ArgumentError, match="y is required"):
        clf.fit(X, epochs=1, verbose=False)
