"""scratchae: autoencoders and VAEs from scratch, every gradient written by hand."""

from . import callbacks, data, functional, latent, metrics, models, nn, optim, pca, pretrain, train
from .backend import get_default_device, gpu_available, set_default_device
from .callbacks import EarlyStopping
from .checkpoint import load
from .errors import (
    ArgumentError,
    CheckpointError,
    DataError,
    DataNotFoundError,
    DeviceError,
    DeviceUnavailableError,
    DivergenceError,
    DTypeError,
    GradcheckError,
    GraphError,
    ScratchAEError,
    ShapeError,
)
from .gradcheck import GradcheckReport, gradcheck, gradcheck_module
from .latent import interpolate
from .pca import PCA, principal_angles
from .pretrain import (
    LayerwiseResult,
    pretrain_layerwise,
    random_init_layers,
    stack_autoencoder,
    stack_encoder,
    stacked_classifier,
    transfer_head,
)
from .tensor import Function, Tensor, is_grad_enabled, no_grad
from .trace import Trace, trace
from .train import evaluate_loss

__version__ = "0.1.0"

__all__ = [
    "Trace",
    "trace",
    "LayerwiseResult",
    "PCA",
    "metrics",
    "pca",
    "pretrain",
    "pretrain_layerwise",
    "principal_angles",
    "random_init_layers",
    "stack_autoencoder",
    "stack_encoder",
    "stacked_classifier",
    "transfer_head",
    "callbacks",
    "data",
    "load",
    "models",
    "ArgumentError",
    "CheckpointError",
    "DTypeError",
    "DataError",
    "DataNotFoundError",
    "DeviceError",
    "DeviceUnavailableError",
    "DivergenceError",
    "EarlyStopping",
    "Function",
    "GradcheckError",
    "GradcheckReport",
    "GraphError",
    "ScratchAEError",
    "ShapeError",
    "Tensor",
    "functional",
    "get_default_device",
    "gpu_available",
    "gradcheck",
    "gradcheck_module",
    "interpolate",
    "evaluate_loss",
    "train",
    "is_grad_enabled",
    "latent",
    "nn",
    "no_grad",
    "optim",
    "set_default_device",
]
