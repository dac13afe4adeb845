"""What ``train`` and ``eval`` report: test metrics, the figures of a run, the summary table, a collapse warning."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, metrics
from ..models import VAE, ConditionalVAE, DenoisingAutoEncoder, Model
from ..run_info import RUN_FILE
from ..tables import Group, box_table, color_default

TRAVERSAL_ROWS = 8  # a VAE whose latent is not 2-D gets a traversal figure of its most active coordinates
COLLAPSE_KL = 0.1  # a VAE whose KL term per example ends below this many nats is warned of (warn_collapse)


def warn_collapse(model: VAE, X: Any, y: Any = None) -> None:
    """Warn when the KL term per example on (X, y), sum_d of ``metrics.kl_per_dimension``, is below
    COLLAPSE_KL nats: the codes then carry almost nothing about x (the posterior collapsed onto the
    prior); the warning names the settings of the model's own that lean that way."""
    kl = float(backend.to_numpy(metrics.kl_per_dimension(model, X, y)).sum())
    if kl >= COLLAPSE_KL:
        return
    hints = []
    if model.likelihood == "gaussian" and model.gaussian_std > 0.1:
        std = model.gaussian_std
        hints.append(
            f"a smaller --gaussian-std (now {std:g}; 0.1 weighs the reconstruction {(std / 0.1) ** 2:g} times more)"
        )
    if model.beta > 1:
        hints.append(f"a smaller --beta (now {model.beta:g})")
    if model.kl_warmup == 0 and model.beta > 0:
        hints.append("a --kl-warmup of a few epochs")
    if model.reconstruction_weight == 0:
        hints.append("a reconstruction_weight above 0 (the model's is 0: nothing asks the codes to carry the input)")
    advice = "try " + ", or ".join(hints) if hints else "none of its settings leans that way: try more epochs"
    warnings.warn(
        f"the KL term is {kl:.3g} nats per test example: the codes carry almost nothing about the input (the "
        f"posterior collapsed onto the prior); {advice}",
        UserWarning,
        stacklevel=2,
    )


def test_metrics(model: Model, X: Any, y: Any, iwae_k: int, seed: int, progress: bool) -> dict[str, float]:
    """Mean per-example test metrics: squared error of the reconstruction of the clean input; the
    training loss (AE) or the ELBO and the importance-weighted log p(x) estimate with ``iwae_k``
    samples (VAE, with a progress bar where ``progress``); for a denoising AE also the squared errors
    of its corrupted input and of its reconstruction from that (the noise drawn from ``seed``)."""
    out = {"recon_sq_error": _mean(metrics.reconstruction_mse(model, X, y))}
    if isinstance(model, VAE):
        out["elbo"] = _mean(metrics.elbo(model, X, y, seed=seed))
        out["log_px_iwae"] = _mean(metrics.iwae(model, X, k=iwae_k, y=y, seed=seed, progress=progress))
        out["iwae_k"] = iwae_k
    else:
        out["recon_loss"] = _mean(model.reconstruction_error(X))
    if isinstance(model, DenoisingAutoEncoder):
        noisy, denoised = metrics.denoising_mse(model, X, seed)
        out["noisy_sq_error"], out["denoised_sq_error"] = _mean(noisy), _mean(denoised)
    return out


def _mean(values: Any) -> float:
    return backend.to_float(values.mean())


def write_figures(model: Model, data: Any, out: Path, seed: int) -> list[Path]:
    """The figures of this model kind, from the test part: curves, reconstructions or denoising,
    the latent scatter, and for VAEs samples and the latent manifold (a 2-D latent) or traversal (any
    other; CVAE: samples by class). Every name is one of RUN_OUTPUTS."""
    from .. import plots

    figs = [plots.loss_curves(model.history, out / "loss.png", title=f"{model.kind} training")]
    X, y = data.X_test, data.y_test
    labels = y if model.needs_labels else None
    shape = data.image_shape
    rng = backend.new_rng(seed, model.device)
    grey = plots.display_limits(data.X_train)  # generated images on the data's scale (a Gaussian decoder's leave it)
    if shape is not None:
        n = min(10, len(X))
        if isinstance(model, DenoisingAutoEncoder):
            noisy = model.corrupt(X[:n], rng)
            figs.append(plots.denoising(noisy, model.denoise(noisy), X[:n], shape, out / "denoising.png"))
        else:
            recon = model.reconstruct(X[:n], labels[:n]) if labels is not None else model.reconstruct(X[:n])
            figs.append(plots.reconstructions(X[:n], recon, shape, out / "reconstructions.png"))
    if y is not None:
        codes = model.transform(X, labels) if labels is not None else model.transform(X)
        figs.append(plots.latent_scatter(codes, y, out / "latent.png", data.class_names))
    if isinstance(model, ConditionalVAE) and shape is not None:
        k = 8
        classes = np.repeat(np.arange(model.n_classes), k)
        images = model.sample(len(classes), y=classes, rng=rng)
        path = out / "class_samples.png"
        figs.append(plots.class_grid(images, shape, path, model.n_classes, data.class_names, limits=grey))
    elif isinstance(model, VAE) and shape is not None:
        figs.append(plots.samples_grid(model.sample(64, rng=rng), shape, out / "samples.png", limits=grey))
        if model.latent_dim == 2:
            Z, values = plots.manifold_points(15)
            figs.append(plots.latent_manifold(model.decode(Z), shape, out / "manifold.png", values, limits=grey))
        else:  # the coordinates that carry the most, one at a time
            activity = backend.to_numpy(metrics.kl_per_dimension(model, X))
            dims = np.argsort(-activity, kind="stable")[:TRAVERSAL_ROWS].tolist()  # the most active first
            Z, values = plots.traversal_points(model.latent_dim, dims)
            path = out / "traversal.png"
            title = "Decoder as z moves (N(0, 1) quantiles)" if model.latent_dim == 1 else None
            images, kl = model.decode(Z), activity[dims]
            figs.append(plots.latent_traversal(images, shape, path, dims, values, title, limits=grey, kl=kl))
    return figs


def format_number(v: Any) -> str:
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def epochs_line(total: int, this_run: int, seconds: float) -> str:
    """ "30 in 1.4 s", or for a resumed run "80 (epochs 51-80 in 1.4 s)": the time is this run's;
    "80 (none in this run)" for a run that only wrote its outputs."""
    if this_run == 0:
        return f"{total} (none in this run)"
    if this_run == total:
        return f"{total} in {seconds:.1f} s"
    span = f"epoch {total}" if this_run == 1 else f"epochs {total - this_run + 1}-{total}"
    return f"{total} ({span} in {seconds:.1f} s)"


def summary_table(result: dict[str, Any], out: Path, figures: Sequence[str], images: bool = True) -> str:
    """The run in a box: model, epochs, last epoch and test metrics, files and figures; ``images``:
    whether the data are images (else a note says how to get the figures of images)."""
    last = result["last_epoch"]
    classes = f", {result['n_classes']} classes" if "n_classes" in result else ""
    sizes = f"{result['n_train']} train, {result['n_test']} test{classes}"
    rows = [
        ["model", f"{result['model']} on {result['data']} ({sizes})"],
        ["epochs", epochs_line(result["epochs"], result["epochs_this_run"], result["train_seconds"])],
    ]
    rows += [[f"last epoch {k}", format_number(v)] for k, v in last.items() if k not in ("epoch", "seconds")]
    if "early_stopping" in result:
        stop = result["early_stopping"]
        ran = "did not stop" if stop["stopped_epoch"] is None else f"stopped after epoch {stop['stopped_epoch']}"
        best = f"best val_loss {format_number(stop['best_val_loss'])} after epoch {stop['best_epoch']}"
        rows.append(["early stopping", f"{ran}; {best}; the weights of epoch {stop['weights_epoch']}"])
    rows += [[f"test {k}", format_number(v)] for k, v in result["test"].items()]
    files = [["folder", f"{out}/"], ["files", f"checkpoint.npz  metrics.json  history.csv  {RUN_FILE}"]]
    files.append(["figures", "  ".join(figures)])
    if not images:
        files.append(["note", "the data are flat rows: for the figures of images give --image-shape HxW"])
    return box_table("Summary", None, [Group(rows), Group(files)], "ll", color_default())
