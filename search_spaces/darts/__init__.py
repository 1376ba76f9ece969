"""DARTS' cell space: genotype (:mod:`.genotype`), space, network (:mod:`.model`), supernet, one-shot view."""

from __future__ import annotations

from search_spaces.darts.genotype import (
    CELL_TYPES,
    COMPACT_OPS,
    CONCAT,
    NODES,
    OPS,
    Genotype,
    decision_name,
)
from search_spaces.darts.model import (
    IMAGENET_STEM_MIN_SIZE,
    Cell,
    DartsNetwork,
    DilConv,
    FactorizedReduce,
    SepConv,
    Zero,
    make_op,
)
from search_spaces.darts.space import PATH_ENCODING_SIZE, DartsSpace

__all__ = [
    "CELL_TYPES",
    "COMPACT_OPS",
    "CONCAT",
    "IMAGENET_STEM_MIN_SIZE",
    "NODES",
    "OPS",
    "PATH_ENCODING_SIZE",
    "Cell",
    "DartsNetwork",
    "DartsSpace",
    "DilConv",
    "FactorizedReduce",
    "Genotype",
    "SepConv",
    "Zero",
    "decision_name",
    "make_op",
]
