"""Lesson: the denoising autoencoder.

A DAE sees a corrupted copy x~ of each image and is trained to output the clean x:
loss = -log p(x | decoder(encoder(x~))), with a fresh corruption each time an example is seen.
Three corruptions: masking (pixels set to 0), gaussian (x + s * N(0, 1)), salt-and-pepper
(pixels set to 0 or 1). On the test images, corrupted once with a fixed seed, the script
compares three squared errors to the clean image (sum over pixels, mean over images):
the noisy input itself, a plain AE (same network, trained on clean images) fed the noisy
input, and the DAE fed the noisy input.

What the lecture predicts: the DAE's output is closer to the clean image than the noisy
input is, and closer than a plain AE's output on the same noisy input (the plain AE never
learned to ignore noise).

Run: python examples/denoising.py [--data fashion-mnist] [--device gpu] [--quick] [--out DIR]
"""

from __future__ import annotations

import time

from _common import Setup, parser, plural, run_script, setup

from scratchae import backend, plots
from scratchae.data import corrupt
from scratchae.models import AutoEncoder, DenoisingAutoEncoder

NOISES = {"masking": 0.5, "gaussian": 0.5, "salt_pepper": 0.3}
SETTINGS = {
    "quick": dict(hidden=(32,), latent=16, epochs=3, batch_size=64, lr=3e-3),
    "default": dict(hidden=(128,), latent=32, epochs=60, batch_size=64, lr=2e-3),
    "full": dict(hidden=(512,), latent=64, epochs=10, batch_size=128, lr=1e-3),
}


def sq_error(A, B) -> float:
    """Mean over rows of sum_d (a_d - b_d)^2 (host or device arrays)."""
    diff = backend.to_numpy(A) - backend.to_numpy(B)
    return float((diff * diff).sum(axis=1).mean())


def train(s: Setup, cfg: dict, noise: str | None) -> AutoEncoder:
    """The plain AE (noise None) or a DAE with that noise, same network and training."""
    args = (s.data.n_features, cfg["hidden"], cfg["latent"])
    common = dict(seed=s.seed, device=s.device)
    if noise is None:
        model = AutoEncoder(*args, **common)
    else:
        model = DenoisingAutoEncoder(*args, noise=noise, noise_level=NOISES[noise], **common)
    model.fit(s.data.X_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], verbose=s.full)
    return model


def main(argv: list[str] | None = None) -> None:
    s = setup(parser(__doc__.splitlines()[0]), argv, needs=("images",))
    cfg = s.pick(SETTINGS)
    X = s.data.X_test
    start = time.perf_counter()
    net = f"{s.data.n_features}-{'-'.join(map(str, cfg['hidden']))}-{cfg['latent']}"
    print(f"\nnetwork {net} (ReLU, sigmoid output, BCE), {plural(cfg['epochs'], 'epoch')}, Adam {cfg['lr']:g}")
    plain = train(s, cfg, None)
    clean_err = sq_error(plain.reconstruct(X), X)
    print(f"plain AE on CLEAN test images: squared error {clean_err:.3f} (the floor of what this network reaches)")
    print("\nsquared error to the clean test image, per example:")
    print(f"  {'noise':<12} {'level':>5}  {'noisy input':>11}  {'plain AE':>9}  {'DAE':>9}  DAE best")
    results, all_held = {}, True
    for k, (noise, level) in enumerate(NOISES.items()):
        dae = train(s, cfg, noise)
        noisy = corrupt(X, noise, level, rng=s.seed + 1000 + k)
        cleaned = dae.denoise(noisy)
        row = {
            "level": level,
            "noisy": sq_error(noisy, X),
            "plain_ae": sq_error(plain.reconstruct(noisy), X),
            "dae": sq_error(cleaned, X),
        }
        row["dae_beats_plain"] = row["dae"] < row["plain_ae"]
        row["dae_beats_noisy"] = row["dae"] < row["noisy"]
        ok = row["dae_beats_plain"] and row["dae_beats_noisy"]
        all_held &= ok
        results[noise] = row
        print(
            f"  {noise:<12} {level:>5g}  {row['noisy']:>11.3f}  {row['plain_ae']:>9.3f}  {row['dae']:>9.3f}  "
            f"{'yes' if ok else 'no'}"
        )
        s.figure(
            plots.denoising(
                noisy,
                cleaned,
                X,
                s.data.image_shape,
                s.out / f"denoising_{noise}.png",
                title=f"DAE, {noise.replace('_', ' and ')} noise (level {level:g}): test images",
            )
        )
    print("\nprediction: the DAE's output is closer to the clean image than the noisy input and than a plain AE's")
    print(f"output, for every noise: {s.held(all_held)}")
    seconds = time.perf_counter() - start
    print(f"wall time {seconds:.1f} s")
    s.save_json(
        "denoising.json",
        {
            "data": s.data.name,
            "network": net,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "plain_ae_clean_error": clean_err,
            "noise": results,
            "prediction_held": all_held,
            "seconds": seconds,
        },
    )


if __name__ == "__main__":
    run_script(main)
