"""SD-DARTS (Zhu et al. 2023): self-distillation from earlier snapshots of the supernet.

DARTS' weights settle into sharp regions of the loss landscape, where the
discretised cell loses what the supernet had. SD-DARTS smooths the search by
distilling the current supernet towards its own past: the *teachers* are
snapshots of the supernet (weights, BatchNorm statistics and the op weights it
ran with) from the ends of the last ``distill_teachers`` epochs, and their
softened predictions are averaged (*voting*). The weight step's loss gains

    distill_weight * T^2 * KL(vote || softmax(student logits / T))

with ``T = distill_temperature`` -- the usual knowledge-distillation form, so
the gradient's scale does not depend on ``T``. In the first epoch there is no
snapshot yet and the term is 0.

Hooks on the alpha loop: ``begin_epoch`` takes the snapshot (the supernet as
the previous epoch left it) and drops the oldest beyond the window;
``weight_loss`` adds the distillation term. Teachers run with torch's
functional call on the snapshot's tensors (no second network is built),
BatchNorm on batch statistics like the student. The snapshots are checkpoint
state, so a resumed run distils from the same teachers; the memory estimate
counts them as extra copies of the weights. The term's mean per epoch is the
``distill_loss`` curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.method import batch_statistics
from nas.supernet.base import CellPath


@ONESHOT.register("sd_darts")
class SdDartsMethod(DifferentiableMethod):
    """First-order DARTS whose weight loss distils from a vote of the last epochs' supernet snapshots."""

    name = "sd_darts"

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        #: Oldest first: ``{"epoch", "state", "weights"}`` of the supernet at the end of an epoch.
        self.teachers: list[dict[str, Any]] = []
        self._distill_sum, self._distill_steps = 0.0, 0

    def extra_weight_copies(self) -> int:
        return int(self.settings.option("distill_teachers"))

    def snapshot(self) -> dict[str, Any]:
        """The supernet as it is now: its tensors and the op weights its weight steps run with."""
        return {
            "epoch": self.epoch,
            "state": {
                k: v.detach().clone()
                for k, v in self.supernet.state_dict().items()
                if not k.endswith("num_batches_tracked")  # a counter, not part of what the teacher computes
            },
            "weights": {k: v.detach().clone() for k, v in self.train_path().weights.items()},
        }

    def begin_epoch(self) -> None:
        super().begin_epoch()
        if self.epoch == 0:
            return  # the random initialisation has nothing to teach
        self.teachers = [*self.teachers, self.snapshot()][-int(self.settings.option("distill_teachers")) :]

    @torch.no_grad()
    def teacher_probs(self, x: torch.Tensor) -> torch.Tensor | None:
        """The teachers' vote on ``x``: the mean of their softmax(logits / T); None without teachers."""
        if not self.teachers:
            return None
        temperature = float(self.settings.option("distill_temperature"))
        with batch_statistics(self.supernet):
            votes = [
                torch.softmax(
                    functional_call(self.supernet, t["state"], (x, CellPath(t["weights"]))) / temperature,
                    dim=-1,
                )
                for t in self.teachers
            ]
        return torch.stack(votes).mean(dim=0)

    def distillation(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        """``T^2 KL(vote || student)`` on the batch (0.0 without teachers or with weight 0)."""
        weight = float(self.settings.option("distill_weight"))
        vote = self.teacher_probs(x) if weight else None
        if vote is None:
            return 0.0
        temperature = float(self.settings.option("distill_temperature"))
        student = nn.functional.log_softmax(logits / temperature, dim=-1)
        kl = nn.functional.kl_div(student, vote, reduction="batchmean")
        return weight * temperature**2 * kl

    def weight_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        term = self.distillation(x, logits)
        self._distill_sum += float(term.detach()) if isinstance(term, torch.Tensor) else term
        self._distill_steps += 1
        return term

    def after_epoch(self, metrics: Mapping[str, float]) -> None:
        super().after_epoch(metrics)
        self.history[-1]["distill_loss"] = self._distill_sum / max(self._distill_steps, 1)
        self._distill_sum, self._distill_steps = 0.0, 0

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "teachers": self.teachers}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        super().load_extra_state(state)
        self.teachers = [
            {
                "epoch": int(t["epoch"]),
                "state": {k: v.to(self.device) for k, v in t["state"].items()},
                "weights": {k: v.to(self.device) for k, v in t["weights"].items()},
            }
            for t in state["teachers"]
        ]


__all__ = ["SdDartsMethod"]
