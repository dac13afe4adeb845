"""Memory under load: training keeps nothing from one step to the next (no reference cycles; live Tensors,
Functions and traced memory flat across epochs), and the memory of one step follows the formula in
docs/reliability.md.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy as np
import pytest

from scratchae import Function, Tensor, backend
from scratchae.models import VAE, AutoEncoder, ConditionalVAE
from scratchae.optim import make_optimizer


def live(kind: type) -> int:
    return sum(issubclass(type(obj), kind) for obj in gc.get_objects())  # type(): no proxy's __class__ runs


@pytest.mark.parametrize(
    "make, kernels",
    [
        (lambda: VAE(64, (32,), 4), True),
        (lambda: VAE(64, (32,), 4), False),
        (lambda: ConditionalVAE(64, 10, (32,), 4), True),
    ],
    ids=["vae-kernels", "vae-plain", "cvae-kernels"],
)
def test_live_objects_and_memory_stay_flat_across_epochs(make, kernels):
    """With the cycle collector off during training, at the end of each of 6 epochs (8 steps each) after the
    first: a full collection finds no garbage (so no step left a reference cycle: reference counting freed every graph),
    the same numbers of live Tensors and Functions, and traced memory within 16 kB of the second epoch's
    (the history grows by one small record per epoch). The full collection also empties CPython's free
    lists, whose kept blocks tracemalloc would otherwise count."""
    rng = np.random.default_rng(0)
    X, y = rng.random((128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    model = make()
    marks: list[tuple[int, int, int, int]] = []

    def measure(epoch: int, logs: dict[str, float], m: Any) -> None:
        found = gc.collect()
        marks.append((found, live(Tensor), live(Function), tracemalloc.get_traced_memory()[0]))

    gc.collect()
    before = live(Tensor)
    gc.disable()
    tracemalloc.start()
    try:
        with backend.use_kernels(kernels):
            model.fit(X, y if model.needs_labels else None, epochs=6, batch_size=16, verbose=False, callbacks=[measure])
    finally:
        tracemalloc.stop()
        gc.enable()
    garbage, tensors, functions, memory = zip(*marks, strict=True)
    assert set(garbage[1:]) == {0}, marks  # the first epoch's include the one-time kernel set-up
    assert len(set(tensors[1:])) == 1 and len(set(functions[1:])) == 1, marks
    assert max(memory[1:]) - memory[1] < 16 * 1024, [m - memory[1] for m in memory]
    assert live(Tensor) == before  # the last step's graph is gone too; the parameters existed before


def peak_of_one_step(model: Any, n: int) -> int:
    """Bytes allocated at the peak of one training step (forward, backward, Adam) on a batch of n, beyond what
    the step before left (weights, Adam state, gradients)."""
    X = np.random.default_rng(0).random((n, model.input_dim)).astype(np.float32)
    opt = make_optimizer("adam", model.parameters(), 1e-3)
    rng = backend.new_rng(0)

    def step() -> None:
        loss = model.batch_loss(X[np.arange(n)], None, rng)  # fit's batches are copies taken by index
        opt.zero_grad()
        loss.total.backward()
        opt.step()

    step()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def documented_step_bytes(model: Any, n: int) -> int:
    """docs/reliability.md: 4 [P + N (3 D + H + 2 H_max + c L)] bytes in float32, where P counts the
    parameters, D the input width, H the hidden widths of encoder and decoder together, H_max the widest,
    L the latent size with c = 6 for a VAE (mu, logvar, eps, std, z, KL grad), 1 else."""
    cfg = model.config
    hidden, latent = cfg["hidden"], cfg["latent_dim"] * (6 if isinstance(model, VAE) else 1)
    per_example = 3 * cfg["input_dim"] + 2 * sum(hidden) + 2 * max(hidden) + latent
    return 4 * (model.num_parameters() + n * per_example)


@pytest.mark.parametrize(
    "make, n",
    [
        (lambda: VAE(784, (400,), 20), 128),
        (lambda: AutoEncoder(784, (256,), 32), 256),
        (lambda: VAE(196, (256, 128), 8), 512),
    ],
    ids=["vae-784-400-20", "ae-784-256-32", "vae-196-256-128-8"],
)
def test_the_memory_of_a_step_follows_the_documented_formula(make, n):
    model = make()
    measured, expected = peak_of_one_step(model, n), documented_step_bytes(model, n)
    assert 0.75 < measured / expected < 1.3, f"measured {measured / 2**20:.2f} MiB, formula {expected / 2**20:.2f} MiB"
