"""FBNet's latency parts: the stem, the head and each block at each layer, with the input each sees.

FBNet's own lookup table is per layer and per block: a network's latency is
the sum of its blocks' plus the fixed stem and head. :func:`latency_parts`
lists exactly those modules (built as the stand-alone network builds them)
with their batch-1 input shapes, so ``nas latency profile`` can measure each
once and add them up (:mod:`nas.specialize.profile`). An identity ``skip`` (a
layer that keeps its shape) costs nothing and is listed with no module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from search_spaces.fbnet.model import block_module
from search_spaces.fbnet.plan import BLOCKS, SKIP
from search_spaces.ops import conv_bn

if TYPE_CHECKING:
    from search_spaces.fbnet.space import FBNetSpace


def _after(size: int, stride: int) -> int:
    """Spatial size after a conv of odd kernel k, padding k // 2 (or 1x1, padding 0) and ``stride``."""
    return (size - 1) // stride + 1


class _Head(nn.Module):
    """Head conv, global pool and classifier: the network's fixed tail."""

    def __init__(self, c_in: int, head_channels: int, num_classes: int) -> None:
        super().__init__()
        self.head = conv_bn(c_in, head_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.head(x)), 1))


def latency_parts(
    space: FBNetSpace, *, num_classes: int, input_shape: tuple[int, int, int]
) -> list[tuple[str | None, Any, nn.Module | None, tuple[int, ...]]]:
    """``(layer, block, module, input shape)`` for every block of every layer, plus stem and head (see above)."""
    channels, height, width = input_shape
    plans = space.plans
    parts: list[tuple[str | None, Any, nn.Module | None, tuple[int, ...]]] = [
        (None, "stem", conv_bn(channels, plans[0].c_in, 3, stride=2), (channels, height, width))
    ]
    height, width = _after(height, 2), _after(width, 2)
    for plan in plans:
        shape = (plan.c_in, height, width)
        for block in BLOCKS:
            identity = block == SKIP and plan.keeps_shape
            parts.append((plan.name, block, None if identity else block_module(block, plan), shape))
        height, width = _after(height, plan.stride), _after(width, plan.stride)
    parts.append(
        (
            None,
            "head",
            _Head(plans[-1].c_out, space.head_channels, num_classes),
            (plans[-1].c_out, height, width),
        )
    )
    return parts


__all__ = ["latency_parts"]
