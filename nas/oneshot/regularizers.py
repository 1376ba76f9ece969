"""Loss terms on the architecture parameters, shared by the methods that add them.

* :func:`beta_decay` -- beta-DARTS (Ye et al. 2022): the mean over edges of
  ``log sum_o exp(alpha_o)``, the softmax-smoothed maximum of an edge's alpha.
  Its gradient is ``softmax(alpha)``, so it pulls the leading ops down the
  most and keeps alpha's spread (and the skip-connection runaway) in check.
* :func:`linear_ramp` -- the weight schedule: 0 at the first epoch, the full
  weight at the last.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def beta_decay(alphas: Iterable[torch.Tensor]) -> torch.Tensor:
    """Sum over alpha matrices of the mean per-edge log-sum-exp (beta-DARTS' beta-decay term)."""
    return sum(torch.logsumexp(a, dim=-1).mean() for a in alphas)  # type: ignore[return-value]


def linear_ramp(weight: float, epoch: int, epochs: int) -> float:
    """``weight * epoch / (epochs - 1)``: 0 in the first epoch (0-based), ``weight`` in the last."""
    return weight * epoch / max(1, epochs - 1)


__all__ = ["beta_decay", "linear_ramp"]
