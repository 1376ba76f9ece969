"""Weisfeiler-Lehman sub-tree features of an architecture graph (NAS-BOWL, Ru et al. 2021).

NAS-BOWL compares architectures by the labelled sub-trees their graphs share:
iteration 0 counts the operations, iteration 1 each operation together with
the operations feeding it, iteration 2 two levels back, and so on. A feature
is a readable pattern such as ``nor_conv_3x3(skip_connect(input))``, which is
what makes the kernel interpretable: a model linear in these counts can say
which sub-graphs make a cell good.

It lives in the kernel (stdlib + numpy + networkx) because both a predictor
(``predictors``) and a strategy (``nas.strategies``) use it, and those peers
may not import each other.

Graphs come from ``space.to_graph``. Cell spaces (``nb201``, ``darts``) carry
the operation on the *edges*; :func:`op_graph` turns every such edge into a
node labelled by its operation (``none`` edges are absent connections and are
dropped) and contracts the cell's intermediate sum nodes, so operations feed
operations directly as in NAS-BOWL's node-labelled cells. Chain spaces
(``fbnet``, ``hybrid``) already carry ``op`` on their nodes.

Labels are compared as strings: a node's label at iteration k is its own
label followed by the sorted iteration-(k-1) labels of its predecessors in
parentheses (data flows along edges, so a node is described by what feeds
it), kept uncompressed so every feature names its sub-tree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError, ConfigError
from nas.core.graph_stats import graph_statistics
from nas.core.space import SearchSpace

#: NAS-BOWL's default number of WL iterations.
DEFAULT_ITERATIONS = 2
#: An edge with this op is no connection at all.
NO_EDGE = "none"
#: Feature: (iteration, sub-tree label).
Feature = tuple[int, str]

_CACHE_LIMIT = 100_000


def check_iterations(value: object) -> int:
    """WL iterations: an integer >= 0 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"WL iterations={value!r} is not allowed; expected an integer >= 0")
    return value


def _node_label(graph: nx.DiGraph, node: object) -> str:
    data = graph.nodes[node]
    return str(data.get("op", data.get("kind", "node")))


def op_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """The node-labelled view WL runs on: every node has a ``label``.

    If any edge carries an ``op``, edges become operation nodes: sources and
    sinks of the cell keep their own node (labelled by ``op`` or ``kind``),
    other nodes are contracted so that an operation on ``u -> v`` feeds every
    operation on ``v -> w``. Otherwise nodes keep their ``op`` (or ``kind``).
    ``operation`` marks the nodes that compute (an ``op``, not a ``kind``):
    the depth in :func:`op_graph_statistics` counts only those.
    """
    if not isinstance(graph, nx.DiGraph) or graph.number_of_nodes() == 0:
        raise ArchitectureError(
            "the WL kernel needs the architecture's graph, but the space's to_graph returned "
            f"{'an empty graph' if isinstance(graph, nx.DiGraph) else type(graph).__name__}; "
            "it works on spaces whose to_graph labels nodes or edges with 'op'"
        )
    if not any("op" in data for _, _, data in graph.edges(data=True)):
        result = nx.DiGraph()
        result.add_nodes_from(
            (n, {"label": _node_label(graph, n), "operation": "op" in graph.nodes[n]}) for n in graph.nodes
        )
        result.add_edges_from(graph.edges)
        return result
    fed, feeding = {v for _, v in graph.edges}, {u for u, _ in graph.edges}
    kept = {n for n in graph.nodes if n not in fed or n not in feeding}
    result = nx.DiGraph()
    result.add_nodes_from(
        (("node", n), {"label": _node_label(graph, n), "operation": "op" in graph.nodes[n]}) for n in kept
    )
    live = [(u, v, str(d.get("op", "edge"))) for u, v, d in graph.edges(data=True) if d.get("op") != NO_EDGE]
    for u, v, op in live:
        result.add_node(("edge", u, v), label=op, operation=True)
        if u in kept:
            result.add_edge(("node", u), ("edge", u, v))
        if v in kept:
            result.add_edge(("edge", u, v), ("node", v))
    for u, v, _ in live:  # an operation into a contracted node feeds each operation out of it
        if v in kept:
            continue
        for _, w, data in graph.out_edges(v, data=True):
            if data.get("op") != NO_EDGE:
                result.add_edge(("edge", u, v), ("edge", v, w))
    return _live(result, [("node", n) for n in kept])


def _live(graph: nx.DiGraph, ends: list[object]) -> nx.DiGraph:
    """Only the operations on some path from a cell input to a cell output.

    An operation fed by nothing computes zeros and one that reaches no output
    is never used: both are dead code, and counting them would make a cell
    look like the cells that really compute with them.
    """
    sources = [n for n in ends if graph.in_degree(n) == 0 and graph.out_degree(n) > 0]
    sinks = [n for n in ends if graph.out_degree(n) == 0 and graph.in_degree(n) > 0]
    reached = set(sources).union(*(nx.descendants(graph, n) for n in sources))
    reaching = set(sinks).union(*(nx.ancestors(graph, n) for n in sinks))
    dead = [n for n in graph.nodes if n not in ends and not (n in reached and n in reaching)]
    graph.remove_nodes_from(dead)
    return graph


def wl_features(graph: nx.DiGraph, iterations: int = DEFAULT_ITERATIONS) -> Counter[Feature]:
    """Counts of every (iteration, sub-tree label) of ``graph`` after :func:`op_graph`."""
    return _subtree_counts(op_graph(graph), check_iterations(iterations))


def op_graph_statistics(labelled: nx.DiGraph) -> np.ndarray:
    """:func:`~nas.core.graph_stats.graph_statistics` of an :func:`op_graph` (depth in operations)."""
    nodes = list(labelled.nodes)
    position = {node: k for k, node in enumerate(nodes)}
    adjacency = np.zeros((len(nodes), len(nodes)))
    for u, v in labelled.edges:
        adjacency[position[u], position[v]] = 1.0
    compute = np.array([bool(labelled.nodes[n].get("operation")) for n in nodes], dtype=np.float64)
    return graph_statistics(adjacency, compute)


def _subtree_counts(labelled: nx.DiGraph, iterations: int) -> Counter[Feature]:
    own = {n: labelled.nodes[n]["label"] for n in labelled.nodes}
    predecessors = {n: list(labelled.predecessors(n)) for n in labelled.nodes}
    labels = dict(own)
    counts: Counter[Feature] = Counter((0, label) for label in labels.values())
    for step in range(1, iterations + 1):
        # The depth-k unfolding tree: equivalent to WL's relabelling (a node's previous label is
        # its own op plus its predecessors' labels two steps back), and readable as it stands.
        labels = {
            n: f"{own[n]}({','.join(sorted(labels[p] for p in predecessors[n]))})"
            if predecessors[n]
            else own[n]
            for n in labels
        }
        counts.update((step, label) for label in labels.values())
    return counts


def feature_name(feature: Feature) -> str:
    """``'h1:nor_conv_3x3(input)'``: the form shown to users and stored in explanations."""
    return f"h{feature[0]}:{feature[1]}"


class WLFeaturizer:
    """WL features and graph statistics of a space's architectures, memoised.

    Searches score the same cells again and again; both descriptions come
    from one :func:`op_graph` per architecture.
    """

    def __init__(self, space: SearchSpace, iterations: int = DEFAULT_ITERATIONS) -> None:
        self.space = space
        self.iterations = check_iterations(iterations)
        self._cache: dict[Architecture, tuple[Counter[Feature], np.ndarray]] = {}

    def _describe(self, arch: Architecture) -> tuple[Counter[Feature], np.ndarray]:
        found = self._cache.get(arch)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            labelled = op_graph(self.space.to_graph(arch))
            found = self._cache[arch] = (
                _subtree_counts(labelled, self.iterations),
                op_graph_statistics(labelled),
            )
        return found

    def __call__(self, arch: Architecture) -> Counter[Feature]:
        return self._describe(arch)[0]

    def many(self, archs: Iterable[Architecture]) -> list[Counter[Feature]]:
        return [self(arch) for arch in archs]

    def statistics(self, archs: Iterable[Architecture]) -> np.ndarray:
        """One row of :func:`op_graph_statistics` per architecture."""
        return np.array([self._describe(arch)[1] for arch in archs])


def vocabulary(
    features: Iterable[Mapping[Feature, int]], max_iteration: int | None = None
) -> dict[Feature, int]:
    """Column index of every feature seen (sorted, so the order does not depend on the input order)."""
    seen = {f for counts in features for f in counts if max_iteration is None or f[0] <= max_iteration}
    return {f: i for i, f in enumerate(sorted(seen))}


def count_matrix(
    features: Sequence[Mapping[Feature, int]],
    columns: Mapping[Feature, int],
    max_iteration: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Counts on ``columns`` (features outside them are dropped) and each row's full norm.

    The norm covers every feature of the row up to ``max_iteration``, also
    those outside ``columns``: a normalised WL kernel divides by the length of
    the whole feature vector, and a candidate's unseen sub-trees make it less
    similar to the training cells, not more.
    """
    matrix = np.zeros((len(features), len(columns)))
    norms = np.zeros(len(features))
    for row, counts in enumerate(features):
        total = 0.0
        for feature, count in counts.items():
            if max_iteration is not None and feature[0] > max_iteration:
                continue
            total += count * count
            column = columns.get(feature)
            if column is not None:
                matrix[row, column] = count
        norms[row] = np.sqrt(total)
    return matrix, norms
