"""Arithmetic and shape ops: forward against NumPy, gradients against central differences."""

from __future__ import annotations

import re

import numpy as np
import pytest

import scratchae.functional as F
from scratchae import ArgumentError, ShapeError, backend

BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((), (2, 3)),
    ((5,), ()),
]
BINARY = [(F.add, np.add), (F.sub, np.subtract), (F.mul, np.multiply)]
BINARY_IDS = ["add", "sub", "mul"]


@pytest.mark.parametrize("op, ref", BINARY, ids=BINARY_IDS)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_forward_and_gradients_with_broadcasting(tensor, rng, check_grads, op, ref, shapes):
    a, b = (rng.standard_normal(s) for s in shapes)
    ta, tb = (tensor(v, requires_grad=True, dtype=np.float64) for v in (a, b))
    np.testing.assert_allclose(op(ta, tb).numpy(), ref(a, b), rtol=1e-15)
    report = check_grads(op, [ta, tb])
    assert [r.shape for r in report.rows] == list(shapes)


@pytest.mark.parametrize("shape", [(4,), (3, 2), (2, 2, 3)], ids=str)
def test_neg(tensor, rng, check_grads, shape):
    x = tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)
    np.testing.assert_array_equal(F.neg(x).numpy(), -x.numpy())
    check_grads(F.neg, [x])


@pytest.mark.parametrize("shapes", [((1, 1), (1, 1)), ((3, 4), (4, 2)), ((5, 1), (1, 6))], ids=str)
def test_matmul(tensor, rng, check_grads, shapes):
    a, b = (rng.standard_normal(s) for s in shapes)
    ta, tb = (tensor(v, requires_grad=True, dtype=np.float64) for v in (a, b))
    np.testing.assert_allclose(F.matmul(ta, tb).numpy(), a @ b, rtol=1e-14)
    check_grads(F.matmul, [ta, tb])


AXES = [None, 0, 1, -1, (0, 2), (1, -1)]


@pytest.mark.parametrize("reduce, ref", [(F.sum, np.sum), (F.mean, np.mean)], ids=["sum", "mean"])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
def test_sum_and_mean(tensor, rng, check_grads, reduce, ref, axis, keepdims):
    x = rng.standard_normal((2, 3, 4))
    t = tensor(x, requires_grad=True, dtype=np.float64)
    y = reduce(t, axis=axis, keepdims=keepdims)
    expected = ref(x, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-14)
    check_grads(lambda t: reduce(t, axis=axis, keepdims=keepdims), [t])


def test_tensor_methods_call_the_ops(tensor, rng):
    x = rng.standard_normal((2, 3))
    t = tensor(x)
    np.testing.assert_allclose(t.sum(axis=0).numpy(), x.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(t.mean().numpy(), x.mean(), rtol=1e-6)
    assert t.reshape(3, 2).shape == t.reshape((3, 2)).shape == (3, 2)


@pytest.mark.parametrize("shapes", [((2, 6), (3, 4)), ((2, 3, 4), (6, -1)), ((5,), (1, 5, 1))], ids=str)
def test_reshape(tensor, rng, check_grads, shapes):
    src, dst = shapes
    x = tensor(rng.standard_normal(src), requires_grad=True, dtype=np.float64)
    np.testing.assert_array_equal(F.reshape(x, dst).numpy(), x.numpy().reshape(dst))
    check_grads(lambda x: F.reshape(x, dst), [x])


@pytest.mark.parametrize(
    "shapes, axis",
    [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1), ([(2, 3), (2, 5)], -1), ([(1, 2, 2), (1, 2, 3)], 2)],
    ids=str,
)
def test_concat(tensor, rng, check_grads, shapes, axis):
    arrays = [rng.standard_normal(s) for s in shapes]
    ts = [tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    np.testing.assert_array_equal(F.concat(ts, axis=axis).numpy(), np.concatenate(arrays, axis=axis))
    check_grads(lambda *ts: F.concat(ts, axis=axis), ts)


@pytest.mark.parametrize(
    "shape, sections, axis, sizes",
    [
        ((2, 6), 3, 1, [2, 2, 2]),
        ((6, 2), 2, 0, [3, 3]),
        ((2, 7), [3, 4], -1, [3, 4]),
        ((2, 3, 5), [1, 0, 4], 2, [1, 0, 4]),
        ((4, 3), [4], 0, [4]),
    ],
    ids=str,
)
def test_split_equal_parts_and_sizes(tensor, rng, check_grads, shape, sections, axis, sizes):
    x = rng.standard_normal(shape)
    t = tensor(x, requires_grad=True, dtype=np.float64)
    parts = F.split(t, sections, axis=axis)
    assert isinstance(parts, tuple) and [p.shape[axis] for p in parts] == sizes
    bounds = np.cumsum(sizes)[:-1]
    for part, ref in zip(parts, np.split(x, bounds, axis=axis), strict=True):
        np.testing.assert_array_equal(part.numpy(), ref)
    check_grads(lambda t: F.split(t, sections, axis=axis), [t])


def test_unused_split_part_gets_zero_gradient(tensor):
    x = tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype=np.float64)
    first, _, _ = F.split(x, 3, axis=1)
    (first * 2.0).sum().backward()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), [[2, 0, 0], [2, 0, 0]])


def test_split_then_concat_roundtrip_gradient(tensor, rng, check_grads):
    x = tensor(rng.standard_normal((3, 4)), requires_grad=True, dtype=np.float64)
    check_grads(lambda x: F.concat(F.split(x, [1, 3], axis=1)[::-1], axis=1) * x, [x])


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda t: F.add(t(np.ones((3, 4))), t(np.ones((3, 5)))), ["(3, 4)", "(3, 5)"]),
        (lambda t: F.sub(t(np.ones((2,))), t(np.ones((3,)))), ["(2,)", "(3,)"]),
        (lambda t: F.mul(t(np.ones((2, 3))), t(np.ones((3, 2)))), ["(2, 3)", "(3, 2)"]),
        (lambda t: F.matmul(t(np.ones((2, 3))), t(np.ones((2, 3)))), ["(2, 3)", "(2, 3)"]),
        (lambda t: F.matmul(t(np.ones(3)), t(np.ones((3, 2)))), ["(3,)", "(3, 2)"]),
        (lambda t: F.concat([t(np.ones((2, 3))), t(np.ones((3, 3)))], axis=1), ["(2, 3)", "(3, 3)"]),
        (lambda t: F.reshape(t(np.ones((2, 3))), (4, 2)), ["(2, 3)", "(4, 2)"]),
        (lambda t: F.split(t(np.ones((2, 5))), 2, axis=1), ["length 5", "2 equal parts"]),
        (lambda t: F.split(t(np.ones((2, 5))), [2, 2], axis=1), ["[2, 2]", "(2, 5)"]),
        (lambda t: F.split(t(np.ones((2, 5))), [-1, 6], axis=1), ["[-1, 6]", "negative"]),
        (lambda t: F.split(t(np.ones((2, 5))), 1, axis=2), ["axis 2", "(2, 5)"]),
        (lambda t: F.sum(t(np.ones((2, 5))), axis=2), ["axis 2", "2 dimensions"]),
        (lambda t: F.mean(t(np.ones((2, 5))), axis=(0, -2)), ["axis", "more than once"]),
    ],
    ids=[
        "add",
        "sub",
        "mul",
        "matmul-inner",
        "matmul-1d",
        "concat",
        "reshape",
        "split-equal",
        "split-sizes",
        "split-negative",
        "split-axis",
        "sum-axis",
        "mean-repeated-axis",
    ],
)
def test_shape_errors_name_the_shapes(tensor, call, named):
    with pytest.raises(ShapeError) as info:
        call(tensor)
    assert isinstance(info.value, ValueError)
    for fragment in named:
        assert fragment in str(info.value)


def test_concat_of_nothing_raises():
    with pytest.raises(ArgumentError, match="at least one tensor"):
        F.concat([])


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda t: F.sum(t, axis="a"), "axis must be an integer or a sequence of integers, got 'a'"),
        (lambda t: F.mean(t, axis=1.5), "axis must be an integer or a sequence of integers, got 1.5"),
        (lambda t: F.sum(t, axis=(0, 1.0)), "axis must be an integer, got 1.0"),
        (lambda t: F.reshape(t, "ab"), "reshape: shape must be an integer or a sequence of integers, got 'ab'"),
        (lambda t: t.reshape(2, None), "reshape: shape must be an integer, got None"),
        (lambda t: F.concat(t), "concat: tensors must be a sequence of tensors (or an array's rows), got Tensor"),
        (lambda t: F.concat([t, t], axis="x"), "concat: axis must be an integer, got 'x'"),
        (lambda t: F.split(t, ["a"]), "split: sections must be an integer, got 'a'"),
        (lambda t: F.split(t, 3, axis="x"), "split: axis must be an integer, got 'x'"),
        (lambda t: F.split(t, True), "split: sections must be an integer or a sequence of integers, got True"),
    ],
)
def test_axes_shapes_and_sections_of_the_wrong_type_are_named(tensor, call, needle):
    with pytest.raises(ArgumentError, match=re.escape(needle)):
        call(tensor(np.arange(6.0).reshape(2, 3)))


@pytest.mark.parametrize(
    "call, shape",
    [
        (lambda t: t.reshape(-1), (6,)),
        (lambda t: F.reshape(t, 6), (6,)),
        (lambda t: F.reshape(t, np.int64(6)), (6,)),
        (lambda t: t.reshape(np.int64(3), 2), (3, 2)),
        (lambda t: F.sum(t, axis=np.int64(1)), (2,)),
        (lambda t: F.mean(t, axis=np.int64(0), keepdims=True), (1, 3)),
        (lambda t: F.split(t, np.int64(3), axis=1)[0], (2, 1)),
        (lambda t: F.split(t, np.array([1, 2]), axis=np.int64(1))[1], (2, 2)),
    ],
    ids=["reshape(-1)", "reshape-int", "reshape-np-int", "reshape-np-args", "sum", "mean", "split", "split-array"],
)
def test_integer_arguments_may_be_python_or_numpy_ints(tensor, call, shape):
    assert call(tensor(np.arange(6.0).reshape(2, 3))).shape == shape


def test_a_0d_integer_array_is_an_integer_and_an_array_of_rows_a_sequence(tensor):
    x = tensor(np.arange(6.0).reshape(2, 3))
    assert F.reshape(x, np.array(6)).shape == (6,) and F.sum(x, axis=np.array(1)).shape == (2,)
    assert [p.shape for p in F.split(x, np.array(3), axis=np.array(1))] == [(2, 1)] * 3  # 3 parts, as split(x, 3)
    assert F.concat([x, x], axis=np.array(0)).shape == (4, 3)
    assert F.concat(np.arange(6.0).reshape(2, 3)).shape == (6,)
    assert F.concat(t for t in (x, x)).shape == (2, 6)  # a generator of tensors, in its order
    rows = backend.as_float_array(np.arange(6.0).reshape(2, 3), device=x.device)  # the device's array of rows
    assert F.concat(rows).shape == (6,)
    for bad, what in (
        (np.array(5.0), "a 0-d array"),
        (np.arange(3.0), "a 1-d array"),
        ({1, 2}, "set"),
        ({"a": x}, "dict"),
    ):
        with pytest.raises(ArgumentError, match=f"concat: tensors must be a sequence of tensors .*got {what}"):
            F.concat(bad)
