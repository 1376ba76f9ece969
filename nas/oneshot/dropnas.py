"""DropNAS (Hong et al. 2020): grouped operation dropout during the search.

One-level DARTS lets the parameter-free ops (skip, pooling) win early
because they need no training, and the parameterised ones (convolutions)
never catch up. DropNAS splits each edge's ops into these two *groups* and,
every step, drops ops of each group independently, at the group's own rate:
with ``r = drop_rate`` (the chance that a whole group would be dropped), each
op of a group of ``n`` ops drops with probability ``r ** (1 / n)``, and at
least one op of every group stays (a group left empty gets one of its ops
back, chosen uniformly). A dropped op gets no weight and its alpha no
gradient: the softmax runs over the kept ops only. The same mask serves the
step's architecture and weight updates.

Hooks: ``begin_step`` draws the mask (from the method's own generator, so a
resumed run drops the same ops), ``op_weights`` applies it. Validation,
read-out and the alpha curves use the full softmax.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

import torch

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.supernet.base import AlphaGroup


def op_groups(group: AlphaGroup, parameter_free: AbstractSet[Any]) -> list[list[int]]:
    """The non-empty groups of op indices: parameter-free (as the space says), then parameterised."""
    free = [i for i, op in enumerate(group.ops) if op in parameter_free]
    weighted = [i for i, op in enumerate(group.ops) if op not in parameter_free]
    return [g for g in (free, weighted) if g]


@ONESHOT.register("dropnas")
class DropnasMethod(DifferentiableMethod):
    """DARTS with grouped operation dropout (parameter-free and parameterised ops at their own rates)."""

    name = "dropnas"

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        #: Per group, ``(edges, ops)`` True where the op runs this step; None outside the search steps.
        self.keep: dict[str, torch.Tensor] | None = None

    def drop_rates(self, group: AlphaGroup) -> torch.Tensor:
        """Per op of ``group``, its probability of being dropped: ``drop_rate ** (1 / group size)``."""
        rate = float(self.settings.option("drop_rate"))
        rates = torch.zeros(len(group.ops), dtype=torch.float64)
        for members in op_groups(group, self.space.parameter_free_ops()):
            rates[members] = rate ** (1.0 / len(members))
        return rates

    def draw_mask(self, group: AlphaGroup) -> torch.Tensor:
        """One step's keep mask for ``group``: independent drops, at least one op kept per op group."""
        rates = self.drop_rates(group)
        draws = torch.rand(group.shape, generator=self.sample_generator, dtype=torch.float64)
        keep = draws >= rates
        for members in op_groups(group, self.space.parameter_free_ops()):
            index = torch.tensor(members)
            for edge in torch.nonzero(~keep[:, index].any(dim=1)).flatten().tolist():
                chosen = int(torch.randint(len(members), (1,), generator=self.sample_generator))
                keep[edge, members[chosen]] = True
        return keep

    def begin_step(self) -> None:
        self.keep = {g.name: self.draw_mask(g).to(self.device) for g in self.supernet.groups}

    def op_weights(self) -> dict[str, torch.Tensor]:
        if self.keep is None:
            return self.expected_weights()
        return {
            name: torch.softmax(alpha.masked_fill(~self.keep[name], float("-inf")), dim=-1)
            for name, alpha in self.alpha.items()
        }

    def expected_weights(self) -> dict[str, torch.Tensor]:
        return {name: torch.softmax(alpha, dim=-1) for name, alpha in self.alpha.items()}


__all__ = ["DropnasMethod", "op_groups"]
