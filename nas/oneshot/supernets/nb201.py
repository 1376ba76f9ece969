"""The NAS-Bench-201 supernet: the benchmark's skeleton with a mixed op on each of the six edges.

As in NAS-Bench-201's own search models, one alpha matrix (6 edges x 5 ops)
is shared by every cell; the residual reductions between stages are fixed.
The candidate ops are :mod:`search_spaces.nb201`'s own modules (and DARTS'
``Zero`` for ``none``), so a one-hot path computes what the derived stand-alone
cell computes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.oneshot.mixed import DROPPED, MixedOp, strip_affine
from nas.oneshot.supernet import AlphaGroup, CellPath, CellSupernet
from search_spaces.darts import Zero
from search_spaces.nb201 import EDGE_NAMES, EDGES, OPS, Nb201Space, ResidualReduction, _op_module

GROUP = AlphaGroup(
    name="cell",
    edges=EDGE_NAMES,
    sources=tuple(j for _, j in EDGES),
    targets=tuple(i for i, _ in EDGES),
    ops=OPS,
)
_INCOMING = GROUP.incoming()


def candidate(op: str, channels: int) -> nn.Module:
    """One candidate op of an edge: the space's module, ``Zero`` for ``none``."""
    return Zero(1) if op == "none" else _op_module(op, channels)


class SearchCell(nn.Module):
    """One NAS-Bench-201 cell with a :class:`MixedOp` on every edge."""

    def __init__(self, channels: int, partial: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp([candidate(op, channels // partial) for op in OPS], partial) for _ in EDGES
        )

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        index: list[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        nodes = [x]
        for target in sorted(_INCOMING):
            total: torch.Tensor | None = None
            for edge in _INCOMING[target]:
                op = None if index is None else index[edge]
                if op == DROPPED:
                    continue
                out = self.edges[edge](nodes[GROUP.sources[edge]], weights[edge], op)
                if edge_weights is not None:
                    out = out * edge_weights[edge]
                total = out if total is None else total + out
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class Nb201Supernet(CellSupernet):
    """NAS-Bench-201's ``TinyNetwork`` skeleton around :class:`SearchCell` s."""

    def __init__(
        self,
        space: Nb201Space,
        num_classes: int,
        input_shape: tuple[int, int, int],
        channels: int,
        cells: int,
        partial: int = 1,
        affine: bool = False,
    ) -> None:
        super().__init__(space)
        self.groups = (GROUP,)
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            for _ in range(cells):
                cell = SearchCell(c, partial)
                layers.append(cell if affine else strip_affine(cell))
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:  # type: ignore[override]
        weights, index, edge_weights = path.group(GROUP.name)
        out = self.stem(x)
        for layer in self.layers:
            out = layer(out, weights, index, edge_weights) if isinstance(layer, SearchCell) else layer(out)
        out = self.lastact(out)
        return self.classifier(torch.flatten(self.global_pooling(out), 1))

    def choices(self, arch: Architecture) -> dict[str, list[int]]:
        return {GROUP.name: [OPS.index(str(arch[edge])) for edge in EDGE_NAMES]}

    def derive(self, strength: Mapping[str, np.ndarray]) -> Architecture:
        """The strongest op of every edge, ``none`` included (as NAS-Bench-201's DARTS and GDAS derive)."""
        best = np.asarray(strength[GROUP.name]).argmax(axis=1)
        return self.space.make({edge: OPS[int(op)] for edge, op in zip(EDGE_NAMES, best, strict=True)})


__all__ = ["GROUP", "Nb201Supernet", "SearchCell", "candidate"]
