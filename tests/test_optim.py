"""Optimizers against hand-computed updates; skipping rules; argument checks; state round trip."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import ArgumentError, CheckpointError, DTypeError, ShapeError, backend, optim
from scratchae.nn import Parameter
from scratchae.tensor import Tensor


def _param(values: Sequence[float] | np.ndarray, device: str, dtype=np.float64) -> Parameter:
    return Parameter(backend.as_float_array(np.asarray(values, dtype=np.float64), dtype=dtype, device=device))


def _run(make: Callable, w0: Sequence[float], grads: Sequence[Sequence[float]], device: str) -> np.ndarray:
    """Values of a parameter after one ``step()`` per gradient in ``grads``."""
    p = _param(w0, device)
    opt = make([p])
    for g in grads:
        p.grad = backend.as_float_array(np.asarray(g, dtype=np.float64), device=device)
        opt.step()
    return p.numpy()


# Hand-computed: w0 = 0, lr = 0.1, gradient 1 at every step, three steps.
#   SGD:       w = -0.1, -0.2, -0.3
#   momentum:  v = 1, 1.9, 2.71;                 w = -0.1, -0.29, -0.561
#   Nesterov:  v = 1, 1.9, 2.71; step g + 0.9 v = 1.9, 2.71, 3.439;  w = -0.19, -0.461, -0.8049
#   + weight decay 0.5 (SGD): g' = 1 + 0.5 w: 1, 0.95, 0.9025;        w = -0.1, -0.195, -0.28525
@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: optim.SGD(p, lr=0.1), [-0.1, -0.2, -0.3]),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), [-0.1, -0.29, -0.561]),
        (lambda p: optim.Momentum(p, lr=0.1), [-0.1, -0.29, -0.561]),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), [-0.19, -0.461, -0.8049]),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=0.5), [-0.1, -0.195, -0.28525]),
    ],
    ids=["sgd", "sgd-momentum", "Momentum", "nesterov", "sgd-weight-decay"],
)
def test_sgd_family_hand_computed(device, make, expected):
    for steps, want in enumerate(expected, start=1):
        np.testing.assert_allclose(_run(make, [0.0], [[1.0]] * steps, device), [want], rtol=1e-12)


def test_sgd_one_step_on_a_vector(device):
    np.testing.assert_allclose(
        _run(lambda p: optim.SGD(p, lr=0.1), [1.0, -2.0], [[0.5, 1.0]], device), [0.95, -2.1], rtol=1e-15
    )


def _adam_reference(w: float, grads: Sequence[float], lr: float, b1: float, b2: float, eps: float, wd: float = 0.0):
    """Adam (Kingma & Ba, Algorithm 1) with L2 weight decay added to the gradient, in float64."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


def test_adam_first_step_is_bias_corrected(device):
    """After one step m̂ = g and v̂ = g², so w moves by lr g / (|g| + eps), about lr whatever |g|."""
    for g in (0.5, -3.0, 1e-3):
        w = _run(lambda p: optim.Adam(p, lr=0.1), [1.0], [[g]], device)
        np.testing.assert_allclose(w, [1.0 - 0.1 * g / (abs(g) + 1e-8)], rtol=1e-12)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.0)], ids=str)
def test_adam_several_steps(device, weight_decay, betas):
    grads = [0.5, -1.0, 2.0, 0.25, -0.75]
    make = lambda p: optim.Adam(p, lr=0.05, betas=betas, eps=1e-6, weight_decay=weight_decay)  # noqa: E731
    got = _run(make, [1.5], [[g] for g in grads], device)
    np.testing.assert_allclose(got, [_adam_reference(1.5, grads, 0.05, *betas, 1e-6, weight_decay)], rtol=1e-12)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_frozen_params_and_params_without_grad_are_skipped(device, name):
    trained, frozen, no_grad = (_param([1.0, 2.0], device) for _ in range(3))
    frozen.requires_grad = False
    for p in (trained, frozen):
        p.grad = backend.as_float_array(np.array([1.0, 1.0]), device=device)
    opt = optim.make_optimizer(name, [trained, frozen, no_grad], lr=0.1, weight_decay=0.1)
    opt.step()
    assert not np.array_equal(trained.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(frozen.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(no_grad.numpy(), [1.0, 2.0])
    assert all(not key.startswith(("1.", "2.")) for key in opt.state_dict()["arrays"])


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_float32_parameters_stay_float32(device, name):
    p = _param([1.0, 2.0], device, dtype=np.float32)
    opt = optim.make_optimizer(name, [p], lr=0.1, weight_decay=0.01)
    for _ in range(3):
        p.grad = backend.as_float_array(np.array([0.5, -0.5]), dtype=np.float32, device=device)
        opt.step()
    assert p.dtype == np.float32 and p.device == device


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: optim.SGD(p, lr=0.0), "lr must be a finite number > 0, got 0.0"),
        (lambda p: optim.SGD(p, lr=-0.1), "lr must be a finite number > 0, got -0.1"),
        (lambda p: optim.Adam(p, lr=float("nan")), "lr must be a finite number > 0, got nan"),
        (lambda p: optim.Momentum(p, lr=float("inf")), "lr must be a finite number > 0, got inf"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be a finite number >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be a finite number >= 0"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"beta1 must lie in \[0, 1\), got 1.0"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"beta2 must lie in \[0, 1\), got -0.1"),
        (lambda p: optim.Adam(p, eps=0), "eps must be a finite number > 0"),
        (lambda p: optim.SGD(p, lr=10**400), "lr must be a finite number > 0, got 1000"),
        (lambda p: optim.SGD(p, lr=np.float32(np.inf)), "lr must be a finite number > 0"),
        (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda p: optim.Adam([*p, _param([2.0], "cpu"), *p]), "got parameter 0 again as parameter 2: give each once"),
        (lambda p: optim.make_optimizer("rmsprop", p, lr=0.1), "unknown optimizer 'rmsprop'.*sgd, momentum, adam"),
    ],
)
def test_bad_arguments_raise(make, fragment):
    with pytest.raises(ArgumentError, match=fragment):
        make([_param([1.0], "cpu")])


def test_numpy_settings_of_any_float_width_are_taken_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a float32's comparison with float64's largest value overflowed
        opt = optim.Adam([_param([1.0], "cpu")], lr=np.float32(1e-3), eps=np.float16(1e-4), weight_decay=np.int64(0))
    assert opt.lr == pytest.approx(1e-3) and opt.eps == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01),
    ],
    ids=["sgd", "nesterov", "adam"],
)
def test_state_dict_round_trip_gives_identical_next_steps(device, rng, make):
    """Two parameters, the second without a gradient at the first step; save after two steps,
    load into a fresh optimizer over copies, and the next three steps agree exactly."""
    grads = [[rng.standard_normal((3, 2)), None if k == 0 else rng.standard_normal(4)] for k in range(5)]
    params_a = [_param(rng.standard_normal((3, 2)), device), _param(rng.standard_normal(4), device)]
    opt_a = make(params_a)

    def step(params, opt, gs):
        for p, g in zip(params, gs, strict=True):
            p.grad = None if g is None else backend.as_float_array(g, device=device)
        opt.step()

    for gs in grads[:2]:
        step(params_a, opt_a, gs)
    state = opt_a.state_dict()
    params_b = [_param(p.numpy(), device) for p in params_a]
    opt_b = make(params_b)
    opt_b.load_state_dict(state)
    assert opt_b.steps == 2 and opt_b.counts == [2, 1]
    for gs in grads[2:]:
        step(params_a, opt_a, gs)
        step(params_b, opt_b, gs)
        for a, b in zip(params_a, params_b, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_is_a_copy(device):
    p = _param([1.0], device)
    opt = optim.Adam([p])
    p.grad = backend.as_float_array(np.array([1.0]), device=device)
    opt.step()
    state = opt.state_dict()
    state["arrays"]["0.m"][:] = 99.0
    assert backend.to_numpy(opt.state[0]["m"])[0] != 99.0


def test_load_state_dict_that_does_not_fit_raises(device):
    opt = optim.Adam([_param([1.0, 2.0], device)])
    with pytest.raises(CheckpointError, match=r"'0.m' of shape \(3,\)"):
        opt.load_state_dict({"steps": 1, "arrays": {"0.m": np.zeros(3)}})
    with pytest.raises(CheckpointError, match="'1.m'"):
        opt.load_state_dict({"steps": 1, "arrays": {"1.m": np.zeros(2)}})
    with pytest.raises(CheckpointError, match="'0.velocity'"):
        opt.load_state_dict({"steps": 1, "arrays": {"0.velocity": np.zeros(2)}})


def test_adam_bias_correction_counts_each_parameters_own_updates(device):
    """A parameter that first gets a gradient at step 3 (a head trained alone, then the encoder unfrozen)
    gets Adam's first-step update lr g / (|g| + eps), as if the optimizer had just started for it."""
    early, late = _param([0.0], device), _param([0.0], device)
    opt = optim.Adam([early, late], lr=0.1)
    for step in range(5):
        early.grad = backend.as_float_array(np.array([1.0]), device=device)
        late.grad = backend.as_float_array(np.array([-2.0]), device=device) if step >= 2 else None
        opt.step()
        if step == 2:
            np.testing.assert_allclose(late.numpy(), [0.1 * 2.0 / (2.0 + 1e-8)], rtol=1e-12)
    np.testing.assert_allclose(late.numpy(), [_adam_reference(0.0, [-2.0] * 3, 0.1, 0.9, 0.999, 1e-8)], rtol=1e-12)
    np.testing.assert_allclose(early.numpy(), [_adam_reference(0.0, [1.0] * 5, 0.1, 0.9, 0.999, 1e-8)], rtol=1e-12)


@pytest.mark.parametrize(
    "state",
    [
        {"arrays": {}},
        {"steps": 1},
        {"steps": "x", "arrays": {}},
        {"steps": 1, "arrays": {"m": np.zeros(2)}},
        None,
        {"steps": 1, "arrays": {"0.step": np.array(1), "0.m": np.zeros(2)}},  # v dropped
        {"steps": 1, "arrays": {"0.step": np.array(-3), "0.m": np.zeros(2), "0.v": np.zeros(2)}},
        {"steps": -1, "arrays": {}},
        {"steps": 2, "arrays": {"0.step": np.array(2), "1.m": np.zeros(2), "1.v": np.zeros(2)}},
    ],
    ids=[
        "no-steps",
        "no-arrays",
        "bad-steps",
        "key-without-index",
        "not-a-dict",
        "v-missing",
        "negative-count",
        "negative-steps",
        "moments-without-count",
    ],
)
def test_load_state_dict_refuses_malformed_state_and_changes_nothing(device, state):
    p = _param([1.0, 2.0], device)
    opt, twin = optim.Adam([p, _param([0.0, 0.0], device)], lr=0.1), optim.Adam([_param([1.0, 2.0], device)], lr=0.1)
    for o in (opt, twin):
        o.params[0].grad = backend.as_float_array(np.array([1.0, -1.0]), device=device)
        o.step()
    with pytest.raises(CheckpointError, match="optimizer state"):
        opt.load_state_dict(state)
    for o in (opt, twin):
        o.step()
    np.testing.assert_array_equal(p.numpy(), twin.params[0].numpy())
    assert opt.steps == 2 and opt.counts == [2, 0]


def test_a_models_move_takes_the_optimizers_state_along(device):
    """After ``model.to(...)`` the optimizer's moments follow the parameters (device and dtype), keep
    their values, and the next step goes on from them: m = 0.9 m + 0.1 g."""
    from scratchae.models import AutoEncoder

    model = AutoEncoder(6, (5,), 2, seed=0)
    model.fit(np.random.default_rng(0).random((64, 6)), epochs=1, batch_size=32, verbose=False)
    m_before = model.optimizer.state[0]["m"].astype(np.float64)
    model.to(device=device, dtype="float64")
    for state in model.optimizer.state:
        assert all(a.dtype == np.float64 and backend.device_of(a) == device for a in state.values())
    for p in model.parameters():
        p.grad = backend.as_float_array(np.ones(p.shape), dtype="float64", device=device)
    model.optimizer.step()
    np.testing.assert_allclose(backend.to_numpy(model.optimizer.state[0]["m"]), 0.9 * m_before + 0.1, rtol=1e-12)


@pytest.mark.parametrize("kernels_on", [True, False], ids=["kernels", "plain"])
@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_parameters_of_two_dtypes_are_stepped_in_one_call_each(device, name, kernels_on):
    """float32 and float64 parameters in one optimizer: each updated as an optimizer of its own would."""
    values = [([1.0, -2.0], np.float32), ([0.5], np.float64), ([3.0, 4.0, 5.0], np.float32)]
    mixed = [_param(v, device, dt) for v, dt in values]
    alone = [_param(v, device, dt) for v, dt in values]
    make = {"adam": lambda p: optim.Adam(p, lr=0.1), "momentum": lambda p: optim.Momentum(p, lr=0.1)}[name]
    opt, opts = make(mixed), [make([p]) for p in alone]
    with backend.use_kernels(kernels_on):
        for step in range(3):
            for p, q in zip(mixed, alone, strict=True):
                p.grad = backend.as_float_array(p.numpy() * 0 + step + 1.0, dtype=p.dtype, device=device)
                q.grad = p.grad.copy()
            opt.step()
            for o in opts:
                o.step()
    for p, q in zip(mixed, alone, strict=True):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p.numpy(), q.numpy())


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize(
    "grad, error, needle",
    [
        (np.ones(3), ShapeError, r"parameter 1 has shape \(2, 3\) .* grad has shape \(3,\)"),
        (np.ones((2, 3), np.float32), DTypeError, r"dtype float64, but its grad has shape \(2, 3\) and dtype float32"),
    ],
    ids=["shape", "dtype"],
)
def test_a_gradient_that_does_not_fit_its_parameter_is_refused_before_any_update(device, name, grad, error, needle):
    first, second = _param([1.0, 2.0], device), _param(np.ones((2, 3)), device)
    opt = optim.make_optimizer(name, [first, second], 0.1)
    first.grad = backend.as_float_array(np.ones(2), device=device)
    second.grad = backend.to_device(grad, device)
    with pytest.raises(error, match=needle):
        opt.step()
    assert first.numpy().tolist() == [1.0, 2.0] and opt.steps == 0 and opt.counts == [0, 0]


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("grad", [lambda g: Tensor(g), lambda g: g.tolist()], ids=["Tensor", "list"])
def test_a_gradient_that_is_not_an_array_of_the_parameters_kind_is_refused(device, name, grad):
    first, second = _param([1.0, 2.0], device), _param([3.0], device)
    opt = optim.make_optimizer(name, [first, second], 0.1)
    first.grad = backend.as_float_array(np.ones(2), device=device)
    second.grad = grad(np.ones(1))
    with pytest.raises(ArgumentError, match=f"parameter 1's grad is a {type(second.grad).__name__}: it must be a"):
        opt.step()
    assert first.numpy().tolist() == [1.0, 2.0] and opt.steps == 0


@pytest.mark.parametrize("params", [np.zeros(3), {"W": 1}, "W"], ids=["array", "dict", "str"])
def test_an_optimizer_names_what_it_got_in_place_of_a_parameter_list(params):
    with pytest.raises(ArgumentError, match=f"takes a list of parameters .*got {type(params).__name__}"):
        optim.SGD(params, lr=0.1)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_a_zero_dimensional_parameter_used_twice_is_stepped(device, name):
    """d(p * p)/dp = 2p reaches p.grad as a 0-d array (NumPy's 0-d arithmetic gives scalars)."""
    p = _param(np.array(2.0), device)
    F.mul(p, p).backward()
    assert type(p.grad) is type(p.data) and p.grad.shape == () and float(p.grad) == 4.0
    optim.make_optimizer(name, [p], 0.1).step()
    assert float(p.numpy()) < 2.0


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_a_parameter_made_from_a_strided_array_is_stepped_with_kernels_on_and_off(device, name):
    """A parameter on a strided array (Parameter(W.T), a view of W) is stepped by the plain expressions in
    place, with kernels on as off: the same values as a C-ordered parameter's, and W, whose memory the
    view shares, moves with it."""
    w = np.arange(6.0).reshape(2, 3)
    make = {"sgd": optim.SGD, "momentum": optim.Momentum, "adam": optim.Adam}[name]
    results = []
    for kernels_on, transposed in [(True, True), (False, True), (True, False)]:
        W = backend.as_float_array(w.copy(), device=device)
        p = Parameter(W.T if transposed else W.T.copy())
        opt = make([p], lr=0.1)
        with backend.use_kernels(kernels_on):
            for step in range(2):
                p.grad = backend.as_float_array(np.full((3, 2), step + 1.0), device=device)
                opt.step()
        assert (backend.to_numpy(W).T == p.numpy()).all() == transposed  # the view moved W along
        results.append(p.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
    np.testing.assert_allclose(results[0], results[2], rtol=1e-6)


def test_a_view_with_a_new_axis_is_updated_in_place(device):
    """x[None] has a stride of 0 on its axis of length 1, but no two elements share memory: it is no
    placeholder, and a step updates it (and so the array it views)."""
    base = backend.as_float_array(np.array([1.0, 2.0]), device=device)
    p = Parameter(base[None])
    p.grad = backend.as_float_array(np.array([[1.0, -1.0]]), device=device)
    optim.SGD([p], lr=0.5).step()
    np.testing.assert_allclose(backend.to_numpy(base), [0.5, 2.5])


def test_a_read_only_parameter_is_refused_before_any_update(device):
    """A layer built inside placeholder_weights() holds read-only zeros that loading replaces (on CuPy,
    which has no read-only flag, a broadcast view): an optimizer step on one is refused by name, with
    kernels on and off, and no parameter moves."""
    from scratchae.models import AutoEncoder
    from scratchae.nn.init import placeholder_weights

    with placeholder_weights():
        ae = AutoEncoder(6, (4,), 2, device=device)
    for kernels_on in (True, False):
        with backend.use_kernels(kernels_on), pytest.raises(ArgumentError, match="parameter 0 is read-only"):
            ae.fit(np.full((8, 6), 0.5), epochs=1, verbose=False)
    assert all(not np.any(p.numpy()) for p in ae.parameters())


def test_legitimate_states_load_old_ones_included(device):
    """A state saved before each parameter had an update count (Adam's counted the optimizer's steps), a
    frozen parameter's (no state, no count), and plain SGD's taken up with momentum (fresh velocity)."""
    ps = [_param([1.0, 2.0], device), _param([3.0], device)]
    adam = optim.Adam(ps, lr=0.1)
    ps[0].grad = backend.as_float_array(np.array([1.0, -1.0]), device=device)
    for _ in range(3):
        adam.step()
    saved = adam.state_dict()
    old = {"steps": saved["steps"], "arrays": {k: v for k, v in saved["arrays"].items() if not k.endswith(".step")}}
    for state in (saved, old):
        fresh = optim.Adam([_param([1.0, 2.0], device), _param([3.0], device)], lr=0.1)
        fresh.load_state_dict(state)
        assert fresh.counts == [3, 0] and fresh.steps == 3
    sgd = optim.SGD([ps[0]], lr=0.1)
    sgd.step()
    momentum = optim.SGD([_param([1.0, 2.0], device)], lr=0.1, momentum=0.9)
    momentum.load_state_dict(sgd.state_dict())
    assert momentum.counts == [0] and momentum.state == [{}]  # a fresh start: velocity and count


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_a_strided_parameter_in_a_mixed_group_keeps_c_ordered_state(device, name):
    """A C-ordered and a strided parameter in one optimizer: their state is C-ordered either way, so when the
    strided one's data is replaced by a C-ordered array (as load_state_dict does), the fused step takes it;
    the values equal those of the same steps with kernels off."""
    make = {"momentum": optim.Momentum, "adam": optim.Adam}[name]
    results = []
    for kernels_on in (True, False):
        q = _param(np.arange(4.0), device)
        p = Parameter(backend.as_float_array(np.arange(6.0).reshape(2, 3), device=device).T)
        opt = make([q, p], lr=0.1)
        with backend.use_kernels(kernels_on):
            for step in range(3):
                if step == 2:
                    p.data = p.data.copy(order="C")
                q.grad = backend.as_float_array(np.full(4, step + 1.0), device=device)
                p.grad = backend.as_float_array(np.full((3, 2), -step - 1.0), device=device)
                opt.step()
        assert all(state[s].flags.c_contiguous for state in opt.state for s in state)
        results.append((q.numpy(), p.numpy()))
    for on, off in zip(*results, strict=True):
        np.testing.assert_array_equal(on, off)


def test_adam_starts_afresh_on_a_count_without_moments(device):
    """An update count with no moments (another optimizer's state) restarts that count: the next step is a
    first step (bias-corrected to lr), not step 1001 on zero moments."""
    p = _param([1.0, -1.0], device)
    adam = optim.Adam([p], lr=0.1)
    adam.load_state_dict({"steps": 1000, "arrays": {"0.step": np.array(1000)}})
    assert adam.counts == [0]
    p.grad = backend.as_float_array(np.array([0.5, -2.0]), device=device)
    adam.step()
    np.testing.assert_allclose(p.numpy(), [0.9, -0.9], rtol=1e-6)
