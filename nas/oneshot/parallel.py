"""Data-parallel supernet training: every rank takes the single-process steps on its slice of each batch.

With ``resources.workers`` > 1 the runner trains one supernet on N ranks of a
``torch.distributed`` process group (Ray Train starts it, see
:mod:`nas.runner.oneshot`). Every rank builds the same supernet and
architecture parameters from the same seed and owns the same generators, so
it draws the same batch order, augmentation and sampled paths (GDAS' Gumbel
noise, SPOS' architecture, DropNAS' mask) as every other rank and as one
process would. The loop (:meth:`~nas.oneshot.method.OneShotMethod.train_epoch`)
keeps the rank's contiguous slice of each global batch, and :func:`data_parallel`
averages the gradients over the ranks before every optimiser step -- weights,
alpha, RARTS' weight copy alike, whichever optimiser a method steps -- and
before the weight gradients are clipped, so the clip sees the global batch's
gradient. Equal slices make that average the global batch's gradient, which is
why ``batch_size`` must be a multiple of the workers.

Why not DistributedDataParallel: a supernet's forward takes a path, methods
step their optimisers after ``torch.autograd.grad`` as well as ``backward``,
a single path leaves most weights without a gradient, and alpha lives outside
the module. Averaging at the optimiser step covers all of that in one place,
with no per-method code; the ranks hold the same parameters after every step,
bit for bit, because each applies the same averaged gradient (checked after
every epoch: a method whose ranks went apart fails rather than trains on).

What does not carry over: BatchNorm normalises each rank's slice, not the
global batch (as DDP without SyncBatchNorm), and a step whose result is not
linear in the batch cannot be averaged: second-order DARTS' virtual step and
Amended-DARTS' Hessian terms, AttentiveNAS' pick of the candidate with the
best loss on the batch. Those are refused before the search starts
(:data:`nas.core.oneshot.SINGLE_WORKER`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from nas.core.errors import ConfigError
from nas.training import Shard


class GradientAverage:
    """Averages the gradients of an optimiser's parameters over the ranks, once per step."""

    def __init__(self, shard: Shard, optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
        self.shard = shard
        self.optimizers = optimizers
        self.device = device  # of the collectives' tensors (NCCL reduces GPU tensors only)
        self._averaged: set[int] = set()  # optimisers whose gradients were averaged before clipping

    def check_in_step(self) -> None:
        """Refuse to go on when the ranks' parameters differ (a method whose steps diverge per rank).

        After every epoch: a checksum of every parameter the optimisers train,
        compared over the ranks (identical tensors sum identically).
        """
        total = sum(
            float(p.detach().double().sum())
            for optimizer in self.optimizers
            for group in optimizer.param_groups
            for p in group["params"]
        )
        spread = torch.tensor([total, -total], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(spread, op=torch.distributed.ReduceOp.MAX)
        if float(spread[0]) != -float(spread[1]):
            raise RuntimeError(
                f"data-parallel supernet ranks diverged: their parameters differ (checksum {total!r} here, "
                f"from {-float(spread[1])!r} to {float(spread[0])!r} over the ranks)"
            )

    def before_clip(self, optimizer: torch.optim.Optimizer) -> None:
        """Average now (the clip must see the global gradient); the coming step then does not again."""
        self._average(optimizer)
        self._averaged.add(id(optimizer))

    def before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """The optimiser's step pre-hook."""
        if id(optimizer) in self._averaged:
            self._averaged.discard(id(optimizer))
            return
        self._average(optimizer)

    def _average(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self._check_same(grads)
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat.div_(self.shard.world)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def _check_same(self, grads: list[torch.Tensor]) -> None:
        """Every rank must average the same tensors (the same path): else the ranks went apart."""
        numel = sum(g.numel() for g in grads)
        signature = torch.tensor(
            [len(grads), numel, -len(grads), -numel], dtype=torch.float64, device=self.device
        )
        torch.distributed.all_reduce(signature, op=torch.distributed.ReduceOp.MAX)
        if signature[0] != -signature[2] or signature[1] != -signature[3]:
            raise RuntimeError(
                "data-parallel supernet ranks diverged: they hold gradients of different parameters "
                f"({len(grads)} tensors of {numel} values here); every rank must sample the same path"
            )


def optimizers(method: Any) -> list[torch.optim.Optimizer]:
    """Every optimiser the method holds (weights, alpha, a weight copy...), found on the instance."""
    return [value for value in vars(method).values() if isinstance(value, torch.optim.Optimizer)]


@contextlib.contextmanager
def data_parallel(method: Any, shard: Shard | None = None) -> Iterator[GradientAverage | None]:
    """Within the block, ``method`` trains its slice of every batch with gradients averaged over the ranks.

    ``shard`` defaults to the initialised process group (the whole run when
    there is none: then nothing changes). Outside the block (deriving,
    scoring, perturbation selection) every rank computes alone again.
    """
    shard = Shard.current() if shard is None else shard
    if not shard.parallel:
        yield None
        return
    check_batch(method.name, method.settings.batch_size, shard.world)
    average = GradientAverage(shard, optimizers(method), method.device)
    handles = [optimizer.register_step_pre_hook(average.before_step) for optimizer in average.optimizers]
    method.shard, method.gradients = shard, average
    try:
        yield average
    finally:
        for handle in handles:
            handle.remove()
        method.shard, method.gradients = Shard(), None


def check_batch(method: str, batch_size: int, workers: int) -> None:
    """Refuse a batch the workers cannot split into equal slices (their average is then not the batch's)."""
    if batch_size % workers:
        raise ConfigError(
            f"strategy.batch_size={batch_size} with resources.workers={workers}: {method}'s data-parallel "
            f"ranks each keep an equal slice of every batch; allowed: a multiple of {workers}"
        )


__all__ = ["GradientAverage", "check_batch", "data_parallel", "optimizers"]
