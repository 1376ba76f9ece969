"""The DARTS supernet: DARTS' search network with a mixed op on all 14 edges of each cell.

Normal and reduction cells have their own alpha matrix (14 edges x 8 ops);
intermediate node ``k`` (2..5) receives an edge from every earlier node. The
skeleton is DARTS' ``Network`` (CIFAR stem of ``stem_multiplier * C``
channels, reductions at 1/3 and 2/3 of the depth, concat of the four
intermediate nodes) and the candidate ops are :func:`search_spaces.darts.make_op`'s,
with a non-affine BatchNorm after pooling as in DARTS' search ``MixedOp``.
Derivation keeps, per node, the two strongest edges from distinct predecessors
and their strongest op other than ``none`` (DARTS' ``genotype()``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.oneshot.mixed import DROPPED, MixedOp, strip_affine
from nas.oneshot.supernet import AlphaGroup, CellPath, CellSupernet
from search_spaces.darts import CELL_TYPES, NODES, OPS, DartsSpace, FactorizedReduce, decision_name, make_op
from search_spaces.ops import ReLUConvBN

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


def candidate(op: str, channels: int, stride: int) -> nn.Module:
    """One candidate op; pooling gets a non-affine BN as in DARTS' search cell."""
    module = make_op(op, channels, stride)
    if "pool" in op:
        return nn.Sequential(module, nn.BatchNorm2d(channels, affine=False))
    return module


class SearchCell(nn.Module):
    """A DARTS cell with a :class:`MixedOp` on every edge."""

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
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, channels)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0)
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
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for target in NODES:
            total: torch.Tensor | None = None
            for edge in _INCOMING[target]:
                op = None if index is None else index[edge]
                if op == DROPPED:
                    continue
                out = self.edges[edge](states[EDGES[edge][1]], weights[edge], op)
                if edge_weights is not None:
                    out = out * edge_weights[edge]
                total = out if total is None else total + out
            if total is None:
                raise ConfigError(f"DARTS supernet path leaves node {target} without an input edge")
            states.append(total)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(CellSupernet):
    """DARTS' search ``Network``: stem, ``cells`` search cells, global pooling and a classifier."""

    def __init__(
        self,
        space: DartsSpace,
        num_classes: int,
        input_shape: tuple[int, int, int],
        channels: int,
        cells: int,
        partial: int = 1,
        affine: bool = False,
    ) -> None:
        super().__init__(space)
        reductions = (cells // 3, 2 * cells // 3)
        if all(i in reductions for i in range(cells)):
            raise ConfigError(
                f"a DARTS supernet with cells={cells} has only reduction cells (they sit at cells//3 and "
                "2*cells//3), so the normal cell could not be searched; use cells >= 3"
            )
        self.groups = GROUPS
        stem_channels = space.stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], stem_channels, 3, padding=1, bias=False), nn.BatchNorm2d(stem_channels)
        )
        c_prev_prev = c_prev = stem_channels
        c_curr, reduction_prev = channels, False
        self.cells = nn.ModuleList()
        for i in range(cells):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cell = SearchCell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev, partial)
            self.cells.append(cell if affine else strip_affine(cell))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, len(NODES) * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:  # type: ignore[override]
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights, index, edge_weights = path.group("reduce" if cell.reduction else "normal")
            s0, s1 = s1, cell(s0, s1, weights, index, edge_weights)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

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


__all__ = ["DartsSupernet", "EDGES", "GROUPS", "SearchCell", "candidate"]
