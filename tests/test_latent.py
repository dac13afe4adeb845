"""interpolate: codes on the straight line between two examples' codes, decoded; ends, devices, errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_models import build, digits

from scratchae import ArgumentError, DataError, ShapeError, backend
from scratchae.latent import interpolate
from scratchae.models import Classifier


@pytest.mark.parametrize("name", ["ae_bce_sigmoid", "vae_bernoulli", "cvae"])
def test_the_path_runs_straight_between_the_codes_and_ends_at_the_reconstructions(name, device):
    X, y = digits(64)
    model = build(name, device)
    label = 3 if model.needs_labels else None
    model.fit(X, None if label is None else y, epochs=1, verbose=False)
    Z, images = (backend.to_numpy(a) for a in interpolate(model, X[0], X[1:2], steps=5, y=label))
    ends = X[:2]
    codes = backend.to_numpy(model.transform(ends) if label is None else model.transform(ends, np.full(2, label)))
    assert Z.shape == (5, codes.shape[1]) and images.shape == (5, 64)
    np.testing.assert_allclose(Z[0], codes[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Z[-1], codes[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Z[2], (codes[0] + codes[1]) / 2, rtol=1e-5, atol=1e-6)  # t = 0.5
    recon = model.reconstruct(ends) if label is None else model.reconstruct(ends, np.full(2, label))
    np.testing.assert_allclose(images[[0, -1]], backend.to_numpy(recon), rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_named():
    X, y = digits(8)
    ae, cvae = build("ae_bce_sigmoid"), build("cvae")
    with pytest.raises(ArgumentError, match="steps must be at least 2"):
        interpolate(ae, X[0], X[1], steps=1)
    with pytest.raises(ShapeError, match=r"a must be one example, shape \(64,\) or \(1, 64\), got \(2, 64\)"):
        interpolate(ae, X[:2], X[1])
    with pytest.raises(ShapeError, match="features"):
        interpolate(ae, X[0, :10], X[1])
    with pytest.raises(ArgumentError, match="AutoEncoder takes none"):
        interpolate(ae, X[0], X[1], y=3)
    with pytest.raises(ArgumentError, match="y is required"):
        interpolate(cvae, X[0], X[1])
    with pytest.raises(ShapeError, match=r"y has shape \(2,\), expected \(1,\)"):
        interpolate(cvae, X[0], X[1], y=[1, 2])  # one class for the path
    with pytest.raises(DataError, match=r"y must lie in \[0, 9\]"):
        interpolate(cvae, X[0], X[1], y=12)
    with pytest.raises(ArgumentError, match="interpolate needs an autoencoder or a VAE .*got Classifier"):
        interpolate(Classifier(64, 10), X[0], X[1])
