"""NAS-Bench-201: a 4-node cell inside the benchmark's fixed macro skeleton.

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
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from nas.core import SPACES, Architecture, ArchitectureError, Scalar, UnknownOpError, positive_int
from search_spaces.base import TorchSpace, check_input_shape, check_num_classes
from search_spaces.ops import ReLUConvBN

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
#: Edges (target, source) in the order of the benchmark's string form.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, NUM_NODES) for j in range(i))
EDGE_NAMES: tuple[str, ...] = tuple(f"{i}<-{j}" for i, j in EDGES)

#: Input-to-output paths of the cell as edge sequences (for the path encoding).
PATHS: tuple[tuple[str, ...], ...] = (
    ("3<-0",),
    ("1<-0", "3<-1"),
    ("2<-0", "3<-2"),
    ("1<-0", "2<-1", "3<-2"),
)
#: Ops that can lie on a live path; ``none`` cuts a path so it has no slot.
_PATH_OPS = OPS[1:]

_NODE_RE = re.compile(r"^\|(?:[^|~]+~\d+\|)+$")


def _op_module(op: str, channels: int) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise UnknownOpError("nb201 op", op, OPS)


class Cell(nn.Module):
    """One NAS-Bench-201 cell (the benchmark's ``InferCell``), ``none`` edges omitted."""

    def __init__(self, decisions: Mapping[str, Scalar], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        self.inputs: list[list[tuple[int, str]]] = []  # per node: (source, edge key)
        for i in range(1, NUM_NODES):
            node_inputs = []
            for j in range(i):
                op = str(decisions[f"{i}<-{j}"])
                if op != "none":
                    key = f"e{i}{j}"
                    self.edges[key] = _op_module(op, channels)
                    node_inputs.append((j, key))
            self.inputs.append(node_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node_inputs in self.inputs:
            if not node_inputs:  # every input is `none`: the benchmark's Zero op sums to zeros
                nodes.append(torch.zeros_like(x))
                continue
            total = None
            for source, key in node_inputs:
                out = self.edges[key](nodes[source])
                total = out if total is None else total + out
            nodes.append(total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The benchmark's ``ResNetBasicblock`` with stride 2 between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        # ceil_mode keeps both branches the same size on odd inputs; identical on even ones.
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Nb201Network(nn.Module):
    """The benchmark's ``TinyNetwork`` for one cell."""

    def __init__(
        self, decisions: Mapping[str, Scalar], channels: int, cells: int, num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(decisions, c) for _ in range(cells))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(out), 1))


@SPACES.register("nb201")
class Nb201Space(TorchSpace):
    """NAS-Bench-201 cell in the benchmark's macro skeleton.

    Options: ``channels`` (C, default 16) and ``cells`` (N per stage, default 5).
    """

    name = "nb201"
    has_path_encoding = True

    def __init__(self, *, channels: int = 16, cells: int = 5) -> None:
        self.channels = positive_int(self.name, "channels", channels)
        self.cells = positive_int(self.name, "cells", cells)

    @property
    def options(self) -> dict[str, Any]:
        return {"channels": self.channels, "cells": self.cells}

    def choices(self) -> dict[str, Sequence[Scalar]]:
        return {name: OPS for name in EDGE_NAMES}

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
                if op not in OPS:
                    raise UnknownOpError("nb201 op", op, OPS)
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
                if op not in OPS:
                    raise UnknownOpError("nb201 op", op, OPS)
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
        4 + 4**2 + 4**3 = 84 slots (one per op sequence of length 1, 2, 3).
        """
        self.validate(arch)
        n = len(_PATH_OPS)
        vector = np.zeros(n + n**2 + n**3, dtype=np.float32)
        for path in PATHS:
            ops = [arch[edge] for edge in path]
            if "none" in ops:
                continue
            index = sum(n**k for k in range(1, len(ops)))  # slots of shorter paths come first
            offset = 0
            for op in ops:
                offset = offset * n + _PATH_OPS.index(op)
            vector[index + offset] += 1.0
        return vector

    # -- model ---------------------------------------------------------------------------------
    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (3, 32, 32),
    ) -> nn.Module:
        self.validate(arch)
        shape = check_input_shape(self.name, input_shape)
        return Nb201Network(
            arch.as_dict(), self.channels, self.cells, check_num_classes(self.name, num_classes), shape[0]
        )
