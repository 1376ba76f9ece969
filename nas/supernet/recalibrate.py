"""BatchNorm recalibration: re-estimate a (sub-)network's running statistics on a few batches.

A supernet's running statistics are averages over every path it trained,
and fit none of them; a sub-network with inherited weights is therefore
judged (and deployed) only after its statistics are reset and re-estimated
on training batches run through it alone (SPOS, once-for-all and BigNAS all
do this). Nothing else changes: no parameter moves, no gradient is taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    forward: Callable[[torch.Tensor], object] | None = None,
) -> int:
    """Reset every BatchNorm of ``model`` and re-estimate it as the exact average over ``batches``.

    ``forward`` runs a batch (default ``model``; a supernet passes its
    ``forward_arch`` restricted to one path). Momentum is set to ``None``
    during the pass (a cumulative average, so every batch counts equally)
    and restored after; ``model``'s train/eval mode is restored too.
    Returns the number of batches used (at least one is required).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    run = model if forward is None else forward
    count = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for x in batches:
            run(x)
            count += 1
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    if count == 0:
        raise ValueError("BatchNorm recalibration needs at least one batch")
    return count


__all__ = ["recalibrate_bn"]
