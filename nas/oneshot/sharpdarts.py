"""sharpDARTS (Hundt et al. 2019): cosine power annealing and max-weight (MaxW) regularisation.

Two hooks on the alpha loop:

* ``make_w_scheduler`` -- *cosine power annealing* of the weights' learning
  rate: with ``c(e) = (1 + cos(pi e / E)) / 2`` for epoch ``e`` of ``E``,
  ``lr(e) = lr_min + (lr - lr_min) (p**c(e) - 1) / (p - 1)`` for the power base
  ``p = power_order`` (plain cosine annealing at ``p = 1``). Larger ``p``
  drops the rate faster at first and slower at the end than cosine, which the
  paper found to search and train better in the same number of epochs;
* ``op_weights`` -- MaxW: each edge's op weights are ``1 - max(w) + w`` with
  ``w = softmax(alpha)`` and the maximum held constant (no gradient), so the
  strongest op runs at full strength and the others at a margin below it,
  instead of every op being scaled down by the softmax.

The read-out and the alpha curves use ``softmax(alpha)`` (MaxW keeps its
order); validation runs the MaxW-weighted supernet the weights trained in.
"""

from __future__ import annotations

import math

import torch

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.supernet.base import CellPath


def cosine_power_annealing(epoch: int, epochs: int, high: float, low: float, power: float) -> float:
    """The learning rate of 0-based ``epoch`` of ``epochs``: ``high`` at epoch 0, towards ``low`` at the end."""
    cosine = (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0
    share = cosine if power == 1.0 else (power**cosine - 1.0) / (power - 1.0)
    return low + (high - low) * share


def max_weight(weights: torch.Tensor) -> torch.Tensor:
    """MaxW: ``1 - max(w) + w`` per edge (rows), the maximum taken as a constant."""
    return 1.0 - weights.detach().max(dim=-1, keepdim=True).values + weights


@ONESHOT.register("sharpdarts")
class SharpDartsMethod(DifferentiableMethod):
    """DARTS with cosine power annealing of the learning rate and MaxW op weights."""

    name = "sharpdarts"

    def make_w_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        s = self.settings
        power = float(s.option("power_order"))
        return torch.optim.lr_scheduler.LambdaLR(
            self.w_optimizer,
            lambda epoch: cosine_power_annealing(epoch, s.epochs, s.lr, s.lr_min, power) / s.lr,
        )

    def op_weights(self) -> dict[str, torch.Tensor]:
        return {name: max_weight(w) for name, w in self.expected_weights().items()}

    def expected_weights(self) -> dict[str, torch.Tensor]:
        return {name: torch.softmax(alpha, dim=-1) for name, alpha in self.alpha.items()}

    def eval_path(self) -> CellPath:
        return self.mixed_path(detach=True)


__all__ = ["SharpDartsMethod", "cosine_power_annealing", "max_weight"]
