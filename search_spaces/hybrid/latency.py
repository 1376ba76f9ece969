"""The hybrid space's latency parts: each block per *context*, the stem and the head per final width.

FBNet's lookup table prices a block by its layer and its own choice, because
every FBNet layer sees the same input whatever was chosen before it. A hybrid
block does not: its input width and resolution come from the earlier blocks'
widths and down-samplings, and its transition (a stride-2 3x3 conv, a 1x1
width projection or none) from both. So a block is priced per context, the
key ``in{c_in}s{downs}:{token}``: the channels it receives, the down-samplings
before it (its input's resolution) and its own token in the space's string
form (``vA2``: down-sample, attention, width 2), e.g. ``in32s1:vA2``. The head
(pool, LayerNorm, classifier) is priced per final width and resolution
(``in{c}s{downs}``); the stem is in every network.

Only the contexts some architecture reaches are listed
(:func:`~search_spaces.hybrid.elastic.reachable`: per block at most
``2 * (downsamples + 1)`` inputs times 8 choices), and ``nas latency profile``
measures each distinct module at its input once (the same context at another
block index is the same module). A network's latency is the stem, plus one
entry per block along its path (:func:`latency_keys`), plus its head; the
fastest sub-network of such a table is found exactly by the supernet's
dynamic programme over (down-samplings so far, previous width)
(:func:`~search_spaces.hybrid.elastic.cheapest`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nas.core.architecture import Architecture
from search_spaces.hybrid.elastic import cheapest, reachable
from search_spaces.hybrid.model import block_module, make_stem
from search_spaces.hybrid.plan import LETTERS, BlockPlan, stem_stride

if TYPE_CHECKING:
    from search_spaces.hybrid.space import HybridSpace

#: The part that prices the head (per final width and resolution).
HEAD = "head"


def block_key(plan: BlockPlan) -> str:
    """A block's context: input channels, down-samplings before it, its token (module docstring)."""
    downs = plan.stage - int(plan.stride == 2)
    return f"in{plan.c_in}s{downs}:{'v' if plan.stride == 2 else ''}{LETTERS[plan.op]}{plan.width}"


def head_key(stage: int, channels: int) -> str:
    return f"in{channels}s{stage}"


def latency_keys(space: HybridSpace, arch: Architecture) -> dict[str, str]:
    """``{block: its context key, "head": the head's}`` for the network ``arch`` builds."""
    plans = space.plan(arch)
    keys = {plan.name: block_key(plan) for plan in plans}
    keys[HEAD] = head_key(plans[-1].stage, plans[-1].c_out)
    return keys


def latency_cheapest(space: HybridSpace, cost: Callable[[str, str], float]) -> tuple[Architecture, float]:
    """The architecture whose parts' ``cost(part, key)`` sum least (:func:`~.elastic.cheapest`)."""
    return cheapest(
        space,
        lambda plan: cost(plan.name, block_key(plan)),
        lambda stage, c: cost(HEAD, head_key(stage, c)),
    )


class _Head(nn.Module):
    """Global pool, LayerNorm and classifier: :class:`~search_spaces.hybrid.model.HybridNetwork`'s tail."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(channels)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.norm(torch.flatten(self.pool(x), 1)))


def _size(size: int, downs: int) -> int:
    """Spatial size after ``downs`` stride-2 3x3 convs (padding 1)."""
    for _ in range(downs):
        size = (size - 1) // 2 + 1
    return size


def latency_parts(
    space: HybridSpace, *, num_classes: int, input_shape: tuple[int, int, int]
) -> list[tuple[str | None, Any, nn.Module | None, tuple[int, ...]]]:
    """``(block, context key, module, input shape)`` per reachable context, the stem and the heads."""
    channels, height, width = input_shape
    stride = stem_stride(input_shape)
    height, width = height // stride, width // stride
    parts: list[tuple[str | None, Any, nn.Module | None, tuple[int, ...]]] = [
        (None, "stem", make_stem(input_shape, space.base_width), tuple(input_shape))
    ]
    plans = reachable(space)
    for block_plans in plans:
        for plan in block_plans:
            downs = plan.stage - int(plan.stride == 2)
            shape = (plan.c_in, _size(height, downs), _size(width, downs))
            parts.append((plan.name, block_key(plan), block_module(plan), shape))
    for stage, c in sorted({(plan.stage, plan.c_out) for plan in plans[-1]}):
        shape = (c, _size(height, stage), _size(width, stage))
        parts.append((HEAD, head_key(stage, c), _Head(c, num_classes), shape))
    return parts


__all__ = ["HEAD", "block_key", "head_key", "latency_cheapest", "latency_keys", "latency_parts"]
