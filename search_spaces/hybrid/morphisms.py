"""The hybrid space's morphisms (torch-free): which width edits keep the parent's function.

The chain's depth is a space option, not a decision, and no decision adds a
branch, so the hybrid genotype's function-preserving edits are widenings:
``b{i}.width`` 1 -> 2 doubles block ``i``'s channels, every channel of its
residual stream replicated once (Net2WiderNet). The weights are mapped in
:mod:`search_spaces.hybrid.inherit`. A widening qualifies when

* the block's transition and the next block's transition (conv + BN where a
  block strides or changes width) exist in the child wherever they exist in
  the parent: a trained transition cannot vanish without changing the function
  (a missing one is inserted as an identity, which is exact);
* for an attention block, the heads double (same head width) or stay (head
  width doubles): then every replicated head computes the parent's attention.
"""

from __future__ import annotations

from typing import Any

from nas.core.architecture import Architecture, Scalar
from nas.core.morphism import MorphismView
from search_spaces.hybrid.plan import BlockPlan, num_heads

WIDEN = "widen"


def has_transition(c_in: int, c_out: int, stride: int) -> bool:
    """Whether a block with this shape starts with a transition (see ``model.block_module``)."""
    return stride == 2 or c_in != c_out


def head_layout(channels: int) -> str | None:
    """How attention heads follow a doubling of ``channels``: ``"heads"`` double, ``"width"`` of
    each head doubles, or ``None`` (another head count: no exact mapping)."""
    before, after = num_heads(channels), num_heads(2 * channels)
    if after == 2 * before:
        return "heads"
    if after == before:
        return "width"
    return None


def widenable(plans: tuple[BlockPlan, ...], index: int) -> bool:
    """Whether doubling block ``index``'s width keeps the network's function (module docstring)."""
    plan = plans[index]
    if plan.width != 1:
        return False
    wide = 2 * plan.c_out
    if has_transition(plan.c_in, plan.c_out, plan.stride) and not has_transition(
        plan.c_in, wide, plan.stride
    ):
        return False
    if index + 1 < len(plans):
        after = plans[index + 1]
        if has_transition(plan.c_out, after.c_out, after.stride) and not has_transition(
            wide, after.c_out, after.stride
        ):
            return False
    return plan.op != "attn" or head_layout(plan.c_out) is not None


def edits(space: Any, parent: Architecture) -> list[tuple[str, str, Scalar]]:
    plans = space.plan(parent)
    return [(WIDEN, f"{p.name}.width", 2) for i, p in enumerate(plans) if widenable(plans, i)]


VIEW = MorphismView(kinds=(WIDEN,), edits=edits, transfer="search_spaces.hybrid.inherit:transfer")

__all__ = ["VIEW", "WIDEN", "has_transition", "head_layout", "widenable"]
