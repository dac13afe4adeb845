"""Finite-difference checks of the hand-written gradients, in float64.

For a function ``fn`` and a fixed random ``r`` of its output's shape, the analytic
gradient of ``s = sum(fn(*inputs) * r)`` (one backward pass) is compared with central
differences ``n_i = (s(x + h e_i) - s(x - h e_i)) / (2 h)`` for every entry ``i`` of every
input that requires a gradient (``gradcheck_module``: ``s`` is the module's loss). Per tensor:
``max_abs_error = max_i |a_i - n_i|``, ``max_rel_error = max_abs_error / max(max|a|, max|n|)``;
it passes when every entry has ``|a_i - n_i| <= atol + rtol * max(max|a|, max|n|) + rounding_i``,
the rounding of the two values of ``s`` over 2h: ``ROUNDING_ULPS`` float64 ulps of what changed
(where that allowance reaches max(max|a|, max|n|) the check only bounds the gradient, and the table
says so). h is the step actually taken, x ± h as stored in float64.
``gradcheck`` sums ``(fn(x) - fn(x0)) * r`` exactly, so only the output entries a perturbation
reaches count; a module's loss is one number, so all of it counts. An entry whose differences
straddle a kink (relu at 0) is retried with a step 100 times smaller and left out (counted as a
kink) if it still does: there no central difference is the derivative (see ``check_entries``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, DTypeError, GradcheckError, GraphError
from .nn.module import Module
from .ops.elementwise import mul
from .ops.elementwise import sum as tensor_sum
from .progress import plural
from .tensor import Tensor, no_grad
from .validation import check_number

DEFAULT_EPS = 1e-6
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-10
ROUNDING_ULPS = 32.0  # one value of s is trusted to this many float64 ulps of the magnitude of its terms
ROUNDING = ROUNDING_ULPS * float(np.finfo(np.float64).eps)  # ... as a fraction of that magnitude
KINK_RETRY = 100.0  # a step this many times smaller is tried where the first straddles a kink
WIDE_STEP = 4.0  # the bend is measured again at this many times the step: curvature's grows as much
CURVATURE_GROWTH = 2.5  # ... and a bend that grows less than this is taken for a kink's
LOOSE = 1e-4  # a tensor whose rounding allowance passes relative errors above this gets a note in the table


@dataclass(frozen=True)
class GradcheckRow:
    """The comparison for one tensor."""

    name: str
    shape: tuple[int, ...]
    checked: int
    max_abs_error: float
    max_rel_error: float
    grad_scale: float
    ok: bool
    kinks: int = 0
    rounding: float = 0.0  # the largest rounding allowance of a checked entry

    @property
    def rounding_share(self) -> float:
        """The relative error the rounding allowance alone lets pass at its loosest entry: rounding / max|grad|."""
        return self.rounding / self.grad_scale if self.grad_scale > 0 else 0.0


@dataclass(frozen=True)
class GradcheckReport:
    """One row per checked tensor; ``ok`` when every row passes."""

    rows: list[GradcheckRow] = field(default_factory=list)
    eps: float = DEFAULT_EPS
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def max_abs_error(self) -> float:
        return max((row.max_abs_error for row in self.rows), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((row.max_rel_error for row in self.rows), default=0.0)

    def table(self) -> str:
        """The report as a plain-text table, one line per tensor."""
        width = max([len("tensor")] + [len(r.name) for r in self.rows])
        head = (
            f"{'tensor':<{width}}  {'shape':<14} {'checked':>7} {'at kink':>7}  {'max|grad|':>10}  "
            f"{'max abs err':>11}  {'rounding':>9}  {'max rel err':>11}  ok"
        )
        lines = [head, "-" * len(head)]
        for r in self.rows:
            verdict = _verdict(r)
            lines.append(
                f"{r.name:<{width}}  {str(r.shape):<14} {r.checked:>7} {r.kinks:>7}  {r.grad_scale:>10.3e}  "
                f"{r.max_abs_error:>11.3e}  {r.rounding:>9.1e}  {r.max_rel_error:>11.3e}  {verdict}"
            )
        lines.append(
            f"{'PASS' if self.ok else 'FAIL'}: |a - n| <= atol + rtol max|grad| + rounding, eps={self.eps:g}, "
            f"rtol={self.rtol:g}, atol={self.atol:g}, float64 central differences"
        )
        loose = max((r for r in self.rows if r.rounding_share < 1), key=lambda r: r.rounding_share, default=None)
        if loose is not None and loose.rounding_share > LOOSE:
            lines.append(
                f"note: the rounding of the objective lets relative errors up to {loose.rounding_share:.1e} pass "
                f"for {loose.name}: a larger eps (rounding / eps shrinks) checks it more closely"
            )
        bounded = [r.name for r in self.rows if r.ok and r.rounding_share >= 1]
        if bounded:
            lines.append(
                f"note: for {', '.join(bounded)} the rounding allowance reaches max|grad|: the check shows only that "
                f"|a - n| is below it (a gradient near 0, or an eps too small for the objective's size)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _verdict(row: GradcheckRow) -> str:
    """A row's verdict: yes, or "only bounded" where the rounding allowance reaches max|grad| (the check
    then shows only that |a - n| is below it), or NO with the reason when it is not the error itself."""
    if row.ok:
        return "yes" if row.rounding_share < 1 else "yes, only bounded (rounding >= max|grad|)"
    return "NO (every entry at a kink)" if row.checked == 0 else "NO"


def _entries(size: int, max_entries: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_entries, replace=False))


@dataclass(frozen=True)
class FDCheck:
    """The finite-difference comparison of one tensor's gradient (see ``check_entries``)."""

    abs_error: float
    rel_error: float
    scale: float
    rounding: float
    checked: int
    kinks: int
    ok: bool


def check_fd_settings(step: Any, rtol: Any, atol: Any, step_name: str = "eps") -> tuple[float, float, float]:
    """(step, rtol, atol) as floats: the step finite and > 0, the tolerances finite and >= 0."""
    return (
        check_number(step_name, step),
        check_number("rtol", rtol, allow_zero=True),
        check_number("atol", atol, allow_zero=True),
    )


def check_max_entries(max_entries: Any) -> int | None:
    """``max_entries`` as None (every entry) or an int >= 1."""
    if max_entries is None:
        return None
    if isinstance(max_entries, bool) or not isinstance(max_entries, (int, np.integer)) or max_entries < 1:
        raise ArgumentError(f"max_entries must be None (every entry) or a positive integer, got {max_entries!r}")
    return int(max_entries)


Objective = Callable[[], tuple[float, float]]  # () -> (s at the tensors' current values, the rounding of that value)


def check_entries(
    objective: Objective,
    t: Tensor,
    analytic: Any,
    step: float,
    max_entries: int | None,
    rng: np.random.Generator,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> FDCheck:
    """Central differences of ``objective`` over sampled entries of ``t``, against ``analytic``.

    s0 = s(x), s+ = s(x + h e_i), s- = s(x - h e_i); the slope n_i = (s+ - s-) / 2h and the bend
    (s+ + s- - 2 s0) / h, the one-sided slopes' difference. Where s is smooth the bend is h s'', which
    the central difference cancels; across a kink within h it is about the jump in slope, which
    biases the central difference by up to half of it. An entry whose bend passes the tolerance is
    used as it is. Otherwise the differences at WIDE_STEP h tell which: curvature's bend grows with the
    step (WIDE_STEP times) while the slope stays, a kink's bend does not grow or the slope moves; for a
    kink the step h / KINK_RETRY is tried, and the entry used with it if its bend passes or shrank
    with the step, else counted as a kink (one at the point itself). A slope's rounding, (rounding
    of s+ or s-) / h, is allowed for in the tolerance. h is the step as stored: (x + h) - (x - h) in
    float64 is 2h' (an ArgumentError where it is 0, h below x's resolution). ``checked`` is 0 (and
    ``ok`` False) when every sampled entry sits at a kink.
    """
    flat = t.data.reshape(-1)  # a view (t.data is C-contiguous): writing it perturbs t.data
    a_all = backend.to_numpy(analytic).reshape(-1)
    idx = _entries(t.size, max_entries, rng)
    scale = float(np.max(np.abs(a_all[idx]), initial=0.0))
    centre, _ = objective()

    def differences(i: int, old: float, h: float) -> tuple[float, float, float] | None:
        """(slope, bend, rounding of a slope) over the steps actually taken (x ± h as stored), None where
        x ± h rounds to x."""
        flat[i] = old + h
        up = float(flat[i])
        plus, plus_rounding = objective()
        flat[i] = old - h
        down = float(flat[i])
        minus, minus_rounding = objective()
        flat[i] = old
        if up == down:
            return None
        half = (up - down) / 2
        rounding = max(plus_rounding, minus_rounding) / half
        return (plus - minus) / (2 * half), (plus + minus - 2 * centre) / half, rounding

    def tolerance(slope: float, rounding: float) -> float:
        return atol + rtol * max(scale, abs(slope)) + rounding

    kept, numeric, allowed = [], [], []
    for k, i in enumerate(idx.tolist()):
        old = float(flat[i])
        first = differences(i, old, step)
        if first is None:
            raise ArgumentError(
                f"the finite-difference step {step:g} is below the float64 resolution of the value {old!r} "
                f"(x ± step rounds to x): use a larger step"
            )
        slope, bend, rounding = first
        if abs(bend) / 2 > tolerance(slope, 3 * rounding):
            wide_slope, wide_bend, wide_rounding = differences(i, old, WIDE_STEP * step)  # resolved, as step is
            grows = abs(wide_bend) >= CURVATURE_GROWTH * abs(bend)
            if not (grows and abs(wide_slope - slope) <= tolerance(slope, rounding + wide_rounding)):  # a kink
                retry = differences(i, old, step / KINK_RETRY)
                if retry is None:
                    continue  # no smaller step to step around it with: counted as a kink
                slope2, bend2, rounding2 = retry
                clear = abs(bend2) / 2 <= tolerance(slope2, 3 * rounding2)  # the kink lies between the steps
                if not clear and abs(bend2) * math.sqrt(KINK_RETRY) >= abs(bend):
                    continue  # the bend did not shrink with the step: the kink is at the point itself
                slope, rounding = slope2, rounding2  # clear of the kink, or curvature all along
        kept.append(k)
        numeric.append(slope)
        allowed.append(rounding)
    if not kept:
        return FDCheck(math.nan, math.nan, 0.0, 0.0, 0, len(idx), False)
    a, n, room = a_all[idx[kept]], np.asarray(numeric), np.asarray(allowed)
    err = np.abs(a - n)
    top = float(max(np.max(np.abs(a)), np.max(np.abs(n))))
    abs_err = float(np.max(err))
    ok = bool(np.all(err <= atol + rtol * top + room))
    rel = abs_err / top if top > 0 else abs_err
    return FDCheck(abs_err, rel, top, float(np.max(room)), len(kept), len(idx) - len(kept), ok)


def changed_sum(outputs: Sequence[Any], base: Sequence[Any], weights: Sequence[Any]) -> tuple[float, float]:
    """(sum_k sum_j (out_k - base_k)_j w_kj, its rounding), summed exactly: the entries a perturbation did
    not reach are exactly 0, so the rounding is ROUNDING_ULPS ulps of |out_j w_j| over the changed entries,
    and of the largest one (an entry can move by less than its ulp and come back unchanged)."""
    terms, magnitude = [], 0.0
    for out, out0, w in zip(outputs, base, weights, strict=True):
        o, o0, ww = (np.asarray(backend.to_numpy(a), dtype=np.float64) for a in (out, out0, w))
        delta, weighted = (o - o0) * ww, np.abs(o * ww)
        changed = delta != 0
        terms.extend(delta[changed].tolist())
        magnitude += float(weighted[changed].sum()) + float(weighted.max(initial=0.0))
    return math.fsum(terms), ROUNDING * magnitude


def _compare(
    named: Sequence[tuple[str, Tensor]],
    analytic: Sequence[Any],
    objective: Objective,
    eps: float,
    rtol: float,
    atol: float,
    max_entries: int | None,
    rng: np.random.Generator,
) -> list[GradcheckRow]:
    """A row per tensor, from ``check_entries``."""
    rows = []
    for (name, t), grad in zip(named, analytic, strict=True):
        if not t.data.flags.c_contiguous:
            t.data = t.data.copy()  # C order, same values: check_entries perturbs a flat view
        grad = grad if grad is not None else np.zeros(t.shape)
        c = check_entries(objective, t, grad, eps, max_entries, rng, rtol, atol)
        row = GradcheckRow(name, t.shape, c.checked, c.abs_error, c.rel_error, c.scale, c.ok, c.kinks, c.rounding)
        rows.append(row)
    return rows


def _as_tuple(out: Any) -> tuple:
    """``fn``'s result as a tuple of its outputs (one Tensor or several)."""
    return out if isinstance(out, tuple) else (out,)


def _weighted_sum(outputs: Any, weights: Sequence[Any]) -> Tensor:
    """sum_k sum(out_k * r_k) as a tensor on the tape."""
    outs = _as_tuple(outputs)
    total = None
    for out, r in zip(outs, weights, strict=True):
        term = tensor_sum(mul(out, r))
        total = term if total is None else total + term
    return total


def _finish(report: GradcheckReport, raise_on_fail: bool) -> GradcheckReport:
    if raise_on_fail and not report.ok:
        raise GradcheckError("gradient check failed:\n" + report.table())
    return report


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    seed: int = 0,
    max_entries: int | None = None,
    names: Sequence[str] | None = None,
    raise_on_fail: bool = False,
) -> GradcheckReport:
    """Check ``fn``'s gradients with respect to every input Tensor that requires a gradient.

    ``inputs`` are converted to float64 copies (arrays and Tensors without
    ``requires_grad`` are constants); ``fn`` returns a Tensor or a tuple of Tensors.
    """
    if not callable(fn):
        raise ArgumentError(f"gradcheck: fn must be callable, got {type(fn).__name__}")
    eps, rtol, atol = check_fd_settings(eps, rtol, atol)
    seed = None if seed is None else backend.check_seed(seed)
    tensors = [
        Tensor(
            backend.as_float_array(x.data if isinstance(x, Tensor) else x, dtype=np.float64).copy(),
            requires_grad=isinstance(x, Tensor) and x.requires_grad,
        )
        for x in inputs
    ]
    max_entries = check_max_entries(max_entries)
    names = list(names) if names is not None else [f"input {i}" for i in range(len(tensors))]
    if len(names) != len(tensors):
        raise ArgumentError(f"gradcheck: {plural(len(names), 'name')} for {plural(len(tensors), 'input')}")
    checked = [(names[i], t) for i, t in enumerate(tensors) if t.requires_grad]
    if not checked:
        raise GraphError("gradcheck: no input requires a gradient (pass Tensor(x, requires_grad=True))")
    rng = np.random.default_rng(seed)
    try:
        out = fn(*tensors)
    except DTypeError as exc:
        if "mix dtypes" not in str(exc):
            raise
        raise DTypeError(
            f"{exc} (gradcheck calls fn on float64 copies of its inputs; arrays fn uses from outside stay as they "
            f"are: make them float64 too)"
        ) from exc
    outs = _as_tuple(out)
    if not outs or not all(isinstance(o, Tensor) for o in outs):
        kinds = ", ".join(sorted({type(o).__name__ for o in outs})) or "an empty tuple"
        raise GraphError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {kinds}")
    xp = backend.array_module_of(outs[0].data)
    weights = [xp.asarray(rng.standard_normal(o.shape)) for o in outs]
    _weighted_sum(out, weights).backward()

    base = [o.data.copy() for o in outs]

    def objective() -> tuple[float, float]:
        with no_grad():
            out = fn(*tensors)
        return changed_sum([o.data for o in _as_tuple(out)], base, weights)

    rows = _compare(checked, [t.grad for _, t in checked], objective, eps, rtol, atol, max_entries, rng)
    return _finish(GradcheckReport(rows, eps, rtol, atol), raise_on_fail)


def gradcheck_module(
    module: Module,
    loss_fn: Callable[[], Tensor],
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    seed: int = 0,
    max_entries: int | None = None,
    raise_on_fail: bool = False,
) -> GradcheckReport:
    """Check d loss / d p for every trainable parameter ``p`` of a float64 ``module``.

    ``loss_fn()`` computes a one-element loss from the module; it must be deterministic
    (inject the noise and the reparameterization eps). ``max_entries`` samples that many
    entries of larger tensors.
    """
    if not callable(loss_fn):
        raise ArgumentError(f"gradcheck_module: loss_fn must be callable, got {type(loss_fn).__name__}")
    eps, rtol, atol = check_fd_settings(eps, rtol, atol)
    seed = None if seed is None else backend.check_seed(seed)
    max_entries = check_max_entries(max_entries)
    named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    if not named:
        raise GraphError("gradcheck_module: the module has no trainable parameter")
    wrong = sorted({str(p.dtype) for _, p in named} - {"float64"})
    if wrong:
        raise DTypeError(
            f"gradcheck_module needs float64 parameters, got {', '.join(wrong)}: call module.to(dtype='float64') first"
        )
    module.zero_grad()
    loss = loss_fn()
    if not isinstance(loss, Tensor):
        hint = " (a model's batch_loss: return its .total)" if hasattr(loss, "total") else ""
        raise GraphError(f"gradcheck_module: loss_fn must return a Tensor, got {type(loss).__name__}{hint}")
    if loss.size != 1:
        raise GraphError(f"gradcheck_module: loss_fn must return one value, got shape {loss.shape}")
    loss.backward()
    analytic = [p.grad.copy() if p.grad is not None else None for _, p in named]

    def objective() -> tuple[float, float]:
        with no_grad():
            value = backend.to_float(loss_fn().data)
        return value, ROUNDING * abs(value)

    first, (again, _) = backend.to_float(loss.data), objective()
    if not math.isclose(first, again, rel_tol=1e-12, abs_tol=1e-300):
        module.zero_grad()
        raise GraphError(
            f"gradcheck_module: loss_fn gave {first!r}, then {again!r} for the same parameters: it must be "
            f"deterministic (inject the noise: eps= for a VAE's batch_loss, noisy= for a denoising AE's)"
        )
    rng = np.random.default_rng(seed)
    rows = _compare(named, analytic, objective, eps, rtol, atol, max_entries, rng)
    module.zero_grad()
    return _finish(GradcheckReport(rows, eps, rtol, atol), raise_on_fail)
