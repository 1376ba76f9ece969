"""Amended-DARTS (Bi et al. 2019): the amended second-order estimate of alpha's gradient.

With the weights at their optimum ``w*(alpha)`` for the training loss, the
implicit function theorem gives alpha's true gradient

    dL_val/dalpha = grad_alpha L_val - d2L_train/(dalpha dw) . H^-1 . grad_w L_val,

``H = d2L_train/dw2``. DARTS' unrolled step approximates ``H^-1`` by ``xi I``
(one virtual SGD step), an error the paper blames for DARTS' instability.
Amended-DARTS replaces ``H^-1`` by ``eta H`` (``H`` and ``H^-1`` share their
eigenvectors; the paper shows the resulting estimate's error from the true
gradient is bounded, where DARTS' is not):

    g = grad_alpha L_val(w, alpha) - eta . d2L_train/(dalpha dw) . H . grad_w L_val(w, alpha),

evaluated at the current weights (taken as ``w*``; no virtual step) with
``eta = amend_weight``. Both Hessian products are central differences on the
weights (:mod:`nas.oneshot.hessian`): ``H u`` from the weight gradient of the
training loss at ``w +- r u``, then the mixed block times ``H u`` from alpha's
gradient of the training loss at ``w +- r' H u`` -- four extra passes over the
weight batch and no second-order graph. ``H`` is the Hessian of the objective
the weights actually minimise, the training loss plus the SGD weight decay
``decay/2 |w|^2``, so ``H u`` gains ``decay u``.

The one hook is ``arch_step``. The paper's other change, the same
hyper-parameters in search and re-training (e.g. no ``affine: false`` BatchNorm
in the search only), is the user's choice of options here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.hessian import central_difference, or_zeros

#: ``loss()`` -> a scalar loss at the parameters as they currently are.
Loss = Callable[[], torch.Tensor]


def amended_gradients(
    val_loss: Loss,
    train_loss: Loss,
    weights: Sequence[torch.Tensor],
    arch: Sequence[torch.Tensor],
    eta: float,
    decay: float = 0.0,
) -> list[torch.Tensor]:
    """The amended gradient of ``val_loss`` w.r.t. ``arch`` (see the module docstring); ``weights`` end unchanged."""
    found = torch.autograd.grad(val_loss(), [*arch, *weights], allow_unused=True)
    direct = or_zeros(found[: len(arch)], arch)
    vector = or_zeros(found[len(arch) :], weights)

    def weight_gradient() -> list[torch.Tensor]:
        return or_zeros(torch.autograd.grad(train_loss(), weights, allow_unused=True), weights)

    def arch_gradient() -> list[torch.Tensor]:
        return or_zeros(torch.autograd.grad(train_loss(), arch, allow_unused=True), arch)

    hessian_vector = central_difference(weights, vector, weight_gradient)
    hessian_vector = [h + decay * v for h, v in zip(hessian_vector, vector, strict=True)]
    mixed = central_difference(weights, hessian_vector, arch_gradient)
    return [d - eta * m for d, m in zip(direct, mixed, strict=True)]


@ONESHOT.register("amended_darts")
class AmendedDartsMethod(DifferentiableMethod):
    """DARTS with the amended second-order architecture gradient (``H^-1`` replaced by ``amend_weight * H``)."""

    name = "amended_darts"

    def extra_weight_copies(self) -> int:
        """The weights' centre, ``grad_w L_val``, ``H u`` and a gradient of the weights at a shifted point."""
        return 4

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        weights = [p for p in self.supernet.parameters() if p.requires_grad]
        decay = float(self.w_optimizer.param_groups[0]["weight_decay"])
        grads = amended_gradients(
            lambda: self.arch_loss(xa, ya),
            lambda: nn.functional.cross_entropy(self.supernet(x, self.mixed_path()), y),
            weights,
            self.arch_parameters(),
            float(self.settings.option("amend_weight")),
            decay,
        )
        self.a_optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.arch_parameters(), grads, strict=True):
            alpha.grad = grad
        self.a_optimizer.step()


__all__ = ["AmendedDartsMethod", "amended_gradients"]
