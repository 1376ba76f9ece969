"""NAS-Bench-201: the space (:mod:`.space`), network (:mod:`.model`), supernet and one-shot view.

Importing the package imports no torch; the torch modules are
:mod:`search_spaces.nb201.model` and :mod:`search_spaces.nb201.supernet`.
"""

from __future__ import annotations

from search_spaces.nb201.cell import EDGE_NAMES, EDGES, NUM_NODES, OPS
from search_spaces.nb201.space import PATHS, Nb201Space

__all__ = ["EDGES", "EDGE_NAMES", "NUM_NODES", "OPS", "PATHS", "Nb201Space"]
