"""One training step, op by op: forward values, backward gradients, finite-difference errors.

``trace(model, x)`` runs one step (``batch_loss`` + ``backward``) on a float64 copy of the
model and records, for every op of the tape in forward order, its outputs' shapes and value
statistics (mean, std, min, max); then, as backward runs, each input's gradient statistics
(L2 norm, mean |g|, max |g|) and a local finite-difference check of that op's backward:
for the op ``y = f(x_1, ..., x_k)`` and the upstream gradient ``dy`` it received, central
differences of ``s(x) = sum(f(x) * dy)`` with respect to each input (at most ``max_entries``
sampled entries) are compared with the gradient the op's backward returned, with
gradcheck's ``check_entries``: error measure ``max|a - n| / max(max|a|, max|n|)``, pass rule
``|a - n| <= atol + rtol * max(max|a|, max|n|) + rounding``, ``s`` summed exactly over the output
entries the perturbation changed (``changed_sum``: it is 0 at the tape's inputs). An entry whose
differences straddle a kink (relu at 0) is retried with a step 100 times smaller, and left out
(counted in ``fd_kinks``) if it still does: there the one-sided slopes differ and no central
difference is the derivative.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError
from .gradcheck import (
    DEFAULT_ATOL,
    DEFAULT_EPS,
    DEFAULT_RTOL,
    FDCheck,
    changed_sum,
    check_entries,
    check_fd_settings,
    check_max_entries,
)
from .models.base import Model
from .ops._common import reduction_scale
from .ops.losses import PairLoss
from .tables import Group, box_table, color_default, paint
from .tensor import Function, Tensor

DEFAULT_MAX_ENTRIES = 20


@dataclass(frozen=True)
class ValueStats:
    """mean, std, min and max of an array (as Python floats)."""

    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, array: Any) -> ValueStats:
        a = backend.to_numpy(array).astype(np.float64, copy=False)
        return cls(float(a.mean()), float(a.std()), float(a.min()), float(a.max()))


@dataclass(frozen=True)
class GradStats:
    """L2 norm, mean |g| and max |g| of a gradient."""

    norm: float
    mean_abs: float
    max_abs: float

    @classmethod
    def of(cls, grad: Any) -> GradStats:
        a = np.abs(backend.to_numpy(grad).astype(np.float64, copy=False))
        return cls(float(np.sqrt((a * a).sum())), float(a.mean()), float(a.max(initial=0.0)))


@dataclass(frozen=True)
class OutputRecord:
    """One output of an op: its shape and value statistics (None if the tape no longer holds it)."""

    shape: tuple[int, ...]
    stats: ValueStats | None


@dataclass(frozen=True)
class InputRecord:
    """One input of an op: its argument name, the parameter it is (if any), and its gradient.

    ``source``: the step of the op that produced this input (None for data, parameters, constants).
    ``grad`` is None for a constant (an input that needs no gradient: data, targets, eps).
    ``fd_rel_error``/``fd_abs_error``: the local finite-difference check over ``fd_checked`` entries
    (None when no check ran, or every sampled entry sat at a kink); ``fd_ok``: whether it passed (None
    likewise: no failure, as an initialization's zero biases can put whole inputs on relu's kink);
    ``fd_kinks``: sampled entries left out because they sit at a kink; ``fd_scale``: the largest |a| or
    |n| of the checked entries (0: every one was 0 both ways, which checks little: e.g. relu units off
    for the batch); ``fd_rounding``: the largest rounding allowance (where it reaches ``fd_scale`` the
    check only bounds the gradient: |a - n| is below it).
    """

    name: str
    parameter: str | None
    shape: tuple[int, ...]
    source: int | None
    grad: GradStats | None
    fd_rel_error: float | None = None
    fd_abs_error: float | None = None
    fd_checked: int = 0
    fd_kinks: int = 0
    fd_scale: float | None = None
    fd_rounding: float | None = None
    fd_ok: bool | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.parameter})" if self.parameter else self.name


@dataclass
class OpRecord:
    """One op of the step: ``step`` is its 1-based place in forward order, ``backward_step`` in backward order."""

    step: int
    name: str
    formula: str
    outputs: list[OutputRecord]
    inputs: list[InputRecord] = field(default_factory=list)
    backward_step: int | None = None


@dataclass
class Trace:
    """The record of one training step; ``rows`` in forward order."""

    model: str
    n_examples: int
    dtype: str
    loss: float
    terms: dict[str, float]
    rows: list[OpRecord]
    fd_step: float
    max_entries: int | None
    checked: bool
    weights: dict[str, float] = field(default_factory=dict)  # a term's factor in the loss, where not 1

    @property
    def backward_rows(self) -> list[OpRecord]:
        """The ops in the order backward ran them."""
        ran = [r for r in self.rows if r.backward_step is not None]
        return sorted(ran, key=lambda r: r.backward_step)

    @property
    def max_fd_error(self) -> float:
        """The largest relative finite-difference error over every checked gradient (0 if none)."""
        return max((i.fd_rel_error for r in self.rows for i in r.inputs if i.fd_rel_error is not None), default=0.0)

    @property
    def ok(self) -> bool:
        """True when every checked gradient passed (``|a - n| <= atol + rtol * scale``)."""
        return all(i.fd_ok is not False for r in self.rows for i in r.inputs)

    def to_dicts(self) -> list[dict[str, Any]]:
        """Flat records, one per (op, input), for a DataFrame: the op's fields, its first output's stats
        (``out_*``), and the input's gradient stats (``grad_*``, None for a constant) and FD fields."""
        out = []
        for r in self.rows:
            first = r.outputs[0]
            base = {
                "step": r.step,
                "backward_step": r.backward_step,
                "op": r.name,
                "formula": r.formula,
                "output_shape": first.shape,
                **_prefixed("out_", ValueStats, first.stats),
            }
            for i in r.inputs:
                out.append(
                    {
                        **base,
                        "input": i.name,
                        "parameter": i.parameter,
                        "input_shape": i.shape,
                        "source": i.source,
                        **_prefixed("grad_", GradStats, i.grad),
                        "fd_rel_error": i.fd_rel_error,
                        "fd_abs_error": i.fd_abs_error,
                        "fd_checked": i.fd_checked,
                        "fd_kinks": i.fd_kinks,
                        "fd_scale": i.fd_scale,
                        "fd_rounding": i.fd_rounding,
                        "fd_ok": i.fd_ok,
                    }
                )
        return out

    def table(self, color: bool | None = None) -> str:
        """The forward table, the backward table and a one-line verdict, for a terminal.

        ``color``: ANSI colours; by default only when stdout is a terminal and NO_COLOR is unset.
        """
        if color is None:
            color = color_default()
        return "\n".join([self._forward_table(color), "", self._backward_table(color), "", self._verdict(color)])

    def __str__(self) -> str:
        return self.table(color=False)

    def _forward_table(self, color: bool) -> str:
        rows = []
        for r in self.rows:
            for k, o in enumerate(r.outputs):
                several = len(r.outputs) > 1
                label = (
                    (f"{r.name} [0]" if several else r.name, "op") if k == 0 else (f"{' ' * len(r.name)} [{k}]", "op")
                )
                s = o.stats
                nums = [_num(v) for v in (s.mean, s.std, s.min, s.max)] if s else ["—"] * 4
                rows.append([str(r.step) if k == 0 else "", label, _shape(o.shape), *nums])
        title = f"Forward: {self.model}, {self.n_examples} examples, {self.dtype}"
        headers = ["#", "op", "output", "mean", "std", "min", "max"]
        return box_table(title, headers, [Group(rows)], "rllrrrr", color)

    def _backward_table(self, color: bool) -> str:
        groups = []
        for r in self.backward_rows:
            rows = []
            for k, i in enumerate(r.inputs):
                head = [str(r.step), (r.name, "op")] if k == 0 else ["", ""]
                if i.grad is None:
                    rows.append([*head, (i.label, "dim"), _shape(i.shape), *[("—", "dim")] * 3, ("constant", "dim")])
                    continue
                g = i.grad
                rows.append([*head, i.label, _shape(i.shape), _num(g.norm), _num(g.mean_abs), _num(g.max_abs), _fd(i)])
            groups.append(Group(rows, r.formula))
        title = "Backward, in the order it ran (#: the op's step in the forward table)"
        headers = ["#", "op", "input", "shape", "‖grad‖", "mean |g|", "max |g|", "FD rel err"]
        return box_table(title, headers, groups, "rlllrrrr", color)

    def _verdict(self, color: bool) -> str:
        terms = ", ".join(
            f"{k} {v:.6g}" + (f" × {self.weights[k]:.6g}" if k in self.weights else "") for k, v in self.terms.items()
        )
        line = f"loss {self.loss:.6g}" + (f" ({terms})" if terms else "")
        if not self.checked:
            return line
        n = sum(1 for r in self.rows for i in r.inputs if i.fd_rel_error is not None)
        at_kinks = sum(1 for r in self.rows for i in r.inputs if i.fd_rel_error is None and i.fd_kinks)
        unchecked = f"; {at_kinks} not checked (every sampled entry at a kink)" if at_kinks else ""
        bounded = sum(1 for r in self.rows for i in r.inputs if _only_bounded(i))
        if bounded:
            unchecked += f"; {bounded} only bounded (the rounding allowance reaches the gradient's size)"
        verdict = "PASS" if self.ok else "FAIL"
        styled = paint(verdict, "good" if self.ok else "bad", color)
        return (
            f"{line}\nFD: each op's backward against float64 central differences of sum(op(inputs) * dy), "
            f"step {self.fd_step:g}, {f'up to {self.max_entries}' if self.max_entries else 'all'} entries per input\n"
            f"{n} gradients checked{unchecked}, largest relative error {self.max_fd_error:.2e} "
            f"(pass: |a - n| <= {DEFAULT_ATOL:g} + {DEFAULT_RTOL:g} max(|a|, |n|) + rounding): {styled}"
        )


def _prefixed(prefix: str, cls: type, stats: Any) -> dict[str, float | None]:
    """``{prefix + field: value}`` of a stats dataclass, every value None when ``stats`` is None."""
    return {prefix + f.name: None if stats is None else getattr(stats, f.name) for f in fields(cls)}


def _num(v: float) -> str:
    return f"{v:.3e}"


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def _only_bounded(i: InputRecord) -> bool:
    """Whether a passed check's rounding allowance reached the gradient's scale: it then shows only that
    |a - n| is below the allowance (a gradient near 0, or a step too small for the objective)."""
    return bool(i.fd_ok) and bool(i.fd_scale) and (i.fd_rounding or 0.0) >= i.fd_scale


def _fd(i: InputRecord) -> Any:
    kinks = f" ({i.fd_kinks} at a kink)" if i.fd_kinks else ""
    kinks += " (all 0)" if i.fd_scale == 0 else ""
    if i.fd_rel_error is None:
        return (f"—{kinks}", "dim")
    if _only_bounded(i):
        kinks += " (only bounded: rounding >= |grad|)"
    return (f"{i.fd_rel_error:.1e} {'✓' if i.fd_ok else '✗'}{kinks}", "good" if i.fd_ok else "bad")


# --- running the step ---


def float64_copy(model: Model) -> Model:
    """A deep copy of ``model`` with float64 weights on its device: frozen parameters stay frozen, so the
    copy's step updates what ``fit`` would; the optimizer is left out (a step of the trace updates nothing)."""
    if not isinstance(model, Model):
        raise ArgumentError(f"trace: model must be a scratchae Model (e.g. a VAE), got {type(model).__name__}")
    optimizer, model.optimizer = model.optimizer, None
    try:
        clone = copy.deepcopy(model)
    finally:
        model.optimizer = optimizer
    return clone.to(dtype="float64")


def forward_order(root: Tensor) -> list[Function]:
    """The functions that produced ``root``, each after the functions that made its inputs (inputs
    visited first to last, so the order follows how the forward pass evaluated them)."""
    if root.creator is None:
        return []
    order: list[Function] = []
    seen = {id(root.creator)}
    stack: list[tuple[Function, int]] = [(root.creator, 0)]
    while stack:
        fn, i = stack[-1]
        if i < len(fn.inputs):
            stack[-1] = (fn, i + 1)
            parent = fn.inputs[i].creator
            if parent is not None and id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, 0))
        else:
            stack.pop()
            order.append(fn)
    return order


def op_name(fn: Function) -> str:
    """The op's name as the trace shows it (lower case: ``Split`` -> ``split``)."""
    return fn.name.lower()


def argument_names(fn: Function) -> list[str]:
    """Names of ``fn``'s inputs: a loss's ``arg_names``, else ``forward``'s parameters (``x1, x2`` for ``*xs``)."""
    n = len(fn.inputs)
    names = list(getattr(fn, "arg_names", ()))
    if len(names) == n:
        return names
    params = list(inspect.signature(fn.forward).parameters.values())
    if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return [f"{params[0].name.rstrip('s')}{k + 1}" for k in range(n)]
    return [p.name for p in params[:n]] + [f"input{k}" for k in range(len(params), n)]


def _local_forward(fn: Function, grad_outputs: Sequence[Any]) -> tuple[Callable[..., tuple], list[Any]]:
    """``(forward, weights)`` for the finite differences of ``fn``: ``forward(*arrays)`` gives the op's
    outputs before any final reduction and ``weights`` the upstream gradient of each of their entries.
    A loss built on elementwise values (``PairLoss``) is taken before its reduction, its upstream
    gradient times the reduction's factor on every value, so that the change one perturbed entry
    makes is not lost in the rounding of a large sum."""
    probe = copy.copy(fn)  # forward saves state on the copy, never on the op on the tape
    if isinstance(fn, PairLoss):
        shape = tuple(fn.inputs[0].shape)
        xp = backend.array_module_of(grad_outputs[0])
        weights = [xp.broadcast_to(reduction_scale(grad_outputs[0], shape, fn.reduction), shape)]
        return (lambda *xs: (probe.values(*xs),)), weights

    def forward(*xs: Any) -> tuple:
        outs = probe.forward(*xs)
        return outs if isinstance(outs, tuple) else (outs,)

    return forward, list(grad_outputs)


def local_check(
    fn: Function,
    grad_outputs: Sequence[Any],
    grad_inputs: Sequence[Any],
    step: float,
    max_entries: int | None,
    rng: np.random.Generator,
) -> list[FDCheck | None]:
    """One check per input (None for inputs without a gradient) of ``grad_inputs`` against central
    differences of ``s(x) = sum_k sum((f(x)_k - f(x0)_k) * grad_outputs_k)``, f a copy of ``fn``'s
    forward and x0 its inputs on the tape (gradcheck's ``changed_sum``: the entries the perturbation
    does not reach are exactly 0, so s carries no rounding from them)."""
    forward, weights = _local_forward(fn, grad_outputs)
    tensors = [Tensor.wrap(x.data.copy()) for x in fn.inputs]
    base = [o.copy() for o in forward(*(t.data for t in tensors))]  # a copy: split's outputs are views of x

    def objective() -> tuple[float, float]:
        return changed_sum(forward(*(t.data for t in tensors)), base, weights)

    return [
        None if g is None else check_entries(objective, t, g, step, max_entries, rng)
        for t, g in zip(tensors, grad_inputs, strict=True)
    ]


def _injected(model: Model, **values: Any) -> dict[str, Any]:
    """The injected randomness (``eps``, ``noisy``) that ``model.batch_loss`` accepts; refuses the rest."""
    accepted = inspect.signature(model.batch_loss).parameters
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in accepted:
            raise ArgumentError(f"trace: {model.kind} takes no {name!r} (its batch_loss has no such argument)")
        out[name] = (
            model.check_input(value, name)
            if name == "noisy"
            else backend.as_float_array(value, dtype=model.dtype, device=model.device)
        )
    return out


def trace(
    model: Model,
    x: Any,
    y: Any = None,
    *,
    eps: Any = None,
    noisy: Any = None,
    seed: int = 0,
    check: bool = True,
    max_entries: int | None = DEFAULT_MAX_ENTRIES,
    fd_step: float = DEFAULT_EPS,
) -> Trace:
    """Run one training step of ``model`` on ``x`` (N, input_dim) and record it op by op.

    The step runs on a float64 copy (``model`` is not changed). ``y``: labels (N,) for a model
    that needs them. Randomness: ``eps`` (N, latent_dim) for a VAE's reparameterization and
    ``noisy`` (N, input_dim) for a denoising AE's corrupted input, else drawn from a generator
    seeded by ``seed``. ``check``: run the local finite-difference check of every op's backward.
    """
    max_entries = check_max_entries(max_entries)
    fd_step = check_fd_settings(fd_step, DEFAULT_RTOL, DEFAULT_ATOL, "fd_step")[0]
    seed = None if seed is None else backend.check_seed(seed)
    clone = float64_copy(model)
    X = clone.check_input(x)
    labels = clone.check_labels(y, len(X)) if clone.needs_labels else None
    injected = _injected(clone, eps=eps, noisy=noisy)
    clone.on_epoch_start(clone.epochs_trained)
    loss = clone.batch_loss(X, labels, backend.new_rng(seed, clone.device), **injected)
    functions = forward_order(loss.total)
    records = {
        id(fn): OpRecord(
            step=k + 1,
            name=op_name(fn),
            formula=fn.formula,
            outputs=[
                OutputRecord(tuple(shape), None if ref() is None else ValueStats.of(ref().data))
                for ref, (shape, _) in zip(fn.outputs, fn.output_meta, strict=True)
            ],
        )
        for k, fn in enumerate(functions)
    }
    param_names = {id(p): name for name, p in clone.named_parameters()}
    fd_rng = np.random.default_rng(seed)
    ran = [0]

    def hook(fn: Function, grad_outputs: tuple, grad_inputs: tuple) -> None:
        # a gradient returned for a constant input (concat returns every slice) is not used: drop it
        grad_inputs = tuple(g if x.requires_grad else None for x, g in zip(fn.inputs, grad_inputs, strict=True))
        rec = records[id(fn)]
        ran[0] += 1
        rec.backward_step = ran[0]
        checks = local_check(fn, grad_outputs, grad_inputs, fd_step, max_entries, fd_rng) if check else None
        for k, (name, x_in, g) in enumerate(zip(argument_names(fn), fn.inputs, grad_inputs, strict=True)):
            row = checks[k] if checks else None
            done = row is not None and row.checked > 0
            rec.inputs.append(
                InputRecord(
                    name=name,
                    parameter=param_names.get(id(x_in)),
                    shape=x_in.shape,
                    source=None if x_in.creator is None else records[id(x_in.creator)].step,
                    grad=None if g is None else GradStats.of(g),
                    fd_rel_error=row.rel_error if done else None,
                    fd_abs_error=row.abs_error if done else None,
                    fd_checked=row.checked if done else 0,
                    fd_kinks=0 if row is None else row.kinks,
                    fd_scale=row.scale if done else None,
                    fd_rounding=row.rounding if done else None,
                    fd_ok=row.ok if done else None,
                )
            )

    loss.total.backward(hook=hook)
    return Trace(
        model=model.kind,
        n_examples=len(X),
        dtype=str(clone.dtype),
        loss=backend.to_float(loss.total.data),
        terms={k: backend.to_float(v.data) for k, v in loss.terms.items()},
        weights=dict(loss.weights),
        rows=[records[id(fn)] for fn in functions],
        fd_step=fd_step,
        max_entries=max_entries,
        checked=check,
    )
