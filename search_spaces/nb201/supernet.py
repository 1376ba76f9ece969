"""The NAS-Bench-201 supernet: the benchmark's skeleton with a mixed op on each of the six edges.

As in NAS-Bench-201's own search models, one alpha matrix (6 edges x 5 ops)
is shared by every cell; the residual reductions between stages are fixed.
The skeleton is the stand-alone :class:`~search_spaces.nb201.model.Nb201Network`
itself, built with search cells, and the candidate ops are the space's own
modules (and a zero op for ``none``), so a one-hot path computes what the
derived stand-alone network computes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.supernet import (
    AlphaGroup,
    CellPath,
    CellSupernet,
    CellSupernetSize,
    MixedCell,
    MixedOp,
    NodeMixer,
    strip_affine,
)
from search_spaces.nb201.cell import EDGE_NAMES, EDGES, OPS
from search_spaces.nb201.model import Nb201Network, op_module

if TYPE_CHECKING:
    from search_spaces.nb201.space import Nb201Space
from search_spaces.ops import Zero


def alpha_group(ops: tuple[str, ...] = OPS) -> AlphaGroup:
    """The one alpha matrix of the cell: six edges x the space's ops (``exclude_ops``/``extra_ops`` applied)."""
    return AlphaGroup(
        name="cell",
        edges=EDGE_NAMES,
        sources=tuple(j for _, j in EDGES),
        targets=tuple(i for i, _ in EDGES),
        ops=ops,
    )


#: The benchmark's group (its five ops).
GROUP = alpha_group()
_INCOMING = GROUP.incoming()


def candidate(op: str, channels: int) -> nn.Module:
    """One candidate op of an edge: the space's module, ``Zero`` for ``none``."""
    return Zero(1) if op == "none" else op_module(op, channels)


class SearchCell(MixedCell):
    """One NAS-Bench-201 cell with a :class:`MixedOp` on every edge; node ``i`` sums the edges into it."""

    incoming = _INCOMING
    sources = GROUP.sources

    def __init__(self, channels: int, partial: int, ops: tuple[str, ...] = OPS) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp([candidate(op, channels // partial) for op in ops], partial) for _ in EDGES
        )

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        index: list[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        return self.mix([x], weights, index, edge_weights)

    def nodes(self, states: list[torch.Tensor], node: NodeMixer) -> torch.Tensor:
        """Nodes 1..3 in order; a node whose edges the path drops is zeros; the output is the last node."""
        for target in sorted(_INCOMING):
            total = node(target, states)
            states.append(torch.zeros_like(states[0]) if total is None else total)
        return states[-1]


class Nb201Supernet(CellSupernet):
    """NAS-Bench-201's ``TinyNetwork`` skeleton around :class:`SearchCell` s."""

    def __init__(self, space: Nb201Space, size: CellSupernetSize) -> None:
        super().__init__(space)
        self.ops: tuple[str, ...] = tuple(space.ops)
        self.group = alpha_group(self.ops)
        self.groups = (self.group,)

        def make_cell(c: int) -> nn.Module:
            cell = SearchCell(c, size.partial, self.ops)
            return cell if size.affine else strip_affine(cell)

        self.network = Nb201Network(
            make_cell, size.channels, size.cells, size.num_classes, size.input_shape[0]
        )
        self.cell_groups = tuple(GROUP.name for layer in self.network.cells if isinstance(layer, SearchCell))

    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:  # type: ignore[override]
        out = self.network.stem(x)
        number = 0
        for layer in self.network.cells:
            if isinstance(layer, SearchCell):
                out = layer(out, *path.group(GROUP.name, number))
                number += 1
            else:
                out = layer(out)
        return self.network.head(out)

    def candidate_ops(self) -> Iterator[tuple[str, int, int, nn.Module]]:
        for layer in self.network.cells:
            if isinstance(layer, SearchCell):
                for e, edge in enumerate(layer.edges):
                    for o, op in enumerate(edge.ops):
                        yield GROUP.name, e, o, op

    def choices(self, arch: Architecture) -> dict[str, list[int]]:
        return {GROUP.name: [self.ops.index(str(arch[edge])) for edge in EDGE_NAMES]}

    def derive(self, strength: Mapping[str, np.ndarray]) -> Architecture:
        """The strongest op of every edge, ``none`` included (as NAS-Bench-201's DARTS and GDAS derive)."""
        best = np.asarray(strength[GROUP.name]).argmax(axis=1)
        return self.space.make({edge: self.ops[int(op)] for edge, op in zip(EDGE_NAMES, best, strict=True)})


__all__ = ["GROUP", "Nb201Supernet", "SearchCell", "alpha_group", "candidate"]
