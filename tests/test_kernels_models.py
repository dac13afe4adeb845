"""Whole models agree with the fused kernels on and off (the plain NumPy/CuPy expressions)."""

from __future__ import annotations

import numpy as np
import pytest

from scratchae import backend
from scratchae.data import Dataset
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder, Model

# float32 training for 2 epochs: the two paths round differently (sums in another order), so
# weights agree to float32 tolerance, not bit for bit.
RTOL, ATOL = 1e-3, 1e-4

BUILDERS = {
    "ae-relu-bce": lambda d: AutoEncoder(64, hidden=(32,), latent_dim=8, device=d),
    "ae-tanh-mse": lambda d: AutoEncoder(64, hidden=(32,), latent_dim=8, activation="tanh", loss="mse", device=d),
    "dae-elu": lambda d: DenoisingAutoEncoder(64, hidden=(32,), latent_dim=8, activation="elu", device=d),
    "vae-leaky": lambda d: VAE(64, hidden=(32,), latent_dim=4, activation="leaky_relu", device=d),
    "vae-gaussian-softplus": lambda d: VAE(
        64, hidden=(32,), latent_dim=4, activation="softplus", likelihood="gaussian", device=d
    ),
    "cvae": lambda d: ConditionalVAE(64, 10, hidden=(32,), latent_dim=4, device=d),
    "classifier-sigmoid": lambda d: Classifier(64, 10, hidden=(32,), activation="sigmoid", device=d),
}


def trained(name: str, device: str, data: Dataset, optimizer: str) -> Model:
    """BUILDERS[name] trained 2 epochs on ``data`` (batch 64, lr 1e-3) with ``optimizer``."""
    model = BUILDERS[name](device)
    model.fit(data.X_train, data.y_train, epochs=2, batch_size=64, optimizer=optimizer, lr=1e-3, verbose=False)
    return model


def assert_same_training(a: Model, b: Model) -> None:
    """Weights to RTOL/ATOL (named in the error), the loss history to 1e-5."""
    for (pname, wa), (_, wb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_allclose(
            backend.to_numpy(wa.data), backend.to_numpy(wb.data), rtol=RTOL, atol=ATOL, err_msg=pname
        )
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_training_with_and_without_kernels_agrees(device, small_digits, name, optimizer):
    runs = []
    for enabled in (True, False):
        with backend.use_kernels(enabled):
            runs.append(trained(name, device, small_digits, optimizer))
    assert_same_training(*runs)
