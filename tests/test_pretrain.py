"""Greedy layer-wise pretraining: each step learns on the codes of the steps before it, the stacks carry
exactly the step weights, and the stacked classifier and deep autoencoder fine-tune."""

from __future__ import annotations

import numpy as np
import pytest

import scratchae
from scratchae import ArgumentError, ShapeError, backend
from scratchae.pretrain import (
    LayerAutoEncoder,
    pretrain_layerwise,
    random_init_layers,
    stack_autoencoder,
    stack_encoder,
    stacked_classifier,
)

SIZES = (64, 32, 16)
TRAIN = dict(epochs=15, lr=1e-2, batch_size=64)


@pytest.fixture
def pretrained(digits, device):
    return pretrain_layerwise(digits.X_train, SIZES, "sigmoid", device=device, **TRAIN)


def weights(layer) -> tuple[np.ndarray, np.ndarray]:
    return backend.to_numpy(layer.W.data), backend.to_numpy(layer.b.data)


def assert_same_weights(a, b) -> None:
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("denoising", [None, ("masking", 0.25)])
def test_every_step_learns(digits, device, denoising):
    result = pretrain_layerwise(digits.X_train, SIZES, "sigmoid", denoising, device=device, **TRAIN)
    assert [(m.input_dim, m.config["code_dim"]) for m in result.layers] == [(64, 32), (32, 16)]
    assert result.output == "sigmoid"
    assert [m.output for m in result.layers] == ["sigmoid", "sigmoid"]
    for history in result.histories:
        assert len(history) == TRAIN["epochs"]
        assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    assert all(m.noise == (denoising and denoising[0]) for m in result.layers)


def test_each_step_trains_on_the_codes_of_the_steps_before(digits, pretrained, device):
    """Step 1 is a one-layer AE trained alone on step 0's codes; step 0 is untouched by later steps."""
    alone = pretrain_layerwise(digits.X_train, SIZES[:2], "sigmoid", device=device, **TRAIN)
    assert_same_weights(alone.encoders[0], pretrained.encoders[0])
    assert_same_weights(alone.decoders[0], pretrained.decoders[0])
    step1 = LayerAutoEncoder(**pretrained.layers[1].config, device=device)
    step1.fit(pretrained.layers[0].encode(digits.X_train), **TRAIN, verbose=False)
    assert_same_weights(step1.encoder, pretrained.encoders[1])
    assert_same_weights(step1.decoder, pretrained.decoders[1])


def test_stacks_hold_the_step_weights(digits, pretrained):
    encoder = stack_encoder(pretrained)
    ae = stack_autoencoder(pretrained)
    clf = stacked_classifier(pretrained, 10)
    for i, step in enumerate(pretrained.encoders):
        assert_same_weights(encoder.net.layers[i], step)
        assert_same_weights(ae.encoder.net.layers[i], step)
        assert_same_weights(clf.encoder.net.layers[i], step)
    for i, step in enumerate(pretrained.decoders[::-1]):
        assert_same_weights(ae.decoder.net.layers[i], step)
    # the stacks compute what the steps compute, one after the other
    X = digits.X_test
    codes = pretrained.layers[1].encode(pretrained.layers[0].encode(X))
    np.testing.assert_allclose(backend.to_numpy(ae.encode(X)), backend.to_numpy(codes), rtol=1e-6)
    np.testing.assert_allclose(
        backend.to_numpy(encoder(backend.to_device(X, pretrained.device)).data), backend.to_numpy(codes), rtol=1e-6
    )
    one = pretrain_layerwise(X, SIZES[:2], epochs=2)
    np.testing.assert_allclose(
        backend.to_numpy(stack_autoencoder(one).reconstruct(X)),
        backend.to_numpy(one.layers[0].reconstruct(X)),
        rtol=1e-6,
    )


def test_stacks_are_copies(digits, pretrained):
    before = [weights(layer) for layer in pretrained.encoders]
    clf = stacked_classifier(pretrained, 10)
    clf.fit(digits.X_train, digits.y_train, epochs=2, lr=1e-2, verbose=False)
    for (W, b), layer in zip(before, pretrained.encoders, strict=True):
        np.testing.assert_array_equal(W, weights(layer)[0])
        np.testing.assert_array_equal(b, weights(layer)[1])


def test_stacked_classifier_fine_tunes_the_whole_stack(digits, pretrained):
    clf = stacked_classifier(pretrained, digits.n_classes)
    assert all(p.requires_grad for p in clf.encoder.parameters())
    clf.fit(digits.X_train, digits.y_train, epochs=20, lr=1e-2, verbose=False)
    assert clf.score(digits.X_test, digits.y_test) > 0.85  # chance: 0.1
    tuned = zip(clf.encoder.net, pretrained.encoders, strict=True)
    assert all(not np.array_equal(weights(a)[0], weights(b)[0]) for a, b in tuned)
    frozen = stacked_classifier(pretrained, digits.n_classes, freeze_encoder=True)
    frozen.fit(digits.X_train, digits.y_train, epochs=2, lr=1e-2, verbose=False)
    for a, b in zip(frozen.encoder.net, pretrained.encoders, strict=True):
        assert_same_weights(a, b)


def test_stacked_autoencoder_fine_tunes_and_starts_better_than_random(digits, pretrained):
    ae = stack_autoencoder(pretrained)
    before = backend.to_float(ae.reconstruction_error(digits.X_test).mean())
    ae.fit(digits.X_train, epochs=15, lr=1e-2, verbose=False)
    assert ae.history["loss"][-1] < ae.history["loss"][0]
    assert backend.to_float(ae.reconstruction_error(digits.X_test).mean()) < before
    random = stack_autoencoder(random_init_layers(SIZES, device=pretrained.device))
    assert before < 0.7 * backend.to_float(random.reconstruction_error(digits.X_test).mean())


def test_random_init_layers_are_the_starting_point_of_pretraining(digits):
    random = random_init_layers(SIZES, seed=3)
    assert all(m.epochs_trained == 0 for m in random.layers)
    trained = pretrain_layerwise(digits.X_train, SIZES, seed=3, epochs=1)
    for step, start in zip(trained.layers, random.layers, strict=True):
        fresh = LayerAutoEncoder(**start.config)
        assert_same_weights(fresh.encoder, start.encoder)
        assert step.config == start.config


def test_output_follows_the_data_range(digits):
    X = (digits.X_train - digits.X_train.mean(axis=0)) * 3  # outside [0, 1]
    result = pretrain_layerwise(X, (64, 16, 8), "tanh", epochs=3, lr=1e-2)
    assert result.output == "linear"
    assert [m.output for m in result.layers] == ["identity", "tanh"]
    assert result.histories[0]["loss"][-1] < result.histories[0]["loss"][0]
    ae = stack_autoencoder(result)
    assert ae.config["loss"] == "mse" and ae.config["output"] == "linear"


@pytest.mark.parametrize("build", [stack_autoencoder, lambda result: stacked_classifier(result, 10)])
def test_scratchae_load_rebuilds_the_stacked_models(tmp_path, digits, pretrained, build):
    model = build(pretrained)
    loaded = scratchae.load(model.save(tmp_path / "stack.npz"), device=pretrained.device)
    assert type(loaded) is type(model)
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(backend.to_numpy(a.data), backend.to_numpy(b.data))
    X = digits.X_test
    out = (
        (lambda m: m.predict_logits(X))
        if isinstance(model, scratchae.models.Classifier)
        else (lambda m: m.reconstruct(X))
    )
    np.testing.assert_array_equal(backend.to_numpy(out(loaded)), backend.to_numpy(out(model)))


def test_pretraining_refuses_bad_arguments(digits):
    X = digits.X_train[:50]
    with pytest.raises(ArgumentError, match="sizes"):
        pretrain_layerwise(X, (64,))
    with pytest.raises(ArgumentError, match="sizes"):
        pretrain_layerwise(X, (64, 0))
    with pytest.raises(ShapeError, match=r"sizes\[0\] must be 64, got sizes \(32, 16\)"):
        pretrain_layerwise(X, (32, 16))
    with pytest.raises(ArgumentError, match="output"):
        pretrain_layerwise(X, SIZES, output="softmax")
    with pytest.raises(ArgumentError, match="denoising"):
        pretrain_layerwise(X, SIZES, denoising="masking")
    with pytest.raises(ArgumentError, match="unknown noise"):
        pretrain_layerwise(X, SIZES, denoising=("blur", 0.1))
    with pytest.raises(ArgumentError, match="activation"):
        random_init_layers(SIZES, activation="swish")
