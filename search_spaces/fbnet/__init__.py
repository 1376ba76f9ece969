"""FBNet's layer-wise space: space, network (:mod:`.model`), single-path supernet, one-shot view."""

from __future__ import annotations

from search_spaces.fbnet.model import FBNetNetwork, block_module
from search_spaces.fbnet.space import (
    BLOCKS,
    LAYER_NAMES,
    MBCONV,
    SKIP,
    FBNetSpace,
    LayerPlan,
    layer_plan,
    round_channels,
)

__all__ = [
    "BLOCKS",
    "LAYER_NAMES",
    "MBCONV",
    "SKIP",
    "FBNetNetwork",
    "FBNetSpace",
    "LayerPlan",
    "block_module",
    "layer_plan",
    "round_channels",
]
