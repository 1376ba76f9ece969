"""Activation checkpointing of supernet regions: keep a region's inputs, recompute the rest in backward.

A supernet step keeps every candidate op's activations for the backward
pass, which is why DARTS-style supernets run out of memory where their
stand-alone networks train easily. A *region* (a search cell's mixed ops, an
attention block) run through :func:`recompute` keeps only its inputs; its
activations are recomputed, one region at a time, when the backward pass
reaches it (``torch.utils.checkpoint``, non-reentrant). Gradients are the
same as without it, up to float rounding.

Two things plain ``torch.utils.checkpoint`` gets wrong for supernets, handled
here:

* BatchNorm in training mode would update its running statistics twice (once
  in the forward pass, once in the recomputation); the recomputation runs with
  them frozen, so the statistics match an un-checkpointed step exactly;
* the memory guard rail (:mod:`nas.oneshot.memory`) must know how large the
  largest recomputed region is: :func:`measure_regions` runs the regions
  without checkpointing and reports each region's saved bytes separately.

Supernets that offer regions derive from :class:`Checkpointable`;
:func:`set_checkpointing` switches them all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

T = TypeVar("T")


class Checkpointable:
    """Mixin of a module whose forward runs some regions through :func:`recompute` when ``checkpoint`` is on."""

    #: Whether the regions recompute their activations in the backward pass (off: the plain forward).
    checkpoint: bool = False
    #: Whether a cell's full mix computes parameter-free ops once per state (:func:`nas.supernet.mixed.run_op`).
    #: Always on in training (exact); off only to measure the plain path it replaced (benchmarks).
    share_ops: bool = True


def set_checkpointing(model: nn.Module, on: bool, *, share_ops: bool = True) -> int:
    """Switch checkpointing of every :class:`Checkpointable` in ``model``; how many there are (0: unsupported)."""
    found = 0
    for module in model.modules():
        if isinstance(module, Checkpointable):
            module.checkpoint = on
            module.share_ops = share_ops
            found += 1
    return found


def checkpointing(model: nn.Module) -> bool:
    """Whether any region of ``model`` recomputes its activations."""
    return any(isinstance(m, Checkpointable) and m.checkpoint for m in model.modules())


def supports_checkpointing(model: nn.Module) -> bool:
    return any(isinstance(m, Checkpointable) for m in model.modules())


@contextlib.contextmanager
def frozen_running_statistics(module: nn.Module) -> Iterator[None]:
    """BatchNorm in ``module`` normalises with batch statistics but leaves its running statistics as they are.

    Momentum 0 rather than ``track_running_stats = False``: the recomputation
    must save the very tensors the forward pass saved (checkpoint checks), and
    BatchNorm saves its running statistics only while it tracks them. The
    batch counter it still advances is put back.
    """
    norms = [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    saved = [
        (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms
    ]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


class RegionMeter:
    """Saved bytes of every region run while :func:`measure_regions` is active (weights excluded)."""

    def __init__(self, is_weight: Callable[[torch.Tensor], bool]) -> None:
        self.is_weight = is_weight
        #: Saved bytes of each region, in the order they ran.
        self.regions: list[int] = []
        #: Storages of the regions' tensor inputs (a checkpoint keeps them): pointer -> bytes.
        self.inputs: dict[int, int] = {}

    def _count(self, seen: dict[int, int], tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        if not self.is_weight(tensor) and storage.device.type != "meta":
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())

    @contextlib.contextmanager
    def region(self, args: tuple[Any, ...]) -> Iterator[None]:
        seen: dict[int, int] = {}
        for arg in args:
            if isinstance(arg, torch.Tensor):
                self._count(self.inputs, arg)

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            self._count(seen, tensor)
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield
        self.regions.append(sum(seen.values()))

    @property
    def largest(self) -> int:
        return max(self.regions, default=0)


_meter: RegionMeter | None = None


@contextlib.contextmanager
def measure_regions(is_weight: Callable[[torch.Tensor], bool]) -> Iterator[RegionMeter]:
    """Run checkpointed regions plainly, each under its own saved-tensor hook, and count what each saves.

    Within the block, bytes a region saves are reported to the meter and not
    to any outer ``saved_tensors_hooks`` (the innermost hook wins): exactly
    the split of a checkpointed step, whose regions keep nothing but their
    inputs until the backward pass recomputes them one at a time.
    """
    global _meter
    previous, _meter = _meter, RegionMeter(is_weight)
    try:
        yield _meter
    finally:
        _meter = previous


def recompute(module: nn.Module, function: Callable[..., T], *args: Any, enabled: bool = True) -> T:
    """``function(*args)``, its activations recomputed in backward when ``enabled`` and gradients are on.

    ``module`` holds the region's layers (its BatchNorm statistics are frozen
    while recomputing). Non-tensor arguments are passed through unchanged.
    """
    if not enabled or not torch.is_grad_enabled():
        return function(*args)
    if _meter is not None:
        with _meter.region(args):
            return function(*args)
    calls = 0

    def run(*inputs: Any) -> T:
        nonlocal calls
        calls += 1
        if calls == 1:
            return function(*inputs)
        with frozen_running_statistics(module):
            return function(*inputs)

    return checkpoint(run, *args, use_reentrant=False)  # type: ignore[no-any-return]


__all__ = [
    "Checkpointable",
    "RegionMeter",
    "checkpointing",
    "frozen_running_statistics",
    "measure_regions",
    "recompute",
    "set_checkpointing",
    "supports_checkpointing",
]
