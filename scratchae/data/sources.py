"""The named data sets: ``digits`` (bundled with scikit-learn), ``fashion-mnist`` and ``mnist`` (IDX files)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataNotFoundError
from .files import full_scale_of
from .idx import read_idx
from .raw import RawData

# folders searched after ``data_dir``, per data set
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (),
}
HOW_TO_GET = {
    "fashion-mnist": (
        "install the Debian package (apt-get install dataset-fashion-mnist) "
        "or pass data_dir=<folder holding the four IDX files>"
    ),
    "mnist": "pass data_dir=<folder holding the four MNIST IDX files>",
}
# part -> file name (plain or with .gz), the names MNIST and Fashion-MNIST are shipped under
IDX_FILES = {
    "X": "train-images-idx3-ubyte",
    "y": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SKLEARN_HINT = "pip install 'scratchae[data]' (it installs scikit-learn)"


def _find_in(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The four IDX files found in ``folder`` (plain name first, then ``.gz``) and the names missing."""
    found, missing = {}, []
    for part, stem in IDX_FILES.items():
        path = next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[part] = path
    return found, missing


def find_idx_files(name: str, data_dir: str | os.PathLike | None, system_dirs: bool = True) -> dict[str, Path]:
    """Paths of the four IDX files of ``name``: in ``data_dir``, ``data_dir/name``, then (when
    ``system_dirs``) the system folders."""
    folders = [] if data_dir is None else [Path(data_dir), Path(data_dir) / name]
    report = []
    for folder in [*folders, *(SYSTEM_DIRS[name] if system_dirs else ())]:
        found, missing = _find_in(folder)
        if not missing:
            return found
        report.append(f"{folder} (missing {', '.join(missing)})" if found else f"{folder} (no IDX files)")
    looked = "; ".join(report) if report else "nowhere: no data_dir was given"
    names = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
    raise DataNotFoundError(
        f"data set {name!r} not found. Looked in: {looked}. The files are named {names}. To get it: {HOW_TO_GET[name]}"
    )


def load_idx_set(name: str, data_dir: str | os.PathLike | None) -> RawData:
    """The train and test parts of an MNIST-format data set: images (N, 28, 28), uint8 in the published
    files (full scale 255; other dtypes have none), and labels."""
    parts = {part: read_idx(path) for part, path in find_idx_files(name, data_dir).items()}
    return RawData(
        **parts,
        full_scale=full_scale_of(parts["X"]),
        n_classes=10,
        class_names=FASHION_CLASSES if name == "fashion-mnist" else tuple(str(d) for d in range(10)),
    )


def load_digits() -> RawData:
    """scikit-learn's bundled 8x8 digits (1797 examples, pixel values 0..16), without a test part."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise DataNotFoundError(
            f"data set 'digits' needs scikit-learn, which is not installed: {SKLEARN_HINT}"
        ) from exc
    bunch = sklearn_digits()
    return RawData(
        X=bunch.images,
        y=bunch.target,
        full_scale=16.0,
        n_classes=10,
        class_names=tuple(str(d) for d in range(10)),
    )
