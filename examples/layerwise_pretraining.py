"""Greedy layer-wise pretraining against random initialization (the lecture's figure 3).

One deep sigmoid network D-1000-500-250 (smaller on the digits) starts from three points:

- random weights (Glorot uniform, the library's default for sigmoid layers);
- weights from greedy layer-wise pretraining with plain autoencoder layers (each layer learns to
  rebuild the codes of the layers below it; no labels);
- the same with denoising layers (masking noise 25%), the stacked denoising autoencoders of
  Vincent et al. (2010).

Each start is fine-tuned for the same number of epochs three ways: as a classifier (a new softmax
layer on top; test error per epoch) with Adam and with SGD+momentum, and unrolled as a deep
autoencoder with Adam (test squared error per image). Whichever start wins is what the numbers say.

    python examples/layerwise_pretraining.py                        # 8x8 digits, under a minute
    python examples/layerwise_pretraining.py --data fashion-mnist
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import Setup, parser, plural, run_script, setup
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scratchae import backend, plots
from scratchae.metrics import reconstruction_mse
from scratchae.pretrain import (
    LayerwiseResult,
    pretrain_layerwise,
    random_init_layers,
    stack_autoencoder,
    stacked_classifier,
)

PUBLISHED = {
    "source": "Vincent et al. (2010), JMLR 11:3371, table 3 (MNIST, 3 hidden layers, test error %); "
    "Hinton & Salakhutdinov (2006), Science 313:504 (deep autoencoders need pretraining to train well)",
    "mnist_sae3_test_error_percent": 1.40,
    "mnist_sdae3_masking_25_test_error_percent": 1.28,
}
NOISE = ("masking", 0.25)


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]  # (D, hidden_1, ..., hidden_L): the shared sigmoid stack
    pretrain_epochs: int  # per layer (Adam, lr 1e-3)
    classifier_epochs: int
    autoencoder_epochs: int
    batch_size: int = 128


# how the classifiers are fine-tuned: (optimizer, learning rate); the deep autoencoders use Adam
FINE_TUNING = {"Adam": ("adam", 1e-3), "SGD+momentum": ("momentum", 0.05)}
PRETRAIN_LR = 1e-3


def settings(s: Setup) -> Settings:
    """D-1000-500-250 on 28x28 images; D-128-64-32 on the 8x8 digits; tiny with --quick."""
    D = s.data.n_features
    if s.quick:
        return Settings((D, 32, 16), 2, 10, 5, batch_size=32)
    if s.full:
        return Settings((D, 1000, 500, 250), 10, 20, 15)
    return Settings((D, 128, 64, 32), 30, 150, 100)


def starts(s: Setup, cfg: Settings) -> tuple[dict[str, LayerwiseResult], dict[str, float]]:
    """The three starting points of the stack, and the seconds each pretraining took."""
    common = dict(epochs=cfg.pretrain_epochs, batch_size=cfg.batch_size, lr=PRETRAIN_LR, seed=s.seed, device=s.device)
    out = {"random init": random_init_layers(cfg.sizes, "sigmoid", seed=s.seed, device=s.device)}
    seconds = {}
    for name, noise in (("AE pretrained", None), (f"DAE pretrained ({NOISE[0]} {NOISE[1]:.0%})", NOISE)):
        print(f"{name}: {len(cfg.sizes) - 1} layers x {plural(cfg.pretrain_epochs, 'epoch')} ...")
        t = time.perf_counter()
        out[name] = pretrain_layerwise(s.data.X_train, cfg.sizes, "sigmoid", noise, **common)
        seconds[f"pretrain {name}"] = time.perf_counter() - t
        for i, history in enumerate(out[name].histories):
            print(f"  layer {i + 1} ({cfg.sizes[i]} -> {cfg.sizes[i + 1]}): loss {history['loss'][-1]:.3f}")
    return out, seconds


def fit_with_curve(model: Any, measure: Callable[[Any], float], *args: Any, **kwargs: Any) -> list[float]:
    """``model.fit(*args, **kwargs)``, returning ``measure(model)`` after every epoch."""
    curve: list[float] = []
    model.fit(*args, callbacks=[lambda epoch, logs, m: curve.append(measure(m))], verbose=False, **kwargs)
    return curve


def fine_tune_classifier(s: Setup, cfg: Settings, start: LayerwiseResult, optimizer: str, lr: float) -> dict:
    """The stack + a new softmax layer trained on the labels: train cross-entropy and test error (%) per epoch."""
    clf = stacked_classifier(start, s.data.n_classes, seed=s.seed)
    test_error = fit_with_curve(
        clf,
        lambda m: 100 * (1 - m.score(s.data.X_test, s.data.y_test)),
        s.data.X_train,
        s.data.y_train,
        epochs=cfg.classifier_epochs,
        optimizer=optimizer,
        lr=lr,
        batch_size=cfg.batch_size,
    )
    return {"train_cross_entropy": clf.history["loss"], "test_error_percent": test_error}


def fine_tune_autoencoder(s: Setup, cfg: Settings, start: LayerwiseResult) -> tuple[dict, Any]:
    """The unrolled deep autoencoder trained end to end with Adam: train BCE and test squared error per image."""
    ae = stack_autoencoder(start, seed=s.seed)
    test_error = fit_with_curve(
        ae,
        lambda m: backend.to_float(reconstruction_mse(m, s.data.X_test).mean()),
        s.data.X_train,
        epochs=cfg.autoencoder_epochs,
        lr=PRETRAIN_LR,
        batch_size=cfg.batch_size,
    )
    return {"train_bce": ae.history["loss"], "test_squared_error": test_error}, ae


def curves_figure(runs: dict[str, dict], sizes: tuple[int, ...], data: str, path: Path) -> Path:
    """One line per start: test error (%) per fine-tuning optimizer, train cross-entropy (solid: Adam,
    dashed: SGD+momentum), deep AE test squared error."""
    fig = Figure(figsize=(11.5, 8))
    axes = [fig.add_subplot(2, 2, k + 1) for k in range(4)]
    styles = dict(zip(FINE_TUNING, ("-", "--"), strict=True))
    for c, (name, run) in enumerate(runs.items()):
        color = f"C{c}"
        for k, (opt, curves) in enumerate(run["classifier"].items()):
            epochs = range(1, len(curves["test_error_percent"]) + 1)
            axes[k].plot(epochs, curves["test_error_percent"], marker="o", markersize=2.5, color=color, label=name)
            axes[2].plot(epochs, curves["train_cross_entropy"], styles[opt], color=color, label=f"{name}, {opt}")
        curve = run["autoencoder"]["test_squared_error"]
        axes[3].plot(range(1, len(curve) + 1), curve, marker="o", markersize=2.5, color=color, label=name)
    titles = [f"classifier fine-tuned with {opt}: test error (%)" for opt in FINE_TUNING]
    titles += ["classifier: train cross-entropy", "deep autoencoder (Adam): test squared error per image"]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xlabel("fine-tuning epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle(f"{data}: sigmoid stack {'-'.join(map(str, sizes))}, the same epochs from each start")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=plots.DPI, bbox_inches="tight")
    return path


def first_layer_filters(starts_: dict[str, LayerwiseResult], n: int) -> np.ndarray:
    """The first n first-layer weight vectors of each start (rows of D values), each scaled to [0, 1]."""
    rows = []
    for start in starts_.values():
        W = backend.to_numpy(start.encoders[0].W.data)[:, :n].T  # (n, D)
        lo, hi = W.min(axis=1, keepdims=True), W.max(axis=1, keepdims=True)
        rows.append((W - lo) / np.where(hi > lo, hi - lo, 1))
    return np.concatenate(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    s = setup(parser(__doc__.splitlines()[0]), argv, needs=("labels",))
    cfg = settings(s)
    start_time = time.perf_counter()
    starting_points, seconds = starts(s, cfg)
    n_filters = min(12, cfg.sizes[1])
    filters = first_layer_filters(starting_points, n_filters)  # before fine-tuning changes them
    runs: dict[str, dict] = {}
    autoencoders = {}
    for name, start in starting_points.items():
        runs[name] = {"classifier": {}}
        for opt, (optimizer, lr) in FINE_TUNING.items():
            length = plural(cfg.classifier_epochs, "epoch")
            print(f"{name}: fine-tune as a classifier with {opt} (lr {lr}), {length} ...")
            t = time.perf_counter()
            runs[name]["classifier"][opt] = fine_tune_classifier(s, cfg, start, optimizer, lr)
            seconds[f"classifier {name}, {opt}"] = time.perf_counter() - t
            print(f"  test error {runs[name]['classifier'][opt]['test_error_percent'][-1]:.2f}%")
        print(f"{name}: fine-tune as a deep autoencoder, {plural(cfg.autoencoder_epochs, 'epoch')} ...")
        t = time.perf_counter()
        runs[name]["autoencoder"], autoencoders[name] = fine_tune_autoencoder(s, cfg, start)
        seconds[f"autoencoder {name}"] = time.perf_counter() - t
        print(f"  test squared error per image {runs[name]['autoencoder']['test_squared_error'][-1]:.3f}")
    seconds["total"] = time.perf_counter() - start_time
    last = min(5, cfg.classifier_epochs)  # epoch-to-epoch test error moves by ~0.5%: also average the last epochs
    final = {
        name: {
            **{f"test_error_percent_{opt}": c["test_error_percent"][-1] for opt, c in run["classifier"].items()},
            **{
                f"test_error_percent_{opt}_mean_last_{last}": float(np.mean(c["test_error_percent"][-last:]))
                for opt, c in run["classifier"].items()
            },
            "deep_ae_test_squared_error": run["autoencoder"]["test_squared_error"][-1],
        }
        for name, run in runs.items()
    }

    print(
        f"\n{s.data.name}, sigmoid stack {'-'.join(map(str, cfg.sizes))}: test error, last epoch (mean of last {last})"
    )
    for name, run in runs.items():
        errors = "  ".join(
            f"{opt} {c['test_error_percent'][-1]:5.2f}% ({np.mean(c['test_error_percent'][-last:]):5.2f}%)"
            for opt, c in run["classifier"].items()
        )
        print(f"  {name:<30} {errors}   deep AE squared error {final[name]['deep_ae_test_squared_error']:.3f}")
    print("  published (MNIST, Vincent et al. 2010): SAE-3 1.40%, SDAE-3 (masking 25%) 1.28%")

    figures = [curves_figure(runs, cfg.sizes, s.data.name, s.out / "layerwise_pretraining.png")]
    if s.data.image_shape is not None:
        title = "first-layer filters before fine-tuning (each on its own grey scale, min to max)"
        path = s.out / "layerwise_pretraining_filters.png"
        rows = list(starting_points)
        figures.append(plots.samples_grid(filters, s.data.image_shape, path, n_filters, title, row_labels=rows))
        n = 10
        recons = {name: ae.reconstruct(s.data.X_test[:n]) for name, ae in autoencoders.items()}
        out = s.out / "layerwise_pretraining_reconstructions.png"
        figures.append(
            plots.reconstructions(s.data.X_test, recons, s.data.image_shape, out, n, "deep AE reconstructions")
        )
    for path in figures:
        s.figure(path)
    result = {
        "data": s.data.name,
        "n_train": len(s.data.X_train),
        "n_test": len(s.data.X_test),
        "device": s.device,
        "seed": s.seed,
        "settings": asdict(cfg),
        "fine_tuning": {opt: {"optimizer": o, "lr": lr} for opt, (o, lr) in FINE_TUNING.items()},
        "pretrain_lr": PRETRAIN_LR,
        "noise": {"kind": NOISE[0], "level": NOISE[1]},
        "final": final,
        "curves": runs,
        "pretraining_loss_per_layer": {
            name: [h["loss"] for h in start.histories] for name, start in starting_points.items() if start.histories[0]
        },
        "published": PUBLISHED,
        "seconds": seconds,
    }
    s.save_json("layerwise_pretraining.json", result)
    print(f"wall time {seconds['total']:.1f} s")
    return result


if __name__ == "__main__":
    run_script(main)
