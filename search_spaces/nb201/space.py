"""NAS-Bench-201's space: decisions, string and graph forms, canonical key, encodings.

The network lives in :mod:`search_spaces.nb201.model`, the supernet in
:mod:`search_spaces.nb201.supernet` and the one-shot view in
:mod:`search_spaces.nb201.oneshot`.

NAS-Bench-201: a 4-node cell inside the benchmark's fixed macro skeleton.

The cell has nodes 0 (input) to 3 (output); every node ``i`` sums one op
applied to each earlier node ``j``, so there are six edges, each one of
``none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``: 5**6 =
15,625 cells. The network is the benchmark's ``TinyNetwork``: a 3x3 conv stem,
three stages of ``N`` cells at C, 2C, 4C channels joined by residual reduction
blocks, BN-ReLU, global pooling and a linear classifier. Parameter counts match
the benchmark's to the last parameter (it counts the classifier too).

Decisions are named ``"i<-j"`` for the edge from node j into node i, in the
order of the benchmark's string form
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np

from nas.core import (
    SPACES,
    Architecture,
    ArchitectureError,
    ConfigError,
    Scalar,
    UnknownOpError,
    positive_int,
)
from nas.core.oneshot import OneShotView
from nas.core.space import MAX_DEPTH, MAX_WIDTH
from search_spaces.base import TorchSpace
from search_spaces.nb201.cell import EDGE_NAMES, EDGES, NUM_NODES, OPS, PARAMETER_FREE
from search_spaces.nb201.oneshot import VIEW
from search_spaces.op_registry import CELL_OPS, ops_for

if TYPE_CHECKING:
    from torch import nn

#: Input-to-output paths of the cell as edge sequences (for the path encoding).
PATHS: tuple[tuple[str, ...], ...] = (
    ("3<-0",),
    ("1<-0", "3<-1"),
    ("2<-0", "3<-2"),
    ("1<-0", "2<-1", "3<-2"),
)
_NODE_RE = re.compile(r"^\|(?:[^|~]+~\d+\|)+$")


@SPACES.register("nb201")
class Nb201Space(TorchSpace):
    """NAS-Bench-201 cell in the benchmark's macro skeleton.

    Options: ``channels`` (C, default 16), ``cells`` (N per stage, default 5),
    ``extra_ops`` (registered plugin ops added to every edge's choices, see
    :mod:`search_spaces.op_registry`) and ``exclude_ops`` (ops taken out of
    every edge's choices, e.g. the ones ``nas audit-space`` flags). Both
    default to none, and a space without them is the benchmark's: its options,
    encodings and canonical keys are unchanged.
    """

    name = "nb201"
    has_path_encoding = True
    #: A cell supernet steered by one alpha matrix; ranked against the NAS-Bench-201 table.
    oneshot_view: ClassVar[OneShotView] = VIEW

    def __init__(
        self,
        *,
        channels: int = 16,
        cells: int = 5,
        extra_ops: Sequence[str] = (),
        exclude_ops: Sequence[str] = (),
    ) -> None:
        self.channels = positive_int(self.name, "channels", channels, maximum=MAX_WIDTH)
        self.cells = positive_int(self.name, "cells", cells, maximum=MAX_DEPTH)
        self.extra_ops = _op_names("extra_ops", extra_ops)
        for op in self.extra_ops:
            if op in OPS or op not in ops_for(self.name):
                raise ConfigError(
                    f"nb201: extra_ops names {op!r}, which is not a registered plugin op for nb201; "
                    f"allowed: {ops_for(self.name)} (built-in ops are always there: {list(OPS)})"
                )
        self.exclude_ops = _op_names("exclude_ops", exclude_ops)
        available = OPS + self.extra_ops
        for op in self.exclude_ops:
            if op not in available:
                raise ConfigError(
                    f"nb201: exclude_ops names {op!r}, which is not an op of this space; allowed: {list(available)}"
                )
        #: The candidate ops of every edge, in the benchmark's order, plugin ops last.
        self.ops: tuple[str, ...] = tuple(op for op in available if op not in self.exclude_ops)
        if not self.ops:
            raise ConfigError(f"nb201: exclude_ops={list(self.exclude_ops)} leaves no op on an edge")
        #: Ops that can lie on a live path; ``none`` cuts a path so it has no slot.
        self._path_ops = tuple(op for op in self.ops if op != "none")

    @property
    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"channels": self.channels, "cells": self.cells}
        # Only when set, so the benchmark space's stored options (and comparability) stay as they were.
        if self.extra_ops:
            options["extra_ops"] = list(self.extra_ops)
        if self.exclude_ops:
            options["exclude_ops"] = list(self.exclude_ops)
        return options

    def choices(self) -> dict[str, Sequence[Scalar]]:
        return {name: self.ops for name in EDGE_NAMES}

    def parameter_free_ops(self) -> frozenset[str]:
        """The ops without weights: the built-in ones and plugin ops registered as such."""
        plugin = {op for op in self.extra_ops if CELL_OPS.get(op).parameter_free}
        return frozenset(op for op in self.ops if op in PARAMETER_FREE or op in plugin)

    def zero_ops(self) -> frozenset[str]:
        """``none`` (the benchmark's Zero op), unless excluded."""
        return frozenset(op for op in self.ops if op == "none")

    # -- string form ------------------------------------------------------------------
    def parse(self, text: str) -> Architecture:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (whitespace around tokens ignored)."""
        if not isinstance(text, str):
            raise ArchitectureError(f"nb201 string form must be a str, got {type(text).__name__}")
        compact = re.sub(r"\s+", "", text)
        nodes = compact.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ArchitectureError(
                f"nb201 string {text!r} has {len(nodes)} node(s); expected {NUM_NODES - 1} joined by '+', "
                "e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'"
            )
        decisions: dict[str, str] = {}
        for i, node in enumerate(nodes, start=1):
            if not _NODE_RE.match(node):
                raise ArchitectureError(
                    f"nb201 node {i} {node!r} is malformed; expected '|op~input|...|' with integer inputs"
                )
            tokens = [t for t in node.split("|") if t]
            if len(tokens) != i:
                raise ArchitectureError(
                    f"nb201 node {i} has {len(tokens)} input(s) in {node!r}; expected {i}"
                )
            for token in tokens:
                op, source_text = token.split("~")
                source = int(source_text)
                if source >= i:
                    raise ArchitectureError(
                        f"nb201 node {i} takes input from node {source}: a cycle or forward edge; "
                        f"allowed inputs are 0..{i - 1}"
                    )
                if op not in self.ops:
                    raise UnknownOpError("nb201 op", op, self.ops)
                key = f"{i}<-{source}"
                if key in decisions:
                    raise ArchitectureError(f"nb201 node {i} takes input from node {source} twice")
                decisions[key] = op
        return self.make(decisions)

    def format(self, arch: Architecture) -> str:
        self.validate(arch)
        nodes = []
        for i in range(1, NUM_NODES):
            nodes.append("|" + "|".join(f"{arch[f'{i}<-{j}']}~{j}" for j in range(i)) + "|")
        return "+".join(nodes)

    # -- graph views ---------------------------------------------------------------------
    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        """Nodes 0..3 (``kind`` input/intermediate/output); edges j->i carry ``op`` (incl. ``none``)."""
        self.validate(arch)
        graph = nx.DiGraph(space=self.name, cell="cell")
        for node in range(NUM_NODES):
            kind = "input" if node == 0 else "output" if node == NUM_NODES - 1 else "intermediate"
            graph.add_node(node, kind=kind)
        for (i, j), name in zip(EDGES, EDGE_NAMES, strict=True):
            graph.add_edge(j, i, op=arch[name])
        return graph

    def from_graph(self, graph: nx.DiGraph) -> Architecture:
        """The inverse of :meth:`to_graph`, checking acyclicity and in-degrees."""
        if not isinstance(graph, nx.DiGraph):
            raise ArchitectureError(f"expected a networkx DiGraph, got {type(graph).__name__}")
        if not nx.is_directed_acyclic_graph(graph):
            cycle = nx.find_cycle(graph)
            raise ArchitectureError(f"nb201 cell graph has a cycle {cycle}; a cell must be a DAG")
        if set(graph.nodes) != set(range(NUM_NODES)):
            raise ArchitectureError(f"nb201 cell graph has nodes {sorted(graph.nodes)}; expected 0..3")
        decisions = {}
        for i in range(1, NUM_NODES):
            sources = sorted(graph.predecessors(i))
            if sources != list(range(i)):
                raise ArchitectureError(
                    f"nb201 node {i} has inputs {sources}; expected exactly one edge from each of {list(range(i))}"
                )
            for j in sources:
                op = graph.edges[j, i].get("op")
                if op not in self.ops:
                    raise UnknownOpError("nb201 op", op, self.ops)
                decisions[f"{i}<-{j}"] = op
        return self.make(decisions)

    # -- identity --------------------------------------------------------------------------
    def canonical_expression(self, arch: Architecture) -> str:
        """A normal form of the function the cell computes.

        Each node's value is a multiset of terms: the input ``x`` or ``op(value)``.
        ``none`` contributes nothing; a node with no live input is dead (zero)
        and so is any op applied to it; ``skip_connect`` passes its input's
        terms through (identity, so sums flatten); sums are unordered multisets.
        Two cells with the same expression compute the same function.
        """
        self.validate(arch)
        terms: list[tuple[str, ...]] = [("x",)]
        for i in range(1, NUM_NODES):
            node: list[str] = []
            for j in range(i):
                op, value = arch[f"{i}<-{j}"], terms[j]
                if op == "none" or not value:
                    continue
                if op == "skip_connect":
                    node.extend(value)
                else:
                    node.append(f"{op}({'+'.join(value)})")
            terms.append(tuple(sorted(node)))
        return "+".join(terms[-1]) or "0"

    def canonical_key(self, arch: Architecture) -> str:
        digest = hashlib.blake2b(self.canonical_expression(arch).encode(), digest_size=16)
        return f"{self.name}:{digest.hexdigest()}"

    # -- encodings ---------------------------------------------------------------------------
    def path_encode(self, arch: Architecture) -> np.ndarray:
        """BANANAS path encoding: how often each op sequence occurs as an input-to-output path.

        Paths through ``none`` carry nothing and are left out, so the vector has
        4 + 4**2 + 4**3 = 84 slots (one per op sequence of length 1, 2, 3) with the
        benchmark's ops (n + n**2 + n**3 for the n live ops of a changed op set).
        """
        self.validate(arch)
        n = len(self._path_ops)
        vector = np.zeros(n + n**2 + n**3, dtype=np.float32)
        for path in PATHS:
            ops = [arch[edge] for edge in path]
            if "none" in ops:
                continue
            index = sum(n**k for k in range(1, len(ops)))  # slots of shorter paths come first
            offset = 0
            for op in ops:
                offset = offset * n + self._path_ops.index(op)
            vector[index + offset] += 1.0
        return vector

    # -- model ---------------------------------------------------------------------------------
    def network(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        from search_spaces.nb201.model import Cell, Nb201Network

        decisions = arch.as_dict()
        return Nb201Network(
            lambda channels: Cell(decisions, channels), self.channels, self.cells, num_classes, input_shape[0]
        )


def _op_names(option: str, value: object) -> tuple[str, ...]:
    """A list of op names (no duplicates) from an option, naming the bad value."""
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ConfigError(f"nb201: {option}={value!r} is not allowed; expected a list of op names")
    names = list(value)
    if not all(isinstance(op, str) for op in names) or len(set(names)) != len(names):
        raise ConfigError(f"nb201: {option}={names!r} is not allowed; expected distinct op names")
    return tuple(names)


__all__ = ["PATHS", "Nb201Space"]
