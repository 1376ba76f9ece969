"""Supernets: one network holding every architecture of a space, weights shared.

Two kinds:

* :class:`CellSupernet` (cell spaces such as NAS-Bench-201 and DARTS): a mixed op on every edge of the
  cell, steered by per-edge op weights. Differentiable methods feed it
  softmaxed (DARTS, PC-DARTS) or sampled (GDAS) weights; a discrete cell is a
  constant one-hot path (:meth:`CellSupernet.path`).
* single-path supernets (layer-wise spaces such as FBNet): every candidate block of every
  layer; an architecture selects one per layer. Only SPOS trains these.

Every supernet runs a discrete architecture with :meth:`Supernet.forward_arch`,
which is what SPOS trains and what scoring with inherited weights uses.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.space import SearchSpace
from nas.supernet.mixed import DROPPED


@dataclass(frozen=True)
class AlphaGroup:
    """The edges that share one alpha matrix (a cell type), their ops and endpoints."""

    name: str
    edges: tuple[str, ...]  # labels such as "2<-0"
    sources: tuple[int, ...]
    targets: tuple[int, ...]
    ops: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.edges), len(self.ops)

    def incoming(self) -> dict[int, list[int]]:
        """Target node -> indices of its incoming edges (for edge normalisation and derivation)."""
        result: dict[int, list[int]] = {}
        for index, target in enumerate(self.targets):
            result.setdefault(target, []).append(index)
        return result


@dataclass(frozen=True)
class CellSupernetSize:
    """What a cell supernet is built for: the data's classes and input shape, width, depth, K, affine BN."""

    num_classes: int
    input_shape: tuple[int, int, int]
    channels: int
    cells: int
    partial: int = 1
    affine: bool = False


@dataclass(frozen=True)
class CellPath:
    """How a cell supernet runs: op weights per edge, optionally one op per edge and edge weights.

    ``weights[group]`` is ``(edges, ops)``; ``index[group][e]`` is the one op to run
    on edge ``e`` (``DROPPED``: skip the edge) or ``index`` is None (run every op);
    ``edge_weights[group]`` (``(edges,)``) scales each edge's output (PC-DARTS).
    ``cell_weights`` (D-DARTS), if given, holds one ``(edges, ops)`` matrix per
    search cell in the supernet's order (:attr:`CellSupernet.cell_groups`); cell
    ``i`` then runs with ``cell_weights[i]`` instead of its group's shared matrix.
    """

    weights: Mapping[str, torch.Tensor]
    index: Mapping[str, list[int]] | None = None
    edge_weights: Mapping[str, torch.Tensor] | None = None
    cell_weights: Sequence[torch.Tensor] | None = None

    def group(
        self, name: str, cell: int | None = None
    ) -> tuple[torch.Tensor, list[int] | None, torch.Tensor | None]:
        """The op weights, op index and edge weights search cell number ``cell`` of group ``name`` runs with."""
        index = None if self.index is None else self.index[name]
        edges = None if self.edge_weights is None else self.edge_weights[name]
        if self.cell_weights is not None and cell is not None:
            return self.cell_weights[cell], index, edges
        return self.weights[name], index, edges


class Supernet(nn.Module, abc.ABC):
    """Base class: a network containing every architecture of ``space``."""

    #: True for cell supernets that differentiable methods can steer with alpha.
    differentiable: ClassVar[bool] = False

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    @abc.abstractmethod
    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """Logits of the sub-network of ``arch`` (single path, inherited weights)."""


class CellSupernet(Supernet):
    """A cell supernet: ``forward(x, path)`` with a :class:`CellPath`."""

    differentiable = True

    #: The alpha groups (cell types) in a fixed order.
    groups: tuple[AlphaGroup, ...]
    #: The group (cell type) of every search cell, in the order ``forward`` runs them.
    cell_groups: tuple[str, ...]

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:  # type: ignore[override]
        """Logits with the given per-edge weights."""

    @abc.abstractmethod
    def choices(self, arch: Architecture) -> dict[str, list[int]]:
        """Per group, the op index of every edge in ``arch`` (``DROPPED`` for unused edges)."""

    @abc.abstractmethod
    def derive(self, strength: Mapping[str, np.ndarray]) -> Architecture:
        """The discrete architecture from per-group ``(edges, ops)`` op strengths."""

    @abc.abstractmethod
    def candidate_ops(self) -> Iterator[tuple[str, int, int, nn.Module]]:
        """Every candidate op module as ``(group, edge, op, module)`` (a group's edge repeats per cell).

        What a resource model counts: the parameters an architecture's choice
        of op on an edge brings (:mod:`nas.oneshot.resource`).
        """

    def edge_units(self, group: str) -> list[tuple[tuple[int, ...], int]]:
        """How a derived architecture picks ``group``'s edges: ``(edges, kept)`` units, each keeping ``kept`` edges.

        By default every edge is its own unit and is kept (one op per edge);
        DARTS keeps two of each node's incoming edges, so a node is a unit.
        Units are independent of each other, which resource-budgeted
        read-outs rely on (:mod:`nas.oneshot.resource`).
        """
        edges = len(next(g for g in self.groups if g.name == group).edges)
        return [((e,), 1) for e in range(edges)]

    def derivable_ops(self, group: str) -> np.ndarray:
        """Per op of ``group``, whether a derived architecture may pick it (DARTS never picks ``none``)."""
        return np.ones(len(next(g for g in self.groups if g.name == group).ops), dtype=bool)

    def path(self, arch: Architecture, device: torch.device | None = None) -> CellPath:
        """The constant one-hot path that runs exactly ``arch``."""
        index = self.choices(self.space.validate(arch))
        weights = {}
        for group in self.groups:
            onehot = torch.zeros(group.shape, device=device)
            for edge, op in enumerate(index[group.name]):
                if op != DROPPED:
                    onehot[edge, op] = 1.0
            weights[group.name] = onehot
        return CellPath(weights=weights, index=index)

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        return self.forward(x, self.path(arch, device=x.device))


__all__ = ["AlphaGroup", "CellPath", "CellSupernet", "CellSupernetSize", "Supernet"]
