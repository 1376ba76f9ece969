"""FBNet's single-path supernet: every candidate block of every layer, trained by SPOS.

The skeleton is the stand-alone :class:`~search_spaces.fbnet.model.FBNetNetwork`
with a dict of all nine blocks per layer; an architecture runs one per layer,
so a sub-network has exactly the stand-alone network's layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.supernet import Supernet
from search_spaces.fbnet.model import FBNetNetwork, block_module
from search_spaces.fbnet.plan import BLOCKS, LayerPlan

if TYPE_CHECKING:
    from search_spaces.fbnet.space import FBNetSpace


class FbnetSupernet(Supernet):
    """FBNet's stem and head around 22 layers of nine candidate blocks each."""

    def __init__(self, space: FBNetSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        self.plans = space.plans

        def make_layer(plan: LayerPlan) -> nn.Module:
            return nn.ModuleDict((block, block_module(block, plan)) for block in BLOCKS)

        self.network = FBNetNetwork(make_layer, self.plans, space.head_channels, num_classes, input_shape[0])

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        self.space.validate(arch)
        x = self.network.stem(x)
        for plan, layer in zip(self.plans, self.network.layers, strict=True):
            x = layer[str(arch[plan.name])](x)
        return self.network.classify(x)


__all__ = ["FbnetSupernet"]
