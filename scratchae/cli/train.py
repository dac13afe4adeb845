"""``scratchae train``: check the flags and the run folder, load the data, train (or resume), finish the run."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..atomic import write_atomic
from ..callbacks import EarlyStopping
from ..data import DATASETS, Dataset, split_indices
from ..data.noise import check_level
from ..errors import ArgumentError, CheckpointError, DataError, DataNotFoundError, ScratchAEError
from ..models import VAE, AutoEncoder, ConditionalVAE, DenoisingAutoEncoder, Model
from ..ops.activations import get_activation
from ..progress import plural
from ..run_info import RUN_FILE, RunInfo
from ..validation import check_unit_interval
from .args import TRAIN_DEFAULTS, TRAIN_IWAE_K, layer_sizes
from .report import summary_table, test_metrics, warn_collapse, write_figures
from .runs import CHECKPOINT_FILE, RUN_OUTPUTS, data_key, holds_run_file, load_cli_data, run_outputs, shown_value

DEFAULT_LATENT = {"ae": 8, "dae": 8, "vae": 2, "cvae": 2, "stacked": 8}
DEFAULT_HIDDEN = {"ae": "256", "dae": "256", "vae": "256", "cvae": "256", "stacked": "128,64"}
DEFAULT_ACTIVATION = {"ae": "relu", "dae": "relu", "vae": "relu", "cvae": "relu", "stacked": "sigmoid"}

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


def _written(value: Any) -> str:
    """A model flag's value as the command line writes it (layer sizes as 128,64; none as "")."""
    return (",".join(map(str, value)) or '""') if isinstance(value, (list, tuple)) else str(value)


def _same_flag(name: str, given: Any, recorded: Any) -> bool:
    """Whether a model flag given to --resume says what the run's recorded value does (an activation by
    what it computes: linear is identity)."""
    if name == "activation":
        return get_activation(given).name == get_activation(recorded).name
    return given == recorded


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
        from ..checkpoint import read_checkpoint

        recorded = RunInfo.read(args.out)
        if recorded is not None and recorded.kind != kind:  # an ae run and a stacked one both hold an AutoEncoder
            raise ArgumentError(
                f"train {kind} --resume: the run in {args.out} was trained with 'train {recorded.kind}': go on "
                f"with 'train {recorded.kind} --resume', or train a new run with another --out"
            )
        if not (args.out / CHECKPOINT_FILE).is_file():
            raise DataNotFoundError(
                f"--resume: {args.out} holds no run to go on with (no {CHECKPOINT_FILE}): train it without --resume"
            )
        own = run_flags(read_checkpoint(args.out / CHECKPOINT_FILE).meta["config"])
        for name, value in own.items():
            if kind == "stacked" and name in ("noise", "noise_level"):
                continue
            given = getattr(args, name, None)
            if given in (None, "") or _same_flag(name, given, value):  # "": as a new run, the flag not given
                setattr(args, name, value)  # the run's own spelling (linear for identity), as its configuration has it
            else:
                flag = f"--{name.replace('_', '-')}"
                raise ArgumentError(
                    f"{flag} {_written(given)}: the run in {args.out} was trained with {flag} {_written(value)}; "
                    f"--resume goes on with the run's own model (leave the flag out), or train a new run with "
                    f"another --out"
                )
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
    return path.name == RUN_FILE and holds_run_file(path.parent)


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
            if data_key(given, flag) != data_key(value, flag):
                raise ArgumentError(
                    f"--{flag.replace('_', '-')} {shown_value(given)}: the run in {args.out} was trained with "
                    f"{shown_value(value, flag)}; --resume goes on with the run's own data (leave the flag out), or "
                    f"train a new run with another --out"
                )


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
    from ..pretrain import pretrain_layerwise, stack_autoencoder

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
    from ..checkpoint import load, read_checkpoint, restore_training_state

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
    from ..checkpoint import read_checkpoint

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
    """``scratchae train``; an interrupt says which epoch the checkpoint holds (KeyboardInterrupt's message)."""
    check_train_args(args)
    before = _file_state(args.out / CHECKPOINT_FILE)
    try:
        return train_run(args)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(interrupted_note(args.out, before)) from None


def train_run(args: argparse.Namespace) -> int:
    """``train`` with its arguments checked: load, train (or resume), write metrics and figures, summarize."""
    from .. import plots

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
