"""Lesson: the autoencoder as a dimension reducer.

The encoder is a transformer like PCA's projection: ``ae.transform(X)`` maps (N, D) images to
(N, k) codes. With k = 2 the codes can be drawn, coloured by class; a linear probe on them says
how much of the class survives the squeeze. Against latent size, the test squared error of a
nonlinear autoencoder is set beside that of PCA (the best any k-dimensional *linear* map can do).

What the lecture predicts: a nonlinear AE reconstructs better than PCA when the code is small
(it can bend its k-dimensional surface through the data); as k grows PCA catches up, because
a wide enough linear subspace already holds most of the variance.

Run: python examples/dimension_reduction.py [--data fashion-mnist] [--device gpu] [--quick] [--out DIR]
"""

from __future__ import annotations

import time

from _common import Setup, parser, run_script, setup

from scratchae import backend, metrics, plots
from scratchae.models import AutoEncoder
from scratchae.pca import PCA

SETTINGS = {
    "quick": dict(hidden=(32,), sizes=(2, 4), epochs=4, batch_size=64, lr=3e-3, probe_epochs=5),
    "default": dict(hidden=(128,), sizes=(2, 4, 8, 16, 32), epochs=80, batch_size=64, lr=2e-3, probe_epochs=40),
    "full": dict(hidden=(512,), sizes=(2, 4, 8, 16, 32), epochs=12, batch_size=128, lr=1e-3, probe_epochs=10),
}


def train_ae(s: Setup, cfg: dict, k: int) -> AutoEncoder:
    """A sigmoid-output autoencoder D -> hidden -> k -> hidden -> D trained on squared error, PCA's loss."""
    ae = AutoEncoder(s.data.n_features, cfg["hidden"], k, loss="mse", seed=s.seed, device=s.device)
    ae.fit(s.data.X_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], verbose=s.full and k == 2)
    return ae


def main(argv: list[str] | None = None) -> None:
    s = setup(parser(__doc__.splitlines()[0]), argv, needs=("images",))
    cfg = s.pick(SETTINGS)
    d = s.data
    start = time.perf_counter()

    print(f"\n1. AE vs PCA: test squared error per example against latent size {list(cfg['sizes'])}")
    print(f"   AE: {d.n_features}-{'-'.join(map(str, cfg['hidden']))}-k, ReLU, sigmoid output, MSE, Adam")
    ae_err, pca_err, models = [], [], {}
    for k in cfg["sizes"]:
        models[k] = train_ae(s, cfg, k)
        ae_err.append(backend.to_float(metrics.reconstruction_mse(models[k], d.X_test).mean()))
        pca_err.append(backend.to_float(metrics.pca_reconstruction_error(d.X_train, d.X_test, k, s.device).mean()))
        better = "AE" if ae_err[-1] < pca_err[-1] else "PCA"
        print(f"   k={k:>3}: AE {ae_err[-1]:8.3f}   PCA {pca_err[-1]:8.3f}   better: {better}")
    ratios = [a / p for a, p in zip(ae_err, pca_err, strict=True)]
    small_wins = ae_err[0] < pca_err[0]
    catches_up = ratios[-1] > ratios[0]
    print(f"   AE/PCA error ratio per size: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"   prediction: the AE beats PCA at the smallest code (k={cfg['sizes'][0]}): {s.held(small_wins)}")
    print(f"   prediction: PCA catches up as k grows (ratio rises from first to last size): {s.held(catches_up)}")
    s.figure(
        plots.pca_vs_ae(
            cfg["sizes"],
            {"PCA (closed form)": pca_err, "nonlinear AE": ae_err},
            s.out / "dimension_reduction_pca_vs_ae.png",
            title=f"{d.name}: test reconstruction error against latent size",
        )
    )

    print("\n2. The encoder as a transformer: 2-D codes of the test images")
    ae2 = models[cfg["sizes"][0]]
    pca2 = PCA(2, device=s.device).fit(d.X_train)
    codes = {name: (m.transform(d.X_train), m.transform(d.X_test)) for name, m in (("AE", ae2), ("PCA", pca2))}
    probe = {}
    for name, (z_train, z_test) in codes.items():
        s.figure(
            plots.latent_scatter(
                z_test,
                d.y_test,
                s.out / f"dimension_reduction_latent_{name.lower()}.png",
                d.class_names,
                title=f"{d.name}: {name} codes of the test images (k = 2)",
            )
        )
        if d.y_train is not None:
            probe[name] = metrics.linear_probe_accuracy(
                z_train, d.y_train, z_test, d.y_test, epochs=cfg["probe_epochs"], seed=s.seed, device=s.device
            )
    if not probe:
        print(f"   {d.name} has no class labels: the codes are drawn in one colour, and no linear probe is run")
    else:
        chance = 1 / d.n_classes
        print(f"   linear-probe test accuracy on 2-D codes: AE {probe['AE']:.3f}, PCA {probe['PCA']:.3f}")
        print(f"   (chance {chance:.3f}); prediction: the AE's 2-D codes separate the classes better than PCA's")
        print(f"   first two components: {s.held(probe['AE'] > probe['PCA'])}")

    k_show = cfg["sizes"][len(cfg["sizes"]) // 2]
    s.figure(
        plots.reconstructions(
            d.X_test,
            models[k_show].reconstruct(d.X_test[:10]),
            d.image_shape,
            s.out / "dimension_reduction_reconstructions.png",
            title=f"AE with a {k_show}-D code: test images and reconstructions",
        )
    )
    seconds = time.perf_counter() - start
    print(f"\nwall time {seconds:.1f} s")
    s.save_json(
        "dimension_reduction.json",
        {
            "data": d.name,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "latent_sizes": list(cfg["sizes"]),
            "test_sq_error_ae": ae_err,
            "test_sq_error_pca": pca_err,
            "ae_beats_pca_at_smallest": small_wins,
            "pca_catches_up": catches_up,
            "probe_accuracy_2d": probe,
            "seconds": seconds,
        },
    )


if __name__ == "__main__":
    run_script(main)
