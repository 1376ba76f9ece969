"""NAS-Bench-201: the space (:mod:`.space`), its network (:mod:`.model`), supernet and one-shot view."""

from __future__ import annotations

from search_spaces.nb201.model import Cell, Nb201Network, ResidualReduction, op_module
from search_spaces.nb201.space import EDGE_NAMES, EDGES, NUM_NODES, OPS, PATHS, Nb201Space

__all__ = [
    "EDGES",
    "EDGE_NAMES",
    "NUM_NODES",
    "OPS",
    "PATHS",
    "Cell",
    "Nb201Network",
    "Nb201Space",
    "ResidualReduction",
    "op_module",
]
