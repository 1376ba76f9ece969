"""The hybrid space's weight transfer through a widening (see :mod:`search_spaces.hybrid.morphisms`).

Block ``i`` doubles its channels: its residual stream carries every parent
channel twice, in the order ``mapping`` gives. For a conv block and for
attention whose heads double, new channel ``n`` replicates ``n % c`` (the
replica heads follow the originals); where the head count stays, each head
holds its own channels twice (``mapping`` interleaves per head) and the
queries are scaled by ``1/sqrt(2)`` so that ``q.k / sqrt(head width)`` is
unchanged. LayerNorm sees each value twice, so its mean and variance are the
parent's. The next block (or the head) splits its input weights among the
replicas; a transition the child gains is an identity (1x1 conv + identity
BatchNorm).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas.core.errors import ArchitectureError
from nas.core.morphism import Morphism
from search_spaces.hybrid.model import AttentionBlock, ConvBlock, HybridNetwork
from search_spaces.hybrid.morphisms import head_layout
from search_spaces.hybrid.plan import num_heads
from search_spaces.net2net import (
    copy_matching,
    doubling,
    identity_batchnorm,
    replicate,
    replicate_module,
    set_params,
    split,
    widen_weight,
)


def stream_mapping(op: str, channels: int) -> torch.Tensor:
    """Which parent channel each of the widened block's ``2 * channels`` channels replicates."""
    if op == "attn" and head_layout(channels) == "width":
        width = channels // num_heads(channels)
        new = torch.arange(2 * channels)
        return (new // (2 * width)) * width + new % width
    return doubling(channels)


def parts(block: nn.Module) -> tuple[nn.Sequential | None, nn.Module]:
    """A block's transition (None if it has none) and its residual body."""
    if isinstance(block, nn.Sequential) and hasattr(block, "transition"):
        return block.transition, block.body
    return None, block


def widen_conv_block(parent: ConvBlock, child: ConvBlock, g: torch.Tensor, rng: torch.Generator) -> None:
    for old, new in zip(parent.body, child.body, strict=True):
        set_params(new[0], weight=widen_weight(old[0].weight, g, g, rng))
        replicate_module(old[1], new[1], g)


def widen_attention(
    parent: AttentionBlock, child: AttentionBlock, g: torch.Tensor, rng: torch.Generator
) -> None:
    c = len(g) // 2
    replicate_module(parent.pos, child.pos, g)
    replicate_module(parent.norm1, child.norm1, g)
    replicate_module(parent.norm2, child.norm2, g)
    qkv = torch.cat([g + part * c for part in range(3)])
    scale = torch.ones(3 * len(g))
    if head_layout(c) == "width":  # head width doubles: q.k doubles, the softmax scale only shrinks by sqrt 2
        scale[: len(g)] = 1 / math.sqrt(2)
    old_qkv = parent.attn.qkv
    set_params(
        child.attn.qkv,
        weight=widen_weight(old_qkv.weight, qkv, g, rng) * scale[:, None],
        bias=replicate(old_qkv.bias, qkv) * scale,
    )
    linear(parent.attn.proj, child.attn.proj, g, g, rng)
    hidden = doubling(parent.mlp[0].out_features)
    linear(parent.mlp[0], child.mlp[0], hidden, g, rng)
    linear(parent.mlp[2], child.mlp[2], g, hidden, rng)


def linear(
    parent: nn.Linear,
    child: nn.Linear,
    outputs: torch.Tensor | None,
    inputs: torch.Tensor | None,
    rng: torch.Generator,
) -> None:
    bias = parent.bias if outputs is None else replicate(parent.bias, outputs)
    set_params(child, weight=widen_weight(parent.weight, outputs, inputs, rng), bias=bias)


def transfer(
    space: object, morphism: Morphism, parent: HybridNetwork, child: HybridNetwork, generator: torch.Generator
) -> None:
    """Fill ``child`` (the widened network) from the trained ``parent`` so that both compute the same function."""
    plans = space.plan(morphism.parent)  # type: ignore[attr-defined]
    index = next(i for i, p in enumerate(plans) if f"{p.name}.width" == morphism.decision)
    plan = plans[index]
    names = [p.name.replace(".", "_") for p in plans]
    last = index + 1 == len(plans)
    skip = [f"blocks.{names[index]}."] + (
        ["norm.", "classifier."] if last else [f"blocks.{names[index + 1]}."]
    )
    copy_matching(parent, child, tuple(skip))
    g = stream_mapping(plan.op, plan.c_out)
    with torch.no_grad():
        old_transition, old_body = parts(getattr(parent.blocks, names[index]))
        new_transition, new_body = parts(getattr(child.blocks, names[index]))
        if new_transition is None:  # a widened block changes its width, so it has one (see widenable)
            raise ArchitectureError(f"{morphism.decision}: the widened block has no transition")
        if old_transition is None:
            eye = torch.eye(plan.c_out)[:, :, None, None]
            set_params(new_transition[0], weight=replicate(eye, g))
            identity_batchnorm(new_transition[1])
        else:
            set_params(new_transition[0], weight=replicate(old_transition[0].weight, g))
            replicate_module(old_transition[1], new_transition[1], g)
        if plan.op == "conv":
            widen_conv_block(old_body, new_body, g, generator)  # type: ignore[arg-type]
        else:
            widen_attention(old_body, new_body, g, generator)  # type: ignore[arg-type]
        if last:
            replicate_module(parent.norm, child.norm, g)
            linear(parent.classifier, child.classifier, None, g, generator)
            return
        old_transition, old_body = parts(getattr(parent.blocks, names[index + 1]))
        new_transition, new_body = parts(getattr(child.blocks, names[index + 1]))
        if new_transition is None:  # its input width changed, so it has one (see widenable)
            raise ArchitectureError(f"{morphism.decision}: the block after the widened one has no transition")
        new_body.load_state_dict(old_body.state_dict())
        if old_transition is None:
            eye = torch.eye(plan.c_out)[:, :, None, None]
            set_params(new_transition[0], weight=split(eye, g, generator))
            identity_batchnorm(new_transition[1])
        else:
            set_params(new_transition[0], weight=split(old_transition[0].weight, g, generator))
            new_transition[1].load_state_dict(old_transition[1].state_dict())


__all__ = ["stream_mapping", "transfer"]
