"""Whole-model gradient checks: d(batch loss)/d(every parameter) of each model against float64 central
differences (``scratchae.gradcheck_module``, step eps = 1e-6, relative error < 1e-6 per tensor).

The noise of a denoising AE (``noisy=``) and the VAE's reparameterization eps (``eps=``) are injected,
so the loss is a deterministic function of the parameters. Smooth activations (tanh, elu, softplus,
sigmoid) keep the points away from kinks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from scratchae import DTypeError, GraphError, backend, gradcheck_module
from scratchae.data import corrupt
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder

EPS = 1e-6
RTOL = 1e-6
N, DIM, HIDDEN, LATENT, CLASSES = 5, 7, (6, 5), 3, 4


def check_every_parameter(model: Any, loss_fn: Callable[[], Any]) -> None:
    """Every trainable parameter is checked and passes; the table is shown on failure."""
    report = gradcheck_module(model, loss_fn, eps=EPS, rtol=RTOL)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert [row.name for row in report.rows] == trainable
    assert all(row.grad_scale > 0 for row in report.rows), report.table()  # every parameter gets a gradient
    assert report.ok and report.max_rel_error < RTOL, report.table()


@pytest.fixture
def data(device: str) -> dict[str, Any]:
    """x in (0, 1) (N, DIM), labels (N,), and a standard normal eps (N, LATENT), float64 on the device."""
    rng = np.random.default_rng(7)
    dev = lambda a: backend.as_float_array(a, dtype=np.float64, device=device)  # noqa: E731
    return {
        "x": dev(rng.uniform(0.05, 0.95, (N, DIM))),
        "y": backend.to_device(np.array([0, 3, 1, 2, 3]), device),
        "eps": dev(rng.standard_normal((N, LATENT))),
        "device": device,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(activation="tanh", loss="bce"),
        dict(activation="elu", output="sigmoid", loss="mse"),
        dict(activation="softplus", output="linear", loss="mse"),
    ],
    ids=["bce", "mse_sigmoid", "mse_linear"],
)
def test_autoencoder_gradients(kwargs, data):
    ae = AutoEncoder(DIM, HIDDEN, LATENT, dtype="float64", device=data["device"], **kwargs)
    check_every_parameter(ae, lambda: ae.batch_loss(data["x"]).total)


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_denoising_autoencoder_gradients_with_injected_noise(noise, data):
    dae = DenoisingAutoEncoder(
        DIM, HIDDEN, LATENT, activation="tanh", noise=noise, noise_level=0.3, dtype="float64", device=data["device"]
    )
    noisy = corrupt(data["x"], noise, 0.3, backend.new_rng(0, data["device"]))
    check_every_parameter(dae, lambda: dae.batch_loss(data["x"], noisy=noisy).total)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(likelihood="bernoulli"),
        dict(likelihood="gaussian", gaussian_std=0.7),
        dict(likelihood="bernoulli", beta=0.3, reconstruction_weight=2.0),
    ],
    ids=["bernoulli", "gaussian", "weighted"],
)
def test_vae_gradients_with_injected_eps(kwargs, data):
    vae = VAE(DIM, HIDDEN, LATENT, activation="tanh", dtype="float64", device=data["device"], **kwargs)
    check_every_parameter(vae, lambda: vae.batch_loss(data["x"], eps=data["eps"]).total)


def test_vae_gradients_during_kl_warmup(data):
    vae = VAE(DIM, HIDDEN, LATENT, activation="elu", kl_warmup=3, dtype="float64", device=data["device"])
    vae.on_epoch_start(0)
    assert vae.kl_weight == pytest.approx(1 / 3)
    check_every_parameter(vae, lambda: vae.batch_loss(data["x"], eps=data["eps"]).total)


def test_conditional_vae_gradients(data):
    cvae = ConditionalVAE(DIM, CLASSES, HIDDEN, LATENT, activation="tanh", dtype="float64", device=data["device"])
    check_every_parameter(cvae, lambda: cvae.batch_loss(data["x"], data["y"], eps=data["eps"]).total)


def test_classifier_gradients(data):
    clf = Classifier(DIM, CLASSES, hidden=(6,), activation="tanh", dtype="float64", device=data["device"])
    check_every_parameter(clf, lambda: clf.batch_loss(data["x"], data["y"]).total)


@pytest.mark.parametrize("freeze", [False, True], ids=["fine_tuned", "frozen"])
def test_classifier_on_a_vae_encoder_gradients(freeze, data):
    """Unfrozen, the gradient reaches the encoder; frozen, only the head's parameters are trainable."""
    vae = VAE(DIM, HIDDEN, LATENT, activation="tanh", dtype="float64", device=data["device"])
    clf = Classifier(
        DIM,
        CLASSES,
        hidden=(4,),
        activation="softplus",
        encoder=vae.encoder,
        freeze_encoder=freeze,
        dtype="float64",
        device=data["device"],
    )
    check_every_parameter(clf, lambda: clf.batch_loss(data["x"], data["y"]).total)
    checked_encoder = any(name.startswith("encoder.") for name, p in clf.named_parameters() if p.requires_grad)
    assert checked_encoder is not freeze


def test_the_check_refuses_a_loss_that_draws_eps_anew_each_call(data):
    """Without the injected eps the loss is not a function of the parameters alone: the check says so
    instead of reporting every entry as a wrong gradient."""
    vae = VAE(DIM, HIDDEN, LATENT, activation="tanh", dtype="float64", device=data["device"])
    with pytest.raises(GraphError, match=r"loss_fn gave .* then .* it must be deterministic \(inject the noise: eps="):
        gradcheck_module(vae, lambda: vae.batch_loss(data["x"]).total, eps=EPS, rtol=RTOL, max_entries=3)
    assert all(p.grad is None for p in vae.parameters())
    eps = backend.to_device(np.zeros((len(data["x"]), LATENT)), data["device"])
    with pytest.raises(GraphError, match=r"must return a Tensor, got Loss \(a model's batch_loss: return its .total\)"):
        gradcheck_module(vae, lambda: vae.batch_loss(data["x"], eps=eps))


def test_float32_models_are_refused_by_the_check(data):
    ae = AutoEncoder(DIM, HIDDEN, LATENT, device=data["device"])
    with pytest.raises(DTypeError, match="float64"):
        gradcheck_module(ae, lambda: ae.batch_loss(data["x"]).total)
