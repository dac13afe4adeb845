"""Modules: parameter order, Dense and its initializers, Sequential, modes, freezing, state, dtype."""

from __future__ import annotations

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import ArgumentError, CheckpointError, DeviceError, DTypeError, ShapeError, Tensor, backend, nn


class Net(nn.Module):
    """A module with its own parameter between two registered sub-modules."""

    def __init__(self, device: str = "cpu"):
        self.encoder = nn.Dense(4, 3, activation="relu", rng=1, device=device)
        self.scale = nn.Parameter(backend.as_float_array(np.ones(3), dtype=np.float32, device=device))
        self.decoder = nn.Sequential(
            nn.Dense(3, 2, activation="tanh", rng=2, device=device), nn.Dense(2, 4, rng=3, device=device)
        )

    def forward(self, x):
        return self.decoder(self.encoder(x) * self.scale)


NET_NAMES = ["scale", "encoder.W", "encoder.b", "decoder.0.W", "decoder.0.b", "decoder.1.W", "decoder.1.b"]


def _input(device: str, rng: np.random.Generator, shape=(5, 4), dtype=np.float32) -> Tensor:
    return Tensor(backend.as_float_array(rng.standard_normal(shape), dtype=dtype, device=device))


def test_named_parameters_in_registration_order(device):
    net = Net(device)
    assert [name for name, _ in net.named_parameters()] == NET_NAMES
    assert net.parameters() == [p for _, p in net.named_parameters()]
    assert net.num_parameters() == 3 + (4 * 3 + 3) + (3 * 2 + 2) + (2 * 4 + 4)
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Dense", "Sequential", "Dense", "Dense"]


def test_sequential_applies_layers_in_order(device, rng):
    seq = nn.Sequential(nn.Dense(4, 3, activation="relu", rng=0, device=device), nn.Dense(3, 2, rng=1, device=device))
    x = _input(device, rng)
    expected = F.linear(F.linear(x, seq[0].W, seq[0].b, activation="relu"), seq[1].W, seq[1].b)
    np.testing.assert_array_equal(seq(x).numpy(), expected.numpy())
    assert len(seq) == 2 and list(seq) == seq.layers
    assert "Dense(4, 3, activation='relu')" in repr(seq)


@pytest.mark.parametrize(
    "init, activation, kind, scale",
    [
        ("glorot_uniform", "tanh", "uniform", lambda i, o: np.sqrt(6 / (i + o))),
        ("xavier_uniform", "tanh", "uniform", lambda i, o: np.sqrt(6 / (i + o))),
        ("he_uniform", "relu", "uniform", lambda i, o: np.sqrt(6 / i)),
        ("glorot_normal", "tanh", "normal", lambda i, o: np.sqrt(2 / (i + o))),
        ("he_normal", "relu", "normal", lambda i, o: np.sqrt(2 / i)),
        ("auto", "relu", "normal", lambda i, o: np.sqrt(2 / i)),
        ("auto", "elu", "normal", lambda i, o: np.sqrt(2 / i)),
        ("auto", "sigmoid", "uniform", lambda i, o: np.sqrt(6 / (i + o))),
        ("auto", None, "uniform", lambda i, o: np.sqrt(6 / (i + o))),
    ],
)
def test_dense_init_statistics(init, activation, kind, scale):
    """uniform: values inside [-limit, limit] reaching it, std limit/sqrt(3); normal: the stated std."""
    fan_in, fan_out = 400, 300
    W = nn.Dense(fan_in, fan_out, activation=activation, init=init, rng=7).W.numpy().astype(np.float64)
    s = scale(fan_in, fan_out)
    assert abs(W.mean()) < 0.01 * s
    if kind == "uniform":
        assert np.abs(W).max() <= s * (1 + 1e-6) and np.abs(W).max() > 0.999 * s
        np.testing.assert_allclose(W.std(), s / np.sqrt(3), rtol=0.01)
    else:
        np.testing.assert_allclose(W.std(), s, rtol=0.01)
        assert np.abs(W).max() > 3 * s  # tails: not a uniform draw


def test_dense_bias_starts_at_zero_and_can_be_left_out():
    assert np.all(nn.Dense(5, 4, rng=0).b.numpy() == 0)
    layer = nn.Dense(5, 4, bias=False, rng=0)
    assert layer.b is None and [n for n, _ in layer.named_parameters()] == ["W"]


def test_dense_is_reproducible_from_a_seed_or_generator():
    a, b, c = nn.Dense(6, 5, rng=3), nn.Dense(6, 5, rng=np.random.default_rng(3)), nn.Dense(6, 5, rng=4)
    np.testing.assert_array_equal(a.W.numpy(), b.W.numpy())
    assert not np.array_equal(a.W.numpy(), c.W.numpy())


def test_dense_custom_and_zero_init():
    layer = nn.Dense(2, 3, init=lambda rng, i, o: np.full((i, o), 0.25), dtype=np.float64)
    assert layer.W.dtype == np.float64 and np.all(layer.W.numpy() == 0.25)
    assert np.all(nn.Dense(2, 3, init="zeros").W.numpy() == 0)


def test_dense_takes_linear_for_identity(rng):
    """The models' name for an output without activation, 'linear', is the identity in a layer too."""
    x = rng.standard_normal((3, 2)).astype(np.float32)
    linear, identity = (nn.Dense(2, 4, name, rng=np.random.default_rng(0)) for name in ("linear", "identity"))
    np.testing.assert_array_equal(linear(x).numpy(), identity(x).numpy())
    assert linear.activation.name == "identity"
    with pytest.raises(ArgumentError, match=r"unknown activation 'lineer': expected one of identity \(or linear\)"):
        nn.Dense(2, 4, "lineer")
    with pytest.raises(ArgumentError, match="activation 'linear' does not take alpha"):
        nn.Dense(2, 4, "linear", alpha=0.1)


def test_dense_bad_arguments():
    with pytest.raises(ArgumentError, match="unknown init 'orthogonal'"):
        nn.Dense(2, 3, init="orthogonal")
    with pytest.raises(ArgumentError, match="unknown activation 'gelu'"):
        nn.Dense(2, 3, activation="gelu")
    with pytest.raises(DTypeError, match="float16"):
        nn.Dense(2, 3, dtype=np.float16)


@pytest.mark.parametrize(
    "sizes, name, got",
    [((-1, 3), "in_features", "-1"), ((3, 0), "out_features", "0"), ((2.5, 3), "in_features", "2.5")],
)
def test_dense_refuses_bad_sizes(sizes, name, got):
    with pytest.raises(ArgumentError, match=f"{name} must be a positive integer, got {got}"):
        nn.Dense(*sizes)


def test_dense_forward_and_default_dtype(device, rng):
    layer = nn.Dense(4, 3, activation="sigmoid", rng=0, device=device)
    assert layer.W.dtype == np.float32 and layer.device == device
    x = _input(device, rng)
    y = layer(x)
    z = x.numpy() @ layer.W.numpy() + layer.b.numpy()
    np.testing.assert_allclose(y.numpy(), 1 / (1 + np.exp(-z)), rtol=1e-5)


def test_freeze_and_unfreeze(device, rng):
    net = Net(device)
    x = _input(device, rng)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.encoder.freeze()
    assert net.encoder.W.grad is None and not net.encoder.W.requires_grad
    net.zero_grad()
    net(x).sum().backward()
    grads = {name: p.grad is not None for name, p in net.named_parameters()}
    assert grads == {name: not name.startswith("encoder") for name in NET_NAMES}
    net.encoder.unfreeze()
    net(x).sum().backward()
    assert net.encoder.W.grad is not None


def test_state_dict_round_trip(device, rng):
    a, b = Net(device), Net(device)
    for p in b.parameters():
        p.data *= 0.5
    state = a.state_dict()
    assert list(state) == NET_NAMES and all(isinstance(v, np.ndarray) for v in state.values())
    state["scale"][:] = 2.0  # a copy: the model is untouched
    assert np.all(a.scale.numpy() == 1.0)
    b.load_state_dict(a.state_dict())
    x = _input(device, rng)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert b.scale.device == device and b.scale.dtype == np.float32


def test_load_state_dict_keeps_the_model_dtype():
    layer = nn.Dense(3, 2, rng=0)
    layer.load_state_dict({k: v.astype(np.float64) for k, v in nn.Dense(3, 2, rng=1).state_dict().items()})
    assert layer.W.dtype == np.float32
    np.testing.assert_array_equal(layer.W.numpy(), nn.Dense(3, 2, rng=1).W.numpy())


def test_load_state_dict_errors():
    layer = nn.Dense(3, 2, rng=0)
    state = layer.state_dict()
    with pytest.raises(ShapeError, match=r"'W'.*\(2, 3\).*\(3, 2\)"):
        layer.load_state_dict({**state, "W": np.zeros((2, 3))})
    with pytest.raises(CheckpointError, match=r"missing \['b'\], unexpected \['bias'\]"):
        layer.load_state_dict({"W": state["W"], "bias": state["b"]})
    np.testing.assert_array_equal(layer.W.numpy(), state["W"])  # a failed load changes nothing


def test_a_load_refused_by_its_last_value_changes_no_parameter():
    layer = nn.Dense(3, 2, rng=0)
    before = layer.state_dict()
    bad = {"W": np.ones((3, 2)), "b": np.array(["a", "b"])}  # W converts; b (checked last) cannot
    with pytest.raises(DTypeError, match=r"parameter 'b'.*numeric"):
        layer.load_state_dict(bad)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_to_float64_converts_every_parameter(device, rng):
    net = Net(device)
    before = [p.numpy().copy() for p in net.parameters()]
    assert net.to(dtype="float64") is net
    assert net.dtype == np.float64 and all(p.dtype == np.float64 for p in net.parameters())
    for p, old in zip(net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.numpy(), old.astype(np.float64))
    y = net(_input(device, rng, dtype=np.float64))
    assert y.dtype == np.float64


def test_to_refuses_bad_dtype_and_device():
    net = Net()
    with pytest.raises(DTypeError, match="float16"):
        net.to(dtype=np.float16)
    with pytest.raises(DeviceError, match="'tpu'"):
        net.to(device="tpu")
    assert net.dtype == np.float32
