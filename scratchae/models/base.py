"""``Model``: what every trainable model shares — device, dtype, seed, input checks, fit, save."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError
from ..history import History
from ..nn.module import Module
from ..progress import ProgressBar
from ..tensor import Tensor, no_grad
from ..validation import check_class_labels, check_matrix, check_unit_interval

INFERENCE_BATCH = 2048


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars made Python numbers and tuples made lists, so that it is JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass
class Loss:
    """A batch loss: ``total`` to differentiate, ``terms`` (e.g. recon, kl) to report; ``weights``: the factor
    of each term in ``total`` where it is not 1 (total = sum_k weight_k term_k for a weighted sum)."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)


class Model(Module):
    """Base of the models. Subclasses build their modules in ``__init__`` (after calling
    ``super().__init__``) and implement ``batch_loss``.

    ``config`` holds the constructor's arguments but ``seed``, ``dtype`` and ``device`` (added
    here), so ``scratchae.load`` can rebuild the model as ``cls(**config, device=...)``.
    """

    needs_labels = False
    n_classes: int = 0

    def __init__(self, config: dict[str, Any], seed: int, dtype: Any, device: str | None):
        self.seed = backend.check_seed(seed)
        self.config = {k: plain(v) for k, v in config.items()}
        try:
            json.dumps(self.config)
        except TypeError as exc:  # refused now, not when the first checkpoint is written
            raise ArgumentError(
                f"{type(self).__name__}: config values must be JSON (numbers, strings, lists): {exc}"
            ) from exc
        self._device = backend.check_device(device)
        self._dtype = backend.check_float_dtype(dtype)
        self.config.update(seed=self.seed, dtype=str(self._dtype))
        self.epochs_trained = 0
        self.history = History()
        self.optimizer = None
        self.fit_settings: dict[str, Any] | None = None  # batch_size, optimizer, lr, options of the last fit
        # the epoch whose weights the model holds when it is not the last (EarlyStopping put back its best)
        self.weights_epoch: int | None = None
        self.sample_rng = self._new_sample_rng(self._device)

    def _new_sample_rng(self, device: str) -> Any:
        """The generator of sampling and training noise on ``device``, seeded by (seed, 1)."""
        return backend.new_rng(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0], device)

    def weight_rng(self) -> np.random.Generator:
        """The host generator the initial weights are drawn from (the same on every device)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, 0]))

    def noise_rng(self, rng: Any = None) -> Any:
        """The generator a method's noise is drawn from: ``rng`` (a generator, or an int seeding a new
        one), or the model's own when None. A method draws all its noise from the one it gets here, so
        an int seed gives fresh noise to each of its batches."""
        return self.sample_rng if rng is None else backend.as_rng(rng, self._device)

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def device(self) -> str:
        return self._device

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def input_dim(self) -> int:
        return int(self.config["input_dim"])

    def to(self, device: str | None = None, dtype: Any = None) -> Model:
        """Move the parameters (and the optimizer's state, when trained) to ``device`` and/or ``dtype``."""
        super().to(device, dtype)
        if self.optimizer is not None:
            self.optimizer.to(device, dtype)
        device = backend.check_device(device) if device is not None else None
        if device is not None and device != self._device:  # a new device: a new generator
            self._device = device
            self.sample_rng = self._new_sample_rng(device)
        if dtype is not None:
            self._dtype = backend.check_float_dtype(dtype)
            self.config["dtype"] = str(self._dtype)
        return self

    def check_input(self, X: Any, name: str = "X") -> Any:
        """X as an (N, input_dim) array of the model's dtype on its device (see ``check_matrix``)."""
        return check_matrix(X, name, self.input_dim, self._dtype, self._device)

    @property
    def unit_interval_loss(self) -> tuple[str, str] | None:
        """The setting whose loss needs targets in [0, 1] and the squared-error one that takes any values
        (e.g. ("loss='bce'", "loss='mse'")), or None: see ``check_targets``."""
        return None

    def check_targets(self, X: Any, name: str = "X") -> Any:
        """``check_input``, and for a BCE / Bernoulli loss also values in [0, 1]: data the loss compares with."""
        X = self.check_input(X, name)
        if self.unit_interval_loss is not None:
            setting, instead = self.unit_interval_loss
            check_unit_interval(X, name, f"{self.kind}'s {setting}", f"a squared-error loss ({instead})")
        return X

    def check_labels(self, y: Any, n: int, name: str = "y") -> Any:
        return check_class_labels(y, n, self.n_classes, name, self._device)

    def batch_loss(self, x: Any, y: Any = None, rng: Any = None) -> Loss:
        """The loss of one mini-batch on the tape; ``rng`` draws any noise the step needs."""
        raise NotImplementedError(f"{self.kind} must implement batch_loss")

    def on_epoch_start(self, epoch: int) -> None:
        """Called by ``fit`` before each epoch's training batches (0-based); schedules hook in here."""

    def on_epoch_end(self) -> None:
        """Called by ``fit`` after each epoch's training batches (also when one raises): a schedule's
        setting goes back to the model's own, so the validation loss and every later use of the model
        see its full objective."""

    def map_batches(
        self, fn: Callable[..., Any], *arrays: Any, batch_size: int = INFERENCE_BATCH, progress: str | None = None
    ) -> Any:
        """Apply ``fn`` to row batches of ``arrays`` without recording, concatenating the outputs;
        ``progress``: a progress bar on stderr with that description."""
        n = len(arrays[0])
        xp = backend.array_module(self._device)
        outs = []
        bar = ProgressBar(-(-n // batch_size), progress, enabled=progress is not None)
        with no_grad():
            for start in range(0, n, batch_size):
                res = fn(*(a[start : start + batch_size] if a is not None else None for a in arrays))
                outs.append(res if isinstance(res, tuple) else (res,))
                bar.update(1, min(batch_size, n - start))
                if bar.due():
                    bar.draw("")
        bar.close(f"{bar.elapsed:.1f} s")
        cols = [
            xp.concatenate([o[i].data if isinstance(o[i], Tensor) else o[i] for o in outs]) for i in range(len(outs[0]))
        ]
        return cols[0] if len(cols) == 1 else tuple(cols)

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> History:
        """Train on X (N, input_dim), and labels y (N,) where the model needs them; returns the History.

        The keyword arguments are ``scratchae.train.fit``'s (see there): epochs (in all, counting earlier
        fits), batch_size, optimizer ("adam", "sgd", "momentum"), lr, optimizer_options,
        validation_data (X_val or (X_val, y_val)), callbacks, verbose, checkpoint_dir, checkpoint_every,
        resume_from, shuffle. A first fit's defaults: batch_size 128, Adam, lr 1e-3.
        """
        from ..train import fit

        return fit(self, X, y, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write weights, optimizer state, config and history to one ``.npz`` file (atomically); a folder
        or a name without a suffix means ``path/checkpoint.npz``. Returns the file's path."""
        from ..checkpoint import save_checkpoint

        return save_checkpoint(self, path)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.kind}({args})"
