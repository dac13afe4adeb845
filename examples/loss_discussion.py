"""Lesson: why the VAE loss needs both of its terms.

The VAE loss per example is  -log p(x|z)  (reconstruction)  +  KL(q(z|x) || p(z)). Three VAEs of
the same network are trained:
  (a) without the KL term (beta = 0): a plain autoencoder with noise on its code;
  (b) with the normal loss;
  (c) without the reconstruction term (reconstruction_weight = 0).
For each, on the test images: the KL per example, the reconstruction error (squared error of the
decoded posterior mean), how far the codes sit from the prior, and how samples from the prior
look: their distance to the nearest training image, set against the same distance of real test
images (a ratio near 1: as close to the data as real images are; much larger: off the data).

What the lecture predicts:
  (a) good reconstructions, but the posterior leaves the prior (large KL), so decoding z ~ N(0, I)
      lands where no code was trained: poor, garbage-like samples;
  (c) the KL goes to 0: q(z|x) = p(z) for every x, the code says nothing about x, and every
      reconstruction is the same image (the mean image);
  (b) in between: KL and reconstruction error between those of (a) and (c).
Case (c) leaves the decoder untrained (no term of its loss reaches the decoder), so its "same
image" is whatever the initial decoder outputs. Case (c'), below, then trains that decoder on the
reconstruction term with the collapsed encoder frozen: with a code that carries nothing, the best
it can output is the pixel-wise mean image.

Run: python examples/loss_discussion.py [--data fashion-mnist] [--device gpu] [--quick] [--out DIR]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import Setup, parser, plural, run_script, setup
from matplotlib import colormaps
from matplotlib.figure import Figure

from scratchae import backend, metrics, plots
from scratchae.models import VAE

SETTINGS = {
    "quick": dict(hidden=(32,), latent=4, epochs=2, batch_size=64, lr=3e-3, n_show=8, n_samples=50),
    "default": dict(hidden=(256,), latent=8, epochs=100, batch_size=64, lr=1e-3, n_show=10, n_samples=500),
    "full": dict(hidden=(400,), latent=20, epochs=10, batch_size=128, lr=1e-3, n_show=12, n_samples=1000),
}
CASES = {
    "a": ("no KL term (beta = 0)", dict(beta=0.0)),
    "b": ("normal loss", {}),
    "c": ("no reconstruction term (reconstruction_weight = 0)", dict(reconstruction_weight=0.0)),
}
NEIGHBOURS = 10000  # prior samples are compared with (at most) this many training images


def nearest_sq_distance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """For each row of A (M, D): the squared distance to its nearest row of B (N, D), in float64, (M,)."""
    A, B = A.astype(np.float64), B.astype(np.float64)
    b2 = (B * B).sum(axis=1)
    out = np.empty(len(A))
    for i in range(0, len(A), 256):
        a = A[i : i + 256]
        d2 = (a * a).sum(axis=1)[:, None] + b2[None, :] - 2 * a @ B.T
        out[i : i + 256] = np.maximum(d2.min(axis=1), 0)
    return out


def case_figure(rows: list[np.ndarray], labels: list[str], shape: tuple[int, ...], path: Path, title: str) -> Path:
    """Rows of images (each (n, H*W) in [0, 1]) in one mosaic, a label left of each row."""
    imgs = [r.reshape(len(r), *shape) for r in rows]
    grid = plots.mosaic(imgs)
    h = shape[0]
    fig = Figure(figsize=(len(imgs[0]) * plots.CELL_INCHES + 1.4, len(imgs) * plots.CELL_INCHES + 0.5))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap=colormaps["gray"].with_extremes(bad="white"), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(len(imgs))], labels)
    ax.tick_params(axis="y", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title)
    fig.savefig(path, dpi=plots.DPI, bbox_inches="tight")
    return path


def measure(s: Setup, vae: VAE, cfg: dict[str, Any], reference: np.ndarray) -> dict[str, Any]:
    """KL, reconstruction error and spread, code scale, and prior-sample distance to the data, on the test set."""
    d = s.data
    X = d.X_test
    last = vae.history.last()
    recon = backend.to_numpy(vae.reconstruct(X))
    mu = backend.to_numpy(vae.transform(X))
    samples = backend.to_numpy(vae.sample(cfg["n_samples"], rng=backend.new_rng(s.seed + 7, s.device)))
    spread = float(((recon - recon.mean(axis=0)) ** 2).sum(axis=1).mean())
    data_spread = float(((X - X.mean(axis=0)) ** 2).sum(axis=1).mean())
    mean_image = d.X_train.mean(axis=0)
    return {
        "kl": last["val_kl"],
        "nll": last["val_recon"],
        "recon_sq_error": backend.to_float(metrics.reconstruction_mse(vae, X).mean()),
        "recon_spread_ratio": spread / data_spread,
        "recon_to_mean_image": float(((recon - mean_image) ** 2).sum(axis=1).mean()) / data_spread,
        "mu_std": float(mu.std(axis=0).mean()),
        "prior_sample_distance_ratio": float(nearest_sq_distance(samples, d.X_train[:NEIGHBOURS]).mean() / reference),
        "recon": recon[: cfg["n_show"]],
        "samples": samples[: 2 * cfg["n_show"]],
    }


def train(s: Setup, cfg: dict[str, Any], vae: VAE, epochs: int) -> VAE:
    vae.fit(
        s.data.X_train,
        epochs=epochs,
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        validation_data=s.data.X_test,
        verbose=s.full,
    )
    return vae


def main(argv: list[str] | None = None) -> None:
    s = setup(parser(__doc__.splitlines()[0]), argv, needs=("images",))
    cfg = s.pick(SETTINGS)
    d = s.data
    start = time.perf_counter()
    net = f"{d.n_features}-{'-'.join(map(str, cfg['hidden']))}-{cfg['latent']}"
    reference = float(nearest_sq_distance(d.X_test[: cfg["n_samples"]], d.X_train[:NEIGHBOURS]).mean())
    print(f"\nVAE {net}, ReLU, Bernoulli, {plural(cfg['epochs'], 'epoch')} of Adam {cfg['lr']:g}, per case")
    print(f"real test images: mean squared distance to the nearest training image {reference:.2f} (the yardstick)")

    results: dict[str, dict[str, Any]] = {}
    models: dict[str, VAE] = {}
    for key, (_, loss) in CASES.items():
        vae = VAE(d.n_features, cfg["hidden"], cfg["latent"], seed=s.seed, device=s.device, **loss)
        models[key] = train(s, cfg, vae, cfg["epochs"])
        results[key] = measure(s, models[key], cfg, reference)
    collapsed = VAE(d.n_features, cfg["hidden"], cfg["latent"], seed=s.seed, device=s.device)
    collapsed.load_state_dict(models["c"].state_dict())
    collapsed.encoder.freeze()
    train(s, cfg, collapsed, cfg["epochs"])
    results["c'"] = measure(s, collapsed, cfg, reference)
    labels = {**{k: v[0] for k, v in CASES.items()}, "c'": "(c)'s encoder frozen, decoder then trained"}

    print(
        f"\n{'case':<5}  {'KL/example':>10}  {'-log p(x|z)':>11}  {'sq. error':>9}  {'recon spread':>12}  "
        f"{'to mean img':>11}  {'std of mu':>9}  {'prior samples':>13}"
    )
    for key, r in results.items():
        print(
            f"{'(' + key + ')':<5}  {r['kl']:>10.3f}  {r['nll']:>11.2f}  {r['recon_sq_error']:>9.3f}  "
            f"{r['recon_spread_ratio']:>12.3f}  {r['recon_to_mean_image']:>11.3f}  {r['mu_std']:>9.3f}  "
            f"{r['prior_sample_distance_ratio']:>13.2f}"
        )
    print("recon spread / to mean img: mean squared distance of the reconstructions to their own mean / to the")
    print("training mean image, over the test images' spread (1: as varied as the data, 0: all one image).")
    print("prior samples: squared distance to the nearest training image, over that of real test images.")

    a, b, c, c2 = (results[k] for k in ("a", "b", "c", "c'"))
    checks = {
        "(a) reconstructs at least as well as (b)": a["recon_sq_error"] <= b["recon_sq_error"],
        "(a) has a larger KL than (b): its posterior leaves the prior": a["kl"] > b["kl"],
        "(a)'s prior samples are further from the data than (b)'s": (
            a["prior_sample_distance_ratio"] > b["prior_sample_distance_ratio"]
        ),
        "(c) KL -> 0 (below 0.05 nats per example)": c["kl"] < 0.05,
        "(c) reconstructions all alike (spread below 1% of the data's)": c["recon_spread_ratio"] < 0.01,
        "(c) that one image is the mean image (within 10% of the data's spread)": c["recon_to_mean_image"] < 0.1,
        "(c') with its decoder trained, the one image is the mean image": c2["recon_to_mean_image"] < 0.1,
        "(b) in between: KL(c) < KL(b) < KL(a)": c["kl"] < b["kl"] < a["kl"],
        "(b) in between: error(a) <= error(b) <= error(c)": (
            a["recon_sq_error"] <= b["recon_sq_error"] <= c["recon_sq_error"]
        ),
    }
    print()
    for text, ok in checks.items():
        print(f"prediction: {text}: {s.held(ok)}")
    if not checks["(c) that one image is the mean image (within 10% of the data's spread)"]:
        print("  (c)'s decoder never receives a gradient (its loss has no reconstruction term), so its one image is")
        print("  the untrained decoder's output. The mean image is what a decoder trained on a code that carries")
        print("  nothing should learn (it minimizes the expected -log p(x|z) then): (c') tests that.")

    shape = d.image_shape
    n = cfg["n_show"]
    for key, r in results.items():
        s.figure(
            case_figure(
                [d.X_test[:n], r["recon"], r["samples"][:n], r["samples"][n:]],
                ["test image", "reconstruction", "prior sample", "prior sample"],
                shape,
                s.out / f"loss_discussion_{key.replace(chr(39), '2')}.png",
                f"({key}) {labels[key]}: KL {r['kl']:.2f}",
            )
        )
    seconds = time.perf_counter() - start
    print(f"\nwall time {seconds:.1f} s")
    drop = ("recon", "samples")
    s.save_json(
        "loss_discussion.json",
        {
            "data": d.name,
            "network": net,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "reference_nearest_distance": reference,
            "cases": {
                k: {"label": labels[k], **{m: v for m, v in r.items() if m not in drop}} for k, r in results.items()
            },
            "predictions": checks,
            "seconds": seconds,
        },
    )


if __name__ == "__main__":
    run_script(main)
