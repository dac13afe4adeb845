"""Ready-made ``fit`` callbacks: ``cb(epoch, logs, model)`` after each epoch, a true return stops training."""

from __future__ import annotations

import math
import sys
import weakref
from typing import Any

from . import backend
from .errors import ArgumentError
from .progress import plural
from .validation import check_number, check_positive_int

MODES = ("min", "max")


class EarlyStopping:
    """Stop ``fit`` once ``monitor`` (a key of the epoch's logs, ``"val_loss"`` by default) has gone
    ``patience`` epochs without improving on its best by more than ``min_delta``: for ``mode="min"``
    an epoch improves when ``value < best - min_delta`` (``"max"``: ``value > best + min_delta``).

    ``restore_best``: when training ends, stopped or not, the parameters get back their values after
    the best epoch (kept on the model's device, one copy per improvement), and ``fit`` writes its
    checkpoint with them. After ``fit``, ``best``, ``best_epoch`` (1-based, as in the history),
    ``stopped_epoch`` (None when training ran to the end) and ``weights_epoch`` (whose weights the
    model holds; also ``model.weights_epoch`` when not the last, kept in its checkpoints) say what
    happened. ``fit`` does not call ``on_train_end`` when it raises (a divergence, Ctrl-C). The state
    lasts as long as the instance, which follows one model: give each model a fresh one, and ``resume``
    it from a model that trained before (a loaded run).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
        verbose: bool = True,
    ):
        if mode not in MODES:
            raise ArgumentError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(monitor, str) or not monitor:
            raise ArgumentError(f"monitor must be the name of a history key (e.g. 'val_loss'), got {monitor!r}")
        self.monitor, self.mode = monitor, mode
        self.min_delta = check_number("min_delta", min_delta, allow_zero=True)
        self.patience = check_positive_int("patience", patience)
        self.restore_best, self.verbose = bool(restore_best), bool(verbose)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.weights_epoch: int | None = None
        self._waited = 0
        self._best_values: dict[str, Any] | None = None
        self._model: weakref.ref | None = None  # the model it follows (weakly: a deleted model frees its memory)

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta`` (any finite value beats none)."""
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _observe(self, epoch: int, value: float) -> bool:
        """Take epoch ``epoch``'s (1-based) value into the best and the epochs waited; True if it improved."""
        if self.improves(value):
            self.best, self.best_epoch, self._waited = value, epoch, 0
            return True
        self._waited += 1
        return False

    def resume(self, model: Any) -> None:
        """Take up the epochs ``model`` trained before (its history) as if this instance had seen them; the
        model's weights are kept as the best's when they are the best epoch's (``model.weights_epoch``, else its
        last epoch). A history without ``monitor`` leaves the state as it is, and so does an epoch that did
        not record it (trained without validation data): it neither improves nor waits."""
        self._follow(model)
        history = model.history
        if self.monitor not in history.keys():
            return
        for epoch, record in enumerate(history.records, start=1):  # one record per epoch, in order
            value = record.get(self.monitor)
            if value is not None:
                self._observe(epoch, float(value) if isinstance(value, (int, float)) else math.nan)
        self.weights_epoch = model.weights_epoch or model.epochs_trained
        if self.restore_best and self.best_epoch == self.weights_epoch:
            self._keep(model)

    def _follow(self, model: Any) -> None:
        """Refuse a model other than the one this instance has followed (its best weights are that model's)."""
        if self._model is None:
            self._model = weakref.ref(model)
        elif self._model() is not model:
            raise ArgumentError("EarlyStopping follows one model: give each model a fresh EarlyStopping")

    def _keep(self, model: Any) -> None:
        self._best_values = {name: p.data.copy() for name, p in model.named_parameters()}

    def __call__(self, epoch: int, logs: dict[str, float], model: Any) -> bool:
        """After epoch ``epoch`` (0-based): keep the weights if ``logs[monitor]`` improved; True (stop) once
        ``patience`` epochs have gone without (``on_train_end`` then puts the best weights back)."""
        if self.monitor not in logs:
            unvalidated = self.monitor.startswith("val_") and not any(k.startswith("val_") for k in logs)
            hint = " (pass validation_data to fit for the val_ keys)" if unvalidated else ""
            raise ArgumentError(f"EarlyStopping: the logs have no {self.monitor!r}{hint}; they have {', '.join(logs)}")
        self._follow(model)
        self.weights_epoch = epoch + 1
        if self._observe(epoch + 1, float(logs[self.monitor])):
            if self.restore_best:
                self._keep(model)
            return False
        if self._waited < self.patience:
            return False
        self.stopped_epoch = epoch + 1
        return True

    def before_fit(self, model: Any, validation: bool) -> None:
        """Called by ``fit`` before its first epoch: a ``val_`` key to monitor needs validation data."""
        if self.monitor.startswith("val_") and not validation:
            raise ArgumentError(
                f"EarlyStopping monitors {self.monitor!r}, which fit reports only with validation data: pass "
                f"validation_data to fit, or monitor a training key such as 'loss'"
            )

    def on_train_end(self, model: Any) -> bool:
        """Called by ``fit`` when training ends: put back the best epoch's weights (``restore_best``) unless the
        model holds them already; True when it changed them."""
        if self._model is not None:
            self._follow(model)
        restore = self.restore_best and self._best_values is not None and self.weights_epoch != self.best_epoch
        if restore:
            xp = backend.array_module(model.device)
            for name, p in model.named_parameters():  # kept on the device the model had then: moved to its own
                xp.copyto(p.data, backend.to_device(self._best_values[name], model.device))
            self.weights_epoch = self.best_epoch
            model.weights_epoch = None if self.best_epoch == model.epochs_trained else self.best_epoch
        if self.verbose and (restore or self.stopped_epoch is not None):
            print(self.describe(), file=sys.stderr)
        return restore

    def describe(self) -> str:
        """One line: whether and when training stopped, the best epoch, and whose weights the model holds."""
        if self.stopped_epoch is None:
            ran = "early stopping did not stop training"
        else:
            waited = f"{self.monitor} did not improve for {plural(self._waited, 'epoch')}"
            ran = f"early stopping after epoch {self.stopped_epoch}: {waited}"
        if self.best is None:
            return f"{ran}; {self.monitor} was never finite, the last epoch's weights kept"
        kept = (
            "whose weights the model now holds"
            if self.weights_epoch == self.best_epoch
            else "the last epoch's weights kept"
        )
        return f"{ran}; best {self.monitor} {self.best:.6g} after epoch {self.best_epoch}, {kept}"
