"""``scratchae bench``: seconds per training epoch beside the GEMM-bound time and PyTorch.

For the reference VAE (784-400-20, ReLU, Bernoulli, Adam) and a deep AE
(784-500-250-30, ReLU, sigmoid output, BCE, Adam), float32, one epoch of Fashion-MNIST
(or synthetic 784-d data when it is absent), at each batch size:
- scratchae with the fused kernels and with the plain NumPy/CuPy expressions: min and
  median seconds per epoch over ``--repeats`` runs, examples/s;
- the GEMM-bound time: the epoch's matrix products (forward x W, backward g Wᵀ and xᵀ g per
  layer) timed alone at the same shapes in the same run, and the ratio epoch / GEMM-bound;
- the same products run back to back in the step's order for an epoch (no other work in
  between, caches shared as in training), and the ratio epoch / that sequence;
- PyTorch's time for the same model and loss when torch is installed, and the ratio.
Each repeat measures all of them in turn; ratios use the best (minimum) of each.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, DataNotFoundError
from .models import VAE, AutoEncoder, Model
from .nn.layers import Dense

MODELS: dict[str, Callable[[str], Model]] = {
    "vae": lambda device: VAE(784, hidden=(400,), latent_dim=20, seed=0, device=device),
    "deep-ae": lambda device: AutoEncoder(784, hidden=(500, 250), latent_dim=30, seed=0, device=device),
}


SPREAD_NOTE = 1.25  # median / best time of a row above which the run says the machine's speed varied
TORCH_WARMUP_STEPS = 5  # steps PyTorch runs before its epoch is timed (scratchae's first run is the compile run)


@dataclass
class Row:
    model: str
    batch_size: int
    impl: str
    min_s: float
    median_s: float
    examples_per_s: float
    gemm_bound_s: float
    ratio_to_gemm: float
    gemm_sequence_s: float
    ratio_to_gemm_sequence: float
    ratio_to_torch: float | None


def layer_shapes(model: Model) -> list[tuple[int, int, bool]]:
    """(in, out, needs dx) of every Dense in the order they run; the first layer's input is data."""
    dense = [m for m in model.modules() if isinstance(m, Dense)]
    return [(d.in_features, d.out_features, i > 0) for i, d in enumerate(dense)]


BURSTS, CALLS_PER_BURST = 5, 10  # a product alone is timed as the best of 5 bursts of 10 calls


def _best_time(fn: Callable[[], Any], device: str) -> float:
    """Seconds per call of ``fn``: the best burst's mean, after one call to warm up."""
    fn()
    backend.synchronize(device)
    best = math.inf
    for _ in range(BURSTS):
        start = time.perf_counter()
        for _ in range(CALLS_PER_BURST):
            fn()
        backend.synchronize(device)
        best = min(best, (time.perf_counter() - start) / CALLS_PER_BURST)
    return best


def step_products(model: Model, rows: int) -> list[tuple[Any, Any]]:
    """The operands (a, b) of every matrix product a @ b of one step on ``rows`` examples, in the step's
    order: x W per layer forward, then per layer from the last g Wᵀ (where dx is needed) and xᵀ g."""
    xp = backend.array_module(model.device)
    shapes = layer_shapes(model)
    inputs = [xp.ones((rows, fan_in), dtype=np.float32) for fan_in, _, _ in shapes]
    weights = [xp.ones((fan_in, fan_out), dtype=np.float32) for fan_in, fan_out, _ in shapes]
    grads = [xp.ones((rows, fan_out), dtype=np.float32) for _, fan_out, _ in shapes]
    backward = []
    for x, w, g, (_, _, needs_dx) in reversed(list(zip(inputs, weights, grads, shapes, strict=True))):
        backward += ([(g, w.T)] if needs_dx else []) + [(x.T, g)]  # Linear.backward's order
    return list(zip(inputs, weights, strict=True)) + backward


def _epoch_steps(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(rows, count) of an epoch's steps: full batches, then the tail batch if any."""
    steps_full, tail = divmod(n, batch_size)
    return [(rows, count) for rows, count in ((batch_size, steps_full), (tail, 1)) if rows and count]


def gemm_bound_seconds(model: Model, n: int, batch_size: int) -> tuple[float, float]:
    """(seconds, FLOPs) of one epoch's matrix products, each timed alone at its shape (best of bursts)."""
    total_s = total_flops = 0.0
    for rows, count in _epoch_steps(n, batch_size):
        for a, b in step_products(model, rows):
            total_s += count * _best_time(lambda a=a, b=b: a @ b, model.device)
            total_flops += count * 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
    return total_s, total_flops


def gemm_sequence_seconds(model: Model, n: int, batch_size: int) -> float:
    """Seconds of one epoch's matrix products run back to back, step after step, in the step's order:
    the products alone, but with the caches shared as in training (no other work in between)."""
    total = 0.0
    for rows, count in _epoch_steps(n, batch_size):
        products = step_products(model, rows)
        [a @ b for a, b in products]  # warm-up
        backend.synchronize(model.device)
        start = time.perf_counter()
        for _ in range(count):
            [a @ b for a, b in products]
        backend.synchronize(model.device)
        total += time.perf_counter() - start
    return total


def epoch_seconds(name: str, X: Any, batch_size: int, device: str, kernels: bool) -> float:
    """Seconds of one training epoch of a fresh model ``name`` on X, with the fused kernels on or off."""
    model = MODELS[name](device)
    with backend.use_kernels(kernels):
        model.fit(X, epochs=1, batch_size=batch_size, verbose=False)
    return float(model.history.last()["seconds"])


def torch_vae(d: int, hidden: int, latent: int) -> tuple[Any, Any]:
    """The reference VAE's networks in PyTorch: (encoder, decoder), the encoder Linear(d, hidden), ReLU,
    Linear(hidden, 2 latent) giving (mu, logvar), the decoder Linear(latent, hidden), ReLU, Linear(hidden, d)
    giving Bernoulli logits."""
    from torch import nn

    encoder = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
    decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, d))
    return encoder, decoder


def torch_negative_elbo(encoder: Any, decoder: Any, x: Any) -> Any:
    """-ELBO per example (B,) of a ``torch_vae``: BCE with logits summed over the features, one z =
    mu + exp(logvar / 2) eps per example, plus the analytic KL 0.5 sum (mu^2 + exp(logvar) - logvar - 1)."""
    import torch

    mu, logvar = encoder(x).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    nll = torch.nn.functional.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(dim=1)
    return nll + 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(dim=1)


def torch_epoch_seconds(name: str, X: np.ndarray, batch_size: int, device: str) -> float:
    """One epoch of the same model, loss and optimizer in PyTorch, after a few warm-up steps; on the CPU
    with as many threads as BLAS is given (``torch_threads``)."""
    import torch
    from torch import nn

    dev = torch.device("cuda" if device == "gpu" else "cpu")
    threads = torch_threads()
    if device == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    if name == "vae":
        enc, dec = torch_vae(784, 400, 20)
    else:
        relu = nn.ReLU
        enc = nn.Sequential(nn.Linear(784, 500), relu(), nn.Linear(500, 250), relu(), nn.Linear(250, 30))
        dec = nn.Sequential(nn.Linear(30, 250), relu(), nn.Linear(250, 500), relu(), nn.Linear(500, 784))
    enc, dec = enc.to(dev), dec.to(dev)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(dev)
    bce = nn.functional.binary_cross_entropy_with_logits

    def step(x: Any) -> None:
        if name == "vae":
            loss = torch_negative_elbo(enc, dec, x).mean()
        else:
            loss = bce(dec(enc(x)), x, reduction="sum") / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    torch.manual_seed(0)
    for i in range(0, min(len(data), TORCH_WARMUP_STEPS * batch_size), batch_size):  # allocator and kernels
        step(data[i : i + batch_size])
    if device == "gpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    perm = torch.randperm(len(data), device=dev)
    for i in range(0, len(data), batch_size):
        step(data[perm[i : i + batch_size]])
    if device == "gpu":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def torch_available(device: str) -> bool:
    """Whether PyTorch imports and, for "gpu", sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


def bench_data(n: int) -> tuple[np.ndarray, str]:
    """Fashion-MNIST training images (first n) or, when absent, n synthetic 784-d examples in [0, 1]."""
    from .data import load

    try:
        return load("fashion-mnist", n_train=n).X_train, "fashion-mnist"
    except DataNotFoundError:
        return np.random.default_rng(0).random((n, 784), dtype=np.float32), "synthetic"


def torch_threads() -> int | None:
    """The threads PyTorch is given on the CPU: as many as BLAS (``blas_threads``), so that a one-thread
    comparison is one thread on both sides (PyTorch reads OMP_NUM_THREADS, not OPENBLAS_NUM_THREADS);
    None: its default."""
    threads = blas_threads()
    return int(threads) if threads.isdigit() and int(threads) > 0 else None


def blas_threads() -> str:
    """The BLAS thread count the environment asks for (OpenBLAS's own variable first), or "default" (one per core)."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            return os.environ[name]
    return "default"


def _summary(
    name: str,
    batch: int,
    impl: str,
    times: list[float],
    n: int,
    gemm_s: float,
    sequence_s: float,
    torch_s: float | None,
) -> Row:
    best = min(times)
    return Row(
        name,
        batch,
        impl,
        best,
        statistics.median(times),
        n / best,
        gemm_s,
        best / gemm_s,
        sequence_s,
        best / sequence_s,
        None if torch_s is None else best / torch_s,
    )


def run(
    models: list[str], batch_sizes: list[int], device: str, repeats: int, n: int, use_torch: bool, log: Any
) -> dict[str, Any]:
    """The benchmark's table: a Row per model, batch size and path (fused, plain, PyTorch), each epoch timed
    ``repeats`` times on ``n`` examples; progress lines go to ``log``."""
    X, data_name = bench_data(n)
    n = len(X)
    start = time.perf_counter()
    epoch_seconds("vae", X[: min(n, 512)], 128, device, True)  # Numba / CUDA compile here (or load their caches)
    first_step_s = time.perf_counter() - start
    have_torch = use_torch and torch_available(device)
    threads = blas_threads()
    print(
        f"data: {data_name}, {n} examples; device {device}; {os.cpu_count()} cores, BLAS threads {threads}"
        f"{' (PyTorch too)' if have_torch and device == 'cpu' else ''}; "
        f"first run, kernels compiled or loaded from cache: {first_step_s:.2f} s",
        file=log,
    )
    rows = []
    impls = {"scratchae fused": True, "scratchae plain": False}
    for name in models:
        for batch in batch_sizes:
            # The repeats interleave every measurement, so a slow spell of the machine touches all of them alike.
            times: dict[str, list[float]] = {impl: [] for impl in impls}
            gemm_times, sequence_times, torch_times = [], [], []
            shapes_of = MODELS[name](device)  # the products' shapes: its layers
            for _ in range(repeats):
                gemm_s, flops = gemm_bound_seconds(shapes_of, n, batch)
                gemm_times.append(gemm_s)
                sequence_times.append(gemm_sequence_seconds(shapes_of, n, batch))
                if have_torch:
                    torch_times.append(torch_epoch_seconds(name, X, batch, device))
                for impl, kernels in impls.items():
                    times[impl].append(epoch_seconds(name, X, batch, device, kernels))
            gemm_s, sequence_s = min(gemm_times), min(sequence_times)
            torch_s = min(torch_times) if have_torch else None
            for impl in impls:
                rows.append(_summary(name, batch, impl, times[impl], n, gemm_s, sequence_s, torch_s))
                print(_format_row(rows[-1]), file=log)
            if torch_s is not None:
                rows.append(_summary(name, batch, "pytorch", torch_times, n, gemm_s, sequence_s, torch_s))
            print(
                f"  GEMM-bound: {gemm_s:.3f} s for {flops / 1e9:.1f} GFLOP ({flops / gemm_s / 1e9:.0f} GFLOP/s); "
                f"the same products back to back in the step's order: {sequence_s:.3f} s "
                f"({sequence_s / gemm_s:.2f}x the bound)",
                file=log,
            )
    spread = max(r.median_s / r.min_s for r in rows) if rows else 1.0
    if spread > SPREAD_NOTE:
        print(
            f"note: a median is {spread:.2f}x its best time: the machine's speed varied during the run "
            f"(other jobs?); the ratios use the best times",
            file=log,
        )
    return {
        "device": device,
        "data": data_name,
        "examples": n,
        "cores": os.cpu_count(),
        "blas_threads": threads,
        "torch_threads": (torch_threads() or "default") if have_torch and device == "cpu" else None,
        "first_run_with_compile_s": first_step_s,
        "torch": have_torch,
        "rows": [asdict(r) for r in rows],
    }


def _format_row(r: Row) -> str:
    torch_ratio = "-" if r.ratio_to_torch is None else f"{r.ratio_to_torch:.2f}x"
    return (
        f"{r.model:<8} batch {r.batch_size:>5}  {r.impl:<16} min {r.min_s:7.3f} s  median {r.median_s:7.3f} s  "
        f"{r.examples_per_s:>9,.0f} ex/s  GEMM-bound {r.gemm_bound_s:6.3f} s  x{r.ratio_to_gemm:.2f} of GEMM  "
        f"x{r.ratio_to_gemm_sequence:.2f} of the sequence  vs torch {torch_ratio}"
    )


def is_bench_table(path: Path) -> bool:
    """Whether ``path`` holds a table that ``scratchae bench`` wrote (one a new run may replace)."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(table, dict) and {"device", "rows", "first_run_with_compile_s"} <= table.keys()


def model_names(text: str) -> list[str]:
    """``"vae,deep-ae"`` -> the benchmark models named, each one of ``MODELS``."""
    names = [m.strip() for m in text.split(",")]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(map(repr, unknown))}: choose from {', '.join(MODELS)}"
        )
    return names


def torch_note(device: str) -> str | None:
    """Why the ``vs torch`` column will stay empty (None when PyTorch can run on ``device``)."""
    if torch_available(device):
        return None
    if importlib.util.find_spec("torch") is None:
        return "note: PyTorch is not installed, so 'vs torch' shows - (pip install 'scratchae[bench]' to compare)"
    return "note: PyTorch sees no CUDA device, so 'vs torch' shows -"


def main(argv: list[str] | None = None) -> int:
    """``scratchae bench ARGS``: run the benchmark, print its table, write it as JSON to ``--json``."""
    from .cli.args import Parser, int_list, positive_int

    parser = Parser(prog="scratchae bench", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--device", default="cpu", choices=backend.DEVICES, help="default cpu")
    parser.add_argument(
        "--models", type=model_names, default="vae,deep-ae", help=f"comma list of: {', '.join(MODELS)} (default all)"
    )
    parser.add_argument("--batch-sizes", type=int_list, default="128,1024", metavar="B,B", help="default 128,1024")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--examples", type=positive_int, default=60000, help="examples per epoch (default 60000)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument(
        "--json",
        default="bench.json",
        metavar="FILE",
        help="the table is also written there as JSON (default bench.json; an earlier table there is replaced, "
        "any other file is refused)",
    )
    args = parser.parse_args(argv)
    if Path(args.json).is_dir():
        raise ArgumentError(f"--json {args.json} is a folder: give a file name, e.g. {Path(args.json) / 'bench.json'}")
    if Path(args.json).exists() and not is_bench_table(Path(args.json)):
        raise ArgumentError(f"--json {args.json} exists and holds no benchmark table: give another file name")
    if args.examples < max(args.batch_sizes):
        raise ArgumentError(
            f"--examples {args.examples} is fewer than the batch size {max(args.batch_sizes)}: "
            f"an epoch needs at least one full batch"
        )
    try:  # made now (as eval --json and sample -o make theirs) rather than failing after the measurements
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError(f"--json {args.json}: cannot make its folder ({exc.strerror}: {exc.filename})") from exc
    backend.check_device(args.device)
    note = None if args.no_torch else torch_note(args.device)
    if note:
        print(note)
    models, batch_sizes = args.models, list(args.batch_sizes)
    result = run(models, batch_sizes, args.device, args.repeats, args.examples, not args.no_torch, sys.stdout)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.json}")
    return 0
