"""Figures of autoencoders at work, written straight to image files (matplotlib's Agg canvas, no window).

Every function takes host or device arrays (rows of flattened images, shape (N, D), with
``image_shape`` (H, W) such that H * W = D), writes one figure to ``path`` (PNG unless the
suffix names another format) and returns the path. Images are drawn in gray on a [0, 1] scale
when the data lie in [0, 1], else on their own min..max.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import backend
from .errors import ArgumentError, ShapeError
from .progress import plural
from .validation import check_class_labels

CELL_INCHES = 0.62  # size of one image in a mosaic
MOSAIC_INCHES = 12.0  # a mosaic of many images shrinks its cells to stay within this width and height
DPI = 110


def _host(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(backend.to_numpy(a.data if hasattr(a, "creator") else a), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ShapeError(f"{name} must be a non-empty 2-D array (N, D), got shape {tuple(arr.shape)}")
    return arr


def _images(a: Any, image_shape: Sequence[int], name: str) -> np.ndarray:
    """Rows of ``a`` (N, D) as images (N, H, W)."""
    arr = _host(a, name)
    shape = tuple(int(s) for s in image_shape) if image_shape is not None else ()
    if len(shape) != 2 or math.prod(shape) != arr.shape[1]:
        raise ShapeError(
            f"{name}: image_shape {image_shape} does not fit rows of {arr.shape[1]} values: expected (H, W) "
            f"with H * W = {arr.shape[1]}"
        )
    return arr.reshape(len(arr), *shape)


def display_limits(*arrays: Any) -> tuple[float, float]:
    """The grey scale of images: [0, 1] for data within it, else the arrays' min..max."""
    arrays = tuple(np.asarray(backend.to_numpy(a)) for a in arrays)
    lo = min(float(np.nanmin(a)) for a in arrays)
    hi = max(float(np.nanmax(a)) for a in arrays)
    if lo >= -1e-6 and hi <= 1 + 1e-6:
        return 0.0, 1.0
    return lo, (hi if hi > lo else lo + 1.0)


def _clipped(images: np.ndarray, limits: tuple[float, float] | None) -> np.ndarray:
    return images if limits is None else np.clip(images, *limits)


def mosaic(rows: Sequence[np.ndarray], pad: int = 1) -> np.ndarray:
    """Image rows (each (n_k, H, W)) laid out as one array, NaN between images and after short rows."""
    h, w = rows[0].shape[1:]
    ncols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = img
    return out


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _image_figure(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str] | None,
    title: str | None,
    path: str | Path,
    limits: tuple[float, float] | None = None,
    column_labels: Sequence[str] | None = None,
) -> Path:
    """Draw image rows as one mosaic with a label left of each row (and below each column, if given)."""
    grid = mosaic(rows)
    lo, hi = limits or display_limits(*rows)
    ncols, nrows = max(len(r) for r in rows), len(rows)
    cell = min(CELL_INCHES, MOSAIC_INCHES / max(ncols, nrows))
    label_room = 1.3 if row_labels else 0.2
    # column labels longer than a cell is wide stand upright below it
    longest = max(map(len, column_labels or ()), default=0)
    upright = longest > 3
    below = (0.1 * longest + 0.2 if upright else 0.3) if column_labels else 0
    height = nrows * cell + (0.5 if title else 0.1) + below
    fig = Figure(figsize=(ncols * cell + label_room, height))
    ax = fig.add_subplot()
    cmap = colormaps["gray"].with_extremes(bad="white")
    ax.imshow(grid, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    h, w = rows[0].shape[1:]
    if column_labels:
        positions = [j * (w + 1) + (w - 1) / 2 for j in range(len(column_labels))]
        ax.set_xticks(positions, list(column_labels), rotation=90 if upright else 0)
        ax.tick_params(axis="x", length=0)
    else:
        ax.set_xticks([])
    if row_labels:
        ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(nrows)], list(row_labels))
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def reconstructions(
    originals: Any,
    recons: Any | Mapping[str, Any],
    image_shape: Sequence[int],
    path: str | Path,
    n: int = 10,
    title: str | None = None,
) -> Path:
    """Row 1: the first ``n`` originals; then their reconstructions, one row per entry of ``recons`` when it is
    {row label: (N, D)}. Every row is drawn on the originals' scale (reconstructions beyond it clipped)."""
    by_label = recons if isinstance(recons, Mapping) else {"reconstruction": recons}
    a = _images(originals, image_shape, "originals")[:n]
    rows = [a] + [_images(r, image_shape, f"reconstructions ({label})")[:n] for label, r in by_label.items()]
    limits = display_limits(a)
    return _image_figure(
        [np.clip(r, *limits) for r in rows], ["original", *by_label], title or "Reconstructions", path, limits
    )


def denoising(
    noisy: Any,
    cleaned: Any,
    clean: Any,
    image_shape: Sequence[int],
    path: str | Path,
    n: int = 10,
    title: str | None = None,
) -> Path:
    """Rows: the noisy inputs, the model's cleaned outputs, the clean originals (first ``n`` of each)."""
    rows = [_images(a, image_shape, name)[:n] for a, name in ((noisy, "noisy"), (cleaned, "cleaned"), (clean, "clean"))]
    # the noisy row may leave [0, 1] (gaussian noise): draw every row on the clean data's scale
    limits = display_limits(rows[2], rows[1])
    return _image_figure(
        [np.clip(r, *limits) for r in rows], ["noisy", "denoised", "clean"], title or "Denoising", path, limits
    )


def samples_grid(
    images: Any,
    image_shape: Sequence[int],
    path: str | Path,
    ncols: int | None = None,
    title: str | None = None,
    column_labels: Sequence[str] | None = None,
    limits: tuple[float, float] | None = None,
    row_labels: Sequence[str] | None = None,
) -> Path:
    """Images (N, D) in a grid of ``ncols`` columns (default: 8 up to 64 images, else ceil(sqrt(N)), near square),
    each column labelled below when ``column_labels`` are given, each row left of it when ``row_labels``
    are (one per row). ``limits``: the grey scale (the training data's ``display_limits``, values beyond
    it clipped; default: the images' own)."""
    imgs = _clipped(_images(images, image_shape, "images"), limits)
    ncols = ncols or max(8, math.isqrt(len(imgs) - 1) + 1)
    rows = [imgs[i : i + ncols] for i in range(0, len(imgs), ncols)]
    labels = list(column_labels)[: len(rows[0])] if column_labels is not None and rows else None
    if row_labels is not None and len(row_labels) != len(rows):
        raise ShapeError(f"samples_grid: {plural(len(row_labels), 'row label')} for {plural(len(rows), 'row')}")
    title = title or f"{len(imgs)} samples"
    return _image_figure(rows, row_labels, title, path, limits, column_labels=labels)


def class_grid(
    images: Any,
    image_shape: Sequence[int],
    path: str | Path,
    n_classes: int,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Path:
    """Class-conditional samples: ``images`` (n_classes * k, D) holds k samples of class 0, then of class 1, ...;
    row c of the figure is class c. ``limits``: the grey scale, as for ``samples_grid``."""
    imgs = _clipped(_images(images, image_shape, "images"), limits)
    if n_classes < 1 or len(imgs) % n_classes:
        raise ShapeError(f"class_grid: {len(imgs)} images do not split into {n_classes} equal class rows")
    k = len(imgs) // n_classes
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise ShapeError(f"class_grid: {plural(len(names), 'class name')} for {plural(n_classes, 'class')}")
    rows = [imgs[c * k : (c + 1) * k] for c in range(n_classes)]
    return _image_figure(rows, [f"class {name}" for name in names], title or "Samples by class", path, limits)


def manifold_points(n: int = 15, lo: float = 0.05, hi: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of 2-D codes at the N(0, 1) quantiles of ``linspace(lo, hi, n)`` in each axis.

    Returns ``(Z, values)``: Z (n*n, 2) in the figure's row-major order (top row first: z2 from
    high to low, z1 from low to high), and the n quantile values.
    """
    whole = isinstance(n, (int, np.integer)) and not isinstance(n, bool)
    if not (whole and n >= 2 and 0 < lo < hi < 1):
        raise ArgumentError(
            f"manifold_points: need an integer n >= 2 and 0 < lo < hi < 1, got n={n!r}, lo={lo!r}, hi={hi!r}"
        )
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(lo, hi, n)])
    z2, z1 = np.meshgrid(values[::-1], values, indexing="ij")
    return np.stack([z1.ravel(), z2.ravel()], axis=1), values


def traversal_points(
    latent_dim: int, dims: Sequence[int], n: int = 9, lo: float = 0.05, hi: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Codes that move one latent coordinate at a time: for each d of ``dims``, n codes with z_d at the
    N(0, 1) quantiles of ``linspace(lo, hi, n)`` and every other coordinate 0. Returns ``(Z, values)``:
    Z (len(dims) * n, latent_dim), row r of the figure being ``Z[r * n : (r + 1) * n]``, and the n values."""
    _, values = manifold_points(n, lo, hi)
    if not dims or any(not 0 <= d < latent_dim for d in dims):
        raise ArgumentError(f"traversal_points: dims must be coordinates in [0, {latent_dim - 1}], got {list(dims)}")
    Z = np.zeros((len(dims), n, latent_dim))
    for r, d in enumerate(dims):
        Z[r, :, d] = values
    return Z.reshape(-1, latent_dim), values


def latent_traversal(
    images: Any,
    image_shape: Sequence[int],
    path: str | Path,
    dims: Sequence[int],
    values: Sequence[float],
    title: str | None = None,
    limits: tuple[float, float] | None = None,
    kl: Sequence[float] | None = None,
) -> Path:
    """The decoder's outputs as one latent coordinate moves (``images`` in ``traversal_points`` order):
    a row per coordinate of ``dims``, a column per value; ``limits``: the grey scale, as for ``samples_grid``;
    ``kl``: each row's KL term in nats (``metrics.kl_per_dimension``), written under its name."""
    imgs = _clipped(_images(images, image_shape, "images"), limits)
    n = len(values)
    if len(imgs) != len(dims) * n:
        raise ShapeError(f"latent_traversal: {len(imgs)} images for {len(dims)} rows of {n} (expected {len(dims) * n})")
    rows = [imgs[r * n : (r + 1) * n] for r in range(len(dims))]
    title = title or "Decoder as one coordinate of z moves (the others at 0; N(0, 1) quantiles)"
    if kl is not None and len(kl) != len(dims):
        raise ShapeError(f"latent_traversal: {len(kl)} KL values for {len(dims)} rows")
    names = [f"z{d + 1}" + ("" if kl is None else f"\nKL {kl[r]:.3g}") for r, d in enumerate(dims)]
    return _image_figure(rows, names, title, path, limits, [_z_label(v) for v in values])


GRID_TICKS = 5  # the most cells of a manifold's axis that get a label


def grid_ticks(n: int) -> list[int]:
    """Up to GRID_TICKS cell indices of an n-cell axis to label: the first, the last and evenly between,
    symmetric about the middle as the grid's values are about 0 (an even n leaves out the middle one,
    which has no mirror: 0.06 labelled without -0.06 looks lopsided)."""
    ticks = {round(t) for t in np.linspace(0, n - 1, min(n, GRID_TICKS))}
    return sorted(t for t in ticks if n - 1 - t in ticks)


def _z_label(value: float) -> str:
    """A grid value to two decimals, the quantile 0.5's -0.00 written 0.00."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def latent_manifold(
    images: Any,
    image_shape: Sequence[int],
    path: str | Path,
    values: Sequence[float],
    title: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Path:
    """The decoder's outputs over a grid of 2-D codes (``images`` in ``manifold_points`` order), axes in z;
    ``limits``: the grey scale, as for ``samples_grid``."""
    imgs = _clipped(_images(images, image_shape, "images"), limits)
    n = len(values)
    if len(imgs) != n * n:
        raise ShapeError(f"latent_manifold: {len(imgs)} images for a {n} x {n} grid (expected {n * n})")
    rows = [imgs[i * n : (i + 1) * n] for i in range(n)]
    grid = mosaic(rows)
    h, w = imgs.shape[1] + 1, imgs.shape[2] + 1  # a cell and the gap after it
    fig = Figure(figsize=(n * CELL_INCHES * 0.75 + 1.0, n * CELL_INCHES * 0.75 + 0.8))
    ax = fig.add_subplot()
    lo, hi = limits or display_limits(imgs)
    ax.imshow(grid, cmap=colormaps["gray"].with_extremes(bad="white"), vmin=lo, vmax=hi, interpolation="nearest")
    ticks = grid_ticks(n)
    ax.set_xticks([j * w + (w - 2) / 2 for j in ticks], [_z_label(values[j]) for j in ticks])
    ax.set_yticks([i * h + (h - 2) / 2 for i in ticks], [_z_label(values[::-1][i]) for i in ticks])
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.set_title(title or "Decoder over the latent plane (N(0, 1) quantiles)")
    return _save(fig, path)


def _two_dims(Z: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, tuple[str, str]]:
    """Codes in 2-D: as they are, projected on their first two principal axes, or 1-D codes against their
    class y (one strip per class; a random spread without classes), jittered by up to 0.3 so points stand apart."""
    if Z.shape[1] == 1:
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(Z))
        if y is None:
            return np.column_stack([Z[:, 0], jitter]), ("z₁", "random spread (no meaning)")
        return np.column_stack([Z[:, 0], y + jitter]), ("z₁", "class")
    if Z.shape[1] == 2:
        return Z, ("z₁", "z₂")
    centered = Z - Z.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[:2].T, ("code PC 1", "code PC 2")


def latent_scatter(
    Z: Any,
    labels: Any,
    path: str | Path,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Codes Z (N, d) as points coloured by class (``labels``: whole numbers >= 0; a legend for up to 20
    classes, else a colorbar);
    codes of more than two dimensions are shown on their first two principal axes, 1-D codes in one strip per class."""
    Z = _host(Z, "Z")
    y = None if labels is None else np.ravel(backend.to_numpy(labels))
    if y is not None and len(y) != len(Z):
        raise ShapeError(f"latent_scatter: {len(y)} labels for {len(Z)} codes")
    y = None if y is None else check_class_labels(y, len(Z), None, "latent_scatter: labels")
    points, (xlabel, ylabel) = _two_dims(Z, y)
    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot()
    if y is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7, color="tab:blue")
        if Z.shape[1] == 1:
            ax.set_yticks([])
    else:
        classes = np.unique(y)
        if len(classes) <= 20:
            cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
            names = [class_names[c] if class_names is not None and c < len(class_names) else str(c) for c in classes]
            for k, (c, name) in enumerate(zip(classes, names, strict=True)):
                sel = y == c
                ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.7, color=cmap(k), label=name)
            if Z.shape[1] == 1:  # the y axis names the classes
                ax.set_yticks(classes, names)
                ax.invert_yaxis()
            else:
                ax.legend(markerscale=3, fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        else:
            sc = ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7, c=y, cmap="viridis")
            fig.colorbar(sc, ax=ax, label="class")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    shown = "" if Z.shape[1] <= 2 else ", on their first two principal axes"
    ax.set_title(title or f"Latent codes ({Z.shape[1]}-D{shown})" + ("" if y is None else " by class"))
    ax.grid(alpha=0.25)
    return _save(fig, path)


LOSS_TITLES = {"loss": "total loss", "recon": "reconstruction (−log p(x|z), per example)", "kl": "KL(q(z|x) ‖ p(z))"}


def _series(history: Any) -> dict[str, list[float]]:
    """A history as {key: values}: a ``History``, a dict of lists, or a list of per-epoch records."""
    if hasattr(history, "to_dict"):
        return history.to_dict()
    if isinstance(history, Mapping):
        return {k: list(v) for k, v in history.items()}
    records = list(history)
    keys = list(dict.fromkeys(k for r in records for k in r))
    return {k: [r.get(k, float("nan")) for r in records] for k in keys}


def _same_values(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    """Whether two series are equal, a NaN (an epoch without validation) equal to a NaN."""
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and bool(np.array_equal(np.asarray(a, float), np.asarray(b, float), equal_nan=True))


def loss_curves(history: Any, path: str | Path, title: str | None = None, held_out: str = "validation") -> Path:
    """One panel per loss term (total, recon, KL, ...): training and held-out values per epoch; an
    autoencoder's reconstruction term, its whole loss, gets no panel of its own.

    ``history``: a ``History``, a dict of lists, or per-epoch records with keys such as ``loss``,
    ``recon``, ``kl`` and ``val_loss``, ``val_recon``, ``val_kl``. ``held_out``: the legend's name of
    the ``val_`` curves ("test" where fit's validation_data were the test part).
    """
    series = _series(history)
    skip = {"epoch", "seconds"}
    terms = [k for k in series if k not in skip and not k.startswith("val_")]
    terms += [k[4:] for k in series if k.startswith("val_") and k[4:] not in terms]
    if not terms:
        raise ArgumentError(f"loss_curves: the history has no loss terms (keys: {', '.join(series) or 'none'})")
    titles = dict(LOSS_TITLES)
    if "kl" in terms:
        titles["loss"] = "total loss (recon + β·KL, β as scheduled)"
    same = all(_same_values(series.get(f"{p}recon"), series.get(f"{p}loss")) for p in ("", "val_"))
    if {"loss", "recon"} <= set(terms) and same:  # an autoencoder: its loss is the reconstruction term
        terms.remove("recon")
        titles["loss"] = "reconstruction loss (per example)"
    epochs = series.get("epoch") or list(range(1, len(next(iter(series.values()))) + 1))
    fig = Figure(figsize=(4.2 * len(terms), 3.4))
    for k, term in enumerate(terms):
        ax = fig.add_subplot(1, len(terms), k + 1)
        for key, label, style in ((term, "train", "-"), (f"val_{term}", held_out, "--")):
            if key in series:
                ax.plot(epochs, series[key], style, marker="o", markersize=3, label=label)
        ax.set_title(titles.get(term, term), fontsize="medium")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def pca_vs_ae(
    latent_sizes: Sequence[int],
    errors: Mapping[str, Sequence[float]],
    path: str | Path,
    ylabel: str = "test reconstruction error (squared error per example)",
    title: str | None = None,
) -> Path:
    """Reconstruction error against latent size, one line per method (e.g. PCA, linear AE, deep AE).

    Each line has its own dash pattern and hollow markers that shrink from line to line, so lines
    that coincide (a linear AE on top of PCA) stay visible.
    """
    sizes = list(latent_sizes)
    if not errors:
        raise ArgumentError("pca_vs_ae: errors is empty: give {method name: errors per latent size}")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    markers, dashes = "osd^v<>", ("-", "--", ":", "-.")
    for k, (name, values) in enumerate(errors.items()):
        values = list(values)
        if len(values) != len(sizes):
            raise ShapeError(f"pca_vs_ae: {name!r} has {len(values)} errors for {len(sizes)} latent sizes")
        ax.plot(
            sizes,
            values,
            marker=markers[k % len(markers)],
            markersize=max(11 - 3 * k, 4),
            markerfacecolor="none",
            linestyle=dashes[k % len(dashes)],
            label=name,
        )
    ax.set_xlabel("latent size")
    ax.set_ylabel(ylabel)
    ax.set_xticks(sizes)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "PCA vs autoencoder: error against latent size")
    return _save(fig, path)
