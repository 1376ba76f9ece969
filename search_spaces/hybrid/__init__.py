"""The hybrid CNN-transformer space: space, network (:mod:`.model`), single-path supernet, one-shot view.

Importing the package imports no torch; the torch modules are
:mod:`search_spaces.hybrid.model` and :mod:`search_spaces.hybrid.supernet`.
"""

from __future__ import annotations

from search_spaces.hybrid.plan import BlockPlan, num_heads, stem_stride
from search_spaces.hybrid.space import HybridSpace

__all__ = ["BlockPlan", "HybridSpace", "num_heads", "stem_stride"]
