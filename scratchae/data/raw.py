"""What a data source hands to :func:`scratchae.data.load` before validation and scaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RawData:
    """Arrays as read from their source; ``X_test`` None means "split a test part off".

    ``full_scale`` is the value that maps to 1.0 under ``scale="auto"`` (255 for uint8
    images, 16 for the 8x8 digits), None when unknown.
    """

    X: Any
    y: Any = None
    X_test: Any = None
    y_test: Any = None
    full_scale: float | None = None
    n_classes: int | None = None
    class_names: tuple[str, ...] | None = None
