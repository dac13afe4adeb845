"""The training loop: mini-batches, optimizer steps, history, checkpoints, resume.

Randomness is derived per epoch from the model's seed: epoch e shuffles with a host
generator seeded by (seed, e, 0) and draws noise / reparameterization eps from a device
generator seeded by (seed, e, 1). A run resumed from a checkpoint written after epoch e
therefore continues exactly as the uninterrupted run would (bit-identical on the CPU).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import backend
from .checkpoint import read_checkpoint, restore_training_state, save_checkpoint
from .errors import ArgumentError, CheckpointError, DivergenceError, GraphError
from .history import History
from .models.base import Model
from .ops.losses import labels_checked
from .optim import Optimizer, make_optimizer
from .progress import ProgressBar, plural
from .tensor import Tensor, no_grad
from .validation import check_positive_int

Callback = Callable[[int, dict[str, float], Model], Any]

# fit's training settings where neither the call nor a resumed checkpoint gives them.
FIT_DEFAULTS: dict[str, Any] = {"batch_size": 128, "optimizer": "adam", "lr": 1e-3, "optimizer_options": {}}
# On the GPU the loss terms reach the host every this many batches, and when the progress bar redraws
# (at most every 0.1 s); on the CPU every batch.
GPU_SYNC_EVERY = 25
DIVERGENCE_ADVICE = "lower the learning rate, or rescale the data if it holds very large values"


def epoch_generators(seed: int, epoch: int, device: str) -> tuple[np.random.Generator, Any]:
    """(host generator for shuffling, device generator for noise) of one epoch."""
    host = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0]))
    noise_seed = int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1)[0])
    return host, backend.new_rng(noise_seed, device)


def evaluate_loss(model: Model, X: Any, y: Any = None, batch_size: int = 1024, seed: int = 12345) -> dict[str, float]:
    """Mean loss terms over (X, y) without updating anything (fixed noise seed). X and y are checked
    and moved to the model's device as fit's are."""
    batch_size, seed = check_positive_int("batch_size", batch_size), backend.check_seed(seed)
    X = model.check_targets(X)
    y = model.check_labels(y, len(X)) if model.needs_labels else None
    return _mean_loss(model, X, y, batch_size, seed)


def _mean_loss(model: Model, X: Any, y: Any, batch_size: int = 1024, seed: int = 12345) -> dict[str, float]:
    """``evaluate_loss`` of checked arrays on the model's device; the batches' terms reach the host together
    at the end (one read)."""
    rng = backend.new_rng(seed, model.device)
    batches: list[tuple[int, list[Any]]] = []
    with no_grad():
        for start in range(0, len(X), batch_size):
            xb = X[start : start + batch_size]
            yb = y[start : start + batch_size] if y is not None else None
            loss = model.batch_loss(xb, yb, rng)
            terms = {"loss": loss.total, **loss.terms}
            batches.append((len(xb), [t.data for t in terms.values()]))
    rows, values = _terms_on_host(batches)
    return {name: total / len(X) for name, total in zip(terms, (rows @ values).tolist(), strict=True)}


# fit reports a loss that became inf or NaN as a DivergenceError naming the epoch and batch, so NumPy's
# overflow warnings on the way there are not shown.
@np.errstate(over="ignore", invalid="ignore")
def fit(
    model: Model,
    X: Any,
    y: Any = None,
    *,
    epochs: int = 10,
    batch_size: int | None = None,
    optimizer: str | None = None,
    lr: float | None = None,
    optimizer_options: dict[str, Any] | None = None,
    validation_data: Sequence[Any] | Any = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume_from: str | Path | None = None,
    shuffle: bool = True,
) -> History:
    """Train ``model`` until it has seen ``epochs`` epochs in all; returns its ``History``.

    X: (N, input_dim); y: (N,) labels for models that need them, ignored by the others (so one loop
    can fit every kind; a VAE's encode, decode and sample refuse labels: only a ConditionalVAE takes them).
    ``validation_data``: X_val or (X_val, y_val), evaluated after each epoch (``val_*`` in the history), on
    the model's full objective (a VAE's ``val_loss`` weighs its KL term by beta, not by the warm-up weight).
    ``callbacks``: ``cb(epoch, logs, model)`` after each epoch (all of them, in order); a true
    return value from any stops training after that epoch; a callback with an ``on_train_end(model)``
    method has it called when training ends, a true return saying it changed the weights (as
    ``EarlyStopping`` puts back its best epoch's), and one with a ``before_fit(model, validation)`` method
    has it called before anything is trained or changed (``validation``: whether there are val_* keys).
    ``checkpoint_dir``: ``checkpoint.npz`` written
    there every ``checkpoint_every`` epochs and at the end (also when a callback stops, and again
    after an ``on_train_end`` that changed the weights).
    ``resume_from``: a checkpoint whose weights, frozen parameters, optimizer state, epoch count and
    history are restored before training goes on (a warning says when its frozen set replaces the
    model's). ``batch_size``, ``optimizer``, ``lr`` and ``optimizer_options`` left at None are the
    run's own: the checkpoint's recorded settings when resuming, else those of the model's last fit,
    else :data:`FIT_DEFAULTS`. A model fitted before (or loaded) goes on with its optimizer's state
    unless the optimizer or its options change.
    """
    epochs = check_positive_int("epochs", epochs)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    callbacks = _check_callbacks(callbacks)
    if not any(p.requires_grad for p in model.parameters()):
        raise ArgumentError(f"every parameter of the {model.kind} is frozen: nothing to train (unfreeze a part first)")
    ckpt = read_checkpoint(resume_from) if resume_from is not None else None
    given = {"batch_size": batch_size, "optimizer": optimizer, "lr": lr, "optimizer_options": optimizer_options}
    settings = _resolved_settings(given, _recorded_fit_settings(ckpt.meta) if ckpt else model.fit_settings or {})
    batch_size = settings["batch_size"] = check_positive_int("batch_size", settings["batch_size"])
    X = model.check_targets(X)
    y = model.check_labels(y, len(X)) if model.needs_labels else None
    X_val, y_val = _validation_arrays(model, validation_data)
    ckpt_path = Path(checkpoint_dir) / "checkpoint.npz" if checkpoint_dir is not None else None
    if ckpt is None and model.epochs_trained >= epochs:  # the model, its optimizer and settings as they were
        _new_optimizer(model, settings)  # the settings checked all the same
        if ckpt_path is not None:
            _make_checkpoint_folder(ckpt_path.parent)
        _warn_nothing_to_train(model, epochs)
        return model.history
    for check in [cb.before_fit for cb in callbacks if callable(getattr(cb, "before_fit", None))]:
        check(model, X_val is not None)  # a callback that cannot work with this fit says so before anything changes
    opt = _fit_optimizer(model, settings, ckpt)
    if ckpt_path is not None:  # a file in the way fails now, not after an epoch
        _make_checkpoint_folder(ckpt_path.parent)
    if model.epochs_trained >= epochs:  # resumed from a checkpoint that has them all
        _warn_nothing_to_train(model, epochs)
    stopped = False
    for epoch in range(model.epochs_trained, epochs):
        bar = ProgressBar(math.ceil(len(X) / batch_size), f"epoch {epoch + 1}/{epochs}", verbose)
        model.on_epoch_start(epoch)
        try:
            logs = {"epoch": epoch + 1, **_train_epoch(model, opt, X, y, batch_size, epoch, shuffle, bar)}
        finally:  # a schedule's setting (a VAE's KL warm-up weight) is for the training batches only
            model.on_epoch_end()
        if X_val is not None:
            logs.update({f"val_{k}": v for k, v in _mean_loss(model, X_val, y_val).items()})
        logs["seconds"] = bar.elapsed
        bar.close(_postfix({k: v for k, v in logs.items() if k not in ("epoch", "seconds")}))
        _check_finite_weights(model, epoch)
        model.history.append(logs)
        model.epochs_trained, model.weights_epoch = epoch + 1, None  # the weights are this epoch's
        due = model.epochs_trained == epochs or model.epochs_trained % checkpoint_every == 0
        if ckpt_path is not None and due:  # before the callbacks: one that raises leaves this epoch saved
            save_checkpoint(model, ckpt_path)
        stopped = _any_true([cb(epoch, logs, model) for cb in callbacks], callbacks)  # every callback sees it
        if stopped:
            break
    ends = [cb.on_train_end for cb in callbacks if callable(getattr(cb, "on_train_end", None))]
    changed = _any_true([end(model) for end in ends], ends)  # a list: each one runs
    if ckpt_path is not None and (stopped or changed):  # as the callbacks left the model
        save_checkpoint(model, ckpt_path)
    return model.history


def _any_true(results: list[Any], functions: Sequence[Callable[..., Any]]) -> bool:
    """Whether any callback returned a true value; one whose value has no truth (an array) is named."""
    for result, function in zip(results, functions, strict=True):
        try:
            if result:
                return True
        except (ValueError, TypeError) as exc:  # NumPy: "the truth value of an array ... is ambiguous"
            name = getattr(function, "__qualname__", type(function).__name__)
            raise ArgumentError(
                f"callback {name} returned a {type(result).__name__}, which is neither true nor false: "
                f"return True to stop training, or None to go on"
            ) from exc
    return False


def _warn_nothing_to_train(model: Model, epochs: int) -> None:
    """A warning even when quiet: a later fit counts on from the earlier ones."""
    done = plural(model.epochs_trained, "epoch")
    warnings.warn(
        f"{model.kind} has trained {done}, epochs={epochs} in all: nothing to train (epochs counts every "
        f"epoch the model has trained; epochs={model.epochs_trained + 1} trains one more)",
        UserWarning,
        stacklevel=5,  # the caller of model.fit (this function, fit, its np.errstate wrapper, Model.fit)
    )


def _make_checkpoint_folder(folder: Path) -> None:
    """Make ``checkpoint_dir`` (and its parents); a file in its place, or a folder that cannot be made, is
    refused by name."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ArgumentError(f"checkpoint_dir {folder}: a file is in the way ({exc.filename}): give a folder") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint_dir {folder}: the folder cannot be made ({exc.strerror or exc})") from exc


def _new_optimizer(model: Model, settings: dict[str, Any]) -> Optimizer:
    """A fresh optimizer of ``settings`` (name, lr, options) over the model's parameters."""
    return make_optimizer(settings["optimizer"], model.parameters(), settings["lr"], **settings["optimizer_options"])


def _fit_optimizer(model: Model, settings: dict[str, Any], ckpt: Any) -> Optimizer:
    """The optimizer of a fit with ``settings``, holding the resumed checkpoint's state (a warning when its
    frozen set replaces the model's), or the model's last optimizer's state when it is the same kind with
    the same options; set as ``model.optimizer``, with ``model.fit_settings``."""
    opt = _new_optimizer(model, settings)
    options = dict(settings["optimizer_options"])
    if ckpt is not None:
        frozen = _frozen(model)
        restore_training_state(model, opt, ckpt, settings["optimizer"])
        restored = _frozen(model)
        if restored != frozen:
            warnings.warn(
                f"resume_from: {ckpt.path} freezes {_names(restored)}, the model froze {_names(frozen)}: the "
                f"run goes on as it was trained (to train other parameters, load it, freeze or unfreeze, then fit)",
                UserWarning,
                stacklevel=5,  # the caller of model.fit (_fit_optimizer, fit, its errstate wrapper, Model.fit)
            )
    elif _continues(model, opt, options):
        opt.load_state_dict(model.optimizer.state_dict())  # a later fit goes on with the optimizer's moments
    model.optimizer = opt
    model.fit_settings = {
        "batch_size": settings["batch_size"],
        "optimizer": settings["optimizer"],
        "lr": opt.lr,
        "optimizer_options": options,
    }
    return opt


def _train_epoch(
    model: Model, opt: Optimizer, X: Any, y: Any, batch_size: int, epoch: int, shuffle: bool, bar: ProgressBar
) -> dict[str, float]:
    """One epoch of optimizer steps over (X, y) in mini-batches (shuffled with the epoch's generator);
    returns each loss term's mean over the examples, as the steps computed them."""
    xp = backend.array_module(model.device)
    sync_every = 1 if model.device == "cpu" else GPU_SYNC_EVERY
    n = len(X)
    n_batches = math.ceil(n / batch_size)
    host_rng, noise_rng = epoch_generators(model.seed, epoch, model.device)
    order = xp.asarray(host_rng.permutation(n) if shuffle else np.arange(n))
    sums: dict[str, float] = {}
    pending: list[tuple[int, list[Any]]] = []  # (rows, loss terms) of each batch since the last flush
    # y was checked by fit: the steps' softmax cross-entropy needs no check of its own (no GPU sync)
    with labels_checked() if model.needs_labels else contextlib.nullcontext():
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = model.batch_loss(X[idx], y[idx] if y is not None else None, noise_rng)
            terms = {"loss": loss.total, **loss.terms}
            if not pending and not sums:  # the first batch of an epoch: one-element terms, or a named error
                _check_terms(model, terms)
            pending.append((len(idx), [t.data for t in terms.values()]))
            if b % sync_every == sync_every - 1 or b == n_batches - 1 or bar.due():
                _flush(list(terms), pending, sums, epoch, b)
                seen = bar.examples + len(idx)
                bar.draw(_postfix({k: v / seen for k, v in sums.items()}))
            opt.zero_grad()
            loss.total.backward()
            opt.step()
            bar.update(1, len(idx))
    backend.synchronize(model.device)  # the last step's queued GPU work counts in the epoch's time
    return {name: total / n for name, total in sums.items()}


def _recorded_fit_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The fit settings a checkpoint header records; a header written before they were recorded gives
    its optimizer's name only."""
    if meta.get("fit_settings"):
        return dict(meta["fit_settings"])
    optimizer = meta.get("optimizer")
    return {"optimizer": optimizer["name"]} if optimizer else {}


def _resolved_settings(given: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """The settings given (not None), else the recorded ones, else FIT_DEFAULTS; recorded optimizer options
    go only with the optimizer they were recorded with."""
    chosen = {k: v for k, v in given.items() if v is not None}
    if chosen.get("optimizer", recorded.get("optimizer")) != recorded.get("optimizer"):
        recorded = {k: v for k, v in recorded.items() if k != "optimizer_options"}
    return {**FIT_DEFAULTS, **recorded, **chosen}


def _continues(model: Model, opt: Optimizer, options: dict[str, Any]) -> bool:
    """Whether ``opt`` takes over the state of the model's optimizer: same kind, same options."""
    last = model.optimizer
    return (
        last is not None
        and type(last) is type(opt)
        and model.fit_settings is not None
        and model.fit_settings["optimizer_options"] == options
    )


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if callable(callbacks) or not isinstance(callbacks, (list, tuple)):
        raise ArgumentError(f"callbacks must be a list of functions cb(epoch, logs, model), got {callbacks!r:.80}")
    for cb in callbacks:
        if not callable(cb):
            raise ArgumentError(f"callbacks must be a list of functions cb(epoch, logs, model); {cb!r:.80} is not")
    return list(callbacks)


def _validation_arrays(model: Model, validation_data: Any) -> tuple[Any, Any]:
    if validation_data is None:
        return None, None
    # a list of two arrays, X_val (N, D) first, is a pair too; a list of rows is X_val
    pair_list = (
        isinstance(validation_data, list) and len(validation_data) == 2 and getattr(validation_data[0], "ndim", 0) == 2
    )
    if isinstance(validation_data, tuple) or pair_list:
        if len(validation_data) != 2:
            raise ArgumentError("validation_data must be X_val or a pair (X_val, y_val)")
        X_val, y_val = validation_data
    else:
        X_val, y_val = validation_data, None
    X_val = model.check_targets(X_val, "validation X")
    y_val = model.check_labels(y_val, len(X_val), "validation y") if model.needs_labels else None
    return X_val, y_val


def _frozen(model: Model) -> set[str]:
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def _names(names: set[str]) -> str:
    return ", ".join(sorted(names)) if names else "nothing"


def _check_terms(model: Model, terms: dict[str, Any]) -> None:
    """Every loss term of a batch (the total first) is a one-element Tensor."""
    for name, term in terms.items():
        if not isinstance(term, Tensor) or term.size != 1:
            what = f"shape {term.shape}" if isinstance(term, Tensor) else f"a {type(term).__name__}"
            raise GraphError(
                f"{model.kind}.batch_loss: the term {name!r} is {what}: loss terms are one-element tensors"
            )


def _flush(
    names: list[str], pending: list[tuple[int, list[Any]]], sums: dict[str, float], epoch: int, batch: int
) -> None:
    """Add the loss terms of the batches since the last flush, times their rows, to ``sums``, and stop at
    the first NaN or infinite one. ``pending``: (rows, the terms in the order of ``names``) per batch,
    up to ``batch`` (0-based, its optimizer step not taken yet); the terms reach the host as one
    (batches, terms) array, one transfer on the GPU."""
    rows, values = _terms_on_host(pending)
    if not np.isfinite(values).all():
        _diverged(names, values, epoch, batch)
    for name, total in zip(names, (rows @ values).tolist(), strict=True):
        sums[name] = sums.get(name, 0.0) + total
    pending.clear()


def _terms_on_host(batches: list[tuple[int, list[Any]]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows (B,), terms (B, T)) in float64 on the host from (rows, T 0-d loss terms) per batch: on the GPU
    the terms are stacked there and read in one transfer; on the CPU they are read as they are."""
    flat = [t for _, terms in batches for t in terms]
    xp = backend.array_module_of(flat[0])
    values = np.array(flat, np.float64) if xp is np else backend.to_numpy(xp.stack(flat)).astype(np.float64)
    rows = np.array([n for n, _ in batches], dtype=np.float64)
    return rows, values.reshape(len(batches), -1)


def _diverged(names: list[str], values: np.ndarray, epoch: int, batch: int) -> NoReturn:
    """Raise the DivergenceError for the first NaN or infinite entry of ``values`` (batches, terms), whose
    last row is batch ``batch`` (0-based)."""
    i, k = np.argwhere(~np.isfinite(values))[0]
    first = batch + 2 - len(values) + i  # 1-based
    if first == batch + 1:
        weights = "the weights were not updated with it"
    else:  # on the GPU the losses reach the host every GPU_SYNC_EVERY batches: later steps were taken
        taken = "it" if first == batch else f"batches {first}-{batch}"
        weights = f"the weights were updated with {taken} and may hold NaN or inf"
    raise DivergenceError(
        f"training diverged: the {names[k]} became {values[i, k]} in epoch {epoch + 1}, batch {first}; "
        f"{weights}, the last checkpoint (if any) is intact — {DIVERGENCE_ADVICE}"
    )


def _check_finite_weights(model: Model, epoch: int) -> None:
    """Stop (before the epoch is recorded or checkpointed) when an update made a weight NaN or infinite;
    the flags of all parameters reach the host together (one transfer on the GPU)."""
    xp = backend.array_module(model.device)
    named = list(model.named_parameters())
    finite = backend.to_numpy(xp.stack([xp.isfinite(p.data).all() for _, p in named]))
    bad = [name for (name, _), ok in zip(named, finite, strict=True) if not ok]
    if bad:
        raise DivergenceError(
            f"training diverged: the weights {', '.join(bad)} became NaN or infinite in epoch {epoch + 1}; "
            f"the last checkpoint (if any) is intact — {DIVERGENCE_ADVICE}"
        )


def _postfix(means: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in means.items())
