"""DARTS (first and second order) and PC-DARTS: the alpha loop's defaults, plus two hooks.

* **DARTS** (Liu et al. 2019): the mixed op is the softmax(alpha)-weighted sum
  of every op -- exactly :class:`~nas.oneshot.differentiable.DifferentiableMethod`.
  First order differentiates the validation loss at the current weights;
  second order (the ``arch_step`` hook) at the weights after one virtual SGD
  step, with the Hessian-vector product by finite differences, exactly as
  DARTS' ``Architect._backward_step_unrolled``.
* **PC-DARTS** (Xu et al. 2020): first-order DARTS on a 1/K slice of the
  channels (the rest bypasses the edge and is shuffled back in), which cuts the
  memory of the mixed ops by about K, plus *edge normalisation*: a weight
  beta per edge, softmaxed over each node's incoming edges, that multiplies the
  edge output and counts in the derivation.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.hessian import gradients_both_sides, or_zeros, step_radius


@ONESHOT.register("darts")
class DartsMethod(DifferentiableMethod):
    """DARTS, first order (``order: 1``, default) or second order (``order: 2``)."""

    name = "darts"

    def extra_weight_copies(self) -> int:
        return 3 if self.settings.option("order") == 2 else 0

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        if self.settings.option("order") == 1:
            super().arch_step(x, y, xa, ya)
            return
        self.a_optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.arch_parameters(), self._unrolled_gradients(x, y, xa, ya), strict=True):
            alpha.grad = grad
        self.a_optimizer.step()

    def _unrolled_gradients(
        self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor
    ) -> list[torch.Tensor]:
        """d L_val(w - xi * grad L_train(w, a), a) / d a, the Hessian term by central differences."""
        params = [p for p in self.supernet.parameters() if p.requires_grad]
        arch = self.arch_parameters()
        group = self.w_optimizer.param_groups[0]
        xi, momentum, decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        train_loss = nn.functional.cross_entropy(self.supernet(x, self.train_path()), y)
        grads = torch.autograd.grad(train_loss, params)
        backup = [p.detach().clone() for p in params]
        with torch.no_grad():  # the virtual step w' = w - xi (momentum buffer + grad + decay w)
            for p, g in zip(params, grads, strict=True):
                buffer = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                step = g + decay * p
                if buffer is not None:
                    step = step + momentum * buffer
                p.sub_(xi * step)
        val_grads = torch.autograd.grad(self.arch_loss(xa, ya), [*arch, *params], allow_unused=True)
        direct = or_zeros(val_grads[: len(arch)], arch)
        vector = or_zeros(val_grads[len(arch) :], params)

        def arch_grads() -> list[torch.Tensor]:
            loss = nn.functional.cross_entropy(self.supernet(x, self.mixed_path()), y)
            return or_zeros(torch.autograd.grad(loss, arch, allow_unused=True), arch)

        radius = step_radius(vector)
        positive, negative = gradients_both_sides(params, backup, vector, radius, arch_grads)
        return [
            d - xi * (gp - gn) / (2 * radius) for d, gp, gn in zip(direct, positive, negative, strict=True)
        ]


@ONESHOT.register("pc_darts")
class PcDartsMethod(DifferentiableMethod):
    """PC-DARTS: partial channel connections (1/K of the channels) and edge normalisation."""

    name = "pc_darts"

    def partial_channels(self) -> int:
        return int(self.settings.option("partial_channels"))

    def uses_edge_weights(self) -> bool:
        return bool(self.settings.option("edge_normalization"))


__all__ = ["DartsMethod", "PcDartsMethod"]
