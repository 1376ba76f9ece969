"""The hybrid CNN-transformer space: space, network (:mod:`.model`), single-path supernet, one-shot view."""

from __future__ import annotations

from search_spaces.hybrid.model import AttentionBlock, ConvBlock, HybridNetwork, block_module, make_stem
from search_spaces.hybrid.space import DOWNS, TYPES, WIDTHS, BlockPlan, HybridSpace, num_heads, stem_stride

__all__ = [
    "DOWNS",
    "TYPES",
    "WIDTHS",
    "AttentionBlock",
    "BlockPlan",
    "ConvBlock",
    "HybridNetwork",
    "HybridSpace",
    "block_module",
    "make_stem",
    "num_heads",
    "stem_stride",
]
