"""Optimizers: SGD (with momentum and Nesterov), Momentum, Adam.

``step()`` updates every parameter that requires a gradient and has one; frozen
parameters and parameters without a gradient are skipped (and their update count,
which Adam's bias correction uses, does not advance). Weight decay adds
``weight_decay * p`` to the gradient (L2 regularization).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import backend, kernels
from .errors import ArgumentError, CheckpointError, DTypeError, ShapeError
from .kernels import reference
from .nn.module import Module, Parameter
from .tensor import Tensor
from .validation import beyond_range, check_number


class Optimizer:
    """Base: holds the parameters (in a fixed order) and per-parameter state arrays."""

    state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter], lr: float, weight_decay: float = 0.0):
        if isinstance(params, (Tensor, Module, np.ndarray, dict, str)) or not isinstance(params, Iterable):
            got = type(params).__name__
            raise ArgumentError(f"optimizer takes a list of parameters (e.g. model.parameters()), got {got}")
        self.params = list(params)
        if not self.params:
            raise ArgumentError("optimizer got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                got = type(p).__name__
                raise ArgumentError(f"optimizer: parameter {i} is of type {got}, not a Tensor: give model.parameters()")
        seen: dict[int, int] = {}
        for i, p in enumerate(self.params):
            if seen.setdefault(id(p), i) != i:
                raise ArgumentError(f"optimizer got parameter {seen[id(p)]} again as parameter {i}: give each once")
        self.lr = check_number("lr", lr)
        self.weight_decay = check_number("weight_decay", weight_decay, allow_zero=True)
        self.steps = 0
        self.counts = [0] * len(self.params)  # updates applied to each parameter
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One update of every trainable parameter from its ``grad``: one call of ``update`` per array type,
        dtype and layout among them (a model's parameters share one, so one call; strided ones take the
        plain expressions, in place). A gradient that does not fit
        its parameter (shape or dtype) is refused before anything is updated."""
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if type(g) is not type(p.data):  # a Tensor, a list, an array of the other device
                kind = type(p.data).__name__
                raise ArgumentError(
                    f"parameter {i}'s grad is a {type(g).__name__}: it must be a {kind} like the parameter"
                )
            if p.requires_grad and backend.is_read_only(p.data):
                raise ArgumentError(
                    f"parameter {i} is read-only (a placeholder of placeholder_weights, or a view of a read-only "
                    f"array): it cannot be updated in place; give it its own array"
                )
            if g.shape != p.data.shape or g.dtype != p.data.dtype:
                error = ShapeError if g.shape != p.data.shape else DTypeError
                raise error(
                    f"parameter {i} has shape {p.shape} and dtype {p.dtype}, but its grad has shape "
                    f"{tuple(g.shape)} and dtype {g.dtype}: they must match"
                )
        self.steps += 1
        groups: dict[tuple[type, Any, bool], tuple[list, list, list, list]] = {}
        for i, (p, state) in enumerate(zip(self.params, self.state, strict=True)):
            if not p.requires_grad or p.grad is None:
                continue
            if not state:  # C-ordered whatever the parameter's layout: the fused kernels update it in place
                xp = backend.array_module_of(p.data)
                state.update({name: xp.zeros(p.data.shape, p.data.dtype) for name in self.state_names})
            self.counts[i] += 1
            key = (type(p.data), p.data.dtype, bool(p.data.flags.c_contiguous))
            if key not in groups:
                groups[key] = ([], [], [], [])
            ws, gs, states, counts = groups[key]
            ws.append(p.data)
            gs.append(p.grad)
            states.append(state)
            counts.append(self.counts[i])
        for (_, _, contiguous), group in groups.items():
            # the fused kernels update flat views in place; a strided parameter (Parameter(W.T), a view that
            # shares W's memory) takes the plain expressions, which update it in place as it is
            with contextlib.nullcontext() if contiguous else backend.use_kernels(False):
                self.update(*group)

    def update(self, ws: list[Any], gs: list[Any], states: list[dict[str, Any]], counts: list[int]) -> None:
        """Update each ``ws[k]`` in place from its raw gradient ``gs[k]`` (weight decay applied here) and
        its state arrays ``states[k]``; ``counts[k]`` counts its updates, this one included."""
        raise NotImplementedError(f"{type(self).__name__} must implement update")

    def to(self, device: str | None = None, dtype: Any = None) -> Optimizer:
        """Move the state arrays to ``device`` and/or ``dtype``, as ``Module.to`` does the parameters; returns self."""
        for state in self.state:
            for name, arr in state.items():
                state[name] = backend.as_float_array(arr, dtype=dtype or arr.dtype, device=device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Step count and arrays (host copies) keyed ``"<parameter index>.<name>"``: the state
        arrays and, as a 0-d array ``"<i>.step"``, each updated parameter's update count."""
        arrays = {
            f"{i}.{name}": backend.to_numpy(arr).copy()
            for i, state in enumerate(self.state)
            for name, arr in state.items()
        }
        arrays.update({f"{i}.step": np.asarray(count) for i, count in enumerate(self.counts) if count})
        return {"steps": self.steps, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned; on a :class:`CheckpointError` nothing changes."""
        try:
            steps, items = int(state["steps"]), dict(state["arrays"]).items()
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"optimizer state must be a dict with 'steps' (int) and 'arrays' (dict), got {state!r:.200}"
            ) from exc
        counts = [0] * len(self.params)
        arrays: list[dict[str, Any]] = [{} for _ in self.params]
        for key, arr in items:
            index, _, name = str(key).partition(".")
            i = int(index) if index.isdigit() else len(self.params)
            if i < len(self.params) and name == "step" and np.ndim(arr) == 0:
                counts[i] = int(arr)
            elif i < len(self.params) and name in self.state_names and np.shape(arr) == self.params[i].shape:
                p = self.params[i]
                top = beyond_range(arr, p.dtype)
                if top is not None:
                    raise CheckpointError(f"optimizer state {key!r} holds {top:.3g}, beyond the {p.dtype} range")
                arrays[i][name] = backend.as_float_array(arr, dtype=p.dtype, device=p.device).copy()
            elif i < len(self.params) and name not in self.state_names:
                raise CheckpointError(
                    f"optimizer state {key!r} is not kept by {type(self).__name__} with these options (it keeps "
                    f"{', '.join(self.state_names) or 'no state'}): go on with the options the run was trained with"
                )
            else:
                raise CheckpointError(f"optimizer state {key!r} of shape {np.shape(arr)} does not fit the parameters")
        if steps < 0 or min(counts) < 0:
            raise CheckpointError(f"optimizer state: update counts must be >= 0, got steps {steps}, counts {counts}")
        if not any(str(key).endswith(".step") for key, _ in items):  # saved before each parameter had a count:
            counts = [steps if kept else 0 for kept in arrays]  # its updates were the optimizer's steps
        # a parameter without state starts afresh (plain SGD's run taken up with momentum): so does its count,
        # which Adam's bias correction would otherwise apply to zero moments
        counts = [count if kept or not self.state_names else 0 for count, kept in zip(counts, arrays, strict=True)]
        for i, (count, kept) in enumerate(zip(counts, arrays, strict=True)):
            # a parameter's state is all of it or none
            if kept and set(kept) != set(self.state_names):
                missing = ", ".join(f"{i}.{name}" for name in self.state_names if name not in kept)
                raise CheckpointError(f"optimizer state of parameter {i} lacks {missing}: the checkpoint is damaged")
            if kept and not count:
                raise CheckpointError(
                    f"optimizer state of parameter {i} holds {', '.join(self.state_names)} but counts no update: "
                    f"the checkpoint is damaged"
                )
        self.steps, self.counts, self.state = steps, counts, arrays


class SGD(Optimizer):
    """v = momentum v + g;  w -= lr (g + momentum v) if nesterov else lr v  (plain SGD when momentum = 0)."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        self.momentum = check_number("momentum", momentum, allow_zero=True)
        if nesterov and self.momentum == 0:
            raise ArgumentError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.state_names = ("velocity",) if self.momentum else ()

    def update(self, ws: list[Any], gs: list[Any], states: list[dict[str, Any]], counts: list[int]) -> None:
        if not self.momentum:
            for w, g in zip(ws, gs, strict=True):
                w -= self.lr * (g + self.weight_decay * w if self.weight_decay else g)
            return
        step = kernels.momentum_update if backend.kernels_enabled() else reference.momentum_update
        velocities = [state["velocity"] for state in states]
        step(ws, gs, velocities, self.lr, self.momentum, self.nesterov, self.weight_decay)


class Momentum(SGD):
    """SGD with momentum (default 0.9), optionally Nesterov."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, momentum, nesterov, weight_decay)


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr m̂ / (sqrt(v̂) + eps),
    with m̂ = m / (1 - b1^t), v̂ = v / (1 - b2^t) (bias correction; t counts this parameter's updates).

    Computed as w -= a_t m / (sqrt(v) + eps_t) with a_t = lr sqrt(1 - b2^t) / (1 - b1^t) and
    eps_t = eps sqrt(1 - b2^t): the same value (numerator and denominator times sqrt(1 - b2^t))
    with one division less per element."""

    state_names = ("m", "v")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        pair = tuple(betas) if isinstance(betas, (tuple, list)) else ()
        if len(pair) != 2 or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in pair):
            raise ArgumentError(f"Adam betas must be a pair of numbers (beta1, beta2), got {betas!r}")
        self.beta1, self.beta2 = (float(b) for b in pair)
        for name, b in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0 <= b < 1:
                raise ArgumentError(f"Adam {name} must lie in [0, 1), got {b}")
        self.eps = check_number("eps", eps)

    def update(self, ws: list[Any], gs: list[Any], states: list[dict[str, Any]], counts: list[int]) -> None:
        corrected = {t: self._corrected(t) for t in set(counts)}  # the parameters' counts are usually one
        step_sizes, epss = [corrected[t][0] for t in counts], [corrected[t][1] for t in counts]
        ms, vs = [state["m"] for state in states], [state["v"] for state in states]
        step = kernels.adam_update if backend.kernels_enabled() else reference.adam_update
        step(ws, gs, ms, vs, step_sizes, self.beta1, self.beta2, epss, self.weight_decay)

    def _corrected(self, t: int) -> tuple[float, float]:
        """(a_t, eps_t) of update t: lr sqrt(1 - b2^t) / (1 - b1^t) and eps sqrt(1 - b2^t)."""
        root_c2 = math.sqrt(1 - self.beta2**t)
        return self.lr * root_c2 / (1 - self.beta1**t), self.eps * root_c2


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, params: Iterable[Parameter], lr: float, **kwargs: Any) -> Optimizer:
    """An optimizer by name: ``sgd``, ``momentum`` or ``adam``."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ArgumentError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("params", "lr")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ArgumentError(f"optimizer {name!r} takes no option {', '.join(unknown)}: it takes {', '.join(accepted)}")
    return cls(params, lr=lr, **kwargs)
