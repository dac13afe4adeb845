"""The ``scratchae`` command: train, eval, sample, encode, gradcheck, trace, bench.

Every error on bad input (a scratchae error, a bad argument, an unreadable file) ends the
command with one line ``scratchae: error: ...`` on stderr and a non-zero exit status (2 for a
bad command line, 1 otherwise); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import backend, metrics
from .atomic import write_atomic
from .callbacks import EarlyStopping
from .data import DATASETS, Dataset, split_indices
from .data import load as load_data
from .data.checks import check_features, check_labels
from .data.dataset import minmax_scale
from .data.files import CSV_LABEL_COLUMNS, SUFFIXES, read_array_file, read_npy
from .data.noise import check_level
from .data.sources import SYSTEM_DIRS, find_idx_files
from .errors import ArgumentError, CheckpointError, DataError, DataNotFoundError, ScratchAEError
from .gradcheck import gradcheck_module
from .models import VAE, AutoEncoder, ConditionalVAE, DenoisingAutoEncoder, Model
from .optim import OPTIMIZERS
from .progress import plural
from .run_info import RUN_FILE, RunInfo
from .tables import Group, box_table, color_default
from .trace import trace
from .validation import check_unit_interval

KINDS = ("ae", "dae", "vae", "cvae", "stacked")
CHECK_KINDS = ("ae", "dae", "vae", "cvae")
DEFAULT_LATENT = {"ae": 8, "dae": 8, "vae": 2, "cvae": 2, "stacked": 8}
DEFAULT_HIDDEN = {"ae": "256", "dae": "256", "vae": "256", "cvae": "256", "stacked": "128,64"}
DEFAULT_ACTIVATION = {"ae": "relu", "dae": "relu", "vae": "relu", "cvae": "relu", "stacked": "sigmoid"}
TRAVERSAL_ROWS = 8  # a VAE whose latent is not 2-D gets a traversal figure of its most active coordinates
COLLAPSE_KL = 0.1  # a VAE whose KL term per example ends below this many nats is warned of (warn_collapse)
TRAIN_IWAE_K = 50
EVAL_IWAE_K = 1000
# train's batch size, learning rate and optimizer when neither the command line nor a resumed run gives them
TRAIN_DEFAULTS: dict[str, Any] = {"batch_size": 32, "lr": 3e-3, "optimizer": "adam"}
ARRAY_SUFFIXES = (".npy", ".npz")
IDX_SETS = tuple(SYSTEM_DIRS)  # the data sets read from IDX files
CHECKPOINT_FILE = "checkpoint.npz"
# what train (and sample without -o) write into a run folder: what --overwrite deletes of the old run
RUN_OUTPUTS = (
    CHECKPOINT_FILE,
    "metrics.json",
    "history.csv",
    RUN_FILE,
    *(f"{name}.png" for name in ("loss", "denoising", "reconstructions", "latent", "class_samples", "samples")),
    "manifold.png",
    "traversal.png",
)
SAMPLES_FILE = re.compile(r"samples(_class\d+)?_seed\d+\.png")  # what sample writes without -o, and nothing else


def is_run_output(name: str) -> bool:
    """Whether a file of this name in a run folder is one that train or sample writes there."""
    return name in RUN_OUTPUTS or SAMPLES_FILE.fullmatch(name) is not None


def run_outputs(folder: Path) -> list[Path]:
    """The files in ``folder`` that train or sample wrote there (by name), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_run_output(p.name))


class UsageError(Exception):
    """A bad command line (argparse's complaint), reported as one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    commands: dict[str, argparse.ArgumentParser]  # the subcommands' parsers, where there are any

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse's, but an unknown argument after a command is refused by that command's parser,
        so the message points to its help (``scratchae train --help``)."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            owner = getattr(self, "commands", {}).get(getattr(parsed, "command", None), self)
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


# --- argument types ---


def int_at_least(low: int, what: str) -> Callable[[str], int]:
    """An argument type: an integer >= ``low``, described as ``what`` in its errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")


def float_in(low: float, high: float, low_open: bool, what: str) -> Callable[[str], float]:
    """An argument type: a float in (low, high) or [low, high), described as ``what`` in its errors."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ((low < value) if low_open else (low <= value)) or not value < high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


positive_float = float_in(0.0, math.inf, True, "a finite number > 0")
non_negative_float = float_in(0.0, math.inf, False, "a finite number >= 0")
fraction = float_in(0.0, 1.0, False, "a number in [0, 1)")


def int_list(text: str) -> tuple[int, ...]:
    """``"512,256"`` -> (512, 256): one or more positive integers separated by commas."""
    try:
        return tuple(positive_int(p.strip()) for p in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None


def layer_sizes(text: str) -> tuple[int, ...]:
    """Hidden widths as in :func:`int_list`; an empty string means no hidden layer."""
    return int_list(text) if text.strip() else ()


def image_shape(text: str) -> tuple[int, int]:
    """``"28x28"`` -> (28, 28)."""
    try:
        h, w = (positive_int(p) for p in text.lower().split("x"))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected HxW with positive integers, e.g. 28x28, got {text!r}") from None
    return h, w


# --- the parser ---


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=backend.DEVICES, default="cpu", help="cpu (NumPy/Numba) or gpu (CuPy/CUDA)")


def _add_data(p: argparse.ArgumentParser, default_help: str, flags_default: str = "") -> None:
    """--data, --data-dir, --limit, --csv-labels and --scale; ``flags_default``: what the last two
    default to when they are not given (train: none and auto)."""
    p.add_argument(
        "--data", help=f"digits (bundled 8x8), fashion-mnist, mnist, or a .npy/.npz/.csv file (default {default_help})"
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="fashion-mnist/mnist: folder holding the four IDX files (in it or in DIR/NAME); it must exist",
    )
    p.add_argument(
        "--limit", type=positive_int, metavar="N", help="use at most N examples of the training and of the test part"
    )
    p.add_argument(
        "--csv-labels",
        choices=CSV_LABEL_COLUMNS,
        help=f"a .csv file's column holding the class label (default: {flags_default or 'none'})",
    )
    p.add_argument(
        "--scale",
        choices=("auto", "minmax", "none"),
        help="auto: uint8 pixels /255, digits /16, other data as they are; minmax: the training part's "
        f"min..max onto 0..1; none (default: {flags_default or 'auto'})",
    )


def build_parser() -> Parser:
    parser = Parser(prog="scratchae", description="Autoencoders and VAEs from scratch: train, inspect, check.")
    parser.add_argument("--version", action="version", version="scratchae " + _version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    t = sub.add_parser(
        "train",
        help="train a model; checkpoint, metrics and figures go to --out",
        description="Train a model and write checkpoint.npz, metrics.json (test metrics), history.csv, run.json "
        "and the PNG figures of its kind to --out. Example: scratchae train vae --data fashion-mnist "
        "--hidden 400 --latent 20 --epochs 10 --batch-size 128 --lr 1e-3",
    )
    t.add_argument("kind", choices=KINDS, help="ae, dae (denoising), vae, cvae (conditional), stacked (layer-wise)")
    _add_data(t, "digits; with --resume: the run's own, as are its other data flags")
    t.add_argument(
        "--image-shape", type=image_shape, metavar="HxW", help="HxW of the images, for data files of flat rows"
    )
    t.add_argument("--val-fraction", type=fraction, help="share of training data held out (default 0.1)")
    t.add_argument(
        "--latent", type=positive_int, metavar="D", help="latent size (default: 2 for vae/cvae, 8 otherwise)"
    )
    t.add_argument(
        "--hidden",
        type=layer_sizes,
        metavar="SIZES",
        help='hidden widths, e.g. 400 or 512,256, or "" for none (default 256; 128,64 for stacked)',
    )
    t.add_argument("--activation", help="hidden activation (default relu; sigmoid for stacked)")
    t.add_argument("--loss", choices=("bce", "mse"), help="bce (Bernoulli, the default) or mse (Gaussian)")
    t.add_argument("--epochs", type=positive_int, default=50, help="epochs in all (default 50)")
    t.add_argument(
        "--patience",
        type=positive_int,
        metavar="N",
        help="stop once the validation loss has gone N epochs without improving; the run ends with the best "
        "epoch's weights",
    )
    resumed = "; with --resume: the run's own"
    t.add_argument("--batch-size", type=positive_int, help=f"default {TRAIN_DEFAULTS['batch_size']}{resumed}")
    t.add_argument("--lr", type=positive_float, help=f"learning rate (default {TRAIN_DEFAULTS['lr']:g}{resumed})")
    t.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help=f"default {TRAIN_DEFAULTS['optimizer']}{resumed}")
    _add_device(t)
    t.add_argument("--seed", type=non_negative_int, help="seeds the weights, the split and the noise (default 0)")
    t.add_argument(
        "--out", metavar="DIR", help="run folder (default runs/KIND); one holding a run needs --resume or --overwrite"
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from --out's checkpoint up to --epochs in all, with the run's own model and data (their "
        "flags need not be repeated; one that differs is refused), optimizer, and batch size and lr unless given; "
        "a run that already has --epochs epochs is left as it is (exit status 0)",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out: it stays whole until the new run's first epoch is saved, then its "
        "metrics, history, run.json (rewritten), figures and sample figures are deleted",
    )
    t.add_argument("--noise", choices=("gaussian", "masking", "salt_pepper"), help="dae/stacked: input noise")
    t.add_argument("--noise-level", type=non_negative_float, help="dae/stacked: noise std or probability (0.25)")
    t.add_argument("--beta", type=non_negative_float, help="vae/cvae: weight of the KL term (default 1)")
    t.add_argument(
        "--kl-warmup", type=non_negative_int, help="vae/cvae: epochs over which beta ramps up (default 0: none)"
    )
    t.add_argument(
        "--gaussian-std",
        type=positive_float,
        metavar="S",
        help="vae/cvae with --loss mse: the Gaussian decoder's fixed std (default 1; on data in [0, 1] a std "
        "of 1 lets the KL term win and the codes carry little: try 0.1)",
    )
    t.add_argument("--pretrain-epochs", type=positive_int, help="stacked: epochs per layer (default --epochs)")
    t.add_argument(
        "--iwae-k",
        type=positive_int,
        metavar="K",
        help=f"vae/cvae: samples of the test IWAE (default {TRAIN_IWAE_K})",
    )
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    e = sub.add_parser("eval", help="test metrics of a trained run")
    e.add_argument("run", help="run folder (or checkpoint file)")
    e.add_argument("--iwae-k", type=positive_int, help="vae/cvae: importance samples per example (default 1000)")
    _add_data(e, "the run's data", "the run's own")
    _add_device(e)
    e.add_argument("--seed", type=non_negative_int, default=0)
    e.add_argument("--json", dest="json_out", help="also write the metrics to this JSON file")

    s = sub.add_parser("sample", help="generate from a trained VAE or CVAE")
    s.add_argument("run", help="run folder (or checkpoint file)")
    s.add_argument(
        "-n",
        type=positive_int,
        default=64,
        help="number of samples in all (default 64); a cvae without --class draws sample i from class i mod C",
    )
    s.add_argument("--class", dest="label", type=int, help="cvae: the one class to generate")
    s.add_argument(
        "--image-shape",
        type=image_shape,
        metavar="HxW",
        help="HxW of the images for a figure, where the run records none (flat rows, a checkpoint saved from Python)",
    )
    s.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="a figure (.png, .pdf, .svg, .jpg, ...; default RUN/samples_seedS.png, or RUN/samples_classC_seedS.png "
        "with --class, beside training's samples.png, which it leaves as it is), or the samples (N, D) as arrays: "
        ".npy, or .npz with X (and y, a cvae's classes); a cvae's .npy gets its classes beside it "
        "in STEM_labels.npy. A cvae's figure without --class: one row per class when -n is a multiple of C, "
        "else one column per class",
    )
    _add_device(s)
    s.add_argument("--seed", type=non_negative_int, default=0)

    c = sub.add_parser("encode", help="latent codes of an array file (posterior means for a VAE)")
    c.add_argument("run", help="run folder (or checkpoint file)")
    c.add_argument(
        "data", help="a .npy file of examples (N, D) or images (N, H, W), an .npz (its X) or a .csv of features"
    )
    c.add_argument("-o", "--output", required=True, metavar="FILE", help=".npy file for the codes (N, latent)")
    c.add_argument("--labels", help="cvae: .npy file of the examples' classes (N,)")
    _add_device(c)

    gradcheck_help = "finite-difference check of every parameter of a small float64 model"
    g = sub.add_parser(
        "gradcheck",
        help=gradcheck_help,
        description=f"{gradcheck_help[0].upper()}{gradcheck_help[1:]} (12-7-3, on 5 random inputs in [0.05, 0.95], "
        "its noise injected): every entry of every parameter against central differences of the whole loss.",
    )
    g.add_argument("kind", choices=CHECK_KINDS)
    _add_device(g)
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights, inputs and noise (default 0)")

    trace_help = "one training step on a few digits, op by op, with FD checks"
    r = sub.add_parser(
        "trace",
        help=trace_help,
        description="One training step of a small float64 model on the first digits, op by op: each op's outputs, "
        "then each gradient as backward computes it, beside a finite-difference check of that op's backward.",
    )
    r.add_argument("kind", choices=CHECK_KINDS)
    r.add_argument("--examples", type=positive_int, default=8, help="batch size of the step (default 8)")
    r.add_argument("--hidden", type=layer_sizes, default=(32,), help="hidden widths (default 32)")
    r.add_argument("--latent", type=positive_int, default=2, help="latent size (default 2)")
    r.add_argument(
        "--max-entries",
        type=non_negative_int,
        default=20,
        help="entries checked per input, sampled (default 20; 0: every entry)",
    )
    r.add_argument("--no-check", action="store_true", help="skip the finite-difference checks")
    _add_device(r)
    r.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the weights, noise and sampled entries (default 0)"
    )

    sub.add_parser(
        "bench", help="epoch time beside the GEMM bound and PyTorch (scratchae bench --help)", add_help=False
    )
    parser.commands = sub.choices
    return parser


def _version() -> str:
    from . import __version__

    return __version__


# --- runs: what a run folder holds besides the checkpoint ---


def run_folder(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"no run at {p}: expected a folder written by 'scratchae train' or a checkpoint file")
    return p if p.is_dir() else p.parent


def check_output_file(flag: str, path: Path, run: str, example: str, renamed_into_place: bool = False) -> None:
    """Refuse an output file that is a folder, one that cannot be written, or one of the run's own files
    (its checkpoint, what train wrote beside it: RUN_OUTPUTS but the samples that sample writes, and the
    data file it was trained on), before any work is done. ``renamed_into_place``: the file is written
    beside and renamed over the old one (``write_atomic``), so its folder must be writable, not the file."""
    if path.is_dir():
        raise ArgumentError(f"{flag} {path} is a folder: give a file name, e.g. {path / example}")
    folder = run_folder(run)
    if path.resolve() == Path(run).resolve():
        raise ArgumentError(f"{flag} {path} is the checkpoint {run} itself: write to another file")
    if path.resolve() in {(folder / name).resolve() for name in RUN_OUTPUTS}:
        raise ArgumentError(f"{flag} {path} is a file of the run in {folder}: write to another file")
    existing = path.exists() and not renamed_into_place
    writable = path if existing else next(p for p in path.absolute().parents if p.exists())
    if not os.access(writable, os.W_OK):  # refused now, not after the work
        where = "it" if writable == path else f"its folder {writable}"
        raise ArgumentError(f"{flag} {path}: {where} cannot be written (no permission, or a read-only file system)")
    info = RunInfo.read(folder)
    if info is not None and _data_key(info.data, "data") == str(path.resolve()):  # a data set's name never is
        raise ArgumentError(f"{flag} {path} is the data file the run in {folder} was trained on: write to another file")


def load_run(path: str, device: str) -> tuple[Model, RunInfo | None]:
    from .checkpoint import load

    folder = run_folder(path)
    return load(path, device=device), RunInfo.read(folder)


# --- train ---


def build_model(args: argparse.Namespace, input_dim: int, n_classes: int | None) -> Model:
    """The model of ``args.kind`` (stacked: its pretraining happens in ``train``)."""
    kind = args.kind
    common = dict(hidden=args.hidden, latent_dim=args.latent, activation=args.activation, seed=args.seed)
    common["device"] = args.device
    if kind in ("ae", "dae"):
        output = "sigmoid" if args.loss == "bce" else "linear"
        if kind == "ae":
            return AutoEncoder(input_dim, output=output, loss=args.loss, **common)
        return DenoisingAutoEncoder(
            input_dim, output=output, loss=args.loss, noise=args.noise, noise_level=args.noise_level, **common
        )
    vae_args = dict(
        likelihood="bernoulli" if args.loss == "bce" else "gaussian",
        beta=args.beta,
        kl_warmup=args.kl_warmup,
        gaussian_std=args.gaussian_std,
    )
    if kind == "vae":
        return VAE(input_dim, **vae_args, **common)
    if not n_classes:
        raise DataError(f"cvae needs class labels, and the data set {args.data!r} has none")
    return ConditionalVAE(input_dim, n_classes, **vae_args, **common)


# train's model flags and the configuration keys they set
FLAG_KEYS = {
    "hidden": "hidden",
    "latent": "latent_dim",
    "activation": "activation",
    "seed": "seed",
    "beta": "beta",
    "kl_warmup": "kl_warmup",
    "gaussian_std": "gaussian_std",
    "noise": "noise",
    "noise_level": "noise_level",
    "loss": "loss",
}


def run_flags(config: dict[str, Any]) -> dict[str, Any]:
    """The model flags of a run, read from its checkpoint's configuration (those it has)."""
    flags = {flag: config[key] for flag, key in FLAG_KEYS.items() if key in config}
    if "likelihood" in config:  # vae, cvae
        flags["loss"] = "bce" if config["likelihood"] == "bernoulli" else "mse"
    if "hidden" in flags:
        flags["hidden"] = tuple(flags["hidden"])
    return flags


def check_train_args(args: argparse.Namespace) -> None:
    """Fill per-kind defaults (on --resume first the run's own model flags); refuse options that do not
    apply to the kind."""
    kind = args.kind
    args.out = Path(args.out or Path("runs") / kind)
    owners = {
        "noise": ("dae", "stacked"),
        "noise_level": ("dae", "stacked"),
        "beta": ("vae", "cvae"),
        "kl_warmup": ("vae", "cvae"),
        "gaussian_std": ("vae", "cvae"),
        "pretrain_epochs": ("stacked",),
        "iwae_k": ("vae", "cvae"),
    }
    for name, kinds in owners.items():
        if getattr(args, name) is not None and kind not in kinds:
            raise ArgumentError(f"--{name.replace('_', '-')} applies to {' and '.join(kinds)}, not to {kind}")
    if args.resume and args.pretrain_epochs is not None:
        raise ArgumentError("--pretrain-epochs applies to a new stacked run: a resumed one goes on fine-tuning")
    gaussian_std_given = args.gaussian_std is not None
    check_run_folder(args)
    if args.resume:  # the run's configuration, where no flag is given (a flag that differs is refused on loading)
        from .checkpoint import read_checkpoint

        recorded = RunInfo.read(args.out)
        if recorded is not None and recorded.kind != kind:  # an ae run and a stacked one both hold an AutoEncoder
            raise ArgumentError(
                f"train {kind} --resume: the run in {args.out} was trained with 'train {recorded.kind}': go on "
                f"with 'train {recorded.kind} --resume', or train a new run with another --out"
            )
        own = run_flags(read_checkpoint(args.out / CHECKPOINT_FILE).meta["config"])
        for name, value in own.items():
            if getattr(args, name, None) is None and (kind != "stacked" or name not in ("noise", "noise_level")):
                setattr(args, name, value)
        resume_data_flags(args, recorded)
    args.data = args.data or "digits"
    args.val_fraction = 0.1 if args.val_fraction is None else args.val_fraction
    args.scale = args.scale or "auto"
    args.seed = 0 if args.seed is None else args.seed
    args.loss = args.loss or "bce"
    args.latent = args.latent or DEFAULT_LATENT[kind]
    args.hidden = layer_sizes(DEFAULT_HIDDEN[kind]) if args.hidden is None else args.hidden
    args.activation = args.activation or DEFAULT_ACTIVATION[kind]
    args.beta = 1.0 if args.beta is None else args.beta
    args.kl_warmup = args.kl_warmup or 0
    if gaussian_std_given and args.loss != "mse":
        raise ArgumentError("--gaussian-std is the Gaussian decoder's: it applies with --loss mse")
    args.gaussian_std = 1.0 if args.gaussian_std is None else args.gaussian_std
    args.iwae_k = args.iwae_k or TRAIN_IWAE_K
    if kind == "dae":
        args.noise = args.noise or "masking"
    if args.noise is not None and args.noise_level is None:
        args.noise_level = 0.25
    if args.noise is not None:  # a masking or salt_pepper level above 1, refused before any data is read
        check_level(args.noise, args.noise_level, "--noise-level")
    if kind == "stacked" and not args.hidden:
        raise ArgumentError("stacked needs at least one hidden layer (--hidden 128,64)")
    if args.patience is not None and args.val_fraction == 0:
        raise ArgumentError("--patience watches the validation loss: it needs --val-fraction above 0")


def _ours(path: Path) -> bool:
    """Whether ``path`` is the run.json of a run of ours (one stopped before its first checkpoint)."""
    if path.name != RUN_FILE:
        return False
    try:
        return RunInfo.read(path.parent) is not None
    except DataError:
        return False


def check_run_folder(args: argparse.Namespace) -> None:
    """--out holding a run needs --resume (go on) or --overwrite (replace it); the two exclude each other.
    A folder in the place of a file train writes is refused; a folder without a run that holds files of
    those names (but the run.json of a run stopped before its first checkpoint) needs --overwrite."""
    if args.resume and args.overwrite:
        raise ArgumentError("--resume goes on with the run in --out and --overwrite replaces it: give one of them")
    if not args.out.is_dir():
        return
    folders = sorted(name for name in RUN_OUTPUTS if (args.out / name).is_dir())
    if folders:
        raise ArgumentError(f"{args.out} holds folders where train writes files: {', '.join(folders)}")
    if args.resume or args.overwrite:
        return
    if (args.out / CHECKPOINT_FILE).exists():
        raise ArgumentError(
            f"{args.out} holds a run ({CHECKPOINT_FILE}): continue it with --resume, replace it with --overwrite, "
            f"or give another --out"
        )
    taken = [p.name for p in run_outputs(args.out) if not _ours(p)]
    if taken:
        raise ArgumentError(
            f"{args.out} holds no run but files that train would write ({', '.join(taken)}): "
            f"replace them with --overwrite, or give another --out"
        )


def resume_data_flags(args: argparse.Namespace, info: RunInfo | None) -> None:
    """--resume: the data flags the run recorded (run.json) where the command gives none; a given --data,
    --limit, --image-shape, --val-fraction, --csv-labels or --scale that differs is refused (--data-dir
    may move: it is not)."""
    if info is None:  # a run of a version that wrote no run.json at the start: the flags as given
        return
    recorded = {
        "data": info.data,
        "data_dir": info.data_dir,
        "limit": info.limit,
        "image_shape": tuple(info.image_shape) if info.image_shape else None,
        "val_fraction": info.val_fraction,
        "csv_labels": info.csv_labels,
        "scale": info.scale,
    }
    for flag, value in recorded.items():
        given = getattr(args, flag)
        if given is None:
            setattr(args, flag, value)
        elif flag != "data_dir" and (flag != "val_fraction" or value is not None):
            if _data_key(given, flag) != _data_key(value, flag):
                raise ArgumentError(
                    f"--{flag.replace('_', '-')} {_shown(given)}: the run in {args.out} was trained with "
                    f"{_shown(value, flag)}; --resume goes on with the run's own data (leave the flag out), or "
                    f"train a new run with another --out"
                )


def _shown(value: Any, flag: str | None = None) -> str:
    """A data flag's value as the command line writes it (HxW for a shape); None as what it meant for ``flag``."""
    if value is None:
        return "all examples" if flag == "limit" else f"no --{str(flag).replace('_', '-')}"
    return "x".join(str(n) for n in value) if isinstance(value, (list, tuple)) else str(value)


def _data_key(value: Any, flag: str) -> Any:
    """A data flag's value as compared on --resume: data sets by name, files by absolute path."""
    if flag != "data" or not isinstance(value, str):
        return tuple(value) if isinstance(value, (list, tuple)) else value
    name = value.lower().replace("_", "-")
    return name if name in DATASETS else str(Path(value).resolve())


# Library wording -> the command line's flags, for the errors of loading the data a command names.
NOT_IN_NAME = (r"(?<![\w/.\-\"'])", r"(?![\w/.\-\"'])")  # an argument's name, not part of a path or a quoted key
CLI_WORDS = (
    (r"no data_dir was given", "no --data-dir was given"),
    (r"pass data_dir=", "pass --data-dir "),
    (rf"{NOT_IN_NAME[0]}image_shape{NOT_IN_NAME[1]}", "--image-shape"),
    (rf"{NOT_IN_NAME[0]}n_train{NOT_IN_NAME[1]}", "--limit"),
    (r"scale='minmax' or None", "--scale minmax or none"),
    (
        r"test_fraction=(\S+) of (\d+) examples leaves an empty train or test set: .*",
        r"a test part of \1 of the \2 examples would leave an empty training or test part: give more "
        r"examples, or a test part of their own (X_test and y_test in an .npz file)",
    ),
)


def load_cli_data(name: str, data_dir: str | None, dir_flag: str, **kwargs: Any) -> Dataset:
    """``data.load(name, data_dir, **kwargs)`` for a command: ``data_dir`` (given as ``dir_flag``) must exist
    and hold the IDX files; errors name the command's flags instead of ``load``'s arguments."""
    key = str(name).lower().replace("_", "-")
    if kwargs.get("csv_labels") and Path(name).suffix.lower() != ".csv":
        raise ArgumentError(f"--csv-labels applies to a .csv file, not to --data {name}")
    try:
        if data_dir is not None:
            if key not in IDX_SETS:
                raise ArgumentError(f"{dir_flag} applies to {' and '.join(IDX_SETS)}, not to --data {name}")
            if not Path(data_dir).is_dir():
                what = "is a file, not a folder" if Path(data_dir).exists() else "no such folder"
                raise DataNotFoundError(f"{dir_flag} {data_dir}: {what}")
            find_idx_files(key, data_dir, system_dirs=False)
        return load_data(name, data_dir, **kwargs)
    except ScratchAEError as exc:
        raise type(exc)(flag_words(exc)) from exc


def flag_words(message: Any) -> str:
    """A library message on one line and in the command line's words (``device='cpu'`` -> ``--device cpu``,
    ``data_dir`` -> ``--data-dir``, ...): what the CLI and the examples print."""
    text = _one_line(message).replace("device='cpu'", "--device cpu")
    for pattern, words in CLI_WORDS:
        text = re.sub(pattern, words, text)
    return text


def split_validation(
    X: np.ndarray, y: np.ndarray | None, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(X_train, y_train, X_val, y_val): a seeded, stratified share ``val_fraction`` held out (None if 0)."""
    if val_fraction == 0:
        return X, y, None, None
    try:
        train, val = split_indices(len(X), val_fraction, y, seed)
    except DataError as exc:
        raise DataError(
            f"--val-fraction {val_fraction} of {len(X)} training examples leaves an empty training or "
            f"validation part: give more examples (--limit) or --val-fraction 0"
        ) from exc
    if y is None:
        return X[train], None, X[val], None
    return X[train], y[train], X[val], y[val]


def train_stacked(args: argparse.Namespace, X: np.ndarray, fit_args: dict[str, Any]) -> Model:
    """Greedy layer-wise pretraining, then the unrolled autoencoder fine-tuned end to end."""
    from .pretrain import pretrain_layerwise, stack_autoencoder

    layers = pretrain_layerwise(
        X,
        (X.shape[1], *args.hidden, args.latent),
        activation=args.activation,
        denoising=(args.noise, args.noise_level) if args.noise else None,
        output="sigmoid" if args.loss == "bce" else "linear",
        epochs=args.pretrain_epochs or args.epochs,
        batch_size=fit_args["batch_size"],
        lr=fit_args["lr"],
        optimizer=fit_args["optimizer"],
        seed=args.seed,
        device=args.device,
        verbose=not args.quiet,
    )
    return _fit(stack_autoencoder(layers, seed=args.seed), X, None, fit_args, args.out, resume=False)


def resumed_model(args: argparse.Namespace, n_features: int, n_classes: int | None) -> Model:
    """The model of ``args.out``'s checkpoint (weights, epochs, history), refused if it does not fit ``args``."""
    from .checkpoint import load, read_checkpoint, restore_training_state

    if args.kind == "stacked":
        model = load(args.out, device=args.device)
        if type(model) is not AutoEncoder:
            raise CheckpointError(f"{args.out} holds a {model.kind}, not the AutoEncoder of a stacked run")
        return model
    model = build_model(args, n_features, n_classes)
    restore_training_state(model, None, read_checkpoint(args.out / CHECKPOINT_FILE))
    return model


def make_run_folder(out: Path) -> None:
    """Create the run folder ``out`` (--out), or refuse it in one line."""
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError(f"--out {out}: cannot create the run folder: {exc.strerror or exc}") from exc


def check_test_part(args: argparse.Namespace, X_test: np.ndarray) -> None:
    """The test part in [0, 1] for a BCE loss, checked before training rather than after it."""
    if args.loss == "bce":
        how = "in the file"
        if args.scale == "minmax":
            how = "--scale minmax maps the training part's range onto it, which the test part leaves; "
            how += "scale both in the file"
        check_unit_interval(X_test, "X_test", f"{args.kind} --loss bce", "--loss mse", how)


def check_training_data(args: argparse.Namespace, model: Model | None, X: np.ndarray, y: Any) -> None:
    """The checks ``fit`` makes of a new run's data (values in [0, 1] for BCE, the labels), made up front."""
    if args.loss == "bce":  # in the command line's words; then the model's own checks
        check_unit_interval(X, "X", f"{args.kind} --loss bce", "--loss mse", "--scale minmax, or in the file")
    if model is None:  # stacked
        return
    model.check_targets(X)
    if model.needs_labels:
        model.check_labels(y, len(X))


def old_run_replaced(out: Path, info: RunInfo) -> Callable[[int, dict[str, Any], Model], bool]:
    """A ``fit`` callback for --overwrite: after the first epoch (whose checkpoint has replaced the old
    run's), delete the old run's other files (``run_outputs``) and write the new run's run.json."""
    replaced = False

    def replace(epoch: int, logs: dict[str, Any], model: Model) -> bool:
        nonlocal replaced
        if not replaced:
            replaced = True
            for path in run_outputs(out):
                if path.name != CHECKPOINT_FILE:
                    path.unlink()
            info.write(out)
        return False

    return replace


def _fit(model: Model, X: Any, y: Any, fit_args: dict[str, Any], out: Path, resume: bool) -> Model:
    """``model.fit`` with checkpoints in ``out`` (resumed from there when ``resume``)."""
    model.fit(X, y, checkpoint_dir=out, resume_from=(out / CHECKPOINT_FILE) if resume else None, **fit_args)
    return model


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def interrupted_note(out: Path, before: tuple[int, int] | None) -> str:
    """Where an interrupted ``train`` left its run; ``before``: the checkpoint's ``_file_state`` at the start."""
    from .checkpoint import read_checkpoint

    path = out / CHECKPOINT_FILE
    try:
        epochs = read_checkpoint(path).meta["epochs_trained"]
    except (ScratchAEError, OSError):
        return f"no checkpoint was saved in {out}"
    if _file_state(path) == before:
        return f"no epoch ended, nothing was saved ({path} holds epoch {epochs} from before)"
    return (
        f"{path} holds epoch {epochs}: continue with --resume, or end the run there with --resume --epochs {epochs} "
        f"(which writes its metrics and figures)"
    )


def cmd_train(args: argparse.Namespace) -> int:
    check_train_args(args)
    before = _file_state(args.out / CHECKPOINT_FILE)
    try:
        return train_run(args)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(interrupted_note(args.out, before)) from None


def train_run(args: argparse.Namespace) -> int:
    """``train`` with its arguments checked: load, train (or resume), write metrics and figures, summarize."""
    from . import plots

    backend.check_device(args.device)
    data = load_cli_data(
        args.data,
        args.data_dir,
        "--data-dir",
        n_train=args.limit,
        n_test=args.limit,
        image_shape=args.image_shape,
        csv_labels=args.csv_labels,
        scale=None if args.scale == "none" else args.scale,
    )
    X, y, X_val, y_val = split_validation(data.X_train, data.y_train, args.val_fraction, args.seed)
    named = str(args.data).lower().replace("_", "-") in DATASETS
    info = RunInfo(  # files and folders by absolute path, so eval finds them from anywhere
        args.kind,
        str(args.data) if named else str(Path(args.data).resolve()),
        str(Path(args.data_dir).resolve()) if args.data_dir else None,
        args.limit,
        list(data.image_shape) if data.image_shape else None,
        data.n_classes,
        list(data.class_names) if data.class_names else None,
        args.val_fraction,
        args.csv_labels,
        args.scale,
        list(data.minmax) if data.minmax else None,
        list(plots.display_limits(data.X_train)),
        data.full_scale,
        data.digests(),
    )
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        recorded = RunInfo.read(args.out)
        if recorded is not None:
            recorded.check_same_data(info.digests, ("train", "test"), args.out, "--resume")  # hashed once
        model: Model | None = resumed_model(args, data.n_features, data.n_classes)
        if model.epochs_trained >= args.epochs:
            done = f"{args.out} already has {plural(model.epochs_trained, 'epoch')}, --epochs {args.epochs} in all"
            if metrics_epochs(args.out) == model.epochs_trained:
                print(f"{done}: nothing was trained, the run is as it was")
                return 0
            # stopped after its last checkpoint, before its metrics and figures: those are written now
            print(f"{done}: nothing to train; writing the metrics and figures it lacks")
            return finish_run(args, model, data, X, info, model.epochs_trained, 0.0)
        check_test_part(args, data.X_test)
        # the run's own settings unless given; a checkpoint that predates them records only its optimizer
        old = {k: v for k, v in TRAIN_DEFAULTS.items() if k != "optimizer"} if model.fit_settings is None else {}
        settings = {**old, **given}
    else:
        model = None if args.kind == "stacked" else build_model(args, data.n_features, data.n_classes)
        check_training_data(args, model, X, y)  # refused before a folder is made or a run replaced
        check_test_part(args, data.X_test)
        make_run_folder(args.out)
        settings = {**TRAIN_DEFAULTS, **given}
    # --overwrite: the old run stays whole until the new run's first checkpoint has replaced its checkpoint
    replacing = args.overwrite and (args.out / CHECKPOINT_FILE).exists()
    if not replacing:
        info.write(args.out)  # before training: a run interrupted in its first epochs resumes with its data
    fit_args = dict(epochs=args.epochs, **settings, validation_data=X_val, verbose=not args.quiet)
    stopper = EarlyStopping(patience=args.patience, verbose=not args.quiet) if args.patience else None
    if args.resume:
        if model.weights_epoch is not None:
            print(
                f"{args.out} holds the weights of epoch {model.weights_epoch}, its best of "
                f"{plural(model.epochs_trained, 'epoch')} (--patience kept them): training goes on from them"
            )
        if stopper is not None:  # the run's past epochs count: its best so far and the epochs since
            stopper.resume(model)
    fit_args["callbacks"] = [old_run_replaced(args.out, info)] * replacing + [stopper] * (stopper is not None)
    before = model.epochs_trained if model is not None else 0
    start = time.perf_counter()
    if model is None:
        model = train_stacked(args, X, fit_args)
    else:
        if model.needs_labels:
            fit_args["validation_data"] = None if X_val is None else (X_val, y_val)
        _fit(model, X, y if model.needs_labels else None, fit_args, args.out, resume=args.resume)
    return finish_run(args, model, data, X, info, before, time.perf_counter() - start, stopper)


def metrics_epochs(out: Path) -> int | None:
    """The epoch count of the run's metrics.json, None where it has none (or one that cannot be read)."""
    try:
        epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epochs if isinstance(epochs, int) else None


def finish_run(
    args: argparse.Namespace,
    model: Model,
    data: Dataset,
    X: Any,
    info: RunInfo,
    before: int,
    seconds: float,
    stopper: EarlyStopping | None = None,
) -> int:
    """After training: the test metrics, history.csv, the figures, metrics.json (last), and the summary;
    ``stopper``: the run's --patience callback (its best epoch, and whose weights the model holds, recorded)."""
    y_test = data.y_test if model.needs_labels else None
    test = test_metrics(model, data.X_test, y_test, args.iwae_k, args.seed, progress=not args.quiet)
    result = {
        "model": model.kind,
        "config": model.config,
        "data": info.data,
        "n_train": len(X),
        "n_test": len(data.X_test),
        **({"n_classes": model.n_classes} if model.n_classes else {}),
        "epochs": model.epochs_trained,
        "epochs_this_run": model.epochs_trained - before,
        "train_seconds": round(seconds, 3),
        "last_epoch": model.history.last(),
        **({"weights_epoch": model.weights_epoch} if model.weights_epoch else {}),  # not the last epoch's
        "test": test,
    }
    if stopper is not None and stopper.best_epoch is not None:
        result["early_stopping"] = {
            "patience": stopper.patience,
            "stopped_epoch": stopper.stopped_epoch,  # None: it did not stop the run
            "best_epoch": stopper.best_epoch,
            "best_val_loss": stopper.best,
            "weights_epoch": stopper.weights_epoch,
        }
    if isinstance(model, VAE):
        warn_collapse(model, data.X_test, y_test)
    model.history.to_csv(args.out / "history.csv")
    figures = write_figures(model, data, args.out, args.seed)
    # last: a metrics.json of this epoch count says the run's outputs are all written (see --resume)
    write_atomic(args.out / "metrics.json", (json.dumps(result, indent=2) + "\n").encode())
    print(summary_table(result, args.out, [f.name for f in figures], images=data.image_shape is not None))
    return 0


def warn_collapse(model: VAE, X: Any, y: Any = None) -> None:
    """Warn when the KL term per example on (X, y), sum_d of ``metrics.kl_per_dimension``, is below
    COLLAPSE_KL nats: the codes then carry almost nothing about x (the posterior collapsed onto the
    prior); the warning names the settings of the model's own that lean that way."""
    kl = float(backend.to_numpy(metrics.kl_per_dimension(model, X, y)).sum())
    if kl >= COLLAPSE_KL:
        return
    hints = []
    if model.likelihood == "gaussian" and model.gaussian_std > 0.1:
        std = model.gaussian_std
        hints.append(
            f"a smaller --gaussian-std (now {std:g}; 0.1 weighs the reconstruction {(std / 0.1) ** 2:g} times more)"
        )
    if model.beta > 1:
        hints.append(f"a smaller --beta (now {model.beta:g})")
    if model.kl_warmup == 0 and model.beta > 0:
        hints.append("a --kl-warmup of a few epochs")
    if model.reconstruction_weight == 0:
        hints.append("a reconstruction_weight above 0 (the model's is 0: nothing asks the codes to carry the input)")
    advice = "try " + ", or ".join(hints) if hints else "none of its settings leans that way: try more epochs"
    warnings.warn(
        f"the KL term is {kl:.3g} nats per test example: the codes carry almost nothing about the input (the "
        f"posterior collapsed onto the prior); {advice}",
        UserWarning,
        stacklevel=2,
    )


def test_metrics(model: Model, X: Any, y: Any, iwae_k: int, seed: int, progress: bool) -> dict[str, float]:
    """Mean per-example test metrics: squared error of the reconstruction of the clean input; the
    training loss (AE) or the ELBO and the importance-weighted log p(x) estimate with ``iwae_k``
    samples (VAE, with a progress bar where ``progress``); for a denoising AE also the squared errors
    of its corrupted input and of its reconstruction from that (the noise drawn from ``seed``)."""
    out = {"recon_sq_error": _mean(metrics.reconstruction_mse(model, X, y))}
    if isinstance(model, VAE):
        out["elbo"] = _mean(metrics.elbo(model, X, y, seed=seed))
        out["log_px_iwae"] = _mean(metrics.iwae(model, X, k=iwae_k, y=y, seed=seed, progress=progress))
        out["iwae_k"] = iwae_k
    else:
        out["recon_loss"] = _mean(model.reconstruction_error(X))
    if isinstance(model, DenoisingAutoEncoder):
        noisy, denoised = metrics.denoising_mse(model, X, seed)
        out["noisy_sq_error"], out["denoised_sq_error"] = _mean(noisy), _mean(denoised)
    return out


def _mean(values: Any) -> float:
    return backend.to_float(values.mean())


def write_figures(model: Model, data: Any, out: Path, seed: int) -> list[Path]:
    """The figures of this model kind, from the test part: curves, reconstructions or denoising,
    the latent scatter, and for VAEs samples and the latent manifold (a 2-D latent) or traversal (any
    other; CVAE: samples by class). Every name is one of RUN_OUTPUTS."""
    from . import plots

    figs = [plots.loss_curves(model.history, out / "loss.png", title=f"{model.kind} training")]
    X, y = data.X_test, data.y_test
    labels = y if model.needs_labels else None
    shape = data.image_shape
    rng = backend.new_rng(seed, model.device)
    grey = plots.display_limits(data.X_train)  # generated images on the data's scale (a Gaussian decoder's leave it)
    if shape is not None:
        n = min(10, len(X))
        if isinstance(model, DenoisingAutoEncoder):
            noisy = model.corrupt(X[:n], rng)
            figs.append(plots.denoising(noisy, model.denoise(noisy), X[:n], shape, out / "denoising.png"))
        else:
            recon = model.reconstruct(X[:n], labels[:n]) if labels is not None else model.reconstruct(X[:n])
            figs.append(plots.reconstructions(X[:n], recon, shape, out / "reconstructions.png"))
    if y is not None:
        codes = model.transform(X, labels) if labels is not None else model.transform(X)
        figs.append(plots.latent_scatter(codes, y, out / "latent.png", data.class_names))
    if isinstance(model, ConditionalVAE) and shape is not None:
        k = 8
        classes = np.repeat(np.arange(model.n_classes), k)
        images = model.sample(len(classes), y=classes, rng=rng)
        path = out / "class_samples.png"
        figs.append(plots.class_grid(images, shape, path, model.n_classes, data.class_names, limits=grey))
    elif isinstance(model, VAE) and shape is not None:
        figs.append(plots.samples_grid(model.sample(64, rng=rng), shape, out / "samples.png", limits=grey))
        if model.latent_dim == 2:
            Z, values = plots.manifold_points(15)
            figs.append(plots.latent_manifold(model.decode(Z), shape, out / "manifold.png", values, limits=grey))
        else:  # the coordinates that carry the most, one at a time
            activity = backend.to_numpy(metrics.kl_per_dimension(model, X))
            dims = sorted(np.argsort(-activity, kind="stable")[:TRAVERSAL_ROWS].tolist())
            Z, values = plots.traversal_points(model.latent_dim, dims)
            path = out / "traversal.png"
            title = "Decoder as z moves (N(0, 1) quantiles)" if model.latent_dim == 1 else None
            images, kl = model.decode(Z), activity[dims]
            figs.append(plots.latent_traversal(images, shape, path, dims, values, title, limits=grey, kl=kl))
    return figs


def _fmt(v: Any) -> str:
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def epochs_line(total: int, this_run: int, seconds: float) -> str:
    """ "30 in 1.4 s", or for a resumed run "80 (epochs 51-80 in 1.4 s)": the time is this run's;
    "80 (none in this run)" for a run that only wrote its outputs."""
    if this_run == 0:
        return f"{total} (none in this run)"
    if this_run == total:
        return f"{total} in {seconds:.1f} s"
    span = f"epoch {total}" if this_run == 1 else f"epochs {total - this_run + 1}-{total}"
    return f"{total} ({span} in {seconds:.1f} s)"


def summary_table(result: dict[str, Any], out: Path, figures: Sequence[str], images: bool = True) -> str:
    """The run in a box: model, epochs, last epoch and test metrics, files and figures; ``images``:
    whether the data are images (else a note says how to get the figures of images)."""
    last = result["last_epoch"]
    classes = f", {result['n_classes']} classes" if "n_classes" in result else ""
    sizes = f"{result['n_train']} train, {result['n_test']} test{classes}"
    rows = [
        ["model", f"{result['model']} on {result['data']} ({sizes})"],
        ["epochs", epochs_line(result["epochs"], result["epochs_this_run"], result["train_seconds"])],
    ]
    rows += [[f"last epoch {k}", _fmt(v)] for k, v in last.items() if k not in ("epoch", "seconds")]
    if "early_stopping" in result:
        stop = result["early_stopping"]
        ran = "did not stop" if stop["stopped_epoch"] is None else f"stopped after epoch {stop['stopped_epoch']}"
        best = f"best val_loss {_fmt(stop['best_val_loss'])} after epoch {stop['best_epoch']}"
        rows.append(["early stopping", f"{ran}; {best}; the weights of epoch {stop['weights_epoch']}"])
    rows += [[f"test {k}", _fmt(v)] for k, v in result["test"].items()]
    files = [["folder", f"{out}/"], ["files", f"checkpoint.npz  metrics.json  history.csv  {RUN_FILE}"]]
    files.append(["figures", "  ".join(figures)])
    if not images:
        files.append(["note", "the data are flat rows: for the figures of images give --image-shape HxW"])
    return box_table("Summary", None, [Group(rows), Group(files)], "ll", color_default())


# --- eval, sample, encode ---


def cmd_eval(args: argparse.Namespace) -> int:
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
    rows += [[k, _fmt(v)] for k, v in test.items()]
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
    from . import plots

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


# --- gradcheck, trace ---


def small_model(kind: str, input_dim: int, hidden: tuple[int, ...], latent: int, seed: int, device: str) -> Model:
    """A small float32 model of ``kind`` (cvae: 10 classes)."""
    common = dict(hidden=hidden, latent_dim=latent, seed=seed, device=device)
    if kind == "ae":
        return AutoEncoder(input_dim, **common)
    if kind == "dae":
        return DenoisingAutoEncoder(input_dim, **common)
    if kind == "vae":
        return VAE(input_dim, **common)
    return ConditionalVAE(input_dim, 10, **common)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    model = small_model(args.kind, 12, (7,), 3, args.seed, args.device).to(dtype="float64")
    rng = np.random.default_rng(args.seed)
    X = backend.to_device(rng.uniform(0.05, 0.95, (5, 12)), args.device)
    y = rng.integers(0, 10, 5)
    if isinstance(model, VAE):
        eps = backend.to_device(rng.standard_normal((5, 3)), args.device)
        labels = y if model.needs_labels else None
        report = gradcheck_module(model, lambda: model.batch_loss(X, labels, eps=eps).total, seed=args.seed)
        noise = "; the reparameterization's eps injected"
    elif isinstance(model, DenoisingAutoEncoder):
        noisy = model.corrupt(X, backend.new_rng(args.seed, args.device))
        report = gradcheck_module(model, lambda: model.batch_loss(X, noisy=noisy).total, seed=args.seed)
        noise = "; the corrupted input injected"
    else:
        report = gradcheck_module(model, lambda: model.batch_loss(X).total, seed=args.seed)
        noise = ""
    print(f"{model.kind} 12-7-3, float64, 5 random examples in [0.05, 0.95]{noise}; every parameter, every entry")
    print(report.table())
    return 0 if report.ok else 1


def cmd_trace(args: argparse.Namespace) -> int:
    data = load_data("digits", n_train=args.examples)
    if len(data.X_train) < args.examples:
        raise ArgumentError(f"--examples {args.examples}: the digits' training part has {len(data.X_train)} examples")
    model = small_model(args.kind, data.n_features, args.hidden, args.latent, args.seed, args.device)
    result = trace(
        model,
        data.X_train,
        data.y_train if model.needs_labels else None,
        seed=args.seed,
        check=not args.no_check,
        max_entries=args.max_entries or None,
    )
    print(result.table())
    return 0 if result.ok else 1


def cmd_bench(argv: list[str]) -> int:
    from . import bench

    return int(bench.main(argv) or 0)


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "sample": cmd_sample,
    "encode": cmd_encode,
    "gradcheck": cmd_gradcheck,
    "trace": cmd_trace,
}


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"scratchae: warning: {flag_words(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    with warnings.catch_warnings():  # the library's warnings as one line each, not Python's file:line form
        warnings.showwarning = _show_warning
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["bench"]:
            return cmd_bench(argv[1:])
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"scratchae: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (scratchae eval RUN | head): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush would fail again
        return 1
    except (ScratchAEError, OSError) as exc:
        print(f"scratchae: error: {flag_words(exc)}", file=sys.stderr)
        return 1
    except MemoryError as exc:  # NumPy names the allocation it could not make
        print(
            f"scratchae: error: out of memory ({_one_line(exc) or 'an allocation failed'}): ask for less "
            f"(a smaller -n, --batch-size, --iwae-k or --limit)",
            file=sys.stderr,
        )
        return 1
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt as exc:  # train says where its checkpoint stands
        print("scratchae: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130
