"""GENNAPE-style statistics of a computational graph: size, depth and width of its data flow.

Hand-made graph features (GENNAPE, Mills et al. 2023) tell a predictor what
a sub-tree count or an encoding bit does not say directly: how deep the
cell's computation is (operations on its input-to-output paths), how many
paths there are and how much is summed where. They lifted the boosted trees
and the GCN (``predictors.graph``) and the WL-kernel GP (``nas.core.wl_gp``)
on NAS-Bench-201, so the statistics live in the kernel, where both can use
them (numpy only). Node labels are the caller's business: it says which
nodes compute.
"""

from __future__ import annotations

import numpy as np

#: Names of :func:`graph_statistics`' columns.
STATISTICS = (
    "nodes",
    "edges",
    "paths_log1p",
    "path_ops_min",
    "path_ops_mean",
    "path_ops_max",
    "in_degree_mean",
    "in_degree_max",
    "out_degree_max",
)


def graph_statistics(adjacency: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """The :data:`STATISTICS` of the DAG ``adjacency`` (``adjacency[i, j] = 1``: an edge ``i -> j``).

    Node and edge counts; over all source-to-sink paths their number (log1p)
    and the min, mean and max number of nodes with ``compute`` set on them
    (depth: structural nodes do not compute); mean and max in-degree (how
    much is summed or concatenated) and max out-degree (fan-out). Paths are
    counted by dynamic programming, never enumerated, and no statistic
    depends on the node numbering.
    """
    a = np.asarray(adjacency, dtype=np.float64)
    n = len(a)
    compute = np.asarray(compute, dtype=np.float64)
    in_degree, out_degree = a.sum(axis=0), a.sum(axis=1)
    # Per node: number of paths from any source ending here, their summed, min and max op counts.
    count = np.zeros(n)
    total = np.zeros(n)
    low = np.full(n, np.inf)
    high = np.full(n, -np.inf)
    for j in topological_order(a):
        parents = np.flatnonzero(a[:, j])
        if in_degree[j] == 0:
            count[j], total[j], low[j], high[j] = 1.0, compute[j], compute[j], compute[j]
            continue
        count[j] = count[parents].sum()
        total[j] = total[parents].sum() + compute[j] * count[j]
        low[j] = low[parents].min() + compute[j]
        high[j] = high[parents].max() + compute[j]
    sinks = np.flatnonzero((out_degree == 0) & (in_degree > 0))
    paths = count[sinks].sum()
    if paths > 0:
        path_stats = [np.log1p(paths), low[sinks].min(), total[sinks].sum() / paths, high[sinks].max()]
    else:  # the output is cut off from the input: no path at all
        path_stats = [0.0, 0.0, 0.0, 0.0]
    has_inputs = in_degree > 0
    degree_stats = [
        float(in_degree[has_inputs].mean()) if has_inputs.any() else 0.0,
        float(in_degree.max(initial=0.0)),
        float(out_degree.max(initial=0.0)),
    ]
    return np.array([n, a.sum(), *path_stats, *degree_stats])


def topological_order(adjacency: np.ndarray) -> list[int]:
    """Node indices in a topological order of the DAG ``adjacency`` (Kahn's algorithm)."""
    remaining = adjacency.sum(axis=0)
    ready = [j for j in range(len(remaining)) if remaining[j] == 0]
    order: list[int] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for child in np.flatnonzero(adjacency[node]):
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(int(child))
    if len(order) != len(remaining):
        raise ValueError("an op graph must be acyclic")
    return order
