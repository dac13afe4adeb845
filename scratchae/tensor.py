"""The tape: ``Tensor`` values, ``Function`` nodes and the backward walk.

A ``Function`` maps input arrays to output arrays (``forward``) and output gradients to
input gradients (``backward``), both written by hand. Calling it on tensors records it
on the outputs (``tensor.creator``) when any input requires a gradient, so
``loss.backward()`` can walk the recorded functions in reverse topological order and
accumulate ``dL/dx`` into ``x.grad`` for every leaf ``x`` that requires a gradient.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import backend
from .errors import DeviceError, DTypeError, GraphError, ShapeError

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("grad_enabled", default=True)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context in which functions record nothing (inference, optimizer updates)."""
    return backend.context_value(_grad_enabled, False)


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``: ops then record nothing on the tape."""
    return _grad_enabled.get()


class Tensor:
    """An array with an optional gradient and the function that produced it.

    ``data``: the array (NumPy or CuPy), float32 or float64 — a floating array keeps its
    dtype, anything else is converted to the default float32.
    ``grad``: ``dL/ddata`` after ``backward``, same shape and dtype, or ``None``.
    """

    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "__weakref__")
    # Opts out of NumPy's ufunc protocol: an ndarray's (and a CuPy array's) operator then returns
    # NotImplemented for a Tensor on its right, so ``array + tensor`` runs Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None):
        self.data = data.data if isinstance(data, Tensor) else backend.as_float_array(data)
        self.grad: Any = None
        self.requires_grad = bool(requires_grad)
        self.creator: Function | None = None
        self.name = name

    @classmethod
    def wrap(cls, array: Any) -> Tensor:
        """A constant tensor around an array already float32/float64 (no conversion, no copy)."""
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t.creator, t.name = array, None, False, None, None
        return t

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        made = f", creator={type(self.creator).__name__}" if self.creator is not None else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, device={self.device}{extra}{made})"

    def numpy(self) -> Any:
        """The data as a NumPy array on the host."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        if self.size != 1:
            raise ShapeError(f"item() needs a tensor of one element, got shape {self.shape}")
        return backend.to_float(self.data.reshape(()))

    def detach(self) -> Tensor:
        """The same data, cut from the tape."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def backward(
        self,
        grad: Any = None,
        hook: Callable[[Function, tuple, tuple], None] | None = None,
    ) -> None:
        """Accumulate ``dL/dleaf`` into ``leaf.grad`` for every leaf on the tape.

        ``grad``: ``dL/dself``, an array of ``self.shape``; omitted only for a one-element
        output (then 1). ``hook(function, grad_outputs, grad_inputs)`` is called after
        each function's backward, in the order they run (used by ``scratchae.trace``).
        """
        if grad is None:
            if self.size != 1:
                raise GraphError(
                    f"backward() without a gradient needs a one-element output, got shape "
                    f"{self.shape}: pass grad, an array of that shape"
                )
            grad = backend.array_module_of(self.data).ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            given = grad
            grad = backend.as_float_array(grad, dtype=self.dtype, device=self.device)
            if grad is given:  # the caller's array: a leaf may keep the gradient it is handed
                grad = grad.copy()
            if tuple(grad.shape) != self.shape:
                raise ShapeError(f"backward(): grad has shape {tuple(grad.shape)}, output has shape {self.shape}")
        kept: set[int] = set()
        if self.creator is None:
            if not self.requires_grad:
                raise GraphError(
                    "backward(): this tensor does not depend on any tensor that requires a gradient (it was made "
                    "from constants or frozen parameters, or under no_grad()): there is nothing to differentiate"
                )
            _accumulate(self, grad, kept)
            return
        grads: dict[int, Any] = {id(self): grad}
        leaves: list[tuple[Tensor, Any]] = []  # accumulated after every backward ran: a failing one changes nothing
        xp = backend.array_module_of(self.data)
        for fn in _topological_order(self.creator):
            outputs = zip(fn.outputs, fn.output_meta, strict=True)
            grad_outputs = tuple([_take_grad(grads, ref(), shape, dtype, xp) for ref, (shape, dtype) in outputs])
            grad_inputs = _run_backward(fn, grad_outputs)
            if not isinstance(grad_inputs, tuple):
                grad_inputs = (grad_inputs,)
            if len(grad_inputs) != len(fn.inputs):
                raise GraphError(
                    f"{type(fn).__name__}.backward returned {len(grad_inputs)} gradients for {len(fn.inputs)} inputs"
                )
            if hook is not None:
                hook(fn, grad_outputs, grad_inputs)
            for k, (x, gx) in enumerate(zip(fn.inputs, grad_inputs, strict=True)):
                if gx is None or not x.requires_grad:
                    continue
                if isinstance(gx, Tensor) or not hasattr(gx, "shape") or not hasattr(gx, "dtype"):
                    raise GraphError(
                        f"{type(fn).__name__}.backward returned a {type(gx).__name__} for input {k}: "
                        f"gradients are arrays of the input's shape and dtype"
                    )
                if gx.shape != x.data.shape or gx.dtype != x.data.dtype:
                    raise GraphError(
                        f"{type(fn).__name__}.backward returned a gradient of shape {tuple(gx.shape)} and dtype "
                        f"{gx.dtype} for input {k}, of shape {x.shape} and dtype {x.dtype}: they must match"
                    )
                if x.creator is None:
                    leaves.append((x, _array(gx)))
                else:
                    prev = grads.get(id(x))
                    grads[id(x)] = gx if prev is None else prev + gx
        for leaf, gx in leaves:
            _accumulate(leaf, gx, kept)

    # The operators + - * @, unary -, and .sum/.mean/.reshape are attached by scratchae.ops.elementwise.


def _take_grad(grads: dict[int, Any], out: Tensor | None, shape: tuple, dtype: Any, xp: Any) -> Any:
    """The gradient gathered for one output of a function, zeros if nothing flowed into it."""
    grad = grads.pop(id(out), None) if out is not None else None
    return xp.zeros(shape, dtype) if grad is None else grad


def _run_backward(fn: Function, grad_outputs: tuple) -> Any:
    """``fn.backward`` on read-only views of its gradients (NumPy's; CuPy has no read-only arrays): one
    gradient may be handed to several inputs, so a backward that wrote into it would change theirs."""
    views = tuple([_read_only(g) for g in grad_outputs])
    try:
        return fn.backward(*views)
    except ValueError as exc:
        if not str(exc).endswith(("output array is read-only", "assignment destination is read-only")):
            raise
        raise GraphError(
            f"{type(fn).__name__}.backward wrote into the gradient it was given ({exc}): it may be shared "
            f"with other inputs, so compute a new array (dy * 2, not dy *= 2)"
        ) from exc


def _read_only(a: Any) -> Any:
    if not isinstance(a, np.ndarray):
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def _array(a: Any) -> Any:
    """``a`` as an array: NumPy's arithmetic and reductions on 0-d arrays return scalars (np.generic)."""
    return np.asarray(a) if isinstance(a, np.generic) else a


def _accumulate(leaf: Tensor, grad: Any, kept: set[int]) -> None:
    """``leaf.grad += grad``, never sharing memory between two leaves or with a pending gradient.

    The first gradient is kept as it is when it is a new array (it owns its memory) that no
    other leaf got in this pass (``kept``: ids of the arrays kept so far), else copied: a
    backward may hand one array to several inputs. An array kept in this pass may still be
    pending for another input, so adding to it makes a new array; any other is added to in place.
    """
    if leaf.grad is None:
        if grad.base is None and id(grad) not in kept:
            kept.add(id(grad))
            leaf.grad = grad
        else:
            leaf.grad = grad.copy()
    elif id(leaf.grad) in kept:
        leaf.grad = _array(leaf.grad + grad)
    else:
        leaf.grad += grad


def _topological_order(root: Function) -> list[Function]:
    """Functions reachable from ``root``, each after every function that consumes its outputs."""
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:  # pushed twice: already finished by the other path
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for x in fn.inputs:
            parent = x.creator
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def as_tensor(x: Any) -> Tensor:
    """A Tensor as it is, or an array or number wrapped as a constant."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _is_float_array(x: Any) -> bool:
    """A float32 or float64 array of at least one dimension (NumPy or CuPy): data that keeps its own dtype.
    A 0-d array is a number (NumPy's reductions return scalars where CuPy's return 0-d arrays)."""
    return getattr(x, "ndim", 0) > 0 and not isinstance(x, np.generic) and x.dtype in backend.FLOAT_DTYPES


def _as_inputs(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    """A function's inputs as Tensors. A float32 / float64 array keeps its dtype; any other constant (a
    list, a number, a 0-d array, an integer or bool array) takes the first floating input's dtype, as
    Python numbers do, so ``x64 + [1, 2]`` stays float64 (float32 when no input is floating)."""
    floating = [x.dtype for x in inputs if isinstance(x, Tensor) or _is_float_array(x)]
    weak = floating[0] if floating else None
    return tuple([x if isinstance(x, Tensor) else _constant(x, weak) for x in inputs])


def _constant(x: Any, weak: Any) -> Tensor:
    """A constant input as a Tensor: a float array as it is, anything else in the ``weak`` dtype, refused
    where that makes a finite value infinite (1e300 in float32)."""
    if _is_float_array(x) or (hasattr(x, "dtype") and x.dtype == weak):  # nothing to convert (0-d, in the dtype)
        return Tensor.wrap(x)
    with np.errstate(over="ignore"):  # an overflow is named below
        arr = backend.as_float_array(x, weak)
    if not backend.is_gpu_array(arr) and not np.isfinite(arr).all() and np.isfinite(np.asarray(x, np.float64)).all():
        raise DTypeError(f"a constant of {x!r:.60} is beyond the {arr.dtype} range of the op's tensors")
    return Tensor.wrap(arr)


def _check_same_kind(fn: Function, tensors: tuple[Tensor, ...]) -> None:
    """Inputs of one function share one dtype and one device (else a DTypeError / DeviceError)."""
    if not tensors:
        return
    first = tensors[0].data
    kind, dtype = type(first), first.dtype
    for t in tensors:
        if type(t.data) is not kind or (t.data.dtype is not dtype and t.data.dtype != dtype):
            break
    else:
        return
    op = fn.name
    floats = {t.dtype for t in tensors if t.dtype.kind == "f"}
    if len(floats) > 1:
        raise DTypeError(
            f"{op}: inputs mix dtypes {' and '.join(sorted(str(d) for d in floats))}; convert them to one dtype first"
        )
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise DeviceError(
            f"{op}: inputs are on the devices {' and '.join(sorted(devices))}; "
            f"move them to one device first (Tensor(backend.to_device(x, device)) or module.to(device))"
        )


def _wrap_output(fn: Function, y: Any, dtype: Any) -> Tensor:
    """A function's output as a tensor; NumPy reductions return scalars (np.generic), the tape holds arrays.
    An output that is not an array of the inputs' ``dtype`` is named (a GraphError)."""
    y = _array(y)
    if isinstance(y, Tensor) or not hasattr(y, "dtype") or not hasattr(y, "shape"):
        raise GraphError(
            f"{type(fn).__name__}.forward returned a {type(y).__name__}: outputs are arrays of its inputs' kind"
        )
    if y.dtype != dtype:
        raise GraphError(
            f"{type(fn).__name__}.forward returned dtype {y.dtype} for inputs of dtype {dtype}: they must match"
        )
    return Tensor.wrap(y)


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on arrays.

    Subclasses implement ``forward(*arrays) -> array | tuple`` and
    ``backward(*grad_outputs) -> grad | tuple`` (one gradient per input, ``None`` where
    no gradient is needed), and keep what backward needs with ``save_for_backward``.
    ``needs_input_grad[i]`` tells backward whether input ``i`` wants a gradient. Backward
    must not modify the gradients it receives: they may be shared with other inputs (on the
    CPU they are read-only, and writing into one is a ``GraphError``).
    """

    #: the backward's formula, one line (shown by ``scratchae trace``)
    formula: str = ""

    inputs: tuple[Tensor, ...]
    outputs: tuple[weakref.ref, ...]
    output_meta: tuple[tuple[tuple[int, ...], Any], ...]
    needs_input_grad: tuple[bool, ...]
    saved: tuple

    @property
    def name(self) -> str:
        return type(self).__name__

    def save_for_backward(self, *values: Any) -> None:
        self.saved = values

    def __call__(self, *inputs: Any) -> Any:
        # list comprehensions, not generators: this runs for every op of every step
        tensors = tuple([x for x in inputs if isinstance(x, Tensor)])
        if len(tensors) != len(inputs):
            tensors = _as_inputs(inputs)
        _check_same_kind(self, tensors)
        needs = tuple([t.requires_grad for t in tensors])
        self.needs_input_grad = needs
        self.saved = ()
        raw = self.forward(*[t.data for t in tensors])
        single = not isinstance(raw, tuple)
        dtype = tensors[0].data.dtype
        outs = (_wrap_output(self, raw, dtype),) if single else tuple([_wrap_output(self, y, dtype) for y in raw])
        if True in needs and _grad_enabled.get():
            self.inputs = tensors
            self.outputs = tuple([weakref.ref(o) for o in outs])
            self.output_meta = tuple([(o.data.shape, o.data.dtype) for o in outs])
            for o in outs:
                o.requires_grad = True
                o.creator = self
        return outs[0] if single else outs

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError(f"{self.name} must implement forward")

    def backward(self, *grad_outputs: Any) -> Any:
        raise NotImplementedError(f"{self.name} must implement backward")
