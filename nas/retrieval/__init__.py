"""Architecture retrieval: stored architectures closest to a given one by a graph embedding.

Orchestration: it composes a space plugin (its ``to_graph``, through the
registry) with the store's architecture catalogue, which neither may do
alone. :func:`find_similar` is what ``nas similar`` and the dashboard's
"similar architectures" panel call; :mod:`nas.retrieval.index` is the WL
feature index behind it.
"""

from __future__ import annotations

from nas.retrieval.similar import DEFAULT_CACHE, MAX_K, IndexCache, Match, find_similar, match_to_dict

__all__ = ["DEFAULT_CACHE", "MAX_K", "IndexCache", "Match", "find_similar", "match_to_dict"]
