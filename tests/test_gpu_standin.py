"""The engine's GPU path, run on the host with tests/cupy_standin.py playing CuPy.

The stand-in keeps CuPy's rules that a GPU run would enforce (no implicit conversion to NumPy,
no NumPy operands, only CuPy's names) and counts every host-device transfer, so these tests
show without a GPU that ``device="gpu"`` trains, checkpoints and moves models without NumPy-only
calls, and that a training step makes no transfer: only the loss terms reach the host, once
per logging interval. CuPy itself, cuBLAS and the speed need a real GPU (tests/test_kernels_gpu.py,
``pytest --device gpu``, benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import use_cupy_standin
from cupy_standin import CUPY, TRANSFERS
from test_examples_a import numbers
from test_kernels_models import assert_same_training

from scratchae import backend, load
from scratchae.errors import DivergenceError
from scratchae.models import VAE, AutoEncoder, Classifier, ConditionalVAE, DenoisingAutoEncoder
from scratchae.train import GPU_SYNC_EVERY, _check_finite_weights

BATCH = 8

MODELS = {
    "ae": lambda d: AutoEncoder(64, hidden=(16,), latent_dim=4, seed=0, device=d),
    "dae-mse": lambda d: DenoisingAutoEncoder(64, hidden=(16,), latent_dim=4, loss="mse", seed=0, device=d),
    "vae": lambda d: VAE(64, hidden=(16,), latent_dim=4, seed=0, device=d),
    "vae-gaussian-beta-warmup": lambda d: VAE(
        64, hidden=(16,), latent_dim=4, likelihood="gaussian", beta=0.5, kl_warmup=3, seed=0, device=d
    ),
    "cvae": lambda d: ConditionalVAE(64, 10, hidden=(16,), latent_dim=4, seed=0, device=d),
    "classifier": lambda d: Classifier(64, 10, hidden=(16,), seed=0, device=d),
}


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cupy_standin(monkeypatch)
    TRANSFERS.clear()


def _fit(name: str, device: str, data: Any, n: int, **kwargs: Any) -> Any:
    model = MODELS[name](device)
    model.fit(data.X_train[:n], data.y_train[:n], epochs=1, batch_size=BATCH, verbose=False, **kwargs)
    return model


def test_the_standin_keeps_cupys_rules(standin):
    a = CUPY.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3)
    with pytest.raises(AttributeError, match="errstate"):
        CUPY.errstate  # noqa: B018 (CuPy has no errstate)
    with pytest.raises(AttributeError, match="'normal'"):
        CUPY.random.default_rng(0).normal  # noqa: B018 (CuPy's Generator has standard_normal only)
    total = np.sum(a @ a.T)  # NumPy's function on a device array runs CuPy's
    assert isinstance(total, CUPY.ndarray) and total.shape == ()
    assert not hasattr(a.flags, "writeable")
    assert TRANSFERS == {"to_device": 1}
    assert float(total) == 83.0  # one read back
    assert TRANSFERS["to_host"] == 1
    a[a > 2] = 0.0  # a boolean mask's count is read back
    assert TRANSFERS["to_host"] == 2
    np.testing.assert_array_equal(a.get(), [[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    host = np.ones(3)
    b = CUPY.asarray(host)  # a copy in device memory
    host[0] = 5.0
    corner = b[0]  # one element: a 0-d view
    corner += 1.0
    np.testing.assert_array_equal(b.get(), [2.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="cannot be used for fill"):
        b[:] = np.zeros(3)  # a basic selection takes a scalar or a device array
    with pytest.raises(TypeError, match="Unsupported type"):
        b + [1.0, 2.0, 3.0]


@pytest.mark.parametrize("name", list(MODELS))
def test_a_training_step_makes_no_host_transfer(standin, small_digits, name):
    """25 more batches add one flush of the loss terms to the host (one transfer), and nothing else either way."""
    counts = []
    for batches in (GPU_SYNC_EVERY, 2 * GPU_SYNC_EVERY):
        TRANSFERS.clear()
        _fit(name, "gpu", small_digits, batches * BATCH)
        counts.append(dict(TRANSFERS))
    short, long = counts
    assert long.get("to_device", 0) == short.get("to_device", 0), counts
    assert long["to_host"] - short["to_host"] == 1, counts


def test_the_end_of_epoch_weight_check_reads_all_parameters_in_one_transfer(standin):
    model = VAE(64, (16,), 2, device="gpu")
    TRANSFERS.clear()
    _check_finite_weights(model, 0)
    assert TRANSFERS == {"to_host": 1}
    model.decoder.net[0].b.data[3] = np.inf
    with pytest.raises(DivergenceError, match=r"the weights decoder.net.0.b became NaN or infinite in epoch 1"):
        _check_finite_weights(model, 0)


@pytest.mark.parametrize("name", list(MODELS))
def test_gpu_training_equals_cpu_training_with_the_plain_expressions(standin, small_digits, name):
    """Kernels off, both devices run the same NumPy operations on the same random draws: equal weights,
    and an equal loss history (both add the batches' losses on the host, in float64)."""
    with backend.use_kernels(False):
        gpu, cpu = (_fit(name, device, small_digits, 96) for device in ("gpu", "cpu"))
    for (pname, wg), (_, wc) in zip(gpu.named_parameters(), cpu.named_parameters(), strict=True):
        assert backend.device_of(wg.data) == "gpu"
        np.testing.assert_array_equal(wg.data.get(), wc.data, err_msg=pname)
    np.testing.assert_array_equal(gpu.history["loss"], cpu.history["loss"])


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_gpu_training_with_the_cuda_kernels_equals_cpu_training_with_numba(standin, small_digits, name):
    assert_same_training(*(_fit(name, device, small_digits, 96) for device in ("gpu", "cpu")))


def test_a_gpu_checkpoint_loads_on_the_cpu_and_back(standin, small_digits, tmp_path):
    model = _fit("vae", "gpu", small_digits, 96, checkpoint_dir=tmp_path)
    on_cpu = load(tmp_path / "checkpoint.npz", device="cpu")
    again = load(tmp_path / "checkpoint.npz", device="gpu")
    for (pname, w), (_, c), (_, g) in zip(
        model.named_parameters(), on_cpu.named_parameters(), again.named_parameters(), strict=True
    ):
        assert isinstance(c.data, np.ndarray) and backend.device_of(g.data) == "gpu"
        np.testing.assert_array_equal(c.data, w.data.get(), err_msg=pname)
        np.testing.assert_array_equal(g.data.get(), c.data, err_msg=pname)


def test_a_model_moved_to_the_cpu_goes_on_training_there(standin, small_digits):
    model = _fit("vae", "gpu", small_digits, 96)
    model.to("cpu")
    assert model.device == "cpu"
    assert all(isinstance(p.data, np.ndarray) for p in model.parameters())
    model.fit(small_digits.X_train[:96], epochs=2, batch_size=BATCH, verbose=False)
    assert model.epochs_trained == 2 and np.isfinite(model.history["loss"]).all()


@pytest.mark.parametrize(
    ("batch_size", "taken"), [(4, "it"), (2, "batches 5-7")], ids=["last-but-one", "three-before-the-flush"]
)
def test_gpu_divergence_names_the_batch_and_the_updates_taken_after_it(standin, tmp_path, batch_size, taken):
    """Row 9 holds 3e19, so its batch's squared error is inf (batch 3 of 4, or 5 of 8, in order). On the
    GPU the losses reach the host at the epoch's last batch: the message names the first bad batch and
    the steps taken since, and the checkpoint of epoch 1 is intact."""
    X = np.random.default_rng(0).random((16, 6)).astype(np.float32)
    bad = X.copy()
    bad[9] = 3e19
    args = dict(batch_size=batch_size, shuffle=False, verbose=False, optimizer="sgd", lr=1e-2)
    model = AutoEncoder(6, (4,), 2, output="linear", loss="mse", device="gpu")
    model.fit(X, epochs=1, checkpoint_dir=tmp_path, **args)
    first = 3 if batch_size == 4 else 5
    match = f"the loss became inf in epoch 2, batch {first}; the weights were updated with {taken} and may hold NaN"
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(DivergenceError, match=match):
        model.fit(bad, epochs=3, checkpoint_dir=tmp_path, **args)
    assert model.epochs_trained == 1
    assert load(tmp_path / "checkpoint.npz", device="cpu").epochs_trained == 1


def test_gpu_inference_returns_device_arrays_and_reads_back_only_its_input_checks(standin, small_digits):
    """Encoding, decoding and sampling 20 rows or 2,500 (two inference batches) read back the same."""
    model = _fit("cvae", "gpu", small_digits, 96)
    counts = []
    for rows in (20, 2500):
        X = backend.to_device(np.resize(small_digits.X_test, (rows, 64)), "gpu")
        y = backend.to_device(np.resize(small_digits.y_test, rows), "gpu")
        TRANSFERS.clear()
        mu, logvar = model.encode(X, y)
        images = model.decode(mu, y)
        samples = model.sample(rows, y=y, rng=0)
        counts.append(dict(TRANSFERS))
        assert all(isinstance(a, CUPY.ndarray) for a in (mu, logvar, images, samples))
        assert images.shape == samples.shape == (rows, 64)
    assert counts[0] == counts[1]


def test_the_command_line_on_the_gpu_makes_the_cpus_run(standin, tmp_path, capsys):
    """train, eval, sample and encode with --device gpu: the files and test metrics of the CPU's run
    (kernels off on both, so the two compute the same; metrics to float32 rounding)."""
    from scratchae import cli

    codes = tmp_path / "x.npy"
    np.save(codes, np.random.default_rng(0).random((10, 64)).astype(np.float32))
    metrics = {}
    with backend.use_kernels(False):
        for device in ("gpu", "cpu"):
            run = tmp_path / device
            flags = ["--device", device]
            assert cli.main(["train", "vae", *flags, "--epochs", "2", "--limit", "200", "--out", str(run)]) == 0
            assert cli.main(["eval", str(run), *flags, "--iwae-k", "5", "--json", str(run / "eval.json")]) == 0
            assert cli.main(["sample", str(run), *flags]) == 0
            assert cli.main(["encode", str(run), str(codes), "-o", str(run / "z.npy"), *flags]) == 0
            metrics[device] = json.loads((run / "eval.json").read_text())["test"]
    capsys.readouterr()
    gpu_files, cpu_files = ({p.name for p in (tmp_path / d).iterdir()} for d in ("gpu", "cpu"))
    assert gpu_files == cpu_files and {"checkpoint.npz", "samples_seed0.png", "z.npy"} <= gpu_files
    assert set(metrics["gpu"]) == set(metrics["cpu"]) >= {"elbo", "log_px_iwae", "recon_sq_error"}
    for name, value in metrics["cpu"].items():
        assert metrics["gpu"][name] == pytest.approx(value, rel=1e-5), name
    np.testing.assert_allclose(np.load(tmp_path / "gpu" / "z.npy"), np.load(tmp_path / "cpu" / "z.npy"), rtol=1e-5)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", sorted(p.stem for p in EXAMPLES.glob("[a-z]*.py")))
def test_each_example_runs_on_the_gpu(standin, script, tmp_path, monkeypatch, capsys):
    """``--quick --device gpu``: the script ends normally and writes its JSON of finite numbers and its figures."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    runpy.run_path(str(EXAMPLES / f"{script}.py"), run_name="example")["main"](
        ["--quick", "--device", "gpu", "--out", str(tmp_path)]
    )
    capsys.readouterr()
    found = json.loads((tmp_path / f"{script}.json").read_text())
    assert found and np.isfinite(numbers(found)).all()
    assert list(tmp_path.glob(f"{script}*.png"))
