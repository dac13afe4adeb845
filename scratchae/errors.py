"""The errors scratchae raises on bad input.

Every one derives from :class:`ScratchAEError` and from the builtin that matches its
kind, so ``except ScratchAEError`` and ``except ValueError`` (say) both catch it.
"""

from __future__ import annotations


class ScratchAEError(Exception):
    """Base class of every error scratchae raises on bad input."""


class ShapeError(ScratchAEError, ValueError):
    """Arrays whose shapes do not fit together; the message names both shapes."""


class DTypeError(ScratchAEError, TypeError):
    """An array of the wrong dtype (non-floating, object, or two floating dtypes mixed)."""


class ArgumentError(ScratchAEError, ValueError):
    """An argument out of its allowed set or range (unknown name, non-positive size, ...)."""


class DeviceError(ScratchAEError, ValueError):
    """An unknown device name, or arrays on two devices where one is needed."""


class DeviceUnavailableError(ScratchAEError, RuntimeError):
    """The GPU was asked for but CuPy or a CUDA device is missing."""


class DataError(ScratchAEError, ValueError):
    """Data that cannot be used: NaN/inf, values out of range, a corrupt or truncated file, ragged rows
    in a CSV file, bad label values."""


class DataNotFoundError(ScratchAEError, FileNotFoundError):
    """A data set or file that is not where it was looked for."""


class CheckpointError(ScratchAEError, ValueError):
    """A checkpoint that is truncated, corrupt, unsafe, or for another model."""


class DivergenceError(ScratchAEError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class GradcheckError(ScratchAEError, AssertionError):
    """Analytic and finite-difference gradients disagree beyond the tolerance."""


class GraphError(ScratchAEError, RuntimeError):
    """A misuse of the autodiff tape (backward without a gradient, non-scalar output, ...)."""
