"""The VAE's two ops: the Gaussian KL term and the reparameterization."""

from __future__ import annotations

from typing import Any

from .. import backend, kernels
from ..errors import ShapeError
from ..tensor import Function, Tensor
from .losses import PairLoss


class GaussianKL(PairLoss):
    """KL(N(mu, exp(logvar)) || N(0, I)) per element: l = 0.5 (mu^2 + exp(logvar) - logvar - 1).

    mu, logvar: (N, D);  dl/dmu = mu,  dl/dlogvar = 0.5 (exp(logvar) - 1).
    """

    name = "gaussian_kl"
    arg_names = ("mu", "logvar")
    grads = "dmu = mu{dL}, dlogvar = 0.5 (exp(logvar) - 1){dL}"
    has_kernel = True

    def values(self, mu: Any, logvar: Any) -> Any:
        var = backend.array_module_of(logvar).exp(logvar)
        self.save_for_backward(mu, var, None)
        return 0.5 * (mu * mu + var - logvar - 1)

    def fused_total(self, mu: Any, logvar: Any) -> Any:
        total, _, dlogvar = kernels.gaussian_kl(mu, logvar)
        self.save_for_backward(mu, None, dlogvar)
        return total

    def local_grads(self, need_a: bool, need_b: bool) -> tuple:
        mu, var, dlogvar = self.saved
        if need_b and dlogvar is None:
            dlogvar = 0.5 * (var - 1)
        return mu, dlogvar


class Reparameterize(Function):
    """z = mu + exp(0.5 logvar) * eps.  mu, logvar, eps: (N, D) -> z: (N, D).

    dz/dmu = 1,  dz/dlogvar = 0.5 exp(0.5 logvar) eps,  dz/deps = exp(0.5 logvar).
    """

    name = "reparameterize"
    formula = "dmu = dz, dlogvar = 0.5 * dz * std * eps, deps = dz * std"

    def forward(self, mu: Any, logvar: Any, eps: Any) -> Any:
        if not (mu.shape == logvar.shape == eps.shape):
            raise ShapeError(
                f"reparameterize: mu {tuple(mu.shape)}, logvar {tuple(logvar.shape)} and eps {tuple(eps.shape)} "
                f"must have one shape"
            )
        if backend.kernels_enabled():  # one fused pass
            z, std = kernels.reparameterize_forward(mu, logvar, eps)
        else:
            std = backend.array_module_of(logvar).exp(0.5 * logvar)
            z = mu + std * eps
        self.save_for_backward(std, eps)
        return z

    def backward(self, gz: Any) -> tuple:
        std, eps = self.saved
        need = self.needs_input_grad
        if backend.kernels_enabled():  # one fused pass
            gmu, glogvar, geps = kernels.reparameterize_backward(gz, std, eps)
        else:
            geps = gz * std
            gmu, glogvar = gz, 0.5 * geps * eps
        return (gmu if need[0] else None, glogvar if need[1] else None, geps if need[2] else None)


def gaussian_kl(mu: Any, logvar: Any, reduction: str = "batchmean") -> Tensor:
    """l = 0.5 (mu^2 + exp(logvar) - logvar - 1) per element, KL(N(mu, exp(logvar)) || N(0, I)) summed per
    example and averaged over the batch by default;  dl/dmu = mu, dl/dlogvar = 0.5 (exp(logvar) - 1)."""
    return GaussianKL(reduction)(mu, logvar)


def reparameterize(mu: Any, logvar: Any, eps: Any) -> Tensor:
    """z = mu + exp(0.5 logvar) eps, one op, ``eps`` ~ N(0, I) drawn by the caller;  dL/dmu = dL/dz,
    dL/dlogvar = 0.5 dL/dz exp(0.5 logvar) eps, dL/deps = dL/dz exp(0.5 logvar)."""
    return Reparameterize()(mu, logvar, eps)
