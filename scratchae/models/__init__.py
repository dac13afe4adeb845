"""The autoencoders (and the classifier head used with their encoders)."""

from .autoencoder import AutoEncoder, DenoisingAutoEncoder
from .base import Loss, Model
from .classifier import Classifier
from .vae import VAE, ConditionalVAE

MODEL_KINDS = {cls.__name__: cls for cls in (AutoEncoder, DenoisingAutoEncoder, VAE, ConditionalVAE, Classifier)}

__all__ = ["MODEL_KINDS", "VAE", "AutoEncoder", "Classifier", "ConditionalVAE", "DenoisingAutoEncoder", "Loss", "Model"]
