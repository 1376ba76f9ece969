"""FBNet's single-path supernet: every candidate block of every layer, trained by SPOS or steered by alpha.

The skeleton is the stand-alone :class:`~search_spaces.fbnet.model.FBNetNetwork`
with a dict of all nine blocks per layer; an architecture runs one per layer,
so a sub-network has exactly the stand-alone network's layers.

It is also the supernet of FBNet's own DNAS: one alpha group whose "edges"
are the 22 layers (edge ``i`` joins layer ``i``'s input to its output) and
whose ops are the nine blocks, so the alpha loop of
:mod:`nas.oneshot.differentiable` steers it with a :class:`~nas.supernet.CellPath`
(every block of a layer weighted, or one sampled block) exactly as it steers
a cell's edges (the view says ``layer_alpha=True``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.supernet import AlphaGroup, CellPath, CellSupernet, mix_ops
from search_spaces.fbnet.model import FBNetNetwork, block_module
from search_spaces.fbnet.plan import BLOCKS, LAYER_NAMES, NUM_LAYERS, LayerPlan

if TYPE_CHECKING:
    from search_spaces.fbnet.space import FBNetSpace

#: The one alpha group: a row per layer, a column per block.
LAYERS = AlphaGroup(
    name="layers",
    edges=LAYER_NAMES,
    sources=tuple(range(NUM_LAYERS)),
    targets=tuple(range(1, NUM_LAYERS + 1)),
    ops=BLOCKS,
)


class FbnetSupernet(CellSupernet):
    """FBNet's stem and head around 22 layers of nine candidate blocks each."""

    groups = (LAYERS,)

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

    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:  # type: ignore[override]
        """Every layer mixes its blocks by its alpha row (or runs the one block ``path.index`` picks)."""
        weights, index, _ = path.group(LAYERS.name)
        x = self.network.stem(x)
        for i, layer in enumerate(self.network.layers):
            x = mix_ops(list(layer.values()), x, weights[i], None if index is None else index[i])
        return self.network.classify(x)

    def candidate_ops(self) -> Iterator[tuple[str, int, int, nn.Module]]:
        for i, layer in enumerate(self.network.layers):
            for o, block in enumerate(layer.values()):
                yield LAYERS.name, i, o, block

    def choices(self, arch: Architecture) -> dict[str, list[int]]:
        self.space.validate(arch)
        return {LAYERS.name: [BLOCKS.index(str(arch[name])) for name in LAYER_NAMES]}

    def derive(self, strength: Mapping[str, np.ndarray]) -> Architecture:
        """The strongest block of every layer (FBNet samples from alpha; the argmax is its mode)."""
        best = np.asarray(strength[LAYERS.name]).argmax(axis=1)
        return self.space.make({name: BLOCKS[int(b)] for name, b in zip(LAYER_NAMES, best, strict=True)})


__all__ = ["LAYERS", "FbnetSupernet"]
