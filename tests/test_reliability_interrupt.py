"""Nothing lost: a training process killed with SIGKILL while it writes checkpoints leaves the last
complete checkpoint readable; resuming from it gives bit-identical weights and history to an uninterrupted
run (CPU); the same seed gives bit-identical results in separate processes; a failed write changes nothing.

The child processes train a model whose checkpoint (about 1 MB with Adam's state) takes far longer to
write than an epoch takes to train, so a kill at a random moment mostly lands inside a write; one child
is also paused inside the write, after the temporary file is complete and before the rename, and killed
there for certain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scratchae
from scratchae.checkpoint import read_checkpoint
from scratchae.models import VAE

# The child's training, shared with the parent's reference runs through this source.
SETUP = """
import numpy as np
from scratchae.models import VAE

X = np.random.default_rng(0).random((64, 32)).astype(np.float32)
FIT = dict(batch_size=32, lr=1e-3, verbose=False)


def build():
    return VAE(32, (256,), 8, kl_warmup=3, seed=7)
"""
CHILD = (
    SETUP
    + """
import os, sys, time

mode, folder, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "pause":  # announce the third rename and wait there to be killed
    real_replace, renames = os.replace, []

    def replace(src, dst):
        renames.append(dst)
        if len(renames) == 3:
            print("paused", flush=True)
            time.sleep(120)
        real_replace(src, dst)

    os.replace = replace
model = build()
model.fit(X, epochs=epochs, checkpoint_dir=folder, callbacks=[lambda e, logs, m: print(e + 1, flush=True)], **FIT)
"""
)
namespace: dict[str, Any] = {}
exec(SETUP, namespace)
X, FIT, build = namespace["X"], namespace["FIT"], namespace["build"]


def start(mode: str, folder: Path, epochs: int = 10**6, hash_seed: str = "0") -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    args = [sys.executable, "-c", CHILD, mode, str(folder), str(epochs)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def kill_after(proc: subprocess.Popen, line: str) -> list[str]:
    """Read the child's lines until ``line`` (or its epoch count reaches it), SIGKILL it; all it printed."""
    seen = []
    try:
        while True:
            got = proc.stdout.readline().strip()
            assert got, f"the child ended early: {proc.stderr.read()}"
            seen.append(got)
            if got == line or (got.isdigit() and line.isdigit() and int(got) >= int(line)):
                break
        time.sleep(np.random.default_rng().uniform(0, 0.02))  # somewhere in the next write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return seen + proc.stdout.read().split()  # what the child printed before the kill and was not read yet


def weights_and_history(model: Any) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    history = [{k: v for k, v in rec.items() if k != "seconds"} for rec in model.history.records]
    return model.state_dict(), history


def assert_identical(a: Any, b: Any) -> None:
    (wa, ha), (wb, hb) = weights_and_history(a), weights_and_history(b)
    assert wa.keys() == wb.keys() and ha == hb
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every child process side by side: two killed at a random moment after 3 and 5 epochs, one killed
    while paused in its third checkpoint write, two that train 4 epochs to the end (other hash seeds)."""
    root = tmp_path_factory.mktemp("children")
    folders = {name: root / name for name in ("random3", "random5", "paused", "whole1", "whole2")}
    procs = {
        "random3": start("train", folders["random3"]),
        "random5": start("train", folders["random5"]),
        "paused": start("pause", folders["paused"]),
        "whole1": start("train", folders["whole1"], epochs=4, hash_seed="1"),
        "whole2": start("train", folders["whole2"], epochs=4, hash_seed="2"),
    }
    seen = {
        "random3": kill_after(procs["random3"], "3"),
        "random5": kill_after(procs["random5"], "5"),
        "paused": kill_after(procs["paused"], "paused"),
    }
    for name in ("whole1", "whole2"):
        _, err = procs[name].communicate(timeout=120)
        assert procs[name].returncode == 0, err
    return {"folders": folders, "seen": seen}


@pytest.mark.parametrize("name", ["random3", "random5"])
def test_a_kill_at_a_random_moment_leaves_a_readable_checkpoint(children, name):
    """Each epoch's checkpoint is written before the child announces the epoch (its callback): the file holds
    the last epoch announced, or the next one when the kill came between its write and its announcement."""
    last = int(children["seen"][name][-1])
    model = scratchae.load(children["folders"][name])
    assert model.epochs_trained in (last, last + 1) and len(model.history) == model.epochs_trained


def test_a_kill_inside_a_write_leaves_the_previous_checkpoint(children):
    """Killed with the third checkpoint's temporary file complete but not yet renamed: the second one loads,
    and the unfinished temporary file is left beside it, never read."""
    folder = children["folders"]["paused"]
    assert children["seen"]["paused"] == ["1", "2", "paused"]  # the write comes before the epoch's callbacks
    assert read_checkpoint(folder).meta["epochs_trained"] == 2
    leftovers = [p.name for p in folder.iterdir() if p.name != "checkpoint.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.npz.") and leftovers[0].endswith(".tmp")
    assert scratchae.load(folder).epochs_trained == 2


@pytest.mark.parametrize("name", ["random5", "paused"])
def test_resuming_after_a_kill_equals_an_uninterrupted_run(children, name):
    """Weights, history and optimizer state bit-identical to a run of the same length in this process."""
    folder = children["folders"][name]
    total = read_checkpoint(folder).meta["epochs_trained"] + 2
    resumed = build()
    resumed.fit(X, epochs=total, resume_from=folder, **FIT)
    whole = build()
    whole.fit(X, epochs=total, **FIT)
    assert resumed.epochs_trained == whole.epochs_trained == total
    assert_identical(resumed, whole)
    assert resumed.optimizer.steps == whole.optimizer.steps
    for key, arr in whole.optimizer.state_dict()["arrays"].items():
        np.testing.assert_array_equal(resumed.optimizer.state_dict()["arrays"][key], arr, err_msg=key)


def test_the_same_seed_gives_bit_identical_results_in_separate_processes(children):
    """Two processes (other hash seeds) and this one: the same weights, bit for bit, and the same history."""
    a, b = (scratchae.load(children["folders"][name]) for name in ("whole1", "whole2"))
    here = build()
    here.fit(X, epochs=4, **FIT)
    assert a.epochs_trained == b.epochs_trained == 4
    assert_identical(a, b)
    assert_identical(a, here)


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    model = VAE(8, (4,), 2)
    path = model.save(tmp_path / "checkpoint.npz")
    before = path.read_bytes()
    model.epochs_trained = 5

    def disk_full(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        model.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.npz"]
