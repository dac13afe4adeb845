"""Lesson: one VAE training step, gradient by gradient.

Part 1 runs one step (loss and backward) of a small VAE on a few images, in float64, and prints
each op in the order the forward pass ran it (output shape and value statistics), then each op in
the order backward ran it (every input's gradient statistics, the op's backward formula, and a
local finite-difference check of that backward).

Part 2 checks the whole model: d loss / d W for every parameter against central finite
differences of the full loss, in float64, with the reparameterization noise eps injected so that
the loss is a deterministic function of the weights.

Part 3 recomputes the gradients of the two loss terms as the lecture derives them by hand and
compares them with the engine's: the KL term's dKL/dmu = mu / N and dKL/dlogvar =
(exp(logvar) - 1) / (2N), and the Bernoulli term's dL/dlogits = (sigmoid(logits) - x) / N, for a
batch of N.

Run: python examples/gradient_study.py [--data fashion-mnist] [--device gpu] [--quick] [--out DIR]
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from _common import held, parser, plural, run_script, setup
from matplotlib.figure import Figure

import scratchae.functional as F
from scratchae import Tensor, backend, gradcheck_module
from scratchae.gradcheck import DEFAULT_ATOL, DEFAULT_RTOL
from scratchae.models import VAE
from scratchae.trace import float64_copy, trace

SETTINGS = {
    "quick": dict(hidden=(8,), latent=2, epochs=1, batch=4, max_entries=20),
    "default": dict(hidden=(16,), latent=3, epochs=20, batch=6, max_entries=None),
    "full": dict(hidden=(400,), latent=20, epochs=1, batch=8, max_entries=200),
}
FLOOR = 1e-18  # errors of exactly 0 drawn at this height on the log scale

WHAT_TO_LOOK_AT = """
What to look at in the two tables above:
- Forward: the data flow D -> hidden -> 2 x latent; 'split' cuts the encoder's head into mu and
  logvar; 'reparameterize' makes z = mu + exp(logvar / 2) * eps; the decoder's last linear gives
  logits (no sigmoid: bce_with_logits applies it inside, stably); 'gaussian_kl' and the BCE are the
  two loss terms and 'add' sums them into the loss (a weight other than 1, reconstruction_weight,
  beta or a KL warm-up's, would put a 'mul' before the add, and the verdict line shows it: kl ... × w).
- Backward runs the same ops in reverse. The loss's gradient enters the BCE and the KL; mu and
  logvar each receive two contributions, one through z (reparameterize: dmu = dz, dlogvar =
  0.5 dz std eps) and one straight from the KL (dmu = mu, dlogvar = 0.5 (exp(logvar) - 1), per
  example, divided by the batch size): the tape adds them before 'split' runs.
- 'constant' rows: the data, the targets and eps need no gradient, so none is computed.
- FD rel err: each op's backward against central differences of sum(op(inputs) * dy), in float64.
  Values around 1e-9 or below say the hand-written backward is right; a value near 1 says it is
  wrong; a relu preactivation that sits within the step (1e-6) of 0 can spoil one entry (a kink).
"""


def hand_derived(s: Any, rng: np.random.Generator) -> dict[str, float]:
    """Largest |engine - formula| of the KL and Bernoulli gradients the lecture derives, on random float64 inputs."""
    n, k, d = 5, 3, s.data.n_features
    mu = Tensor(rng.standard_normal((n, k)), requires_grad=True)
    logvar = Tensor(rng.standard_normal((n, k)), requires_grad=True)
    F.gaussian_kl(mu, logvar).backward()
    logits = Tensor(rng.standard_normal((n, d)) * 3, requires_grad=True)
    x = s.data.X_train[:n].astype(np.float64)
    F.bce_with_logits(logits, x).backward()
    return {
        "dKL/dmu = mu / N": float(np.abs(mu.grad - mu.data / n).max()),
        "dKL/dlogvar = (exp(logvar) - 1) / 2N": float(np.abs(logvar.grad - (np.exp(logvar.data) - 1) / (2 * n)).max()),
        "dBCE/dlogits = (sigmoid(l) - x) / N": float(
            np.abs(logits.grad - (1 / (1 + np.exp(-logits.data)) - x) / n).max()
        ),
    }


Row = tuple[str, float, float]  # (tensor, relative error, the relative error its check lets pass)


def pass_limit(scale: float, rounding: float) -> float:
    """The relative error a check lets pass: |a - n| <= atol + rtol max|grad| + rounding, over max|grad|."""
    return DEFAULT_RTOL + (DEFAULT_ATOL + rounding) / scale if scale > 0 else math.inf


def error_figure(trace_errors: list[Row], param_errors: list[Row], path: Any) -> Any:
    """Two panels of relative finite-difference errors on a log scale, per op input (trace) and per parameter:
    a dot for each error and a bar for the limit its check lets pass (rtol plus the rounding allowance)."""
    fig = Figure(figsize=(11, 0.22 * max(len(trace_errors), len(param_errors)) + 1.6))
    for k, (rows, title) in enumerate(
        ((trace_errors, "each op's backward (local check)"), (param_errors, "each parameter, whole loss"))
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        names, values, limits = zip(*rows, strict=True) if rows else ((), (), ())
        at = range(len(values))
        ax.plot([max(v, FLOOR) for v in values], at, "o", color="tab:blue", ms=4, label="relative error")
        ax.plot(limits, at, "|", color="tab:red", ms=9, mew=1.5, label="pass limit (rtol + rounding)")
        ax.set_yticks(at, names, fontsize="x-small")
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("relative error vs central differences (float64)")
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> None:
    s = setup(parser(__doc__.splitlines()[0]), argv)
    cfg = s.pick(SETTINGS)
    d = s.data
    start = time.perf_counter()
    net = f"{d.n_features}-{'-'.join(map(str, cfg['hidden']))}-{cfg['latent']}"
    vae = VAE(d.n_features, cfg["hidden"], cfg["latent"], seed=s.seed, device=s.device)
    vae.fit(d.X_train, epochs=cfg["epochs"], verbose=False)
    rng = np.random.default_rng(s.seed)
    x = d.X_test[: cfg["batch"]]
    eps = rng.standard_normal((len(x), cfg["latent"]))
    trained = plural(cfg["epochs"], "epoch")
    print(f"\nVAE {net}, ReLU, Bernoulli, after {trained} of Adam; one step on {len(x)} test images")

    print("\n1. The step, op by op (float64 copy of the model; eps injected)\n")
    t = trace(vae, x, eps=eps, seed=s.seed, max_entries=cfg["max_entries"])
    print(t.table())
    print(WHAT_TO_LOOK_AT)

    print("2. Every parameter against finite differences of the whole loss (float64)\n")
    m64 = float64_copy(vae)
    x64 = backend.as_float_array(x, dtype="float64", device=s.device)
    eps64 = backend.as_float_array(eps, dtype="float64", device=s.device)
    report = gradcheck_module(m64, lambda: m64.batch_loss(x64, eps=eps64).total, max_entries=cfg["max_entries"])
    print(report.table())
    entries = "every entry" if cfg["max_entries"] is None else f"up to {cfg['max_entries']} sampled entries"
    print(f"({entries} of each parameter; the analytic gradient is one backward pass of the same loss)")

    print("\n3. The loss terms' gradients derived by hand, against the engine's backward")
    formulas = hand_derived(s, rng)
    for name, err in formulas.items():
        print(f"  {name:<40} max |engine - formula| = {err:.1e}")
    formulas_ok = max(formulas.values()) < 1e-12

    print(f"\nprediction: every op's local check passes: {held(t.ok)} (largest relative error {t.max_fd_error:.1e})")
    print(
        f"prediction: every parameter passes (rtol {report.rtol:g}, with the loss's rounding): {held(report.ok)} "
        f"(largest relative error {report.max_rel_error:.1e})"
    )
    print(f"prediction: the hand-derived formulas match to rounding (1e-12): {held(formulas_ok)}")

    trace_errors = [
        (f"{r.step} {r.name}: {i.label}", i.fd_rel_error, pass_limit(i.fd_scale, i.fd_rounding))
        for r in t.rows
        for i in r.inputs
        if i.fd_rel_error is not None
    ]
    param_errors = [(r.name, r.max_rel_error, pass_limit(r.grad_scale, r.rounding)) for r in report.rows]
    s.figure(error_figure(trace_errors, param_errors, s.out / "gradient_study_errors.png"))
    seconds = time.perf_counter() - start
    print(f"\nwall time {seconds:.1f} s")
    s.save_json(
        "gradient_study.json",
        {
            "data": d.name,
            "network": net,
            "loss": t.loss,
            "terms": t.terms,
            "trace": t.to_dicts(),
            "trace_ok": t.ok,
            "trace_max_fd_error": t.max_fd_error,
            "gradcheck": [
                {
                    "name": r.name,
                    "shape": list(r.shape),
                    "checked": r.checked,
                    "max_abs_error": r.max_abs_error,
                    "max_rel_error": r.max_rel_error,
                    "grad_scale": r.grad_scale,
                    "rounding": r.rounding,
                    "kinks": r.kinks,
                    "ok": r.ok,
                }
                for r in report.rows
            ],
            "gradcheck_ok": report.ok,
            "hand_derived_max_error": formulas,
            "seconds": seconds,
        },
    )


if __name__ == "__main__":
    run_script(main)
