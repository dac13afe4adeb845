"""Checkpoints: one ``.npz`` file of arrays plus a JSON header, written atomically.

Layout: ``param/<name>`` (weights), ``optim/<key>`` (optimizer state), and ``__meta__``
(UTF-8 JSON as uint8: format, model kind and config, epochs trained, history, optimizer
name and step count, the last ``fit``'s settings: batch size, optimizer, lr, options, and the
names of the frozen parameters).
A checkpoint is data, never code: each array is read with
``allow_pickle=False`` after its header was checked against the bytes really there
(:mod:`scratchae.data.npyio`), and ``load`` builds the model on placeholder weights that the
file's then replace, so a damaged file cannot make loading allocate more than it holds.
Writing goes to a temporary file in the same folder, is fsynced, then renamed over the
target, so a crash mid-write leaves the previous checkpoint readable.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_atomic
from .data.npyio import NpzArchive
from .errors import ArgumentError, CheckpointError, DataError, DataNotFoundError, DTypeError, ShapeError
from .history import History
from .nn.init import placeholder_weights

FORMAT = "scratchae-checkpoint"
VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive and starts with a local file header


@dataclass
class Checkpoint:
    """A checkpoint as read: its JSON header, the weights by parameter name, the optimizer's arrays by key."""

    meta: dict[str, Any]
    params: dict[str, np.ndarray]
    optim: dict[str, np.ndarray]
    path: Path


def checkpoint_file(path: str | Path) -> Path:
    """A folder means ``folder/checkpoint.npz``."""
    path = Path(path)
    return path / "checkpoint.npz" if path.is_dir() or path.suffix == "" else path


def save_checkpoint(model: Any, path: str | Path) -> Path:
    """Write ``model`` (weights, optimizer state, config, epoch count, history) to ``path``."""
    path = checkpoint_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    opt = model.optimizer
    opt_state = opt.state_dict() if opt is not None else None
    if opt_state is not None:
        arrays.update({f"optim/{k}": np.asarray(v) for k, v in opt_state["arrays"].items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "config": model.config,
        "epochs_trained": model.epochs_trained,
        "history": model.history.records,
        "optimizer": None if opt is None else {"name": type(opt).__name__.lower(), "steps": opt_state["steps"]},
        "fit_settings": model.fit_settings,
        "weights_epoch": model.weights_epoch,
        "frozen": [name for name, p in model.named_parameters() if not p.requires_grad],
    }
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())
    return path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file; any damage raises ``CheckpointError``."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise DataNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        raise CheckpointError(f"{path} is not a checkpoint: expected an .npz (zip) archive, got {head!r} at its start")
    try:
        with NpzArchive(path) as npz:
            arrays = {k: npz.read(k) for k in npz.keys()}
    except DTypeError as exc:
        raise CheckpointError(f"{exc}; a checkpoint holds plain arrays only") from exc
    except DataError as exc:
        raise CheckpointError(f"not a readable checkpoint: {exc}") from exc
    for key, arr in arrays.items():
        if arr.dtype.kind not in "fiu":
            raise CheckpointError(f"{path}: entry {key!r} holds dtype {arr.dtype}, expected a numeric array")
    if "__meta__" not in arrays:
        raise CheckpointError(f"{path} has no __meta__ header: not a scratchae checkpoint")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: the __meta__ header is not valid JSON") from exc
    _check_header(meta, path)
    params = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")}
    # training never saves a NaN or infinite weight (it stops first), so one is damage
    named = {**{f"weight {k}": v for k, v in params.items()}, **{f"optimizer state {k}": v for k, v in optim.items()}}
    for name, arr in named.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values: the file is damaged")
    return Checkpoint(meta, params, optim, path)


HEADER_TYPES = {"kind": (str, "a model name"), "config": (dict, "a dict"), "history": (list, "a list of records")}


def _check_header(meta: Any, path: Path) -> None:
    """The ``__meta__`` header: format and version, then the type of every field ``load`` and resume read."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')}, this scratchae reads {VERSION}")
    for key in ("kind", "config", "epochs_trained", "history"):
        if key not in meta:
            raise CheckpointError(f"{path}: the header lacks {key!r}")
    for key, (kind, expected) in HEADER_TYPES.items():
        if not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}: header field {key!r} must be {expected}, got {meta[key]!r:.100}")
    epochs = meta["epochs_trained"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise CheckpointError(f"{path}: header field 'epochs_trained' must be an integer >= 0, got {epochs!r:.100}")
    if not all(isinstance(r, dict) for r in meta["history"]):
        raise CheckpointError(f"{path}: header field 'history' must hold one dict per epoch")
    opt = meta.get("optimizer")
    if opt is not None and not (isinstance(opt, dict) and isinstance(opt.get("name"), str) and "steps" in opt):
        raise CheckpointError(f"{path}: header field 'optimizer' must be null or {{'name': str, 'steps': int}}")
    frozen = meta.get("frozen", [])
    if not (isinstance(frozen, list) and all(isinstance(name, str) for name in frozen)):
        raise CheckpointError(f"{path}: header field 'frozen' must be a list of parameter names, got {frozen!r:.100}")
    kept = meta.get("weights_epoch")
    if kept is not None and (isinstance(kept, bool) or not isinstance(kept, int) or not 1 <= kept < epochs):
        raise CheckpointError(
            f"{path}: header field 'weights_epoch' must be null (the last epoch's) or an earlier epoch in "
            f"[1, {epochs - 1}], got {kept!r:.100}"
        )
    settings = meta.get("fit_settings")
    if settings is not None and not _valid_fit_settings(settings):
        raise CheckpointError(
            f"{path}: header field 'fit_settings' must be null or {{'batch_size': int > 0, 'optimizer': str, "
            f"'lr': number > 0, 'optimizer_options': dict}}, got {settings!r:.100}"
        )


def _valid_fit_settings(settings: Any) -> bool:
    if not isinstance(settings, dict) or set(settings) != {"batch_size", "optimizer", "lr", "optimizer_options"}:
        return False
    batch, lr = settings["batch_size"], settings["lr"]
    return (
        isinstance(batch, int)
        and not isinstance(batch, bool)
        and batch > 0
        and isinstance(settings["optimizer"], str)
        and isinstance(lr, (int, float))
        and not isinstance(lr, bool)
        and lr > 0
        and isinstance(settings["optimizer_options"], dict)
    )


def _a(name: str) -> str:
    """``name`` with its indefinite article: "a VAE", "an AutoEncoder"."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def restore_training_state(model: Any, optimizer: Any, ckpt: Checkpoint, optimizer_name: str | None = None) -> None:
    """Put a checkpoint's weights, frozen parameters, epoch count, history and optimizer state into ``model``
    and ``optimizer``. A checkpoint written before frozen parameters were recorded leaves them as they are."""
    if ckpt.meta["kind"] != model.kind:
        raise CheckpointError(f"{ckpt.path} holds {_a(ckpt.meta['kind'])}, not {_a(model.kind)}")
    saved = {k: v for k, v in ckpt.meta["config"].items() if k not in ("dtype",)}
    ours = {k: v for k, v in model.config.items() if k not in ("dtype",)}
    if saved != ours:
        diff = sorted(k for k in saved.keys() | ours.keys() if saved.get(k) != ours.get(k))
        values = "; ".join(f"{k} {saved.get(k)!r} in the file, {ours.get(k)!r} in the model" for k in diff)
        raise CheckpointError(f"{ckpt.path} was made with another configuration (differs in {values})")
    params = dict(model.named_parameters())
    frozen = set(ckpt.meta.get("frozen", [name for name, p in params.items() if not p.requires_grad]))
    if not frozen <= params.keys():
        unknown = ", ".join(sorted(frozen - params.keys()))
        raise CheckpointError(f"{ckpt.path}: the header freezes parameters the model does not have: {unknown}")
    try:
        model.load_state_dict(ckpt.params)
    except (ShapeError, CheckpointError) as exc:
        raise CheckpointError(f"{ckpt.path}: the weights do not fit the configuration: {exc}") from exc
    for name, p in params.items():
        p.requires_grad = name not in frozen
    model.epochs_trained = int(ckpt.meta["epochs_trained"])
    model.history = History(ckpt.meta["history"])
    model.fit_settings = ckpt.meta.get("fit_settings")
    model.weights_epoch = ckpt.meta.get("weights_epoch")
    opt_meta = ckpt.meta.get("optimizer")
    if optimizer is not None and opt_meta is not None:
        if optimizer_name is not None and opt_meta["name"] != type(optimizer).__name__.lower():
            raise CheckpointError(f"{ckpt.path} was trained with {opt_meta['name']}, resuming with {optimizer_name}")
        optimizer.load_state_dict({"steps": opt_meta["steps"], "arrays": ckpt.optim})


def load(path: str | Path, device: str | None = None, model_class: type | None = None) -> Any:
    """Rebuild the model saved at ``path`` (on ``device``, default: the default device).

    ``model_class``: for a model of the user's own ``Model`` subclass, that class (its name is the
    checkpoint's kind); it is called as ``model_class(**config, device=device)``.
    """
    from .models import MODEL_KINDS, Model

    ckpt = read_checkpoint(path)
    kind = ckpt.meta["kind"]
    if model_class is None:
        if kind not in MODEL_KINDS:
            raise CheckpointError(
                f"{ckpt.path}: unknown model kind {kind!r} (the built-in ones: {', '.join(MODEL_KINDS)}); "
                f"a model of your own class loads in Python with scratchae.load(path, model_class={kind})"
            )
        model_class = MODEL_KINDS[kind]
    elif not (isinstance(model_class, type) and issubclass(model_class, Model)):
        raise ArgumentError(f"model_class must be a subclass of scratchae.models.Model, got {model_class!r:.80}")
    elif model_class.__name__ != kind:
        raise CheckpointError(f"{ckpt.path} holds {_a(kind)}, not {_a(model_class.__name__)}")
    try:
        with placeholder_weights():  # the file's weights replace them all below: nothing drawn, nothing allocated
            model = model_class(**ckpt.meta["config"], device=device)
    except (TypeError, ValueError) as exc:
        if "read-only" in str(exc):  # NumPy: "assignment destination is read-only"
            raise CheckpointError(
                f"{ckpt.path}: {kind}'s constructor writes into its weights ({exc}), which loading builds as "
                f"read-only placeholders before it fills them from the file: set values with rng= and init= of "
                f"the layers, or after construction"
            ) from exc
        raise CheckpointError(f"{ckpt.path}: the configuration does not fit {kind}: {exc}") from exc
    settings = ckpt.meta.get("fit_settings")
    if settings and ckpt.meta.get("optimizer"):  # the optimizer too, so a later fit goes on from its state
        from .optim import make_optimizer

        try:
            optimizer = make_optimizer(
                settings["optimizer"], model.parameters(), settings["lr"], **settings["optimizer_options"]
            )
        except ArgumentError as exc:
            raise CheckpointError(f"{ckpt.path}: the recorded fit settings do not make an optimizer: {exc}") from exc
        restore_training_state(model, optimizer, ckpt, settings["optimizer"])
        model.optimizer = optimizer
    else:
        restore_training_state(model, None, ckpt)
    return model
