"""FBNet's morphisms (torch-free): which block changes keep the parent's function.

Every layer is one decision, so a morphism changes one layer's block:

* ``deepen``: ``skip`` on a shape-keeping layer (the identity) becomes any
  MBConv block, whose residual branch starts at zero (its last BatchNorm's
  scale and shift are 0): EAS's identity-layer insertion;
* ``widen``: the expansion grows by a whole factor (e1 -> e3, e1 -> e6,
  e3 -> e6): the middle channels are replicated (Net2WiderNet);
* ``kernel``: the depthwise kernel grows from 3x3 to 5x5, zero-padded;
* ``ungroup``: a grouped block (``_g2``: two groups and a channel shuffle, i.e.
  two parallel paths) becomes the dense block: the grouped 1x1 convs become
  dense ones with zero cross-group weights and the shuffle moves into the
  order of the expansion's output channels.

A change may combine them (``k3_e1_g2`` -> ``k5_e6``: ``ungroup+widen+kernel``).
The weights are mapped in :mod:`search_spaces.fbnet.inherit`.
"""

from __future__ import annotations

from typing import Any

from nas.core.architecture import Architecture, Scalar
from nas.core.morphism import MorphismView
from search_spaces.fbnet.plan import LAYER_NAMES, MBCONV, SKIP

DEEPEN, WIDEN, KERNEL, UNGROUP = "deepen", "widen", "kernel", "ungroup"


def growth(parent: str, child: str) -> str | None:
    """The kind of the MBConv change ``parent`` -> ``child`` if it keeps the function, else None."""
    (k, e, g), (k2, e2, g2) = MBCONV[parent], MBCONV[child]
    if parent == child or k2 < k or e2 < e or e2 % e or g2 > g:
        return None
    kinds = [UNGROUP] * (g2 < g) + [WIDEN] * (e2 > e) + [KERNEL] * (k2 > k)
    return "+".join(kinds)


def edits(space: Any, parent: Architecture) -> list[tuple[str, str, Scalar]]:
    result: list[tuple[str, str, Scalar]] = []
    for name, plan in zip(LAYER_NAMES, space.plans, strict=True):
        block = str(parent[name])
        if block == SKIP:
            if plan.keeps_shape:
                result += [(DEEPEN, name, other) for other in MBCONV]
            continue
        result += [(kind, name, other) for other in MBCONV if (kind := growth(block, other))]
    return result


VIEW = MorphismView(
    kinds=(DEEPEN, WIDEN, KERNEL, UNGROUP), edits=edits, transfer="search_spaces.fbnet.inherit:transfer"
)

__all__ = ["DEEPEN", "KERNEL", "UNGROUP", "VIEW", "WIDEN", "growth"]
