"""The tape: Tensor dtypes, backward, accumulation, no_grad, frozen parameters, operators."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import DeviceError, DTypeError, GraphError, ShapeError, Tensor, backend, is_grad_enabled, nn, no_grad
from scratchae.tensor import Function


def grad_of(t: Tensor) -> np.ndarray:
    return backend.to_numpy(t.grad)


@pytest.mark.parametrize(
    "data, dtype",
    [
        (np.arange(3, dtype=np.int64), np.float32),
        (np.array([True, False]), np.float32),
        ([1, 2, 3], np.float32),
        ([0.5, 1.5], np.float32),
        (2.5, np.float32),
        (np.float64(2.5), np.float64),
        (np.ones(2, np.float16), np.float32),
        (np.ones(2, np.float32), np.float32),
        (np.ones(2, np.float64), np.float64),
    ],
    ids=["int64", "bool", "int-list", "float-list", "python-float", "numpy-float64", "float16", "float32", "float64"],
)
def test_constructor_dtype_policy(data, dtype):
    assert Tensor(data).dtype == dtype


@pytest.mark.parametrize(
    "data", [np.array(["a"]), np.array([1 + 2j]), np.array([object()])], ids=["str", "complex", "object"]
)
def test_constructor_refuses_non_numeric_data(data):
    with pytest.raises(DTypeError, match="numeric"):
        Tensor(data)


def _small_graph(x: Tensor, W: Tensor, t: Tensor) -> Tensor:
    h = F.linear(x, W, activation="tanh")
    return F.mse_loss(F.sigmoid(h * 2.0 - 0.5), t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_end_to_end(tensor, rng, dtype):
    x = tensor(rng.standard_normal((4, 3)), requires_grad=True, dtype=dtype)
    W = tensor(rng.standard_normal((3, 2)), requires_grad=True, dtype=dtype)
    t = tensor(rng.uniform(size=(4, 2)), dtype=dtype)
    loss = _small_graph(x, W, t)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype and W.grad.dtype == dtype


def test_graph_of_several_ops_matches_central_differences(tensor, rng, check_grads):
    args = [
        tensor(rng.standard_normal((4, 3)), requires_grad=True, dtype=np.float64),
        tensor(rng.standard_normal((3, 2)), requires_grad=True, dtype=np.float64),
        tensor(rng.uniform(size=(4, 2)), requires_grad=True, dtype=np.float64),
    ]
    report = check_grads(_small_graph, args)
    assert len(report.rows) == 3


def test_backward_without_argument_on_a_scalar(tensor):
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(grad_of(x), [2.0, 4.0, 6.0])


def test_backward_with_upstream_grad_on_non_scalar(tensor):
    x = tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x * 3.0).backward(np.array([[1.0, 0.0], [2.0, -1.0]]))
    np.testing.assert_allclose(grad_of(x), [[3.0, 0.0], [6.0, -3.0]])


def test_backward_on_non_scalar_without_grad_raises(tensor):
    y = tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(GraphError, match=r"one-element output, got shape \(2, 3\)"):
        y.backward()


def test_backward_with_grad_of_wrong_shape_raises(tensor):
    y = tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(ShapeError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))


def test_backward_on_a_leaf(tensor):
    x = tensor([5.0], requires_grad=True)
    x.backward()
    np.testing.assert_array_equal(grad_of(x), [1.0])


def test_fan_out_accumulates(tensor):
    """x used three times: d(x*x + x)/dx = 2x + 1."""
    x = tensor([1.0, -2.0, 0.5], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(grad_of(x), [3.0, -3.0, 2.0])


@pytest.mark.parametrize("order", ["short-path-first", "long-path-first"])
def test_diamond_receives_gradient_from_every_path(tensor, order):
    """p = 2x feeds r directly and through a = 3p: dr/dx = 2 + 6, whatever the input order."""
    x = tensor([1.0, 2.0], requires_grad=True)
    p = x * 2.0
    a = p * 3.0
    r = p + a if order == "short-path-first" else a + p
    r.sum().backward()
    np.testing.assert_allclose(grad_of(x), [8.0, 8.0])


def test_deep_chain_with_skip_connections(tensor):
    """h_{k+1} = h_k + 0.5 h_k with h_0 reused at every step: gradients match the closed form."""
    x = tensor([1.0], requires_grad=True, dtype=np.float64)
    h = x
    for _ in range(30):
        h = h * 1.5 + x
    h.sum().backward()
    expected = 1.5**30 + sum(1.5**k for k in range(30))
    np.testing.assert_allclose(grad_of(x), [expected], rtol=1e-12)


def test_grads_accumulate_across_backward_calls(tensor):
    x = tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (x * 3.0).sum().backward()
    np.testing.assert_allclose(grad_of(x), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_first_grad_is_a_copy_not_shared_with_other_leaves(tensor):
    a, b = tensor([1.0], requires_grad=True), tensor([2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 10
    np.testing.assert_allclose(grad_of(b), [1.0])


def test_a_new_gradient_array_is_kept_not_copied(tensor):
    """W's gradient x^T dy is a new array: the leaf keeps that very array."""
    x, W = tensor(np.ones((3, 2))), tensor(np.ones((2, 4)), requires_grad=True)
    handed = {}
    (x @ W).sum().backward(hook=lambda fn, gys, gxs: handed.update({fn.name: gxs}))
    assert W.grad is handed["matmul"][1]


@pytest.mark.parametrize("g_first", [True, False], ids=["g-first", "g-last"])
def test_adding_to_a_kept_gradient_leaves_pending_gradients_alone(tensor, g_first):
    """loss = ((a + 3a) + 2a) * 1: the adds hand one new array to a and to h = 3a; a's second
    gradient (from 2a) must not change the array still pending for h, whichever backward runs first."""
    a = tensor([1.0, 2.0], requires_grad=True)
    s, g = a + a * 3.0, a * 2.0
    ((g + s if g_first else s + g) * 1.0).sum().backward()
    np.testing.assert_allclose(grad_of(a), [6.0, 6.0])


def test_the_callers_output_gradient_is_not_kept(tensor):
    a, b = tensor([1.0], requires_grad=True), tensor([2.0], requires_grad=True)
    given = backend.as_float_array(np.array([1.0]), dtype=a.dtype, device=a.device)
    (a + b).backward(given)
    given += 5
    np.testing.assert_allclose(grad_of(a), [1.0])
    np.testing.assert_allclose(grad_of(b), [1.0])


def test_no_grad_records_nothing_and_restores(tensor):
    x = tensor([1.0, 2.0], requires_grad=True)
    assert is_grad_enabled()
    with pytest.raises(RuntimeError, match="inside"):
        with no_grad():
            assert not is_grad_enabled()
            y = F.sigmoid(x * 2.0)
            raise RuntimeError("inside")
    assert is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    with pytest.raises(GraphError, match="does not depend on any tensor that requires a gradient"):
        y.backward(np.ones(2))
    assert x.grad is None


def test_constants_get_no_grad(tensor):
    x, c = tensor([1.0, 2.0], requires_grad=True), tensor([3.0, 4.0])
    y = x * c
    assert y.creator.needs_input_grad == (True, False)
    y.sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(grad_of(x), [3.0, 4.0])


def test_frozen_parameters_get_no_grad(device, rng):
    layer = nn.Dense(3, 2, activation="tanh", rng=0, device=device)
    layer.freeze()
    x = Tensor(backend.as_float_array(rng.standard_normal((4, 3)), dtype=np.float32, device=device), requires_grad=True)
    layer(x).sum().backward()
    assert layer.W.grad is None and layer.b.grad is None
    assert x.grad is not None and x.grad.shape == (4, 3)


def test_detach_cuts_the_tape(tensor):
    x = tensor([1.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert d.creator is None and not d.requires_grad
    (d * x).sum().backward()
    np.testing.assert_allclose(grad_of(x), [2.0])


def test_hook_sees_every_function_in_backward_order(tensor):
    x = tensor(np.ones((2, 2)), requires_grad=True)
    loss = F.mse_loss(F.relu(x * 2.0), tensor(np.zeros((2, 2))))
    seen = []
    loss.backward(hook=lambda fn, g_out, g_in: seen.append((fn.name, len(g_out), len(g_in))))
    assert seen == [("mse_loss", 1, 2), ("relu", 1, 1), ("mul", 1, 2)]


@pytest.mark.parametrize(
    "a_dtype, b_dtype", [(np.float32, np.float64), (np.float64, np.float32)], ids=["32+64", "64+32"]
)
@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.matmul], ids=["add", "sub", "mul", "matmul"])
def test_mixing_dtypes_raises(tensor, a_dtype, b_dtype, op):
    a, b = tensor(np.ones((2, 2)), dtype=a_dtype), tensor(np.ones((2, 2)), dtype=b_dtype)
    with pytest.raises(DTypeError, match="float32 and float64"):
        op(a, b)


CONSTANTS = {
    "list": lambda dt: [1, 2],
    "int array": lambda dt: np.array([1, 2]),
    "bool array": lambda dt: np.array([True, False]),
    "numpy float32 scalar": lambda dt: np.float32(2),
    "numpy int scalar": lambda dt: np.int64(2),
    "float16 array": lambda dt: np.ones(2, np.float16),
}


WEAK_CASES = [
    (op_name, op, name)
    for op_name, op in [("add", F.add), ("mul", F.mul), ("mse_loss", F.mse_loss)]
    for name in CONSTANTS
    if not (op_name == "mse_loss" and "scalar" in name)  # a loss compares arrays of one shape
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op_name, op, name", WEAK_CASES, ids=[f"{o}-{n}" for o, _, n in WEAK_CASES])
def test_constants_that_are_not_float_arrays_take_the_tensors_dtype(dtype, op_name, op, name):
    """Lists, integer, bool and float16 arrays and NumPy scalars are weak, as Python numbers are."""
    constant = CONSTANTS[name]
    x = Tensor(np.array([0.5, 1.5], dtype), requires_grad=True)
    for y in (op(x, constant(dtype)), op(constant(dtype), x)):
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), op(x.numpy(), np.asarray(constant(dtype), dtype)).numpy(), rtol=1e-7)
    F.sum(op(x, constant(dtype))).backward()
    assert x.grad.dtype == dtype


OUT_OF_FLOAT32 = {"float": 1e300, "int": 10**40, "list": [1e300, 1.0], "numpy": np.float64(1e300), "huge int": 10**400}


@pytest.mark.parametrize("constant", OUT_OF_FLOAT32.values(), ids=OUT_OF_FLOAT32.keys())
def test_a_constant_beyond_the_tensors_range_is_refused_not_made_inf(constant):
    x = Tensor(np.ones(2, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either: the error says it
        with pytest.raises(DTypeError, match="beyond the float32 range of the op's tensors"):
            F.add(x, constant)
    if constant is not OUT_OF_FLOAT32["huge int"]:
        assert F.add(Tensor(np.ones(2)), constant).dtype == np.float64  # float64 holds it
    assert np.isinf(F.add(x, float("inf")).numpy()).all()  # an infinite constant is what it says


def test_a_zero_dimensional_array_is_a_number(tensor):
    """A 0-d array (what CuPy's reductions return; NumPy's return scalars) takes the tensor's dtype too,
    so ``x32 * X64.mean()`` runs on both devices."""
    x = tensor(np.ones(2), dtype=np.float32)
    y = x * backend.as_float_array(np.array(2.5), dtype=np.float64, device=x.device)
    assert y.dtype == np.float32 and backend.to_numpy(y.data).tolist() == [2.5, 2.5]


def test_a_constant_alone_is_float32_and_a_float_array_keeps_its_dtype():
    assert F.add([1, 2], np.int64(3)).dtype == np.float32
    assert F.linear([[1.0, 2.0]], Tensor(np.ones((2, 3)))).dtype == np.float64  # the weight decides
    with pytest.raises(DTypeError, match="float32 and float64"):
        F.add(Tensor(np.ones(2, np.float32)), np.ones(2))


def test_mixing_dtypes_in_a_loss_raises(tensor):
    with pytest.raises(DTypeError, match="mse_loss: inputs mix dtypes float32 and float64"):
        F.mse_loss(tensor(np.ones(3), dtype=np.float32), np.ones(3, np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "expr, expected",
    [
        (lambda x: x + 2, [3.0, 4.0]),
        (lambda x: 2 + x, [3.0, 4.0]),
        (lambda x: x - 0.5, [0.5, 1.5]),
        (lambda x: 0.5 - x, [-0.5, -1.5]),
        (lambda x: x * 3, [3.0, 6.0]),
        (lambda x: 1.5 * x, [1.5, 3.0]),
        (lambda x: -x, [-1.0, -2.0]),
    ],
    ids=["x+2", "2+x", "x-0.5", "0.5-x", "x*3", "1.5*x", "-x"],
)
def test_python_scalars_keep_the_tensor_dtype(tensor, dtype, expr, expected):
    y = expr(tensor([1.0, 2.0], dtype=dtype))
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), expected)


def test_operators_and_reflected_operators_with_arrays(device, tensor, rng):
    a, b, m = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    bd, md = (backend.to_device(v, device) for v in (b, m))  # plain arrays of the device's array module
    x = tensor(a, requires_grad=True, dtype=np.float64)
    cases = {
        "x + b": (x + bd, a + b),
        "b + x": (bd + x, b + a),
        "x - b": (x - bd, a - b),
        "b - x": (bd - x, b - a),
        "x * b": (x * bd, a * b),
        "b * x": (bd * x, b * a),
        "x @ m": (x @ md, a @ m),
        "m.T @ x.T": (md.T @ tensor(a.T, dtype=np.float64), m.T @ a.T),
    }
    for label, (got, want) in cases.items():
        assert isinstance(got, Tensor), label
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-14, err_msg=label)


def test_ndarray_operators_hand_a_tensor_on_their_right_over_to_it():
    """Tensor opts out of NumPy's ufunc protocol (``__array_ufunc__ = None``): an ndarray's operators
    return NotImplemented for it, the rule CuPy's arrays follow too, so Python runs Tensor's reflected
    operator; a ufunc called on a Tensor directly is refused instead of building an object array."""
    b, x = np.ones((2, 2)), Tensor(np.ones((2, 2)))
    for op in ("__add__", "__sub__", "__mul__", "__truediv__", "__matmul__"):
        assert getattr(b, op)(x) is NotImplemented, op
    with pytest.raises(TypeError, match="does not support ufuncs"):
        np.add(b, x)


def test_reflected_sub_and_matmul_gradients(device, tensor, rng, check_grads):
    b, m = (backend.to_device(rng.standard_normal(s), device) for s in ((2, 3), (4, 2)))
    x = tensor(rng.standard_normal((2, 3)), requires_grad=True, dtype=np.float64)
    check_grads(lambda x: (b - x) * (m @ x).sum(), [x])


def test_item_and_repr(tensor):
    assert tensor([[4.0]]).item() == 4.0
    with pytest.raises(ShapeError, match=r"one element, got shape \(2,\)"):
        tensor([1.0, 2.0]).item()
    y = tensor([1.0], requires_grad=True) * 2.0
    assert "requires_grad=True" in repr(y) and "creator=Mul" in repr(y)


class _StandInGpuArray(np.ndarray):
    """A NumPy array that the backend is made to see as a GPU array (no GPU needed)."""


def test_mixing_devices_raises(monkeypatch):
    monkeypatch.setattr(backend, "is_gpu_array", lambda x: isinstance(x, _StandInGpuArray))
    on_gpu = Tensor.wrap(np.ones(3, np.float32).view(_StandInGpuArray))
    assert on_gpu.device == "gpu"
    with pytest.raises(DeviceError, match="cpu and gpu.*move them to one device"):
        F.add(on_gpu, np.ones(3, np.float32))


class Cube(Function):
    """y = x^3 with a backward that can be made wrong: ``reduce`` sums the gradient over rows
    (the wrong shape), ``cast`` returns it in another dtype."""

    def __init__(self, reduce: bool = False, cast: str | None = None):
        self.reduce, self.cast = reduce, cast

    def forward(self, x):
        self.save_for_backward(x)
        return x**3

    def backward(self, gy):
        (x,) = self.saved
        g = 3 * x * x * gy
        g = g.sum(axis=0) if self.reduce else g
        return g.astype(self.cast) if self.cast is not None else g


@pytest.mark.parametrize(
    "wrong, needle",
    [
        (dict(reduce=True), r"shape \(3,\) and dtype float64 for input 0, of shape \(4, 3\)"),
        (dict(cast="float32"), r"shape \(4, 3\) and dtype float32 for input 0, of shape \(4, 3\) and dtype float64"),
    ],
    ids=["shape", "dtype"],
)
@pytest.mark.parametrize("position", ["leaf", "intermediate"])
def test_a_backward_returning_a_gradient_that_does_not_fit_its_input_is_named(tensor, wrong, needle, position):
    p = tensor(np.ones((4, 3)), requires_grad=True, dtype="float64")
    x = p * 2.0 if position == "intermediate" else p
    with pytest.raises(GraphError, match=f"Cube.backward returned a gradient of {needle}"):
        F.sum(Cube(**wrong)(x)).backward()
    assert p.grad is None
    F.sum(Cube()(x)).backward()
    expected = 24.0 if position == "intermediate" else 3.0  # d(2p)^3/dp = 24 p^2 at p = 1
    np.testing.assert_allclose(backend.to_numpy(p.grad), expected)


class Returns(Function):
    """y = 2x whose forward or backward returns ``value(x or gy)`` in place of an array."""

    def __init__(self, forward_value: Any = None, backward_value: Any = None):
        self.forward_value, self.backward_value = forward_value, backward_value

    def forward(self, x):
        return self.forward_value(x) if self.forward_value else 2 * x

    def backward(self, gy):
        return self.backward_value(gy) if self.backward_value else 2 * gy


@pytest.mark.parametrize(
    "value, needle",
    [
        (lambda gy: 2.0, "returned a float for input 0"),
        (lambda gy: (2 * gy).tolist(), "returned a list for input 0"),
        (lambda gy: Tensor(2 * gy), "returned a Tensor for input 0"),
    ],
    ids=["float", "list", "Tensor"],
)
def test_a_backward_returning_something_other_than_an_array_is_named(value, needle):
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(GraphError, match=f"Returns.backward {needle}: gradients are arrays"):
        F.sum(Returns(backward_value=value)(x)).backward()


@pytest.mark.parametrize(
    "value, needle",
    [
        (lambda x: (2 * x).tolist(), "returned a list: outputs are arrays"),
        (lambda x: 2.0, "returned a float: outputs are arrays"),
        (lambda x: (2 * x).astype(np.float32), "returned dtype float32 for inputs of dtype float64"),
    ],
    ids=["list", "float", "another dtype"],
)
def test_a_forward_returning_something_other_than_an_array_of_the_inputs_dtype_is_named(value, needle):
    with pytest.raises(GraphError, match=f"Returns.forward {needle}"):
        Returns(forward_value=value)(Tensor(np.ones((2, 3)), requires_grad=True))


def test_a_failing_backward_leaves_every_gradient_as_it_was():
    """The leaves get their gradients only after every backward ran: a retry after the fix counts once."""
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones((2, 3)), requires_grad=True)
    F.sum(F.mul(a, 3.0)).backward()  # a gradient from an earlier pass stays as it is
    bad = F.add(F.sum(F.mul(a, 3.0)), F.sum(Cube(reduce=True)(b)))
    with pytest.raises(GraphError, match="Cube.backward returned a gradient of shape"):
        bad.backward()
    assert backend.to_numpy(a.grad).tolist() == [3.0, 3.0, 3.0] and b.grad is None
    F.add(F.sum(F.mul(a, 3.0)), F.sum(Cube()(b))).backward()
    assert backend.to_numpy(a.grad).tolist() == [6.0, 6.0, 6.0] and backend.to_numpy(b.grad).tolist() == [[3.0] * 3] * 2


def _doubled_in_place(gy):
    gy *= 2
    return gy


def test_a_backward_that_writes_into_its_gradient_is_named_and_changes_nothing():
    """add hands one gradient to both inputs: doubling it in place in one branch would double b's too."""
    a = Tensor(np.ones((1, 2)), requires_grad=True)
    b = Tensor(np.ones((1, 2)), requires_grad=True)
    loss = F.sum(Returns(backward_value=_doubled_in_place)(a) + b)
    with pytest.raises(GraphError, match=r"Returns.backward wrote into the gradient it was given.*not dy \*= 2"):
        loss.backward()
    assert a.grad is None and b.grad is None
    (Returns()(a) + b).backward(np.ones((1, 2)))  # a backward that makes a new array is unaffected
    np.testing.assert_array_equal(a.grad, [[2.0, 2.0]])
    np.testing.assert_array_equal(b.grad, [[1.0, 1.0]])
