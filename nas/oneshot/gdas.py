"""GDAS (Dong & Yang 2019): one Gumbel-softmax-sampled op per edge, on the alpha loop.

Hooks: the architecture and weight steps run a straight-through one-hot
Gumbel-softmax sample (temperature annealed linearly from ``tau_max`` to
``tau_min``); only the sampled op runs, yet every alpha gets a gradient.
Validation runs the argmax path.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.supernet.base import CellPath


def gumbel_softmax(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """``softmax((log_softmax(alpha) + g) / tau)`` per row, Gumbel noise ``g`` drawn from ``generator``."""
    noise = torch.empty(alpha.shape).exponential_(generator=generator).clamp_min(1e-20)
    gumbel = -noise.log().to(alpha.device)
    return torch.softmax((torch.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)


@ONESHOT.register("gdas")
class GdasMethod(DifferentiableMethod):
    """GDAS: one Gumbel-softmax-sampled op per edge, temperature annealed over the epochs."""

    name = "gdas"

    def tau(self) -> float:
        s = self.settings
        high, low = float(s.option("tau_max")), float(s.option("tau_min"))
        return max(low, high - (high - low) * self.epoch / max(1, self.epochs - 1))

    def sample_path(self) -> CellPath:
        """A straight-through Gumbel-softmax sample per edge (from the method's own generator)."""
        tau = self.tau()
        weights, index = {}, {}
        for name, alpha in self.alpha.items():
            probs = gumbel_softmax(alpha, tau, self.sample_generator)
            chosen = probs.argmax(dim=-1)
            onehot = nn.functional.one_hot(chosen, alpha.shape[-1]).to(probs.dtype)
            weights[name] = onehot - probs.detach() + probs
            index[name] = [int(i) for i in chosen.tolist()]
        return CellPath(weights=weights, index=index)

    def argmax_path(self) -> CellPath:
        weights, index = {}, {}
        for name, alpha in self.alpha.items():
            chosen = alpha.detach().argmax(dim=-1)
            weights[name] = nn.functional.one_hot(chosen, alpha.shape[-1]).to(alpha.dtype)
            index[name] = [int(i) for i in chosen.tolist()]
        return CellPath(weights=weights, index=index)

    def train_path(self) -> CellPath:
        path = self.sample_path()
        return CellPath(weights={k: v.detach() for k, v in path.weights.items()}, index=path.index)

    def arch_path(self) -> CellPath:
        return self.sample_path()

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return self.supernet(x, self.argmax_path())

    def extra_metrics(self) -> dict[str, float]:
        return {"tau": self.tau()}

    def probe_paths(self) -> list[Any]:
        """Every op on every edge in turn: the heaviest op decides GDAS' peak memory."""
        return list(range(len(self.supernet.groups[0].ops)))

    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        weights, index = {}, {}
        for group in self.supernet.groups:
            onehot = torch.zeros(group.shape, device=x.device)
            onehot[:, int(path)] = 1.0
            weights[group.name] = onehot + 0.0 * self.alpha[group.name]  # keep alpha in the graph
            index[group.name] = [int(path)] * group.shape[0]
        return self.supernet(x, CellPath(weights=weights, index=index))


__all__ = ["GdasMethod", "gumbel_softmax"]
