"""Ready-made ``fit`` callbacks: ``cb(epoch, logs, model)`` after each epoch, a true return stops training."""

from __future__ import annotations

import math
import sys
from typing import Any

from . import backend
from .errors import ArgumentError
from .validation import check_positive_int

MODES = ("min", "max")


class EarlyStopping:
    """Stop ``fit`` once ``monitor`` (a key of the epoch's logs, ``"val_loss"`` by default) has gone
    ``patience`` epochs without improving on its best by more than ``min_delta``: for ``mode="min"``
    an epoch improves when ``value < best - min_delta`` (``"max"``: ``value > best + min_delta``).

    ``restore_best``: on stopping, the parameters get back their values after the best epoch (kept on
    the model's device, one copy per improvement); ``fit`` then writes its checkpoint with those
    values. After ``fit``, ``best``, ``best_epoch`` (1-based, as in the history) and
    ``stopped_epoch`` (None when training ran to the end) say what happened. The state lasts as long
    as the instance: give each ``fit`` a fresh one.
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
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not min_delta >= 0:
            raise ArgumentError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.patience = check_positive_int("patience", patience)
        self.restore_best, self.verbose = bool(restore_best), bool(verbose)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._waited = 0
        self._best_values: dict[str, Any] | None = None

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta`` (any finite value beats none)."""
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def __call__(self, epoch: int, logs: dict[str, float], model: Any) -> bool:
        if self.monitor not in logs:
            hint = " (pass validation_data to fit for the val_ keys)" if self.monitor.startswith("val_") else ""
            raise ArgumentError(f"EarlyStopping: the logs have no {self.monitor!r}{hint}; they have {', '.join(logs)}")
        value = float(logs[self.monitor])
        if self.improves(value):
            self.best, self.best_epoch, self._waited = value, epoch + 1, 0
            if self.restore_best:
                self._best_values = {name: p.data.copy() for name, p in model.named_parameters()}
            return False
        self._waited += 1
        if self._waited < self.patience:
            return False
        self.stopped_epoch = epoch + 1
        restored = self.restore_best and self._best_values is not None
        if restored:
            xp = backend.array_module(model.device)
            for name, p in model.named_parameters():
                xp.copyto(p.data, self._best_values[name])
        if self.verbose:
            kept = f"the weights of epoch {self.best_epoch} restored" if restored else "the last weights kept"
            best = "none finite" if self.best is None else f"{self.best:.6g} after epoch {self.best_epoch}"
            print(
                f"early stopping after epoch {self.stopped_epoch}: {self.monitor} did not improve for "
                f"{self.patience} epochs (best {best}); {kept}",
                file=sys.stderr,
            )
        return True
