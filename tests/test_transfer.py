"""Transfer learning: a new softmax head on a trained encoder, frozen or fine-tuned."""

from __future__ import annotations

import numpy as np
import pytest

import scratchae
from scratchae import ArgumentError, ShapeError, backend
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE
from scratchae.pretrain import transfer_head


@pytest.fixture
def autoencoder(digits, device) -> AutoEncoder:
    ae = AutoEncoder(64, hidden=(32,), latent_dim=16, device=device)
    ae.fit(digits.X_train, epochs=10, lr=1e-2, verbose=False)
    return ae


def snapshot(module) -> dict[str, np.ndarray]:
    return module.state_dict()


def changed(before: dict[str, np.ndarray], module) -> list[str]:
    after = module.state_dict()
    return [name for name in before if not np.array_equal(before[name], after[name])]


def test_classifier_keeps_a_frozen_encoder_fixed(digits, autoencoder):
    encoder_before = snapshot(autoencoder.encoder)
    clf = Classifier(64, 10, encoder=autoencoder.encoder, device=autoencoder.device)  # frozen by default
    head_before = snapshot(clf.head)
    assert not any(p.requires_grad for p in clf.encoder.parameters())
    clf.fit(digits.X_train, digits.y_train, epochs=10, lr=1e-2, verbose=False)
    assert changed(encoder_before, clf.encoder) == []
    assert len(changed(head_before, clf.head)) == len(head_before)
    assert clf.score(digits.X_test, digits.y_test) > 0.7  # chance: 0.1


def test_classifier_fine_tunes_an_unfrozen_encoder(digits, autoencoder):
    encoder_before = snapshot(autoencoder.encoder)
    clf = Classifier(64, 10, encoder=autoencoder.encoder, freeze_encoder=False, device=autoencoder.device)
    clf.fit(digits.X_train, digits.y_train, epochs=3, lr=1e-2, verbose=False)
    assert sorted(changed(encoder_before, clf.encoder)) == sorted(encoder_before)
    frozen = Classifier(64, 10, encoder=AutoEncoder(64, (32,), 16).encoder)
    frozen.encoder.unfreeze()
    before = snapshot(frozen.encoder)
    frozen.fit(digits.X_train, digits.y_train, epochs=1, verbose=False)
    assert sorted(changed(before, frozen.encoder)) == sorted(before)


def test_classifier_with_encoder_round_trips_through_load(tmp_path, digits, autoencoder):
    clf = Classifier(64, 10, hidden=(8,), encoder=autoencoder.encoder, device=autoencoder.device)
    clf.fit(digits.X_train, digits.y_train, epochs=2, lr=1e-2, verbose=False)
    loaded = scratchae.load(clf.save(tmp_path / "clf.npz"), device=autoencoder.device)
    np.testing.assert_array_equal(
        backend.to_numpy(loaded.predict_logits(digits.X_test)), backend.to_numpy(clf.predict_logits(digits.X_test))
    )


@pytest.mark.parametrize("unfreeze", [False, True])
def test_transfer_head_leaves_the_source_alone(digits, autoencoder, unfreeze):
    source_before = snapshot(autoencoder)
    clf = transfer_head(autoencoder, digits.X_train, digits.y_train, unfreeze=unfreeze, epochs=10, lr=1e-2)
    assert changed(source_before, autoencoder) == []
    assert all(p.requires_grad for p in autoencoder.parameters())
    moved = changed(snapshot(autoencoder.encoder), clf.encoder)
    assert (len(moved) == len(snapshot(autoencoder.encoder))) if unfreeze else moved == []
    assert clf.n_classes == 10
    assert clf.score(digits.X_test, digits.y_test) > 0.7


def test_transfer_head_on_a_vae_uses_the_posterior_mean(digits, device):
    vae = VAE(64, hidden=(32,), latent_dim=8, device=device)
    vae.fit(digits.X_train, epochs=5, lr=1e-2, verbose=False)
    clf = transfer_head(vae, digits.X_train, digits.y_train, hidden=(16,), epochs=10, lr=1e-2)
    logits = clf.head(vae.transform(digits.X_test)).data
    np.testing.assert_allclose(
        backend.to_numpy(clf.predict_logits(digits.X_test)), backend.to_numpy(logits), rtol=1e-5, atol=1e-6
    )
    assert clf.score(digits.X_test, digits.y_test) > 0.5


def test_transfer_head_takes_an_encoder_module(digits, autoencoder):
    clf = transfer_head(autoencoder.encoder, digits.X_train[:200], digits.y_train[:200], n_classes=12, epochs=1)
    assert clf.n_classes == 12 and clf.predict_logits(digits.X_test).shape == (len(digits.X_test), 12)


def test_transfer_head_refuses_bad_input(digits, autoencoder):
    with pytest.raises(ArgumentError, match="encoder"):
        transfer_head(object(), digits.X_train, digits.y_train)
    cvae = ConditionalVAE(64, 10, hidden=(8,), latent_dim=2)
    with pytest.raises(ArgumentError, match="class label"):
        transfer_head(cvae, digits.X_train, digits.y_train)
    with pytest.raises(ArgumentError, match="Classifier"):
        transfer_head(Classifier(64, 10), digits.X_train, digits.y_train)
    with pytest.raises(ShapeError, match="63 features"):
        transfer_head(autoencoder, digits.X_train[:, :63], digits.y_train)


def test_a_classifier_copies_the_encoder_it_is_given(digits):
    """Classifier(encoder=ae.encoder) works on a copy: the autoencoder's encoder stays trainable, keeps its
    dtype, and its own training afterwards still moves it."""
    ae = AutoEncoder(64, (32,), 16)
    clf = Classifier(64, 10, encoder=ae.encoder, dtype="float64")
    assert clf.encoder is not ae.encoder and clf.encoder.dtype == np.float64
    assert all(p.requires_grad and p.dtype == np.float32 for p in ae.encoder.parameters())
    before = snapshot(ae.encoder)
    ae.fit(digits.X_train[:256], epochs=1, verbose=False)
    assert sorted(changed(before, ae.encoder)) == sorted(before)
    assert ae.reconstruction_error(digits.X_test[:32]).dtype == np.float32
