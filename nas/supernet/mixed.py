"""The mixed op: every candidate op of one edge, combined by architecture weights.

One module serves every method, because they differ only in how an edge's
op weights are produced and which ops run:

* DARTS: ``weights`` = softmax(alpha), every op runs, outputs are summed;
* PC-DARTS: the same on a 1/K slice of the channels (``partial > 1``), the rest
  bypasses the edge and a channel shuffle mixes the two parts;
* GDAS: ``weights`` = a straight-through one-hot Gumbel sample and ``index`` the
  sampled op: only that op runs, yet every weight receives a gradient;
* single path (SPOS, scoring a discrete cell): constant one-hot weights and the
  chosen ``index``, or ``index = -1`` for an edge the cell does not use.

Candidate ops are the search spaces' own modules, so a derived architecture
computes with exactly the ops of its stand-alone network.

Two savings of the full mix (every op runs), both exact:

* an op that outputs zeros (``none``: ``outputs_zeros = True``) adds nothing
  and gives its weight a zero gradient either way, so it is not run;
* parameter-free, deterministic ops (pooling, identity) compute the same
  thing on every edge that reads the same state with the same settings: with
  a ``shared`` cache (one per cell forward, see :func:`mix_node`) each is
  computed once per state, and what follows it on an edge (DARTS' BatchNorm
  after pooling, with its own running statistics) runs per edge. DARTS'
  cell reads each state from up to four edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

#: An edge with this index is not part of the sampled cell: it contributes nothing.
DROPPED = -1

#: Outputs of shareable ops within one cell forward, keyed by op settings and input tensor.
SharedOutputs = dict[tuple[Any, ...], torch.Tensor]

#: Parameter-free, deterministic modules whose output depends only on their settings and input.
SHAREABLE: tuple[type[nn.Module], ...] = (nn.MaxPool2d, nn.AvgPool2d, nn.Identity)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (PC-DARTS mixes sampled and bypassed channels with it).

    An NHWC input (``channels_last``) is shuffled in its own layout and stays
    NHWC: reshaping its NCHW view would copy it to NCHW, and every op after
    the edge would pay for converting it back.
    """
    b, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        nhwc = x.permute(0, 2, 3, 1)
        shuffled = nhwc.reshape(b, h, w, groups, c // groups).transpose(3, 4).reshape(b, h, w, c)
        return shuffled.permute(0, 3, 1, 2)
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def strip_affine(module: nn.Module) -> nn.Module:
    """Make every BatchNorm of ``module`` non-affine, in place (DARTS' search-time ops).

    With affine BN an op can rescale its output and undo the architecture
    weight in front of it, which blurs what alpha means; DARTS and its
    descendants therefore search with ``affine=False`` and retrain with it on.
    """
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d) and child.affine:
            child.affine = False
            child.weight = None  # type: ignore[assignment]
            child.bias = None  # type: ignore[assignment]
    return module


class MixedOp(nn.Module):
    """All candidate ops of one edge; ``partial = K > 1`` runs them on C/K channels (PC-DARTS)."""

    def __init__(self, ops: Sequence[nn.Module], partial: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.partial = partial
        self.bypass: nn.Module = nn.MaxPool2d(2, 2) if stride == 2 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        index: int | None = None,
        shared: SharedOutputs | None = None,
    ) -> torch.Tensor:
        if self.partial == 1:
            return mix_ops(self.ops, x, weights, index, shared)
        part = x.shape[1] // self.partial
        sampled, bypassed = x[:, :part], x[:, part:]
        out = torch.cat([mix_ops(self.ops, sampled, weights, index, shared), self.bypass(bypassed)], dim=1)
        return channel_shuffle(out, self.partial)


def run_op(op: nn.Module, x: torch.Tensor, shared: SharedOutputs | None) -> torch.Tensor:
    """``op(x)``, its shareable head (the op itself, or a Sequential's first module) taken from ``shared``."""
    if shared is None:
        return op(x)
    head, rest = (op, ()) if isinstance(op, SHAREABLE) else (None, ())
    if head is None and isinstance(op, nn.Sequential) and len(op) and isinstance(op[0], SHAREABLE):
        head, rest = op[0], tuple(op)[1:]
    if head is None:
        return op(x)
    # The data pointer, shape and strides identify the input while the cell's states are alive.
    key = (type(head), head.extra_repr(), x.data_ptr(), tuple(x.shape), x.stride())
    out = shared.get(key)
    if out is None:
        out = shared[key] = head(x)
    for module in rest:
        out = module(out)
    return out


def mix_ops(
    ops: Sequence[nn.Module],
    x: torch.Tensor,
    weights: torch.Tensor,
    index: int | None = None,
    shared: SharedOutputs | None = None,
) -> torch.Tensor:
    """The ``weights``-weighted sum of ``ops(x)``, or only op ``index`` (a one-hot or straight-through sample).

    Shared by the mixed op of a cell edge and a layer of single-path
    supernets that alpha can steer (FBNet's DNAS). With a ``shared`` cache
    (full mix only) zero ops are skipped and shareable ops' outputs reused
    across the edges of a cell; without it every op runs (the plain path).
    """
    if index is None and shared is None:
        return sum(w * op(x) for w, op in zip(weights, ops, strict=True))  # type: ignore[return-value]
    if index is None:
        total: torch.Tensor | None = None
        live = [
            (w, op) for w, op in zip(weights, ops, strict=True) if not getattr(op, "outputs_zeros", False)
        ]
        for w, op in live or list(zip(weights, ops, strict=True)):
            out = w * run_op(op, x, shared)
            total = out if total is None else total + out
        return total  # type: ignore[return-value]
    # One op runs; the other weights are zero in value (one-hot) but stay in the graph,
    # so a straight-through Gumbel sample passes gradients to every alpha (GDAS).
    return weights[index] * ops[index](x) + (weights.sum() - weights[index])


def mix_node(
    edges: nn.ModuleList,
    incoming: Sequence[int],
    sources: Sequence[int],
    states: Sequence[torch.Tensor],
    weights: torch.Tensor,
    index: Sequence[int] | None,
    edge_weights: torch.Tensor | None,
    shared: SharedOutputs | None = None,
) -> torch.Tensor | None:
    """One node of a search cell: the sum of its ``incoming`` mixed-op edges.

    ``sources[e]`` is the state edge ``e`` reads; ``index`` (one op per edge,
    ``DROPPED`` to skip the edge) and ``edge_weights`` (PC-DARTS' per-edge
    scale) are as in :class:`~nas.supernet.base.CellPath`. None when every
    incoming edge is dropped: the cell decides what such a node means.
    ``shared``: the cell forward's cache of shareable op outputs (full mix).
    """
    total: torch.Tensor | None = None
    for edge in incoming:
        op = None if index is None else index[edge]
        if op == DROPPED:
            continue
        out = edges[edge](states[sources[edge]], weights[edge], op, None if op is not None else shared)
        if edge_weights is not None:
            out = out * edge_weights[edge]
        total = out if total is None else total + out
    return total


__all__ = [
    "DROPPED",
    "SHAREABLE",
    "MixedOp",
    "SharedOutputs",
    "channel_shuffle",
    "mix_node",
    "mix_ops",
    "run_op",
    "strip_affine",
]
