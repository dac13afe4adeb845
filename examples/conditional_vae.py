"""Lesson: the conditional VAE, generation controlled by the class.

A CVAE appends the one-hot class c to the encoder's input and to the code: q(z|x, c), p(x|z, c).
Trained on labelled images, its decoder takes the class as a command: decoding the same z with
each class c gives one image per class in the same "style" (the part of the image z holds).
The figure is the class-by-sample grid: row c decodes class c, column j uses the same z_j ~ N(0, I)
in every row.

Did the model draw what it was asked? A classifier trained on the real training images (never
on generated ones) labels many samples of each class; the per-class accuracy is the fraction of
class-c samples it calls c.

What the lecture predicts: the samples of class c look like class c, so the classifier's accuracy
on them is close to its accuracy on real test images, and far above chance, for every class.
The label only commands what z does not already say: early in training the encoder still puts part
of the class into z (the KL term removes it slowly), and samples then follow z more than the label;
``--epochs`` and ``--latent`` change the training length and the size of z.

Run: python examples/conditional_vae.py [--data fashion-mnist] [--device gpu] [--quick] [--out DIR]
"""

from __future__ import annotations

import time

import numpy as np
from _common import parser, run_script, setup

from scratchae import backend, plots
from scratchae.cli.args import positive_int
from scratchae.models import Classifier, ConditionalVAE

SETTINGS = {
    "quick": dict(hidden=(32,), latent=4, epochs=2, lr=3e-3, batch_size=64, clf_epochs=2, per_class=10, columns=4),
    "default": dict(
        hidden=(256,), latent=4, epochs=150, lr=1e-3, batch_size=64, clf_epochs=30, per_class=200, columns=10
    ),
    "full": dict(hidden=(400,), latent=20, epochs=20, lr=1e-3, batch_size=128, clf_epochs=5, per_class=500, columns=12),
}
# the prediction counts as held when the generated-sample accuracy is within this much of the real-test accuracy
TOLERANCE = 0.10


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--latent", type=positive_int, help="size of z (default: 4 on digits, 20 at full settings)")
    p.add_argument("--epochs", type=positive_int, help="CVAE training epochs (default: 150 on digits, 20 at full)")
    s = setup(p, argv, needs=("images", "labels"))
    d = s.data
    cfg = dict(s.pick(SETTINGS))
    for name in ("latent", "epochs"):
        cfg[name] = getattr(s.args, name) or cfg[name]
    C = d.n_classes
    names = list(d.class_names or range(C))
    start = time.perf_counter()

    net = f"{d.n_features}+{C}-{'-'.join(map(str, cfg['hidden']))}-{cfg['latent']}"
    print(f"\nconditional VAE {net} (one-hot class appended to x and to z), ReLU, Bernoulli")
    cvae = ConditionalVAE(d.n_features, C, cfg["hidden"], cfg["latent"], seed=s.seed, device=s.device)
    fit = dict(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], verbose=s.full)
    cvae.fit(d.X_train, d.y_train, validation_data=(d.X_test, d.y_test), **fit)
    last = cvae.history.last()
    print(f"  test recon {last['val_recon']:.2f} + KL {last['val_kl']:.2f} = -ELBO {last['val_loss']:.2f} nats")

    rng = backend.new_rng(s.seed + 1, s.device)
    z = cvae.draw_eps((cfg["columns"], cfg["latent"]), rng)
    xp = backend.array_module(s.device)
    grid = cvae.decode(xp.tile(z, (C, 1)), np.repeat(np.arange(C), cfg["columns"]))
    s.figure(
        plots.class_grid(
            grid,
            d.image_shape,
            s.out / "conditional_vae_grid.png",
            C,
            [str(n) for n in names],
            title=f"CVAE on {d.name}: row = class, column = one z for every row",
        )
    )

    print(f"\nclassifier on the real training images: {d.n_features}-256-{C}, ReLU, softmax")
    clf = Classifier(d.n_features, C, hidden=(256,), seed=s.seed, device=s.device)
    clf.fit(d.X_train, d.y_train, epochs=cfg["clf_epochs"], batch_size=128, lr=1e-3, verbose=False)
    real_acc = clf.score(d.X_test, d.y_test)
    labels = np.repeat(np.arange(C), cfg["per_class"])
    samples = cvae.sample(len(labels), y=labels, rng=rng)
    predicted = backend.to_numpy(clf.predict(samples))
    per_class = [float((predicted[labels == c] == c).mean()) for c in range(C)]
    gen_acc = float(np.mean(per_class))
    print(f"  accuracy on real test images: {real_acc:.3f}")
    print(f"  accuracy on {cfg['per_class']} generated samples per class (asked class = label):")
    width = max(len(str(n)) for n in names)
    for c in range(C):
        print(f"    {str(names[c]):<{width}}  {per_class[c]:.3f}")
    print(f"    {'all':<{width}}  {gen_acc:.3f}   (chance {1 / C:.3f})")
    close = gen_acc >= real_acc - TOLERANCE
    above = min(per_class) > 1 / C
    print("  prediction: generated samples are classified as asked about as often as real images are")
    print(f"  (within {TOLERANCE:.2f}): {s.held(close)}; every class above chance: {s.held(above)}")
    seconds = time.perf_counter() - start
    print(f"\nwall time {seconds:.1f} s")
    s.save_json(
        "conditional_vae.json",
        {
            "data": d.name,
            "network": net,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "test_neg_elbo": last["val_loss"],
            "test_recon": last["val_recon"],
            "test_kl": last["val_kl"],
            "classifier_real_test_accuracy": real_acc,
            "generated_accuracy_per_class": dict(zip(map(str, names), per_class, strict=True)),
            "generated_accuracy": gen_acc,
            "close_to_real": close,
            "every_class_above_chance": above,
            "seconds": seconds,
        },
    )


if __name__ == "__main__":
    run_script(main)
