"""The hybrid space's single-path supernet, trained by SPOS.

A block's input and output widths depend on earlier decisions (widths and
down-sampling positions), so each block keeps one module per reachable shape
``(type, c_in, c_out, stride)``: shapes that coincide share weights, as
single-path methods do; the classifier likewise has one head per reachable
final width. Stem and blocks are the stand-alone network's own
(:func:`~search_spaces.hybrid.model.make_stem`, :func:`~search_spaces.hybrid.model.block_module`).

With ``checkpoint`` on (the one-shot ``checkpoint`` option), attention
blocks are recomputed in the backward pass instead of keeping their
activations: an attention block keeps ``heads`` token-by-token attention
maps and a 4x-wide MLP per sample, far more than a conv block, so they are
what makes a hybrid supernet step run out of memory (the memory-efficient
transformer search recipe, with exact gradients rather than reversible
blocks).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.supernet import Checkpointable, Supernet, recompute
from search_spaces.hybrid.model import block_module, make_stem
from search_spaces.hybrid.plan import DOWNS, TYPES, WIDTHS, BlockPlan

if TYPE_CHECKING:
    from search_spaces.hybrid.space import HybridSpace


def _shape_key(plan: BlockPlan) -> str:
    return f"{plan.op}_{plan.c_in}_{plan.c_out}_s{plan.stride}"


class HybridSupernet(Checkpointable, Supernet):
    """The hybrid space's stem and one module per reachable block shape and head width."""

    def __init__(self, space: HybridSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        base = space.base_width
        self.stem = make_stem(input_shape, base)
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
                            modules.setdefault(_shape_key(plan), block_module(plan))
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
            block = self.blocks[plan.name.replace(".", "_")][_shape_key(plan)]
            x = recompute(block, block, x, enabled=self.checkpoint and plan.op == "attn")
        x = torch.flatten(self.pool(x), 1)
        return self.heads[str(plans[-1].c_out)](x)


__all__ = ["HybridSupernet"]
