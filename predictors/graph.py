"""Architectures as operation-labelled computational graphs, and statistics of those graphs.

Graph predictors (the Neural Predictor's GCN) and the GENNAPE-style graph
features need one form for every space: nodes labelled by what they compute,
edges for data flow. Spaces describe themselves in two ways
(:meth:`~nas.core.SearchSpace.to_graph`): cell spaces (``nb201``, ``darts``)
put the operation on the *edge*, chain spaces (``fbnet``, ``hybrid``) on the
*node*. :func:`op_graph` turns both into operations on nodes: an edge
``u -op-> v`` becomes ``u -> [op] -> v`` (the subdivision NAS-Bench-201 cells
get when they are fed to NAS-Bench-101 predictors), with the cell's own nodes
labelled by their ``kind`` (input, intermediate, output).

Two simplifications make the graph the computation rather than the genotype:
zero-op edges (:meth:`~nas.core.SearchSpace.zero_ops`, ``none`` in ``nb201``)
are dropped, since they carry nothing, and nodes on no
input-to-output path are pruned, since they cannot change the output. Two
genotypes that differ only in dead operations then give the same graph, which
is what a predictor of accuracy should see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from nas.core import Architecture, SearchSpace
from nas.core.graph_stats import STATISTICS, graph_statistics

#: The label of a node whose label the vocabulary does not know.
OTHER = "other"


@dataclass(frozen=True)
class OpGraph:
    """Node labels and a 0/1 adjacency matrix (``adjacency[i, j] = 1``: an edge ``i -> j``)."""

    ops: tuple[str, ...]
    adjacency: np.ndarray

    def __post_init__(self) -> None:
        if self.adjacency.shape != (len(self.ops), len(self.ops)):
            raise ValueError(f"adjacency of shape {self.adjacency.shape} for {len(self.ops)} nodes")

    def permuted(self, order: Sequence[int]) -> OpGraph:
        """The same graph with node ``order[k]`` renumbered ``k`` (for invariance checks)."""
        index = np.asarray(order)
        return OpGraph(tuple(self.ops[i] for i in index), self.adjacency[np.ix_(index, index)])


def op_labels(space: SearchSpace) -> list[str]:
    """The operation names a space can choose (string choice values), the space's zero ops excluded."""
    zero = space.zero_ops()
    labels: list[str] = []
    for values in space.choices().values():
        for value in values:
            if isinstance(value, str) and value not in zero and value not in labels:
                labels.append(value)
    return labels


def vocabulary(space: SearchSpace) -> tuple[str, ...]:
    """Every node label of ``space``'s op graphs: operations, structural labels, then ``other``.

    Structural labels (``input``, ``stem``, ``output``...) are read off one
    unpruned graph; they do not depend on the architecture in the built-in spaces.
    """
    ops = op_labels(space)
    structural = sorted(set(op_graph(space, space.sample(0), prune=False).ops) - set(ops) - {OTHER})
    return (*ops, *structural, OTHER)


def op_graph(space: SearchSpace, arch: Architecture, *, prune: bool = True) -> OpGraph:
    """``arch`` as an operation-on-node graph, nodes in a deterministic topological order."""
    source = space.to_graph(arch)
    ops = set(op_labels(space))
    zero = space.zero_ops()
    graph = nx.DiGraph()
    for node, data in source.nodes(data=True):
        graph.add_node(("n", node), op=str(data.get("op", data.get("kind", "node"))))
    for u, v, data in source.edges(data=True):
        op = data.get("op")
        if op in zero:
            continue
        if op in ops:  # an operation on the edge becomes a node of its own
            middle = ("e", u, v)
            graph.add_node(middle, op=str(op))
            graph.add_edge(("n", u), middle)
            graph.add_edge(middle, ("n", v))
        else:  # a plain connection (no op, or e.g. darts' concat into the cell output)
            graph.add_edge(("n", u), ("n", v))
    if prune:
        graph = _live(graph, source)
    order = list(nx.lexicographical_topological_sort(graph, key=repr))
    position = {node: k for k, node in enumerate(order)}
    adjacency = np.zeros((len(order), len(order)), dtype=np.float64)
    for u, v in graph.edges:
        adjacency[position[u], position[v]] = 1.0
    return OpGraph(tuple(graph.nodes[n]["op"] for n in order), adjacency)


def _live(graph: nx.DiGraph, source: nx.DiGraph) -> nx.DiGraph:
    """``graph`` without nodes on no source-to-sink path of the original graph (sources and sinks stay)."""
    starts = [("n", n) for n, d in source.in_degree() if d == 0]
    ends = [("n", n) for n, d in source.out_degree() if d == 0]
    reached: set = set(starts)
    for start in starts:
        reached |= nx.descendants(graph, start)
    reaching: set = set(ends)
    for end in ends:
        reaching |= nx.ancestors(graph, end)
    keep = (reached & reaching) | set(starts) | set(ends)
    return graph.subgraph(keep).copy()


# -- GENNAPE-style graph features --------------------------------------------------------------


def graph_feature_names(labels: Sequence[str]) -> list[str]:
    """Names of :func:`graph_features`' columns, for the vocabulary ``labels``."""
    return [*(f"count[{label}]" for label in labels), *STATISTICS]


def graph_features(graph: OpGraph, labels: Sequence[str], op_set: Sequence[str]) -> np.ndarray:
    """A fixed-length description of a computational graph, as GENNAPE's hand-made features.

    Per-label node counts, then the kernel's :func:`~nas.core.graph_stats.graph_statistics`
    (size, path count and depth in operations of ``op_set``, degrees).
    """
    index = {label: k for k, label in enumerate(labels)}
    counts = np.zeros(len(labels))
    for op in graph.ops:
        counts[index.get(op, index.get(OTHER, len(labels) - 1))] += 1
    compute = np.array([op in set(op_set) for op in graph.ops], dtype=np.float64)
    return np.concatenate([counts, graph_statistics(graph.adjacency, compute)])


class GraphFeaturizer:
    """``arch -> graph_features(op_graph(arch))`` for one space (vocabulary fixed at construction)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.labels = vocabulary(space)
        self.op_set = op_labels(space)
        self.names = graph_feature_names(self.labels)

    def __call__(self, arch: Architecture) -> np.ndarray:
        return graph_features(op_graph(self.space, arch), self.labels, self.op_set)
