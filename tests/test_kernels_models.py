"""Whole models agree with the fused kernels on and off (the plain NumPy/CuPy expressions)."""

from __future__ import annotations

import numpy as np
import pytest

from scratchae import backend
from scratchae.data import load
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder

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


@pytest.fixture(scope="module")
def digits():
    return load("digits", n_train=512)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_training_with_and_without_kernels_agrees(device, digits, name, optimizer):
    runs = []
    for enabled in (True, False):
        model = BUILDERS[name](device)
        with backend.use_kernels(enabled):
            model.fit(
                digits.X_train, digits.y_train, epochs=2, batch_size=64, optimizer=optimizer, lr=1e-3, verbose=False
            )
        runs.append(model)
    fused, plain = runs
    for (pname, a), (_, b) in zip(fused.named_parameters(), plain.named_parameters(), strict=True):
        np.testing.assert_allclose(
            backend.to_numpy(a.data), backend.to_numpy(b.data), rtol=RTOL, atol=ATOL, err_msg=pname
        )
    np.testing.assert_allclose(fused.history["loss"], plain.history["loss"], rtol=1e-5)
