"""The hybrid space's network: conv and attention blocks, the stem and the block chain.

:func:`make_stem` and :func:`block_module` are shared with the single-path
supernet (:mod:`search_spaces.hybrid.supernet`), so a sub-network has exactly
the stand-alone network's layers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.hybrid.plan import MLP_RATIO, BlockPlan, stem_stride
from search_spaces.ops import conv_bn


class ConvBlock(nn.Module):
    """ResNet basic block: ``relu(x + bn(conv(relu(bn(conv(x))))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels, 3), conv_bn(channels, channels, 3, relu=False))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention with plain matmul and softmax (portable to every exporter)."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = channels // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        qkv = self.qkv(tokens).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj(torch.matmul(weights, v).transpose(1, 2).reshape(b, n, c))


class AttentionBlock(nn.Module):
    """Conditional positional encoding, then a pre-norm transformer block on the H*W tokens."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.pos = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = SelfAttention(channels, heads)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, MLP_RATIO * channels), nn.GELU(), nn.Linear(MLP_RATIO * channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attn(self.norm1(tokens))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


def make_stem(input_shape: tuple[int, int, int], base_width: int) -> nn.Module:
    """Conv 3x3 for small inputs, a stride-4 patchify conv for large ones (see :func:`stem_stride`)."""
    stride = stem_stride(input_shape)
    if stride == 1:
        return conv_bn(input_shape[0], base_width, 3)
    return conv_bn(input_shape[0], base_width, stride, stride=stride, padding=0)


def block_module(plan: BlockPlan) -> nn.Module:
    """Transition (if the block strides or changes width) followed by the residual body."""
    body = ConvBlock(plan.c_out) if plan.op == "conv" else AttentionBlock(plan.c_out, plan.heads)
    if plan.stride == 1 and plan.c_in == plan.c_out:
        return body
    kernel = 3 if plan.stride == 2 else 1
    transition = conv_bn(plan.c_in, plan.c_out, kernel, stride=plan.stride, relu=False)
    return nn.Sequential(OrderedDict([("transition", transition), ("body", body)]))


class HybridNetwork(nn.Module):
    """Stem, the block chain and a pooled LayerNorm + linear classifier."""

    def __init__(
        self, plans: Sequence[BlockPlan], base_width: int, num_classes: int, input_shape: tuple[int, int, int]
    ) -> None:
        super().__init__()
        self.stem = make_stem(input_shape, base_width)
        self.blocks = nn.Sequential(OrderedDict((p.name.replace(".", "_"), block_module(p)) for p in plans))
        c_last = plans[-1].c_out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(c_last)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.classifier(self.norm(torch.flatten(x, 1)))


__all__ = ["AttentionBlock", "ConvBlock", "HybridNetwork", "SelfAttention", "block_module", "make_stem"]
