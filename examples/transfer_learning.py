"""Autoencoder codes as features for a classifier (the lecture's figure 4).

An autoencoder is trained without labels; its encoder then serves a classifier:

- linear probe: a softmax regression on the k-dimensional AE codes, beside the same probe on the
  raw pixels (D features) and on PCA codes of the same size k;
- transfer: the encoder plus a new head (one hidden ReLU layer and a softmax), with the encoder
  frozen (only the head learns) or unfrozen (fine-tuned with the head), beside the same network
  trained from scratch;
- each of these again with only a few labelled examples (the AE and PCA still see every image).

    python examples/transfer_learning.py                        # 8x8 digits, under a minute
    python examples/transfer_learning.py --data fashion-mnist
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import Setup, parser, plural, run_script, setup
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from scratchae import backend, plots
from scratchae.metrics import linear_probe_accuracy
from scratchae.models import AutoEncoder
from scratchae.pca import PCA
from scratchae.pretrain import transfer_head

# Adam's learning rate for every classifier: probes and heads alike (a softmax on raw pixels reaches
# 78.5% on Fashion-MNIST with 1e-2, 84.0% with 1e-3)
LR = 1e-3


@dataclass(frozen=True)
class Settings:
    latent: int  # k: the AE code size and the number of PCA components
    hidden: tuple[int, ...]  # the AE's encoder layers (mirrored in its decoder)
    ae_epochs: int
    head_hidden: tuple[int, ...]
    epochs: int  # probe and head epochs with every label
    min_updates: int  # with few labels, at least this many mini-batch steps
    label_counts: tuple[int, ...]  # labelled subsets (the full training part is added)
    batch_size: int = 128


def settings(s: Setup) -> Settings:
    """Larger networks on 28x28 images; smaller on the 8x8 digits; tiny with --quick."""
    if s.quick:
        return Settings(4, (16,), 3, (8,), 3, 10, (50,), batch_size=64)
    if s.full:
        return Settings(32, (512, 128), 30, (64,), 30, 1000, (100, 1000, 10000))
    return Settings(16, (64,), 100, (32,), 100, 1000, (50, 200))


def features(s: Setup, cfg: Settings) -> tuple[dict[str, tuple[Any, Any]], AutoEncoder, dict[str, float]]:
    """{name: (train, test features)} as host arrays for raw pixels, PCA-k and AE-k codes; the trained AE; timings."""
    X, Xt, D, k = s.data.X_train, s.data.X_test, s.data.n_features, cfg.latent
    t = time.perf_counter()
    pca = PCA(k, device=s.device).fit(X)
    t_pca = time.perf_counter() - t
    print(
        f"autoencoder {D}-{'-'.join(map(str, cfg.hidden))}-{k} (ReLU, BCE, Adam), {plural(cfg.ae_epochs, 'epoch')}, "
        "no labels ..."
    )
    t = time.perf_counter()
    ae = AutoEncoder(D, cfg.hidden, k, "relu", "sigmoid", "bce", seed=s.seed, device=s.device)
    ae.fit(X, epochs=cfg.ae_epochs, lr=1e-3, batch_size=cfg.batch_size, verbose=s.full)
    t_ae = time.perf_counter() - t
    feats = {
        f"raw pixels ({D})": (X, Xt),
        f"PCA-{k} codes": (backend.to_numpy(pca.transform(X)), backend.to_numpy(pca.transform(Xt))),
        f"AE-{k} codes": (backend.to_numpy(ae.encode(X)), backend.to_numpy(ae.encode(Xt))),
    }
    return feats, ae, {"pca": t_pca, "autoencoder": t_ae}


def epochs_for(n: int, cfg: Settings) -> int:
    """cfg.epochs, or more when n examples give too few mini-batch steps per epoch."""
    return max(cfg.epochs, math.ceil(cfg.min_updates / math.ceil(n / cfg.batch_size)))


def head_accuracy(s: Setup, cfg: Settings, source: AutoEncoder, idx: np.ndarray, unfreeze: bool) -> float:
    """Test accuracy of ``source``'s encoder + a new head trained on the examples ``idx``."""
    X, y = s.data.X_train[idx], s.data.y_train[idx]
    clf = transfer_head(
        source,
        X,
        y,
        s.data.n_classes,
        cfg.head_hidden,
        unfreeze=unfreeze,
        epochs=epochs_for(len(idx), cfg),
        batch_size=cfg.batch_size,
        lr=LR,
        seed=s.seed,
    )
    return clf.score(s.data.X_test, s.data.y_test)


def accuracies(
    s: Setup, cfg: Settings, feats: dict[str, tuple[Any, Any]], ae: AutoEncoder, scratch: AutoEncoder, idx: np.ndarray
) -> dict[str, float]:
    """Every method's test accuracy when the labels of the training examples ``idx`` are known."""
    y_train, y_test = s.data.y_train[idx], s.data.y_test
    epochs = epochs_for(len(idx), cfg)
    out = {
        f"linear probe: {name}": linear_probe_accuracy(
            Z[idx],
            y_train,
            Zt,
            y_test,
            epochs=epochs,
            lr=LR,
            batch_size=cfg.batch_size,
            seed=s.seed,
            device=s.device,
        )
        for name, (Z, Zt) in feats.items()
    }
    out["encoder frozen + new head"] = head_accuracy(s, cfg, ae, idx, unfreeze=False)
    out["encoder unfrozen + new head"] = head_accuracy(s, cfg, ae, idx, unfreeze=True)
    out["same network from scratch"] = head_accuracy(s, cfg, scratch, idx, unfreeze=True)
    return out


def figure(by_count: dict[int, dict[str, float]], n_train: int, data: str, path: Path) -> Path:
    """Left: accuracy of every method with all labels (dots: the axis does not start at 0).
    Right: accuracy against the number of labels."""
    counts = sorted(by_count)
    methods = list(by_count[counts[-1]])
    full = [100 * by_count[n_train][m] for m in methods]
    fig = Figure(figsize=(12.5, 4.6))
    ax = fig.add_subplot(1, 2, 1)
    colors = [f"C{i}" for i in range(len(methods))]
    ax.scatter(full, range(len(methods)), color=colors, s=60, zorder=3)
    for i, v in enumerate(full):
        ax.annotate(f"{v:.1f}%", (v, i), xytext=(8, 0), textcoords="offset points", va="center", fontsize="small")
    ax.set_yticks(range(len(methods)), methods, fontsize="small")
    ax.set_ylim(len(methods) - 0.5, -0.5)
    lo, hi = min(full), max(full)
    ax.set_xlim(max(0.0, lo - 3), min(100.0, hi + 4))
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(f"{data}: all {n_train} labels")
    ax.grid(alpha=0.3, axis="x")
    ax = fig.add_subplot(1, 2, 2)
    for m, color in zip(methods, colors, strict=True):
        ax.plot(counts, [100 * by_count[n][m] for n in counts], marker="o", color=color, label=m)
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.xaxis.set_minor_formatter(NullFormatter())  # the log axis's in-between ticks stay unlabelled
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy against the number of labels")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=plots.DPI, bbox_inches="tight")
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    s = setup(parser(__doc__.splitlines()[0]), argv, needs=("images", "labels"))
    cfg = settings(s)
    start = time.perf_counter()
    feats, ae, seconds = features(s, cfg)
    scratch = AutoEncoder(
        s.data.n_features, cfg.hidden, cfg.latent, "relu", "sigmoid", "bce", seed=s.seed + 1, device=s.device
    )
    n_train = len(s.data.X_train)
    order = np.random.default_rng(s.seed).permutation(n_train)
    counts = [n for n in cfg.label_counts if n < n_train] + [n_train]
    by_count: dict[int, dict[str, float]] = {}
    for n in counts:
        t = time.perf_counter()
        print(f"classifiers on {n} labelled examples ({plural(epochs_for(n, cfg), 'epoch')}) ...")
        by_count[n] = accuracies(s, cfg, feats, ae, scratch, np.sort(order[:n]))
        seconds[f"classifiers_{n}_labels"] = time.perf_counter() - t
        for name, acc in by_count[n].items():
            print(f"  {name:<34} {100 * acc:6.2f}%")
    seconds["total"] = time.perf_counter() - start

    s.figure(figure(by_count, n_train, s.data.name, s.out / "transfer_learning.png"))
    s.figure(
        plots.reconstructions(
            s.data.X_test[:10],
            ae.reconstruct(s.data.X_test[:10]),
            s.data.image_shape,
            s.out / "transfer_learning_reconstructions.png",
            title=f"the autoencoder behind the codes ({cfg.latent}-D)",
        )
    )
    result = {
        "data": s.data.name,
        "n_train": n_train,
        "n_test": len(s.data.X_test),
        "device": s.device,
        "seed": s.seed,
        "settings": asdict(cfg),
        "autoencoder": [s.data.n_features, *cfg.hidden, cfg.latent, *cfg.hidden[::-1], s.data.n_features],
        "test_accuracy_by_labels": {str(n): acc for n, acc in by_count.items()},
        "seconds": seconds,
    }
    s.save_json("transfer_learning.json", result)
    print(f"wall time {seconds['total']:.1f} s")
    return result


if __name__ == "__main__":
    run_script(main)
