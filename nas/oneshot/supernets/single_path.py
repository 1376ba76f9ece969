"""Single-path supernets for the layer-wise spaces (``fbnet``, ``hybrid``), trained by SPOS.

Every layer holds every candidate block it could have; an architecture runs
one per layer. The blocks are the spaces' own modules
(:func:`search_spaces.fbnet.block_module`, :func:`search_spaces.hybrid.block_module`),
so a sub-network has exactly the stand-alone network's layers.

In ``hybrid`` a block's input and output widths depend on earlier decisions
(widths and down-sampling positions), so each block keeps one module per
reachable shape ``(type, c_in, c_out, stride)``: shapes that coincide share
weights, as single-path methods do; the classifier likewise has one head per
reachable final width.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.oneshot.supernet import Supernet
from search_spaces.fbnet import BLOCKS, FBNetSpace
from search_spaces.fbnet import block_module as fbnet_block
from search_spaces.hybrid import DOWNS, TYPES, WIDTHS, BlockPlan, HybridSpace, stem_stride
from search_spaces.hybrid import block_module as hybrid_block
from search_spaces.ops import conv_bn


class FbnetSupernet(Supernet):
    """FBNet's stem and head around 22 layers of nine candidate blocks each."""

    def __init__(self, space: FBNetSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        plans = space.plans
        self.plans = plans
        self.stem = conv_bn(input_shape[0], plans[0].c_in, 3, stride=2)
        self.layers = nn.ModuleDict(
            (plan.name, nn.ModuleDict((block, fbnet_block(block, plan)) for block in BLOCKS))
            for plan in plans
        )
        self.head = conv_bn(plans[-1].c_out, space.head_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(space.head_channels, num_classes)

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        self.space.validate(arch)
        x = self.stem(x)
        for plan in self.plans:
            x = self.layers[plan.name][str(arch[plan.name])](x)
        x = self.head(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


def _shape_key(plan: BlockPlan) -> str:
    return f"{plan.op}_{plan.c_in}_{plan.c_out}_s{plan.stride}"


class HybridSupernet(Supernet):
    """The hybrid space's stem and one module per reachable block shape and head width."""

    def __init__(self, space: HybridSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        base = space.base_width
        stride = stem_stride(input_shape)
        if stride == 1:
            self.stem = conv_bn(input_shape[0], base, 3)
        else:
            self.stem = conv_bn(input_shape[0], base, stride, stride=stride, padding=0)
        blocks = []
        # Reachable (downsamples so far, width multiplier of the previous block) before each block.
        states = {(0, 1)}
        for name in space.block_names:
            modules: dict[str, nn.Module] = {}
            following = set()
            for downs, width_prev in sorted(states):
                c_in = base * 2**downs * width_prev
                for down in DOWNS:
                    if down and downs >= space.downsamples:
                        continue
                    stage = downs + int(down)
                    for width in WIDTHS:
                        following.add((stage, width))
                        for op in TYPES:
                            plan = BlockPlan(
                                name, op, width, 2 if down else 1, stage, c_in, base * 2**stage * width
                            )
                            modules.setdefault(_shape_key(plan), hybrid_block(plan))
            blocks.append((name.replace(".", "_"), nn.ModuleDict(sorted(modules.items()))))
            states = following
        self.blocks = nn.ModuleDict(OrderedDict(blocks))
        finals = sorted({base * 2**downs * width for downs, width in states})
        self.heads = nn.ModuleDict(
            (str(c), nn.Sequential(nn.LayerNorm(c), nn.Linear(c, num_classes))) for c in finals
        )
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        plans = self.space.plan(arch)  # type: ignore[attr-defined]
        x = self.stem(x)
        for plan in plans:
            x = self.blocks[plan.name.replace(".", "_")][_shape_key(plan)](x)
        x = torch.flatten(self.pool(x), 1)
        return self.heads[str(plans[-1].c_out)](x)


__all__ = ["FbnetSupernet", "HybridSupernet"]
