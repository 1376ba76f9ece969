"""FBNet's network: the MBConv blocks and the stem/layers/head skeleton.

The skeleton (:class:`FBNetNetwork`) takes a layer factory, so the
single-path supernet (:mod:`search_spaces.fbnet.supernet`) is the same
skeleton with every candidate block per layer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from nas.core import UnknownOpError
from search_spaces.fbnet.plan import BLOCKS, MBCONV, SKIP, LayerPlan
from search_spaces.ops import conv_bn


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle, mixing the groups of a grouped 1x1 conv.

    Written with shape-derived reshapes (no data-dependent branches) so it
    traces and exports to ONNX as Reshape/Transpose.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class Residual(nn.Module):
    """``x + body(x)``: a separate module rather than a flag, so forward has no branches."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def mbconv(kernel: int, expansion: int, groups: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    """FBNet's inverted-residual block (``IRFBlock``), residual when the shape is kept."""
    mid = c_in * expansion
    layers: list[nn.Module] = [conv_bn(c_in, mid, 1, groups=groups)]
    if groups > 1:
        layers.append(ChannelShuffle(groups))
    layers.append(conv_bn(mid, mid, kernel, stride=stride, groups=mid))
    layers.append(conv_bn(mid, c_out, 1, groups=groups, relu=False))
    body = nn.Sequential(*layers)
    return Residual(body) if stride == 1 and c_in == c_out else body


def block_module(block: str, plan: LayerPlan) -> nn.Module:
    """The module of ``block`` at a layer of shape ``plan``."""
    if block == SKIP:
        if plan.keeps_shape:
            return nn.Identity()
        return conv_bn(plan.c_in, plan.c_out, 1, stride=plan.stride)
    if block not in MBCONV:
        raise UnknownOpError("fbnet block", block, BLOCKS)
    kernel, expansion, groups = MBCONV[block]
    return mbconv(kernel, expansion, groups, plan.c_in, plan.c_out, plan.stride)


class FBNetNetwork(nn.Module):
    """Stem, one module per layer from ``make_layer(plan)`` and FBNet's classification head.

    The stand-alone network makes the chosen block of each layer; the supernet
    makes a dict of every candidate block, on the same skeleton.
    """

    def __init__(
        self,
        make_layer: Callable[[LayerPlan], nn.Module],
        plans: Sequence[LayerPlan],
        head_channels: int,
        num_classes: int,
        in_channels: int,
    ) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, plans[0].c_in, 3, stride=2)
        self.layers = nn.Sequential(OrderedDict((plan.name, make_layer(plan)) for plan in plans))
        self.head = conv_bn(plans[-1].c_out, head_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_channels, num_classes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Head conv, pooling and the classifier after the last layer."""
        return self.classifier(torch.flatten(self.pool(self.head(x)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.layers(self.stem(x)))


__all__ = ["ChannelShuffle", "FBNetNetwork", "Residual", "block_module", "mbconv"]
