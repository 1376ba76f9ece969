"""FBNet's layer-wise space: space, network (:mod:`.model`), single-path supernet, one-shot view.

Importing the package imports no torch; the torch modules are
:mod:`search_spaces.fbnet.model` and :mod:`search_spaces.fbnet.supernet`.
"""

from __future__ import annotations

from search_spaces.fbnet.plan import BLOCKS, LAYER_NAMES, LayerPlan, layer_plan, round_channels
from search_spaces.fbnet.space import FBNetSpace

__all__ = ["BLOCKS", "LAYER_NAMES", "FBNetSpace", "LayerPlan", "layer_plan", "round_channels"]
