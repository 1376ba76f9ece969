"""NAS-Bench-201's cell vocabulary: ops, nodes and edges (torch-free).

Shared by the space (:mod:`.space`), the network (:mod:`.model`) and the supernet.
"""

from __future__ import annotations

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The built-in ops without weights (a plugin op says so when it registers, see
#: :mod:`search_spaces.op_registry`).
PARAMETER_FREE: frozenset[str] = frozenset({"none", "skip_connect", "avg_pool_3x3"})
NUM_NODES = 4
#: Edges (target, source) in the order of the benchmark's string form.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, NUM_NODES) for j in range(i))
EDGE_NAMES: tuple[str, ...] = tuple(f"{i}<-{j}" for i, j in EDGES)


__all__ = ["EDGES", "EDGE_NAMES", "NUM_NODES", "OPS", "PARAMETER_FREE"]
