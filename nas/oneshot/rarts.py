"""RARTS (Xue, Qi & Xin 2021): relaxed single-level search with data and network splitting.

DARTS' bilevel problem needs either a first-order shortcut that ignores how
the weights depend on alpha, or mixed second derivatives. RARTS relaxes it to
one level over *two* networks sharing the architecture: the weights ``w``,
trained on the weight split, and a second copy ``y``, trained on the
architecture split, tied by a proximity penalty:

    L(y, w, alpha) = L_val(y, alpha) + lambda L_train(w, alpha) + beta/2 |y - w|^2

with ``beta = relaxation`` and ``lambda = train_loss_weight``. Each step takes
one Gauss-Seidel sweep of gradient steps on it, every block seeing the blocks
already updated in this step:

* ``w`` on a weight batch: ``lambda grad L_train(w, alpha) + beta (w - y)``;
* ``y`` on an architecture batch: ``grad L_val(y, alpha) + beta (y - w)``;
* ``alpha``: ``grad_alpha L_val(y, alpha) + lambda grad_alpha L_train(w, alpha)``,
  so alpha learns from *both* splits, first order, and the information of the
  held-out data reaches ``w`` only through ``y`` and the penalty (``beta = 0``
  leaves two independent networks sharing alpha).

``y`` starts as a copy of ``w`` and has its own SGD (same momentum, decay and
clipping; its learning rate follows ``w``'s schedule). Validation, scoring and
derivation read ``w`` and alpha. The defaults (``beta = lambda = 1``) are ours,
not tuned figures from the paper.

Hooks: ``init_arch_parameters`` (the copy ``y`` and its optimiser),
``train_step`` (the sweep's order), ``arch_step`` (both splits),
``begin_epoch`` (``y``'s learning rate), ``after_epoch`` (records
``|w - y|``), ``extra_state`` (``y`` and its momentum),
``extra_weight_copies`` / ``extra_activation_copies`` (``y``, its gradients
and momentum; alpha's step holds both networks' activations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod


def proximity(params: Iterable[torch.Tensor], anchors: Iterable[torch.Tensor], weight: float) -> torch.Tensor:
    """``weight/2 |params - anchors|^2`` with the anchors held constant (gradient ``weight (params - anchors)``)."""
    total = sum(((p - a.detach()) ** 2).sum() for p, a in zip(params, anchors, strict=True))
    return 0.5 * weight * total  # type: ignore[return-value]


def distance(first: nn.Module, second: nn.Module) -> float:
    """``|first - second|`` over the parameters of two copies of one network."""
    with torch.no_grad():
        return float(
            sum(((p - q) ** 2).sum() for p, q in zip(first.parameters(), second.parameters(), strict=True))
            ** 0.5
        )


@ONESHOT.register("rarts")
class RartsMethod(DifferentiableMethod):
    """RARTS: weights ``w`` and their copy ``y`` tied by ``relaxation/2 |w - y|^2``, alpha learning from both splits."""

    name = "rarts"

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        s = self.settings
        #: The second network ``y`` (the architecture split's), a copy of ``w`` at the start.
        self.twin = self.place(self.build_supernet())
        self.twin.load_state_dict(self.supernet.state_dict())
        self.y_optimizer = torch.optim.SGD(
            self.twin.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
        )

    def extra_weight_copies(self) -> int:
        """``y``, its gradients and its momentum."""
        return 3

    def extra_activation_copies(self) -> int:
        """alpha's step back-propagates through both networks at once (``y`` on one batch, ``w`` on another)."""
        return 1

    def begin_epoch(self) -> None:
        lr = self.w_optimizer.param_groups[0]["lr"]
        for group in self.y_optimizer.param_groups:
            group["lr"] = lr

    def trainable(self, network: nn.Module) -> list[nn.Parameter]:
        return [p for p in network.parameters() if p.requires_grad]

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        s = self.settings
        beta, weight = float(s.option("relaxation")), float(s.option("train_loss_weight"))
        self.begin_step()
        path = self.train_path()
        w, copy_y = self.trainable(self.supernet), self.trainable(self.twin)
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x, path)
        data_loss = weight * nn.functional.cross_entropy(logits, y) + self.weight_loss(x, logits)
        (data_loss + proximity(w, copy_y, beta)).backward()
        self.clip_and_step()
        self.y_optimizer.zero_grad(set_to_none=True)
        val_loss = nn.functional.cross_entropy(self.twin(x_arch, path), y_arch)
        (val_loss + proximity(copy_y, w, beta)).backward()
        self.clip_and_step(self.y_optimizer, self.twin.parameters())
        if self.epoch >= s.option("warmup_epochs"):
            self.arch_step(x, y, x_arch, y_arch)
        return logits

    def relaxed_arch_loss(
        self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor
    ) -> torch.Tensor:
        """alpha's part of the relaxed objective: ``L_val(y, alpha) + lambda L_train(w, alpha)`` (+ regularisation)."""
        path = self.arch_path()
        weight = float(self.settings.option("train_loss_weight"))
        val_loss = nn.functional.cross_entropy(self.twin(xa, path), ya)
        train_loss = nn.functional.cross_entropy(self.supernet(x, path), y)
        return val_loss + weight * train_loss + self.regularization()

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        self.a_optimizer.zero_grad(set_to_none=True)
        self.relaxed_arch_loss(x, y, xa, ya).backward(inputs=self.arch_parameters())
        self.a_optimizer.step()

    def after_epoch(self, metrics: Mapping[str, float]) -> None:
        """Also records ``|w - y|`` (the ``supernet/weight_distance`` curve: how far the two networks drift)."""
        super().after_epoch(metrics)
        self.history[-1]["weight_distance"] = distance(self.supernet, self.twin)

    def extra_state(self) -> dict[str, Any]:
        return {
            **super().extra_state(),
            "twin": self.twin.state_dict(),
            "y_optimizer": self.y_optimizer.state_dict(),
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        super().load_extra_state(state)
        self.twin.load_state_dict(state["twin"])
        self.y_optimizer.load_state_dict(state["y_optimizer"])


__all__ = ["RartsMethod", "distance", "proximity"]
