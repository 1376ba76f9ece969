"""DARTS' cell space: vocabulary (:mod:`.genotype`), space, network (:mod:`.model`), supernet, one-shot view.

Importing the package imports no torch; the torch modules are
:mod:`search_spaces.darts.model` and :mod:`search_spaces.darts.supernet`.
"""

from __future__ import annotations

from search_spaces.darts.genotype import CELL_TYPES, COMPACT_OPS, CONCAT, NODES, OPS, Genotype, decision_name
from search_spaces.darts.space import PATH_ENCODING_SIZE, DartsSpace

__all__ = ["CELL_TYPES", "COMPACT_OPS", "CONCAT", "NODES", "OPS", "PATH_ENCODING_SIZE", "DartsSpace"]
__all__ += ["Genotype", "decision_name"]
