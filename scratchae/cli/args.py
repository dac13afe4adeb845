"""The command line's parser: the commands, their flags and the flags' argument types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..data.files import CSV_LABEL_COLUMNS
from ..optim import OPTIMIZERS

KINDS = ("ae", "dae", "vae", "cvae", "stacked")
CHECK_KINDS = ("ae", "dae", "vae", "cvae")
TRAIN_IWAE_K = 50
EVAL_IWAE_K = 1000
# train's batch size, learning rate and optimizer when neither the command line nor a resumed run gives them
TRAIN_DEFAULTS: dict[str, Any] = {"batch_size": 32, "lr": 3e-3, "optimizer": "adam"}


class UsageError(Exception):
    """A bad command line (argparse's complaint), reported as one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors raise UsageError (one line, exit status 2) instead of exiting."""

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
    """The ``scratchae`` parser: one subcommand each for train, eval, sample, encode, gradcheck and trace."""
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
    from .. import __version__

    return __version__
