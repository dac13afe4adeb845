"""Every op as a function, ``import scratchae.functional as F``.

Each accepts Tensors or plain arrays (arrays are constants) and returns Tensors.
"""

from .ops.activations import activate, elu, leaky_relu, relu, sigmoid, softplus, tanh
from .ops.elementwise import add, concat, matmul, mean, mul, neg, reshape, split, sub, sum
from .ops.gaussian import gaussian_kl, reparameterize
from .ops.linear import linear
from .ops.losses import bce_loss, bce_with_logits, mse_loss, softmax_cross_entropy

__all__ = [
    "activate",
    "add",
    "bce_loss",
    "bce_with_logits",
    "concat",
    "elu",
    "gaussian_kl",
    "leaky_relu",
    "linear",
    "matmul",
    "mean",
    "mse_loss",
    "mul",
    "neg",
    "relu",
    "reparameterize",
    "reshape",
    "sigmoid",
    "softmax_cross_entropy",
    "softplus",
    "split",
    "sub",
    "sum",
    "tanh",
]
