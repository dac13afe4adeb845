"""benchmarks/kernels_micro.py runs through: its table and its parallel check, each case timed once."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels_micro.py"


@pytest.fixture
def micro(monkeypatch):
    spec = importlib.util.spec_from_file_location("kernels_micro", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def once(fn, sync, budget=0.2):
        fn()
        sync()
        return 1e-6

    monkeypatch.setattr(module, "best_time", once)
    monkeypatch.setattr(module, "BATCHES", (4,))
    return module


def test_the_kernel_table_covers_every_kernel(micro, capsys):
    micro.run_table("cpu", np.dtype(np.float32))
    out = capsys.readouterr().out
    for name in ("bias_act_forward", "act_backward", "bce_with_logits", "gaussian_kl", "adam_update"):
        assert name in out


def test_the_parallel_check_calls_the_kernels_with_their_signatures(micro, capsys):
    micro.parallel_check(np.dtype(np.float32))
    out = capsys.readouterr().out
    assert "serial" in out and "parallel" in out
