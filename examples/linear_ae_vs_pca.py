"""Autoencoders against PCA (the lecture's figure 2).

Four ways to squeeze an image into a few numbers and back, scored on the test part:

- PCA with k components: the best any rank-k linear map can do in squared error;
- the linear autoencoder D-k-D (identity activation, linear output, squared-error loss): its
  test error should come within 1% of PCA's, and its decoder should span PCA's subspace
  (the principal angles between the two tell how closely);
- a deep autoencoder D-1000-500-250-k (ReLU, linear code, sigmoid output, BCE, Adam): Hinton &
  Salakhutdinov (2006) report it far below PCA on MNIST (3.00 vs 13.87 squared error per image);
- the Keras tutorial's shallow autoencoder D-32-D (ReLU code, sigmoid output, BCE, Adam, batch
  256, 50 epochs): its test BCE per pixel (the Keras blog reports about 0.09-0.10 on MNIST).

Then the test error of PCA, the linear AE and a deep AE against the latent size.

The sizes above are the published ones, used on 28x28 images (k = 30; the deep AE trains 30 epochs).
On the 8x8 digits the script scales them down: k = 8, a deep AE 64-128-64-8 and a shallow AE 64-16-64
of 100 epochs each, the linear AE 200.

    python examples/linear_ae_vs_pca.py                        # 8x8 digits, under a minute
    python examples/linear_ae_vs_pca.py --data fashion-mnist   # the published sizes
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from _common import Setup, parser, plural, run_script, setup
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scratchae import backend, plots
from scratchae.metrics import reconstruction_bce, reconstruction_mse
from scratchae.models import AutoEncoder
from scratchae.pca import PCA, principal_angles

SAME_DIRECTION_DEG = 5.0  # a principal angle below this counts the two subspaces' directions as one

PUBLISHED = {
    "source": "Hinton & Salakhutdinov (2006), Science 313:504, fig. 2 (MNIST test set); Keras blog "
    "'Building Autoencoders in Keras' (Chollet 2016, MNIST)",
    "mnist_deep_ae_784_1000_500_250_30_squared_error": 3.00,
    "mnist_logistic_pca_30_squared_error": 8.01,
    "mnist_pca_30_squared_error": 13.87,
    "mnist_keras_shallow_ae_32_bce_per_pixel": "about 0.09-0.10",
}


@dataclass(frozen=True)
class Settings:
    latent: int  # k: PCA components and the code size of the linear and deep AEs
    deep_hidden: tuple[int, ...]
    deep_epochs: int
    linear_schedule: tuple[tuple[float, int], ...]  # (learning rate, epochs in all at its end)
    shallow_code: int
    shallow_epochs: int
    sweep_sizes: tuple[int, ...]
    sweep_epochs: int  # deep AE epochs per latent size (the linear AE keeps its schedule)
    batch_size: int = 128


def settings(s: Setup) -> Settings:
    """Published sizes on 28x28 images; smaller ones on the 8x8 digits; tiny ones with --quick."""
    if s.quick:
        return Settings(4, (32, 16), 2, ((1e-2, 2),), 8, 2, (2, 4, 8), 1, batch_size=64)
    if s.full:
        return Settings(
            30, (1000, 500, 250), 30, ((1e-3, 10), (3e-4, 16), (1e-4, 20)), 32, 50, (2, 5, 10, 20, 30, 50), 6
        )
    return Settings(8, (128, 64), 100, ((1e-2, 100), (3e-3, 150), (1e-3, 200)), 16, 100, (2, 4, 8, 16), 60)


def mean_squared_error(model: Any, X: Any) -> float:
    """Test squared error per image: sum over pixels of (x - xhat)^2, averaged over images."""
    return backend.to_float(reconstruction_mse(model, X).mean())


def error_curve(X_test: Any, curve: list[float]) -> Callable[[int, dict[str, float], Any], None]:
    """A ``fit`` callback that appends the test squared error per image after every epoch."""

    def record(epoch: int, logs: dict[str, float], model: Any) -> None:
        curve.append(mean_squared_error(model, X_test))

    return record


def linear_autoencoder(s: Setup, cfg: Settings, k: int, curve: list[float] | None = None) -> AutoEncoder:
    """The D-k-D linear autoencoder, trained with Adam through ``cfg.linear_schedule``."""
    model = AutoEncoder(s.data.n_features, (), k, "identity", "linear", "mse", seed=s.seed, device=s.device)
    callbacks = [error_curve(s.data.X_test, curve)] if curve is not None else []
    for lr, epochs in cfg.linear_schedule:
        model.fit(s.data.X_train, epochs=epochs, lr=lr, batch_size=cfg.batch_size, callbacks=callbacks, verbose=False)
    return model


def deep_autoencoder(
    s: Setup, cfg: Settings, k: int, epochs: int, curve: list[float] | None = None, verbose: bool = False
) -> AutoEncoder:
    """D-hidden-k-reversed hidden-D, ReLU, linear code, sigmoid output, BCE, Adam (lr 1e-3)."""
    model = AutoEncoder(s.data.n_features, cfg.deep_hidden, k, "relu", "sigmoid", "bce", seed=s.seed, device=s.device)
    callbacks = [error_curve(s.data.X_test, curve)] if curve is not None else []
    model.fit(s.data.X_train, epochs=epochs, lr=1e-3, batch_size=cfg.batch_size, callbacks=callbacks, verbose=verbose)
    return model


def target_entropy_per_pixel(X: np.ndarray) -> float:
    """Mean over pixels of -[x log x + (1-x) log(1-x)]: the least BCE any model can reach on grey targets."""
    x = np.clip(np.asarray(X, dtype=np.float64), 1e-12, 1 - 1e-12)
    return float(np.mean(-(x * np.log(x) + (1 - x) * np.log1p(-x))))


def shallow_autoencoder(s: Setup, cfg: Settings) -> AutoEncoder:
    """The Keras blog's autoencoder: D-code ReLU, sigmoid output, BCE, Adam, batch 256."""
    model = AutoEncoder(
        s.data.n_features,
        (),
        cfg.shallow_code,
        "relu",
        "sigmoid",
        "bce",
        code_activation="relu",
        seed=s.seed,
        device=s.device,
    )
    model.fit(s.data.X_train, epochs=cfg.shallow_epochs, lr=1e-3, batch_size=256, verbose=False)
    return model


def curves_figure(
    curves: dict[str, list[float]], pca_error: float, angles: np.ndarray, k: int, data: str, path: Any
) -> Any:
    """Left: test squared error per image against epoch, PCA-k as a line. Right: the principal angles
    between the linear AE's decoder subspace and PCA's."""
    fig = Figure(figsize=(11, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=2.5, label=name)
    ax.axhline(pca_error, color="black", linestyle="--", label=f"PCA-{k} ({pca_error:.2f})")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("test squared error per image")
    ax.set_title(f"{data}: reconstruction error, k = {k}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(range(1, len(angles) + 1), angles, marker="o", markersize=3)
    ax.set_xlabel("principal angle index (ascending)")
    ax.set_ylabel("degrees")
    ax.set_title(f"linear AE decoder vs PCA-{k} subspace: principal angles")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=plots.DPI, bbox_inches="tight")
    return path


def truncated_pca_error(pca: PCA, k: int, X: Any) -> float:
    """Test squared error per image of PCA with k components, from a PCA fitted with >= k components
    (its first k components are the k-component PCA's)."""
    Xc = backend.as_float_array(X, pca.dtype, pca.device) - pca.mean_
    C = pca.components_[:k]
    diff = Xc - (Xc @ C.T) @ C
    return backend.to_float((diff * diff).sum(axis=1).mean())


def latent_sweep(s: Setup, cfg: Settings, pca: PCA) -> dict[str, list[float]]:
    """Test squared error per image of PCA (truncations of ``pca``), the linear AE and the deep AE per latent size."""
    errors: dict[str, list[float]] = {"PCA": [], "linear AE": [], f"deep AE ({plural(cfg.sweep_epochs, 'epoch')})": []}
    for k in cfg.sweep_sizes:
        values = [
            truncated_pca_error(pca, k, s.data.X_test),
            mean_squared_error(linear_autoencoder(s, cfg, k), s.data.X_test),
            mean_squared_error(deep_autoencoder(s, cfg, k, cfg.sweep_epochs), s.data.X_test),
        ]
        for name, value in zip(errors, values, strict=True):
            errors[name].append(value)
        print(f"  k = {k:>3}: " + "  ".join(f"{n} {v:.3f}" for n, v in zip(errors, values, strict=True)))
    return errors


def report(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    s = setup(parser(__doc__.splitlines()[0]), argv, needs=("images",))
    cfg = settings(s)
    k, D = cfg.latent, s.data.n_features
    X_train, X_test = s.data.X_train, s.data.X_test
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    print(f"PCA with {k} components ...")
    pca = PCA(k, device=s.device).fit(X_train)
    pca_error = mean_squared_error(pca, X_test)
    # more components: the latent sizes of the sweep, and the eigenvalue just past k
    spectrum = PCA(max(*cfg.sweep_sizes, k + 1), device=s.device).fit(X_train)
    eigenvalues = backend.to_numpy(spectrum.explained_variance_)
    seconds["pca"] = time.perf_counter() - start

    print(f"linear autoencoder {D}-{k}-{D} ...")
    t = time.perf_counter()
    curves: dict[str, list[float]] = {f"linear AE {D}-{k}-{D}": []}
    linear = linear_autoencoder(s, cfg, k, curves[f"linear AE {D}-{k}-{D}"])
    linear_error = mean_squared_error(linear, X_test)
    angles = principal_angles(linear.decoder.net.layers[0].W.data.T, pca.components_.T)
    seconds["linear_ae"] = time.perf_counter() - t

    deep_name = f"deep AE {D}-{'-'.join(map(str, cfg.deep_hidden))}-{k}"
    print(f"{deep_name} (and mirrored decoder), {plural(cfg.deep_epochs, 'epoch')} ...")
    t = time.perf_counter()
    curves[deep_name] = []
    deep = deep_autoencoder(s, cfg, k, cfg.deep_epochs, curves[deep_name], verbose=s.full)
    deep_error = curves[deep_name][-1]
    seconds["deep_ae"] = time.perf_counter() - t

    print(f"shallow autoencoder {D}-{cfg.shallow_code}-{D} (Keras tutorial), {plural(cfg.shallow_epochs, 'epoch')} ...")
    t = time.perf_counter()
    shallow = shallow_autoencoder(s, cfg)
    shallow_bce = backend.to_float(reconstruction_bce(shallow, X_test).mean()) / D
    floor = target_entropy_per_pixel(X_test)
    seconds["shallow_ae"] = time.perf_counter() - t

    print(f"latent sizes {list(cfg.sweep_sizes)} ...")
    t = time.perf_counter()
    sweep = latent_sweep(s, cfg, spectrum)
    seconds["latent_sweep"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start

    print(f"\ntest squared error per image ({s.data.name}, {len(X_test)} test images, sum over {D} pixels):")
    report(
        [
            (f"PCA-{k}", f"{pca_error:.3f}"),
            (f"linear AE {D}-{k}-{D}", f"{linear_error:.3f}  ({100 * (linear_error / pca_error - 1):+.2f}% vs PCA)"),
            (deep_name, f"{deep_error:.3f}  ({deep_error / pca_error:.2f} x PCA)"),
            (f"shallow AE {D}-{cfg.shallow_code}-{D}", f"{mean_squared_error(shallow, X_test):.3f}"),
        ]
    )
    print(
        f"principal angles linear AE vs PCA (degrees): max {angles.max():.2f}, mean {angles.mean():.2f}, "
        f"median {np.median(angles):.2f}"
    )
    gap = 1 - eigenvalues[k] / eigenvalues[k - 1]
    print(
        f"  eigenvalues at the edge of the subspace: lambda_{k} = {eigenvalues[k - 1]:.4f}, lambda_{k + 1} = "
        f"{eigenvalues[k]:.4f} ({100 * gap:.1f}% apart); the smaller this gap, the more slowly gradient descent "
        f"settles the last direction (and the less that direction matters to the error)"
    )
    print(f"shallow AE test BCE per pixel: {shallow_bce:.4f} (entropy of the grey targets, the floor: {floor:.4f})")
    print("published (MNIST): deep AE 3.00, logistic PCA 8.01, PCA 13.87 per image; Keras shallow AE about 0.09-0.10")
    above = 100 * (linear_error / pca_error - 1)
    print(
        f"\nprediction: the linear AE comes within 1% of PCA's test error ({above:+.2f}%): "
        f"{s.held(linear_error <= 1.01 * pca_error)}"
    )
    close = int((angles < SAME_DIRECTION_DEG).sum())
    print(
        f"prediction: the linear AE's decoder spans PCA's subspace, every principal angle below "
        f"{SAME_DIRECTION_DEG:g} degrees ({close} of {k} are, the largest {angles.max():.1f}): {s.held(close == k)}"
    )

    n = 10
    models = {f"PCA-{k}": pca, "linear AE": linear, "deep AE": deep, "shallow AE": shallow}
    recons = {name: m.reconstruct(X_test[:n]) for name, m in models.items()}
    figures = [
        plots.reconstructions(
            X_test,
            recons,
            s.data.image_shape,
            s.out / "linear_ae_vs_pca_reconstructions.png",
            n,
            f"{s.data.name}: test images and their reconstructions (k = {k})",
        ),
        curves_figure(curves, pca_error, angles, k, s.data.name, s.out / "linear_ae_vs_pca.png"),
        plots.pca_vs_ae(
            cfg.sweep_sizes,
            sweep,
            s.out / "linear_ae_vs_pca_latent.png",
            title=f"{s.data.name}: test squared error per image against latent size",
        ),
    ]
    for path in figures:
        s.figure(path)
    result = {
        "data": s.data.name,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "device": s.device,
        "seed": s.seed,
        "settings": asdict(cfg),
        "pca": {
            "k": k,
            "test_squared_error": pca_error,
            "eigenvalues": [float(v) for v in eigenvalues],
            "relative_gap_k_to_k_plus_1": float(gap),
        },
        "linear_ae": {
            "architecture": [D, k, D],
            "test_squared_error": linear_error,
            "relative_to_pca": linear_error / pca_error - 1,
            "within_1_percent": bool(linear_error <= 1.01 * pca_error),
            "principal_angles_deg": [float(a) for a in angles],
            "test_error_per_epoch": curves[f"linear AE {D}-{k}-{D}"],
        },
        "deep_ae": {
            "architecture": [D, *cfg.deep_hidden, k, *cfg.deep_hidden[::-1], D],
            "test_squared_error": deep_error,
            "ratio_to_pca": deep_error / pca_error,
            "test_error_per_epoch": curves[deep_name],
        },
        "shallow_ae": {
            "architecture": [D, cfg.shallow_code, D],
            "test_bce_per_pixel": shallow_bce,
            "target_entropy_per_pixel": floor,
            "test_squared_error": mean_squared_error(shallow, X_test),
        },
        "latent_sweep": {"sizes": list(cfg.sweep_sizes), "test_squared_error": sweep},
        "published": PUBLISHED,
        "seconds": seconds,
    }
    s.save_json("linear_ae_vs_pca.json", result)
    print(f"wall time {seconds['total']:.1f} s")
    return result


if __name__ == "__main__":
    run_script(main)
