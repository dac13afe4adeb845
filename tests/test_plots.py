"""scratchae.plots: every figure is a readable PNG with the content it should draw."""

from __future__ import annotations

import re
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from matplotlib.image import imread

from scratchae import ArgumentError, DataError, ShapeError, plots
from scratchae.history import History

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> np.ndarray:
    """The image as RGB(A) floats in [0, 1], after checking it is a PNG with varied content."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    gray = img[..., :3].mean(axis=2)
    assert gray.std() > 0.05, "the figure is nearly blank"
    return img


def x_tick_labels(svg: Path) -> list[str]:
    """The x tick labels of a matplotlib SVG (text drawn as paths, each text kept in a comment)."""
    return re.findall(r'<g id="xtick_\d+">.*?<!-- (.*?) -->', svg.read_text(), re.DOTALL)


@pytest.fixture
def images(rng: np.random.Generator) -> np.ndarray:
    """12 images of 6x5 pixels: a bright bar at a different row of each (rows of 30 values)."""
    imgs = np.zeros((12, 6, 5))
    for k in range(12):
        imgs[k, k % 6, :] = 1.0
    return imgs.reshape(12, 30) * rng.uniform(0.8, 1.0, (12, 30))


def test_reconstructions_draws_two_rows(tmp_path, images):
    path = plots.reconstructions(images, 1 - images, (6, 5), tmp_path / "r.png", n=8)
    assert path == tmp_path / "r.png"
    wide = read_png(path)
    narrow = read_png(plots.reconstructions(images, images, (6, 5), tmp_path / "r4.png", n=4))
    assert wide.shape[1] > narrow.shape[1]  # n images per row set the width


def test_reconstructions_draw_every_row_on_the_originals_scale(tmp_path, images):
    """Reconstructions beyond the originals' range are clipped, so the originals' row looks the same whatever
    the model outputs; a {label: reconstructions} mapping adds one row per model."""
    exact = read_png(plots.reconstructions(images, images, (6, 5), tmp_path / "exact.png"))
    wild = read_png(plots.reconstructions(images, 3 * images - 1, (6, 5), tmp_path / "wild.png"))
    top = exact.shape[0] // 2  # the title and the originals' row
    assert exact.shape == wild.shape and np.array_equal(exact[:top], wild[:top])
    models = {"PCA": images, "linear AE": 1 - images, "deep AE": 2 * images}
    three = read_png(plots.reconstructions(images, models, (6, 5), tmp_path / "three.png"))
    assert three.shape[0] > exact.shape[0] + top


def test_denoising_draws_three_rows_even_with_values_out_of_range(tmp_path, images, rng):
    noisy = images + rng.normal(0, 0.5, images.shape)  # leaves [0, 1]
    three = read_png(plots.denoising(noisy, images, images, (6, 5), tmp_path / "d.png"))
    two = read_png(plots.reconstructions(images, images, (6, 5), tmp_path / "r.png"))
    assert three.shape[0] > two.shape[0]


def test_samples_grid_and_class_grid(tmp_path, images):
    read_png(plots.samples_grid(images, (6, 5), tmp_path / "s.png", ncols=4))
    read_png(plots.samples_grid(images, (6, 5), tmp_path / "r.png", ncols=4, row_labels=["a", "b", "c"]))
    with pytest.raises(ShapeError, match="samples_grid: 2 row labels for 3 rows"):
        plots.samples_grid(images, (6, 5), tmp_path / "bad.png", ncols=4, row_labels=["a", "b"])
    read_png(plots.class_grid(images, (6, 5), tmp_path / "c.png", n_classes=3, class_names=["a", "b", "c"]))
    with pytest.raises(ShapeError, match="3 equal class rows|5 equal"):
        plots.class_grid(images[:11], (6, 5), tmp_path / "bad.png", n_classes=3)
    with pytest.raises(ShapeError, match="class_grid: 2 class names for 3 classes"):
        plots.class_grid(images, (6, 5), tmp_path / "bad.png", n_classes=3, class_names=["a", "b"])


def test_samples_grid_is_near_square_for_many_images(tmp_path, rng):
    """Up to 64 images keep 8 columns; 1000 images make a near-square mosaic within MOSAIC_INCHES a side."""
    imgs = rng.random((1000, 30))
    default = read_png(plots.samples_grid(imgs[:64], (6, 5), tmp_path / "64.png"))
    eight = read_png(plots.samples_grid(imgs[:64], (6, 5), tmp_path / "8.png", ncols=8))
    assert np.array_equal(default, eight)
    height, width = read_png(plots.samples_grid(imgs, (6, 5), tmp_path / "1000.png")).shape[:2]
    assert 0.8 < height / width < 1.25
    assert max(height, width) < (plots.MOSAIC_INCHES + 1) * plots.DPI


def test_column_labels_stand_below_the_columns(tmp_path, images):
    plain = read_png(plots.samples_grid(images, (6, 5), tmp_path / "s.png", ncols=4))
    short = read_png(plots.samples_grid(images, (6, 5), tmp_path / "a.png", ncols=4, column_labels="abcd"))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "unused: past the last column"]
    upright = read_png(plots.samples_grid(images, (6, 5), tmp_path / "u.png", ncols=4, column_labels=names))
    assert plain.shape[0] < short.shape[0] < upright.shape[0] and plain.shape[1] == short.shape[1]


def test_image_shape_must_fit(tmp_path, images):
    with pytest.raises(ShapeError, match="image_shape"):
        plots.samples_grid(images, (5, 5), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_manifold_points_are_gaussian_quantiles_in_figure_order():
    Z, values = plots.manifold_points(5, 0.1, 0.9)
    expected = [NormalDist().inv_cdf(p) for p in np.linspace(0.1, 0.9, 5)]
    assert values == pytest.approx(expected)
    assert Z.shape == (25, 2)
    assert Z[0] == pytest.approx([values[0], values[-1]])  # top left: lowest z1, highest z2
    assert Z[4] == pytest.approx([values[-1], values[-1]])  # top right
    assert Z[-1] == pytest.approx([values[-1], values[0]])  # bottom right
    with pytest.raises(ArgumentError, match="n >= 2.*got n=1"):
        plots.manifold_points(1)
    with pytest.raises(ArgumentError, match="got n=True"):
        plots.manifold_points(True)
    np.testing.assert_array_equal(plots.manifold_points(np.int64(5), 0.1, 0.9)[0], Z)  # a NumPy integer will do


def test_traversal_points_move_one_coordinate_per_row(tmp_path, rng):
    Z, values = plots.traversal_points(5, [1, 3], n=4, lo=0.1, hi=0.9)
    assert Z.shape == (8, 5) and values == pytest.approx(plots.manifold_points(4, 0.1, 0.9)[1])
    np.testing.assert_array_equal(Z[:4, 1], values)  # row 0: z2 moves
    np.testing.assert_array_equal(Z[4:, 3], values)  # row 1: z4 moves
    assert np.count_nonzero(Z[:, [0, 2, 4]]) == 0 and np.count_nonzero(Z[:4, 3]) == np.count_nonzero(Z[4:, 1]) == 0
    with pytest.raises(ArgumentError, match=r"dims must be coordinates in \[0, 4\], got \[5\]"):
        plots.traversal_points(5, [5])
    imgs = rng.random((8, 64))
    read_png(plots.latent_traversal(imgs, (8, 8), tmp_path / "t.png", [1, 3], values, kl=[0.5, 1.25]))
    with pytest.raises(ShapeError, match="7 images for 2 rows of 4"):
        plots.latent_traversal(imgs[:7], (8, 8), tmp_path / "t2.png", [1, 3], values)
    with pytest.raises(ShapeError, match="1 KL values for 2 rows"):
        plots.latent_traversal(imgs, (8, 8), tmp_path / "t3.png", [1, 3], values, kl=[0.5])


def test_the_manifold_labels_both_ends_of_each_axis_symmetrically():
    assert plots.grid_ticks(15) == [0, 4, 7, 10, 14]
    assert plots.grid_ticks(20) == [0, 5, 14, 19]  # the middle cell 10 (z = 0.06) has no mirror: left out
    assert plots.grid_ticks(6) == [0, 1, 4, 5]
    assert plots.grid_ticks(3) == [0, 1, 2] and plots.grid_ticks(1) == [0]
    assert [plots._z_label(v) for v in (-1e-17, 1e-17, -1.644854, 0.5)] == ["0.00", "0.00", "-1.64", "0.50"]


def test_latent_manifold(tmp_path, rng):
    Z, values = plots.manifold_points(6)
    imgs = np.clip(rng.random((36, 64)) * (Z[:, :1] > 0), 0, 1)  # bright only where z1 > 0
    img = read_png(plots.latent_manifold(imgs, (8, 8), tmp_path / "m.png", values))
    with pytest.raises(ShapeError, match="6 x 6"):
        plots.latent_manifold(imgs[:30], (8, 8), tmp_path / "m2.png", values)
    # the right half of the grid (z1 > 0) is brighter than the left half
    gray = img[..., :3].mean(axis=2)
    h, w = gray.shape
    band = gray[int(0.3 * h) : int(0.7 * h)]
    assert band[:, w // 2 : int(0.85 * w)].mean() > band[:, int(0.2 * w) : w // 2].mean()


@pytest.mark.parametrize("dims", [1, 2, 5])
def test_latent_scatter_by_class(tmp_path, rng, dims):
    Z = rng.normal(size=(90, dims))
    y = np.repeat(np.arange(3), 30)
    read_png(plots.latent_scatter(Z, y, tmp_path / "z.png", class_names=["cat", "dog", "owl"]))
    read_png(plots.latent_scatter(Z, np.arange(90) % 25, tmp_path / "many.png"))  # colorbar
    with pytest.raises(ShapeError, match="labels"):
        plots.latent_scatter(Z, y[:10], tmp_path / "bad.png")
    with pytest.raises(
        DataError, match="latent_scatter: labels must hold integer class labels, got dtype float64 with the value 0.5"
    ):
        plots.latent_scatter(Z, y + 0.5, tmp_path / "bad.png")  # not truncated to 0, 1, 2
    read_png(plots.latent_scatter(Z, y.astype(float), tmp_path / "floats.png"))


def test_one_dimensional_codes_stand_in_one_strip_per_class(tmp_path):
    """Two classes with the same 1-D codes: their points (tab:blue, tab:orange) lie in rows far apart."""
    z = np.linspace(-2, 2, 40)
    path = plots.latent_scatter(np.concatenate([z, z])[:, None], np.repeat([0, 1], 40), tmp_path / "z1.png")
    rgb = read_png(path)[..., :3]
    blue = rgb[..., 2] - rgb[..., 0] > 0.3
    orange = rgb[..., 0] - rgb[..., 2] > 0.4
    assert blue.sum() > 50 and orange.sum() > 50
    gap = abs(np.nonzero(blue)[0].mean() - np.nonzero(orange)[0].mean())  # between the mean rows of each colour
    assert gap > 0.25 * rgb.shape[0]
    read_png(plots.latent_scatter(z[:, None], None, tmp_path / "unlabelled.png"))


@pytest.mark.parametrize("n_epochs", [1, 2, 7])
def test_loss_curves_tick_whole_epochs(tmp_path, n_epochs):
    path = plots.loss_curves({"loss": list(np.linspace(3, 1, n_epochs))}, tmp_path / "loss.svg")
    labels = x_tick_labels(path)
    assert labels and all(re.fullmatch(r"\d+", label) for label in labels), labels


def test_loss_curves_panels_per_term(tmp_path):
    records = [
        {"epoch": e, "loss": 10 - e, "recon": 8 - e, "kl": 2.0, "val_loss": 11 - e, "val_recon": 9 - e, "val_kl": 2}
        for e in range(1, 6)
    ]
    vae = read_png(plots.loss_curves(History(records), tmp_path / "vae.png"))
    ae = read_png(plots.loss_curves({"loss": [3, 2, 1]}, tmp_path / "ae.png"))
    assert vae.shape[1] > 2 * ae.shape[1]  # three panels beside one
    with pytest.raises(ArgumentError, match="no loss terms"):
        plots.loss_curves([{"epoch": 1, "seconds": 0.1}], tmp_path / "none.png")


def test_an_autoencoders_loss_curves_have_one_panel_and_a_vaes_total_names_beta(tmp_path, monkeypatch):
    """An AE's recon is its loss: one panel, titled as what it is; a VAE's total is recon + beta KL."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    plots.loss_curves({"loss": [3, 2], "recon": [3, 2], "val_loss": [4, 3], "val_recon": [4, 3]}, tmp_path / "a")
    plots.loss_curves({"loss": [3, 2], "recon": [2.5, 1.5], "kl": [0.5, 0.5]}, tmp_path / "v")
    records = [{"loss": 3, "recon": 3, "val_loss": 4, "val_recon": 4}, {"loss": 2, "recon": 2}]  # no validation
    plots.loss_curves(History(records), tmp_path / "p")  # in epoch 2: a NaN of its own in each val_ series
    ae, vae, ae_partly = ([ax.get_title() for ax in fig.axes] for fig in figures)
    assert ae == ae_partly == ["reconstruction loss (per example)"]
    assert vae == ["total loss (recon + β·KL, β as scheduled)", plots.LOSS_TITLES["recon"], plots.LOSS_TITLES["kl"]]


def test_loss_curves_name_the_held_out_part(tmp_path, monkeypatch):
    """The val_ curves' legend says "validation", or what the caller held out (the test part)."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    history = {"loss": [3, 2], "val_loss": [4, 3]}
    plots.loss_curves(history, tmp_path / "a")
    plots.loss_curves(history, tmp_path / "b", held_out="test")
    legends = [[t.get_text() for t in fig.axes[0].get_legend().get_texts()] for fig in figures]
    assert legends == [["train", "validation"], ["train", "test"]]


def test_pca_vs_ae(tmp_path):
    sizes = [2, 4, 8, 16]
    read_png(plots.pca_vs_ae(sizes, {"PCA": [9, 6, 4, 2], "AE": [7, 4, 3, 2]}, tmp_path / "p.png"))
    with pytest.raises(ShapeError, match="AE"):
        plots.pca_vs_ae(sizes, {"AE": [1, 2]}, tmp_path / "bad.png")
    with pytest.raises(ArgumentError, match="errors is empty"):
        plots.pca_vs_ae(sizes, {}, tmp_path / "bad.png")


def test_folders_are_created_and_device_arrays_accepted(tmp_path, device, images):
    from scratchae import backend

    path = plots.samples_grid(backend.to_device(images, device), (6, 5), tmp_path / "a" / "b" / "s.png")
    read_png(path)


def test_generated_images_can_be_drawn_on_the_datas_grey_scale(tmp_path, monkeypatch):
    """A Gaussian decoder's samples leave [0, 1]: on the data's scale they are clipped, not stretched."""
    drawn = {}

    def capture(rows, row_labels, title, path, limits=None, column_labels=None):
        drawn.update(rows=rows, limits=limits)
        return Path(path)

    monkeypatch.setattr(plots, "_image_figure", capture)
    images = np.linspace(-1.0, 2.0, 4 * 16).reshape(4, 16)
    assert plots.display_limits(images) == (-1.0, 2.0) and plots.display_limits(images.clip(0, 1)) == (0.0, 1.0)
    for draw in (
        lambda **kw: plots.samples_grid(images, (4, 4), tmp_path / "s.png", **kw),
        lambda **kw: plots.class_grid(images, (4, 4), tmp_path / "c.png", 2, **kw),
    ):
        draw()
        assert drawn["limits"] is None and min(r.min() for r in drawn["rows"]) == -1.0  # the images' own scale
        draw(limits=(0.0, 1.0))
        assert drawn["limits"] == (0.0, 1.0)
        assert min(r.min() for r in drawn["rows"]) == 0.0 and max(r.max() for r in drawn["rows"]) == 1.0
