"""The DARTS supernet: DARTS' search network with a mixed op on all 14 edges of each cell.

Normal and reduction cells have their own alpha matrix (14 edges x 8 ops);
intermediate node ``k`` (2..5) receives an edge from every earlier node. The
skeleton is the stand-alone :class:`~search_spaces.darts.model.DartsNetwork`
itself with its CIFAR stem (``stem_multiplier * C`` channels, reductions at 1/3
and 2/3 of the depth, concat of the four intermediate nodes), built with search
cells, and the candidate ops are :func:`search_spaces.darts.model.make_op`'s,
with a non-affine BatchNorm after pooling as in DARTS' search ``MixedOp``.
Derivation keeps, per node, the two strongest edges from distinct predecessors
and their strongest op other than ``none`` (DARTS' ``genotype()``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.supernet import (
    DROPPED,
    AlphaGroup,
    CellPath,
    CellSupernet,
    CellSupernetSize,
    MixedCell,
    MixedOp,
    NodeMixer,
    strip_affine,
)
from search_spaces.darts.genotype import CELL_TYPES, NODES, OPS, decision_name
from search_spaces.darts.model import DartsNetwork, make_op, preprocess, reduction_cells

if TYPE_CHECKING:
    from search_spaces.darts.space import DartsSpace

#: Edges (target, source) of a DARTS cell: node k takes one edge from each of 0..k-1.
EDGES: tuple[tuple[int, int], ...] = tuple((k, j) for k in NODES for j in range(k))
_NONE = OPS.index("none")


def _group(cell: str) -> AlphaGroup:
    return AlphaGroup(
        name=cell,
        edges=tuple(f"{k}<-{j}" for k, j in EDGES),
        sources=tuple(j for _, j in EDGES),
        targets=tuple(k for k, _ in EDGES),
        ops=OPS,
    )


GROUPS: tuple[AlphaGroup, ...] = tuple(_group(cell) for cell in CELL_TYPES)
_INCOMING = GROUPS[0].incoming()
_SOURCES = GROUPS[0].sources


def candidate(op: str, channels: int, stride: int) -> nn.Module:
    """One candidate op; pooling gets a non-affine BN as in DARTS' search cell."""
    module = make_op(op, channels, stride)
    if "pool" in op:
        return nn.Sequential(module, nn.BatchNorm2d(channels, affine=False))
    return module


class SearchCell(MixedCell):
    """A DARTS cell with a :class:`MixedOp` on every edge; with ``checkpoint`` its mixed ops are recomputed in backward."""

    incoming = _INCOMING
    sources = _SOURCES

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        partial: int,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocess(c_prev_prev, c_prev, channels, reduction_prev)
        edges = []
        for _, source in EDGES:
            stride = 2 if reduction and source < 2 else 1
            ops = [candidate(op, channels // partial, stride) for op in OPS]
            edges.append(MixedOp(ops, partial, stride))
        self.edges = nn.ModuleList(edges)

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        index: list[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        # The preprocessing stays outside the (checkpointed) region of the mixed ops.
        return self.mix([self.preprocess0(s0), self.preprocess1(s1)], weights, index, edge_weights)

    def nodes(self, states: list[torch.Tensor], node: NodeMixer) -> torch.Tensor:
        """Nodes 2..5 from the preprocessed inputs, concatenated."""
        for target in NODES:
            total = node(target, states)
            if total is None:
                raise ConfigError(f"DARTS supernet path leaves node {target} without an input edge")
            states.append(total)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(CellSupernet):
    """DARTS' search ``Network``: stem, ``cells`` search cells, global pooling and a classifier."""

    def __init__(self, space: DartsSpace, size: CellSupernetSize) -> None:
        super().__init__(space)
        cells = size.cells
        if all(i in reduction_cells(cells) for i in range(cells)):
            raise ConfigError(
                f"a DARTS supernet with cells={cells} has only reduction cells (they sit at cells//3 and "
                "2*cells//3), so the normal cell could not be searched; use cells >= 3"
            )
        self.groups = GROUPS

        def make_cell(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> nn.Module:
            cell = SearchCell(c_pp, c_p, c, reduction, reduction_prev, size.partial)
            return cell if size.affine else strip_affine(cell)

        self.network = DartsNetwork(
            make_cell,
            size.channels,
            cells,
            space.stem_multiplier,
            size.num_classes,
            size.input_shape,
            imagenet_stem=False,
        )
        self.cell_groups = tuple("reduce" if cell.reduction else "normal" for cell in self.network.cells)

    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:  # type: ignore[override]
        s0, s1 = self.network.stems(x)
        for number, (cell, group) in enumerate(zip(self.network.cells, self.cell_groups, strict=True)):
            s0, s1 = s1, cell(s0, s1, *path.group(group, number))
        return self.network.head(s1)

    def candidate_ops(self) -> Iterator[tuple[str, int, int, nn.Module]]:
        for cell in self.network.cells:
            for e, edge in enumerate(cell.edges):
                for o, op in enumerate(edge.ops):
                    yield "reduce" if cell.reduction else "normal", e, o, op

    def edge_units(self, group: str) -> list[tuple[tuple[int, ...], int]]:
        """Each node keeps two of its incoming edges."""
        return [(tuple(edges), min(2, len(edges))) for edges in _INCOMING.values()]

    def derivable_ops(self, group: str) -> np.ndarray:
        """Every op but ``none``: the derivation picks each kept edge's strongest non-none op."""
        return np.arange(len(OPS)) != _NONE

    def choices(self, arch: Architecture) -> dict[str, list[int]]:
        result = {}
        for cell in CELL_TYPES:
            index = [DROPPED] * len(EDGES)
            for node in NODES:
                for slot in (0, 1):
                    source = int(arch[decision_name(cell, node, "in", slot)])
                    op = str(arch[decision_name(cell, node, "op", slot)])
                    index[EDGES.index((node, source))] = OPS.index(op)
            result[cell] = index
        return result

    def derive(self, strength: Mapping[str, np.ndarray]) -> Architecture:
        decisions: dict[str, str | int] = {}
        for cell in CELL_TYPES:
            matrix = np.asarray(strength[cell], dtype=float)
            for node in NODES:
                incoming = _INCOMING[node]
                without_none = np.delete(matrix[incoming], _NONE, axis=1)
                # Strongest non-none op per edge; ties go to the earlier predecessor (stable sort).
                order = np.argsort(-without_none.max(axis=1), kind="stable")[:2]
                for slot, position in enumerate(order):
                    edge = incoming[int(position)]
                    ops = [o for o in range(len(OPS)) if o != _NONE]
                    best = ops[int(without_none[int(position)].argmax())]
                    decisions[decision_name(cell, node, "op", slot)] = OPS[best]
                    decisions[decision_name(cell, node, "in", slot)] = EDGES[edge][1]
        return self.space.make(decisions)


__all__ = ["EDGES", "GROUPS", "DartsSupernet", "SearchCell", "candidate"]
