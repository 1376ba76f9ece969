"""The search cell of a cell supernet: its edges' mixed ops run as one region, wired by the space.

Every cell supernet (NAS-Bench-201, DARTS) runs its cell the same way: the
mixed ops of all edges form one region that :func:`~nas.supernet.recompute.recompute`
checkpoints when ``checkpoint`` is on, and within one run of the region the
parameter-free ops' outputs are shared between the edges that read the same
state (:data:`~nas.supernet.mixed.SharedOutputs`, one cache per run, so a
recomputation fills its own). :class:`MixedCell` owns both; a space's cell
only says how its nodes are wired (:meth:`MixedCell.nodes`), through a
:class:`NodeMixer` that sums one node's incoming edges.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas.supernet.mixed import SharedOutputs, mix_node
from nas.supernet.recompute import Checkpointable, recompute


@dataclass(frozen=True)
class NodeMixer:
    """Sums a node's incoming mixed-op edges with the weights of one cell forward (see :func:`mix_node`)."""

    edges: nn.ModuleList
    incoming: Mapping[int, Sequence[int]]
    sources: Sequence[int]
    weights: torch.Tensor
    index: Sequence[int] | None
    edge_weights: torch.Tensor | None
    shared: SharedOutputs | None

    def __call__(self, target: int, states: Sequence[torch.Tensor]) -> torch.Tensor | None:
        """Node ``target`` from the ``states`` computed so far; None when the path drops every incoming edge."""
        return mix_node(
            self.edges,
            self.incoming[target],
            self.sources,
            states,
            self.weights,
            self.index,
            self.edge_weights,
            self.shared,
        )


class MixedCell(Checkpointable, nn.Module, abc.ABC):
    """A search cell whose ``edges`` are mixed ops; :meth:`mix` runs them as one (checkpointable) region.

    A subclass sets ``edges`` (one :class:`~nas.supernet.mixed.MixedOp` per edge),
    ``incoming`` (target node -> its edges) and ``sources`` (the state each edge
    reads), and implements :meth:`nodes`.
    """

    edges: nn.ModuleList
    incoming: Mapping[int, Sequence[int]]
    sources: Sequence[int]

    def mix(
        self,
        states: Sequence[torch.Tensor],
        weights: torch.Tensor,
        index: Sequence[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """The cell's output from its input ``states``; recomputed in backward when ``checkpoint`` is on."""
        return recompute(self, self._run, weights, index, edge_weights, *states, enabled=self.checkpoint)

    def _run(
        self,
        weights: torch.Tensor,
        index: Sequence[int] | None,
        edge_weights: torch.Tensor | None,
        *states: torch.Tensor,
    ) -> torch.Tensor:
        # A fresh cache per run: its keys are data pointers, valid only while this run's states live.
        shared: SharedOutputs | None = {} if self.share_ops else None
        mixer = NodeMixer(self.edges, self.incoming, self.sources, weights, index, edge_weights, shared)
        return self.nodes(list(states), mixer)

    @abc.abstractmethod
    def nodes(self, states: list[torch.Tensor], node: NodeMixer) -> torch.Tensor:
        """The space's wiring: compute the intermediate nodes with ``node(target, states)`` and return the output."""


__all__ = ["MixedCell", "NodeMixer"]
