"""``scratchae gradcheck``, ``trace`` and ``bench``: the gradient checks and the benchmark."""

from __future__ import annotations

import argparse

import numpy as np

from .. import backend
from ..data import load as load_data
from ..errors import ArgumentError
from ..gradcheck import gradcheck_module
from ..models import VAE, AutoEncoder, ConditionalVAE, DenoisingAutoEncoder, Model
from ..trace import trace


def small_model(kind: str, input_dim: int, hidden: tuple[int, ...], latent: int, seed: int, device: str) -> Model:
    """A small float32 model of ``kind`` (cvae: 10 classes)."""
    common = dict(hidden=hidden, latent_dim=latent, seed=seed, device=device)
    if kind == "ae":
        return AutoEncoder(input_dim, **common)
    if kind == "dae":
        return DenoisingAutoEncoder(input_dim, **common)
    if kind == "vae":
        return VAE(input_dim, **common)
    return ConditionalVAE(input_dim, 10, **common)


BIAS_STD = 0.1  # gradcheck's model: biases drawn off 0, so that no unit sits on relu's kink for all examples


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Every parameter of a small float64 model of ``args.kind`` against central differences of its loss
    (noise injected); exit status 1 when a check fails."""
    model = small_model(args.kind, 12, (7,), 3, args.seed, args.device).to(dtype="float64")
    bias_rng = np.random.default_rng([args.seed, 1])  # its own generator: the data drawn below stay the seed's
    for name, p in model.named_parameters():  # zero biases can put a unit exactly on relu's kink for every example
        if name.endswith(".b"):
            p.data = p.data + backend.to_device(bias_rng.normal(0.0, BIAS_STD, p.shape), args.device)
    rng = np.random.default_rng(args.seed)
    X = backend.to_device(rng.uniform(0.05, 0.95, (5, 12)), args.device)
    y = rng.integers(0, 10, 5)
    if isinstance(model, VAE):
        eps = backend.to_device(rng.standard_normal((5, 3)), args.device)
        labels = y if model.needs_labels else None
        report = gradcheck_module(model, lambda: model.batch_loss(X, labels, eps=eps).total, seed=args.seed)
        noise = "; the reparameterization's eps injected"
    elif isinstance(model, DenoisingAutoEncoder):
        noisy = model.corrupt(X, backend.new_rng(args.seed, args.device))
        report = gradcheck_module(model, lambda: model.batch_loss(X, noisy=noisy).total, seed=args.seed)
        noise = "; the corrupted input injected"
    else:
        report = gradcheck_module(model, lambda: model.batch_loss(X).total, seed=args.seed)
        noise = ""
    print(
        f"{model.kind} 12-7-3, float64, biases ~ N(0, {BIAS_STD:g}^2), 5 random examples in [0.05, 0.95]{noise}; "
        f"every parameter, every entry"
    )
    print(report.table())
    return 0 if report.ok else 1


def cmd_trace(args: argparse.Namespace) -> int:
    """One training step of a small model on the digits, op by op (``scratchae.trace``); 1 when a check fails."""
    data = load_data("digits", n_train=args.examples)
    if len(data.X_train) < args.examples:
        raise ArgumentError(f"--examples {args.examples}: the digits' training part has {len(data.X_train)} examples")
    model = small_model(args.kind, data.n_features, args.hidden, args.latent, args.seed, args.device)
    result = trace(
        model,
        data.X_train,
        data.y_train if model.needs_labels else None,
        seed=args.seed,
        check=not args.no_check,
        max_entries=args.max_entries or None,
    )
    print(result.table())
    return 0 if result.ok else 1


def cmd_bench(argv: list[str]) -> int:
    """``scratchae bench``, which parses its own arguments (``scratchae.bench.main``)."""
    from .. import bench

    return int(bench.main(argv) or 0)
