"""Lesson: the VAE as a generator.

A VAE learns q(z|x) = N(mu(x), diag(exp(logvar(x)))) and p(x|z) (Bernoulli here) under the prior
p(z) = N(0, I) by maximizing the ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)). New images are
decoded from z ~ p(z). The script draws random samples, trains a second VAE with a 2-D code to
show the decoder over the latent plane (a grid of N(0, 1) quantiles) and the codes of the test
images, and plots the two loss terms (reconstruction and KL) per epoch.

``--reference`` (on by default for Fashion-MNIST at full settings) trains the reference VAE:
784-400-20, ReLU, Bernoulli decoder, batch 128, Adam 1e-3, 10 epochs, and reports its test ELBO
per example and the importance-weighted (IWAE) estimate of log p(x) with k = 1000; when PyTorch is
installed, the same configuration is trained in PyTorch on the same data and its test ELBO is set
beside ours. Fashion-MNIST pixels are grey levels in [0, 1] and are used as the Bernoulli targets
as they are (not binarized), by both implementations.

Run: python examples/vae_generation.py [--reference] [--data fashion-mnist] [--device gpu] [--quick] [--out DIR]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import Setup, parser, plural, run_script, setup

from scratchae import backend, metrics, plots
from scratchae.bench import torch_negative_elbo, torch_vae
from scratchae.models import VAE

SETTINGS = {
    "quick": dict(hidden=(32,), latent=4, epochs=2, batch_size=64, lr=3e-3, grid=6, iwae_k=50, iwae_n=100),
    "default": dict(hidden=(256,), latent=8, epochs=150, batch_size=64, lr=1e-3, grid=15, iwae_k=1000, iwae_n=1000),
    "full": dict(hidden=(400,), latent=20, epochs=10, batch_size=128, lr=1e-3, grid=20, iwae_k=1000, iwae_n=1000),
}
REFERENCE = dict(hidden=(400,), latent=20, epochs=10, batch_size=128, lr=1e-3)


def train_vae(s: Setup, hidden: tuple[int, ...], latent: int, cfg: dict[str, Any]) -> tuple[VAE, float]:
    """A ReLU VAE with a Bernoulli decoder, trained with Adam; the test set is its validation data."""
    vae = VAE(s.data.n_features, hidden, latent, seed=s.seed, device=s.device)
    start = time.perf_counter()
    vae.fit(
        s.data.X_train,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        validation_data=s.data.X_test,
        verbose=s.full,
    )
    return vae, time.perf_counter() - start


def torch_reference_elbo(X_train: np.ndarray, X_test: np.ndarray, cfg: dict[str, Any], seed: int) -> dict[str, float]:
    """The reference VAE in PyTorch (CPU): the same layers, loss, optimizer, batch size and epochs.

    Encoder: Linear(D, 400), ReLU, Linear(400, 2 * latent) split into (mu, logvar); decoder: Linear(latent, 400),
    ReLU, Linear(400, D) giving Bernoulli logits. Loss per batch: (sum of BCE with logits + sum of the Gaussian KL)
    / batch size. PyTorch's default initialization (ours differs); one thread (on a busy machine PyTorch's own
    thread pool can be many times slower at these sizes). Returns the test ELBO per example (one draw of z per
    image, analytic KL) and the training seconds.
    """
    import torch

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    (h,) = cfg["hidden"]
    encoder, decoder = torch_vae(X_train.shape[1], h, cfg["latent"])
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=cfg["lr"])

    def neg_elbo(x: torch.Tensor) -> torch.Tensor:
        return torch_negative_elbo(encoder, decoder, x)

    train, test = torch.from_numpy(X_train), torch.from_numpy(X_test)
    start = time.perf_counter()
    for _ in range(cfg["epochs"]):
        order = torch.randperm(len(train))
        for i in range(0, len(train), cfg["batch_size"]):
            loss = neg_elbo(train[order[i : i + cfg["batch_size"]]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        elbo = -float(torch.cat([neg_elbo(test[i : i + 1000]) for i in range(0, len(test), 1000)]).mean())
    torch.set_num_threads(threads)
    return {"test_elbo": elbo, "train_seconds": seconds}


def reference_study(s: Setup, vae: VAE, cfg: dict[str, Any], train_seconds: float) -> dict[str, Any]:
    """Test ELBO, IWAE estimate, and the PyTorch twin of the reference VAE; prints each and its check."""
    d = s.data
    elbo = backend.to_float(metrics.elbo(vae, d.X_test, seed=s.seed + 1).mean())
    n = min(cfg["iwae_n"], len(d.X_test))
    start = time.perf_counter()
    iwae = backend.to_float(metrics.iwae(vae, d.X_test[:n], k=cfg["iwae_k"], seed=s.seed + 2).mean())
    iwae_seconds = time.perf_counter() - start
    elbo_n = backend.to_float(metrics.elbo(vae, d.X_test[:n], seed=s.seed + 3).mean())
    trained = plural(vae.epochs_trained, "epoch")
    print(f"\nreference VAE {d.n_features}-400-20, ReLU, Bernoulli, batch 128, Adam 1e-3, {trained}")
    print("targets: the grey levels in [0, 1] as they are (not binarized), for scratchae and PyTorch alike")
    print(f"  scratchae: test ELBO per example {elbo:.2f} nats ({len(d.X_test)} test images, one z per image)")
    print(f"  IWAE log p(x) estimate, k={cfg['iwae_k']}, first {n} test images: {iwae:.2f} (ELBO on them {elbo_n:.2f})")
    print(f"  prediction: IWAE >= ELBO (a tighter bound): {s.held(iwae >= elbo_n)} (gap {iwae - elbo_n:.2f} nats)")
    out: dict[str, Any] = {
        "test_elbo": elbo,
        "iwae_k": cfg["iwae_k"],
        "iwae_n": n,
        "iwae": iwae,
        "elbo_on_iwae_images": elbo_n,
        "iwae_seconds": iwae_seconds,
        "train_seconds": train_seconds,
        "torch": None,
    }
    try:
        import torch  # noqa: F401
    except ImportError:
        print("  PyTorch is not installed: the PyTorch comparison is skipped")
        return out
    ref = {**REFERENCE, "epochs": cfg["reference_epochs"]}
    t = torch_reference_elbo(d.X_train, d.X_test, ref, s.seed)
    rel = abs(elbo - t["test_elbo"]) / abs(t["test_elbo"])
    print(f"  PyTorch:   test ELBO per example {t['test_elbo']:.2f} nats (trained in {t['train_seconds']:.1f} s on one")
    print(f"             CPU thread; ours in {train_seconds:.1f} s on {s.device})")
    print(f"  prediction: the two agree within 1%: {s.held(rel < 0.01)} (relative difference {100 * rel:.2f}%)")
    out["torch"] = {**t, "relative_difference": rel, "agree_within_1pct": rel < 0.01}
    return out


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--reference", action="store_true", help="the reference VAE, its IWAE estimate and PyTorch twin")
    s = setup(p, argv, needs=("images",))
    cfg = dict(s.pick(SETTINGS))
    cfg["reference_epochs"] = 1 if s.quick else REFERENCE["epochs"]
    reference = s.args.reference or s.full
    d = s.data
    start = time.perf_counter()

    main_cfg = {**cfg, **REFERENCE, "epochs": cfg["reference_epochs"]} if reference else cfg
    name = "reference VAE" if reference else "VAE"
    print(f"\n{name} {d.n_features}-{'-'.join(map(str, main_cfg['hidden']))}-{main_cfg['latent']}, ReLU, Bernoulli")
    vae, vae_seconds = train_vae(s, main_cfg["hidden"], main_cfg["latent"], main_cfg)
    last = vae.history.last()
    print(
        f"  after {plural(last['epoch'], 'epoch')}: train recon {last['recon']:.2f} + KL {last['kl']:.2f}; "
        f"test recon {last['val_recon']:.2f} + KL {last['val_kl']:.2f} = -ELBO {last['val_loss']:.2f} nats"
    )
    s.figure(
        plots.loss_curves(
            vae.history, s.out / "vae_generation_loss.png", title=f"{name} on {d.name}: the two terms", held_out="test"
        )
    )
    s.figure(
        plots.samples_grid(
            vae.sample(64, rng=backend.new_rng(s.seed + 4, s.device)),
            d.image_shape,
            s.out / "vae_generation_samples.png",
            title=f"{name}: decoder mean at 64 draws of z ~ N(0, I)",
        )
    )
    result: dict[str, Any] = {"data": d.name, "model": name, "history": vae.history.to_dict()}
    if reference:
        result["reference"] = reference_study(s, vae, cfg, vae_seconds)

    print(f"\nVAE with a 2-D code, {d.n_features}-{'-'.join(map(str, cfg['hidden']))}-2")
    vae2, _ = train_vae(s, cfg["hidden"], 2, cfg)
    mu = backend.to_numpy(vae2.transform(d.X_test))
    centre, spread = np.abs(mu.mean(axis=0)).max(), mu.std(axis=0)
    fills = bool(centre < 0.5 and np.all((spread > 0.5) & (spread < 1.5)))
    print(
        f"  test -ELBO {vae2.history.last()['val_loss']:.2f} nats; posterior means: |mean| <= {centre:.2f}, "
        f"std {spread[0]:.2f}, {spread[1]:.2f}"
    )
    print("  prediction: the KL term keeps the codes where the prior is (|mean| < 0.5, std in 0.5..1.5), so the")
    print(f"  N(0, 1) quantile grid decodes to the data's kinds of images: {s.held(fills)}")
    Z, values = plots.manifold_points(cfg["grid"])
    s.figure(
        plots.latent_manifold(
            vae2.decode(Z),
            d.image_shape,
            s.out / "vae_generation_manifold.png",
            values,
            title=f"{d.name}: the 2-D VAE's decoder over the latent plane (N(0, 1) quantiles)",
        )
    )
    s.figure(
        plots.latent_scatter(
            mu,
            d.y_test,
            s.out / "vae_generation_latent.png",
            d.class_names,
            title=f"{d.name}: posterior means (2-D VAE)",
        )
    )
    seconds = time.perf_counter() - start
    print(f"\nwall time {seconds:.1f} s")
    result["latent2"] = {
        "test_neg_elbo": vae2.history.last()["val_loss"],
        "mu_abs_mean_max": float(centre),
        "mu_std": spread.tolist(),
        "codes_fill_prior": fills,
    }
    result["seconds"] = seconds
    s.save_json("vae_generation.json", result)


if __name__ == "__main__":
    run_script(main)
