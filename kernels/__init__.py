"""Fused kernels for the hot paths: Numba on the CPU, CUDA C through CuPy on the GPU.

Shipped as the subpackage ``scratchae.kernels``. Every kernel has a plain NumPy/CuPy
reference expression beside it (:mod:`.reference`, same signature) and a test that the
two agree. Importing this package imports neither Numba nor CuPy.

Modules: :mod:`.fused` (the API below: checks, then dispatch by array type),
:mod:`.cpu` (Numba), :mod:`.gpu` (CuPy + the ``*.cu`` sources), :mod:`.args` (checks).
"""

from .args import ACTIVATION_CODES
from .fused import (
    act_backward,
    adam_update,
    bce_with_logits,
    bias_act_forward,
    gaussian_kl,
    momentum_update,
    mse,
    reparameterize_backward,
    reparameterize_forward,
)

ACTIVATIONS = tuple(ACTIVATION_CODES)  # the activation names the kernels take

__all__ = [
    "ACTIVATIONS",
    "act_backward",
    "adam_update",
    "bce_with_logits",
    "bias_act_forward",
    "gaussian_kl",
    "momentum_update",
    "mse",
    "reparameterize_backward",
    "reparameterize_forward",
]
