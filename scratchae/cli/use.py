"""``scratchae eval``, ``sample`` and ``encode``: a trained run's metrics, samples and codes."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..atomic import write_atomic
from ..data.checks import check_features, check_labels
from ..data.dataset import minmax_scale
from ..data.files import SUFFIXES, read_array_file, read_npy
from ..errors import ArgumentError, DataError, DataNotFoundError
from ..models import VAE, ConditionalVAE, Model
from ..progress import plural
from ..run_info import RUN_FILE, RunInfo
from ..tables import Group, box_table, color_default
from .args import EVAL_IWAE_K
from .report import format_number, test_metrics
from .runs import check_output_file, load_cli_data, load_run, run_folder

ARRAY_SUFFIXES = (".npy", ".npz")


def cmd_eval(args: argparse.Namespace) -> int:
    """``scratchae eval``: the run's test metrics, on its own data (read as recorded in run.json) or on --data."""
    if args.json_out:  # refused before the evaluation, not after it
        check_output_file("--json", Path(args.json_out), args.run, "eval.json", renamed_into_place=True)
    model, info = load_run(args.run, args.device)
    if args.iwae_k is not None and not isinstance(model, VAE):
        raise ArgumentError(f"--iwae-k applies to vae and cvae runs; {args.run} holds a model of kind {model.kind}")
    if args.data is None and info is None:
        raise ArgumentError(f"{args.run} has no {RUN_FILE}: say which data to evaluate on with --data")
    if args.data is not None or args.data_dir is not None or info is None:
        name, data_dir, dir_flag = args.data or info.data, args.data_dir, "--data-dir"
    else:  # the run's own data, from the folder recorded with them
        name, data_dir, dir_flag = info.data, info.data_dir, f"the data folder in {run_folder(args.run) / RUN_FILE}"
    limit = args.limit or (info.limit if info else None)
    if args.data is None and info is not None:  # the run's own data: read as it was
        for flag, given, recorded in (
            ("--csv-labels", args.csv_labels, info.csv_labels),
            ("--scale", args.scale, info.scale),
        ):
            if given is not None and given != recorded:
                raise ArgumentError(
                    f"{flag} {given}: the run's data were read with {flag} {recorded or 'none'}; leave the flag out, "
                    f"or give --data to evaluate on other data"
                )
    csv_labels = args.csv_labels or (info.csv_labels if info else None)
    scale = args.scale or (info.scale if info else "auto")
    data = load_cli_data(
        name,
        data_dir,
        dir_flag,
        n_train=limit,
        n_test=limit,
        csv_labels=csv_labels,
        scale=None if scale == "none" else scale,
    )
    if args.data is None and info is not None and limit == info.limit:  # the run's own test part
        info.check_same_data(data.digests(), ("test",), run_folder(args.run), "eval")
    if model.needs_labels and data.y_test is None:
        raise DataError(f"{args.run} holds a {model.kind}, which needs class labels, and the data {name!r} have none")
    y = data.y_test if model.needs_labels else None
    test = test_metrics(model, data.X_test, y, args.iwae_k or EVAL_IWAE_K, args.seed, progress=True)
    rows = [
        ["model", f"{model.kind}, {plural(model.epochs_trained, 'epoch')}"],
        ["data", f"{name} test part ({len(data.X_test)})"],
    ]
    rows += [[k, format_number(v)] for k, v in test.items()]
    print(box_table("Test metrics", None, [Group(rows)], "ll", color_default()))
    if args.json_out:
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)  # as sample -o and train --out do
        write_atomic(path, (json.dumps({"model": model.kind, "data": name, "test": test}, indent=2) + "\n").encode())
    return 0


def figure_suffixes() -> tuple[str, ...]:
    """The figure formats matplotlib writes (but pgf, which needs a TeX installation)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(f".{s}" for s in FigureCanvasBase.get_supported_filetypes() if s != "pgf")


def check_sample_output(out: Path) -> None:
    """Refuse an ``-o`` whose suffix names neither an array file nor a figure format."""
    suffix = out.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return
    figures = figure_suffixes()
    if suffix not in figures:
        what = f"cannot write {suffix} files" if suffix else "the name has no suffix to say the format"
        raise ArgumentError(
            f"-o {out}: {what}: use {' or '.join(ARRAY_SUFFIXES)} for the arrays or a figure format "
            f"({', '.join(figures)})"
        )


def write_npy(path: Path, array: Any) -> None:
    """Save ``array`` as .npy to exactly ``path`` (``np.save`` would add .npy to another name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.save(f, backend.to_numpy(array))


def labels_file(out: Path) -> Path:
    """Where ``sample -o STEM.npy`` writes a conditional model's classes: STEM_labels.npy beside it."""
    return out.with_name(f"{out.stem}_labels.npy")


def save_samples(out: Path, images: np.ndarray, labels: np.ndarray | None) -> str:
    """Write samples (and their classes ``labels``, if any) to ``out`` (.npy or .npz); says what went where.

    .npz: X (and y); .npy: the samples, and their classes in STEM_labels.npy.
    """
    if out.suffix.lower() == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"X": images} if labels is None else {"X": images, "y": labels}
        with open(out, "wb") as f:
            np.savez(f, **arrays)
        return f"{out}" + ("" if labels is None else " (X: the samples, y: their classes)")
    write_npy(out, images)
    if labels is None:
        return f"{out}"
    labels_out = labels_file(out)
    write_npy(labels_out, labels)
    return f"{out} and their classes to {labels_out}"


def cmd_sample(args: argparse.Namespace) -> int:
    """``scratchae sample``: images decoded from prior draws (or a class's), as a figure or an array file."""
    if args.output:
        check_output_file("-o", Path(args.output), args.run, "samples.npy")
        check_sample_output(Path(args.output))
    model, info = load_run(args.run, args.device)
    if not isinstance(model, VAE):
        raise ArgumentError(f"sample needs a vae or cvae run; {args.run} holds a model of kind {model.kind}")
    conditional = isinstance(model, ConditionalVAE)
    if args.label is not None and not conditional:
        raise ArgumentError(f"--class applies to a cvae run; {args.run} holds a model of kind {model.kind}")
    if args.label is not None and not 0 <= args.label < model.n_classes:
        raise ArgumentError(f"--class must be in [0, {model.n_classes - 1}] for this cvae, got {args.label}")
    if conditional and args.output and Path(args.output).suffix.lower() == ".npy":  # the classes go beside
        check_output_file("-o: the classes' file", labels_file(Path(args.output)), args.run, "samples_labels.npy")
    # named by class and seed, so the figure training wrote (samples.png) is never overwritten
    default_name = f"samples{'' if args.label is None else f'_class{args.label}'}_seed{args.seed}.png"
    out = Path(args.output) if args.output else run_folder(args.run) / default_name
    shape = args.image_shape or (info.image_shape if info else None)
    figure = out.suffix.lower() not in ARRAY_SUFFIXES
    if figure and shape is None:
        raise ArgumentError(
            f"{args.run} records no image shape: give one (--image-shape HxW) or write the samples to a .npy file "
            f"(-o samples.npy)"
        )
    if figure and math.prod(shape) != model.input_dim:
        raise ArgumentError(
            f"--image-shape {'x'.join(map(str, shape))} does not fit the model's {model.input_dim} features"
        )
    if args.label is not None:
        labels = np.full(args.n, args.label)
    else:  # a cvae: the classes in turn, as evenly as n allows
        labels = np.arange(args.n) % model.n_classes if conditional else None
    rng = backend.new_rng(args.seed, model.device)
    images = backend.to_numpy(model.sample(args.n, y=labels, rng=rng))
    if not figure:
        print(f"wrote {plural(args.n, 'sample')} to {save_samples(out, images, labels)}")
        return 0
    from .. import plots

    grey = tuple(info.grey_scale) if info and info.grey_scale else None  # the training data's grey scale
    if conditional and args.label is None:
        n_classes = model.n_classes
        if args.n % n_classes == 0:  # one row per class
            order = np.argsort(labels, kind="stable")
            plots.class_grid(images[order], shape, out, n_classes, info.class_names if info else None, limits=grey)
        else:
            names = info.class_names if info and info.class_names else [str(c) for c in range(n_classes)]
            title = f"{plural(args.n, 'sample')}, one class per column"
            plots.samples_grid(images, shape, out, ncols=n_classes, title=title, column_labels=names, limits=grey)
    else:
        named = info.class_names[args.label] if args.label is not None and info and info.class_names else None
        of_class = f" of class {args.label}" + (f" ({named})" if named and named != str(args.label) else "")
        title = plural(args.n, "sample") + ("" if args.label is None else of_class)
        plots.samples_grid(images, shape, out, title=title, limits=grey)
    print(f"wrote {plural(args.n, 'sample')} to {out}")
    return 0


def read_examples(
    path: str, what: str, info: RunInfo | None
) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float]]:
    """(X, y, (min, max)): the examples (N, D) or images (N, H, W) of a .npy file, an .npz's X or a CSV,
    as float32 (N, D), read and scaled as the run's data were (``info``: its CSV label column, which gives
    y, and its scaling, with a warning where uint8 values fit the run's own full scale, 16 for the digits;
    without a run.json uint8 is scaled to [0, 1] and a CSV holds features only); the file's own range."""
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"{what}: no file at {file}")
    raw = read_array_file(file, csv_labels=info.csv_labels if info else None)
    X, _ = check_features(raw.X, f"{file.name}")
    file_range = (float(X.min()), float(X.max())) if X.size else (0.0, 0.0)
    scale = info.scale if info else "auto"
    if scale == "minmax":
        if info is None or info.minmax is None:
            raise DataError(f"{path}: the run's --scale minmax recorded no range to map new data with")
        minmax_scale(X, tuple(info.minmax))
    elif scale == "auto" and raw.full_scale:
        run_scale = info.full_scale if info else None
        if run_scale and run_scale != raw.full_scale and X.max() <= run_scale:
            warnings.warn(
                f"{file.name}: its uint8 values run from {X.min():g} to {X.max():g} and are divided by "
                f"{raw.full_scale:g}, as uint8 pixels are; the run's data were divided by {run_scale:g}: for data "
                f"on that scale, store floats divided by {run_scale:g}",
                UserWarning,
                stacklevel=2,
            )
        X /= raw.full_scale
    return X, raw.y, file_range


def check_run_scale(
    model: Model, X: np.ndarray, name: str, file_range: tuple[float, float], info: RunInfo | None
) -> None:
    """A run whose loss is BCE (Bernoulli) takes data in [0, 1], as scaled the run's way: other data are
    refused, naming the file's own values and the scale the run's data had."""
    if model.unit_interval_loss is None or X.size == 0 or (X.min() >= 0 and X.max() <= 1):
        return
    low, high = float(X.min()), float(X.max())
    scaled = f" ({low:.8g} to {high:.8g} as the run scales them)" if (low, high) != file_range else ""
    if info is not None and info.scale == "minmax" and info.minmax:
        a, b = info.minmax
        how = f"the run maps its training data's range {a:g} to {b:g} onto [0, 1] (--scale minmax): give data in it"
    elif info is not None and info.full_scale:
        how = f"the run's data were divided by {info.full_scale:g}: give floats divided by {info.full_scale:g}"
        how += ", or uint8 pixels" if info.full_scale == 255 else ""
    else:
        how = "give data in [0, 1], as the run's were"
    raise DataError(
        f"{name} holds values from {file_range[0]:.8g} to {file_range[1]:.8g}{scaled}, but the run's {model.kind} "
        f"(a BCE loss) takes data in [0, 1]: {how}"
    )


def cmd_encode(args: argparse.Namespace) -> int:
    """``scratchae encode``: the codes of the rows of an array file, written as a .npy file."""
    out = Path(args.output)
    if out.suffix.lower() != ".npy":
        raise ArgumentError(f"-o {out}: encode writes the codes as a .npy file: give a name ending in .npy")
    data = Path(args.data)
    if data.suffix.lower() not in SUFFIXES:
        raise ArgumentError(
            f"{data}: encode reads a .npy file of examples (N, D) or images (N, H, W), an .npz (its X) or a .csv"
        )
    for flag, given in (("the data file", data), ("the --labels file", Path(args.labels) if args.labels else None)):
        if given is not None and out.resolve() == given.resolve():
            raise ArgumentError(f"-o {out} is {flag} itself: write the codes to another file")
    check_output_file("-o", out, args.run, "codes.npy")
    model, info = load_run(args.run, args.device)
    # the data the model was trained on: in [0, 1] for a BCE / Bernoulli model, as train and eval require
    X, file_labels, file_range = read_examples(args.data, "data", info)
    check_run_scale(model, X, data.name, file_range, info)
    X = model.check_targets(X, data.name)
    if model.needs_labels:
        if args.labels:
            labels_file = Path(args.labels)
            if not labels_file.is_file():
                raise DataNotFoundError(f"--labels: no file at {labels_file}")
            file_labels = check_labels(read_npy(labels_file).X, len(X), labels_file.name)  # as train reads labels
        elif file_labels is None:
            raise ArgumentError(f"{model.kind} encodes an example given its class: pass --labels labels.npy")
        codes = model.transform(X, file_labels)
    else:
        if args.labels:
            raise ArgumentError(f"--labels applies to a cvae run; {args.run} holds a model of kind {model.kind}")
        codes = model.transform(X)
    write_npy(out, codes)
    print(f"wrote codes of shape {tuple(codes.shape)} to {out}")
    return 0
