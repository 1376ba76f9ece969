"""FBNet's DNAS (Wu et al. 2019): Gumbel-softmax op choice, annealed, with a latency term in the loss.

Hooks on the alpha loop (through :class:`~nas.oneshot.resource.ResourceConstrainedMethod`,
which adds the resource model and the budget):

* ``op_weights`` -- every step's op weights are a *soft* Gumbel-softmax
  sample ``softmax((log softmax(alpha) + g) / tau)`` per edge (per layer on
  ``fbnet``, where alpha has a row per layer): every block runs, weighted by
  the sample, as FBNet's mask ``m_l``. The temperature anneals geometrically
  from ``tau_max`` to ``tau_min`` over the epochs (FBNet: 5.0 decayed by
  0.956 per epoch, a geometric schedule too);
* ``expected_weights`` -- ``softmax(alpha)``, FBNet's op distribution: read
  off (the strongest op), validated, stored as curves, and the distribution
  the expected latency is taken under;
* ``arch_loss`` -- FBNet's ``CE * alpha * log(LAT)^beta`` (``latency_alpha``
  0.2, ``latency_beta`` 0.6), ``LAT`` the expected latency under alpha from
  the device's per-op lookup table (``latency_device``) or the expected
  parameter count or FLOPs (``target_params``, ``target_flops``,
  :mod:`nas.oneshot.resource`).

The budget enters the unit of ``LAT``: it is measured in units of
``target / e`` and floored at the target, ``log(LAT) = 1 + log(max(LAT,
target) / target)``, so the factor is ``alpha`` (plain cross-entropy) within
budget and grows as FBNet's ``log^beta`` above it. FBNet itself trades
latency against accuracy through alpha and beta alone; the floor makes the
search spend the budget rather than go as fast as the trade-off allows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.core.oneshot import ONESHOT
from nas.oneshot.gdas import gumbel_softmax
from nas.oneshot.resource import ResourceConstrainedMethod
from nas.supernet.base import CellPath


@ONESHOT.register("dnas")
class DnasMethod(ResourceConstrainedMethod):
    """FBNet's DNAS: soft Gumbel-softmax op weights, geometric temperature, CE * alpha * log(LAT)^beta."""

    name = "dnas"

    def tau(self) -> float:
        s = self.settings
        high, low = float(s.option("tau_max")), float(s.option("tau_min"))
        return (
            high * (low / high) ** (self.epoch / max(1, self.epochs - 1)) if self.epoch < self.epochs else low
        )

    def op_weights(self) -> dict[str, torch.Tensor]:
        tau = self.tau()
        return {name: gumbel_softmax(alpha, tau, self.sample_generator) for name, alpha in self.alpha.items()}

    def expected_weights(self) -> dict[str, torch.Tensor]:
        return {name: torch.softmax(alpha, dim=-1) for name, alpha in self.alpha.items()}

    def latency_factor(self) -> torch.Tensor:
        """``alpha * log(LAT)^beta`` with ``LAT`` in units of target/e, floored at the target (differentiable)."""
        s = self.settings
        ratio = torch.clamp(self.expected_resource() / self.target, min=1.0)
        return float(s.option("latency_alpha")) * (1.0 + torch.log(ratio)) ** float(s.option("latency_beta"))

    def arch_loss(self, x: torch.Tensor, y: torch.Tensor, path: CellPath | None = None) -> torch.Tensor:
        logits = self.supernet(x, path if path is not None else self.arch_path())
        return nn.functional.cross_entropy(logits, y) * self.latency_factor() + self.regularization()

    def extra_metrics(self) -> dict[str, float]:
        return {**super().extra_metrics(), "tau": self.tau()}

    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        """The mixed path under softmax(alpha): same ops as a step, and no Gumbel draw spent on the probe."""
        return self.supernet(x, self.mixed_path(expected=True))


__all__ = ["DnasMethod"]
