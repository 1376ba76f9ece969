"""What each candidate op of a supernet costs: its parameters and its FLOPs, per alpha group, edge and op.

Resource-aware one-shot methods price an architecture as a constant plus
one cost per (edge or layer, op) it picks: RC-DARTS and FBNet's DNAS bound
the expected cost under alpha (:mod:`nas.oneshot.resource`), GOLD-NAS
penalises the ops it keeps (:mod:`nas.oneshot.gold_nas`). Both read their
prices here, so an op costs the same wherever it is priced, and every
supernet that lists its candidate ops
(:meth:`~nas.supernet.CellSupernet.candidate_ops`: cell spaces and FBNet's
layers alike) can be priced without knowing how it mixes them.

* **parameters**: the op module's parameter count, summed over the cells
  that share the alpha row; the supernet's other parameters are the constant.
* **FLOPs**: the convolutions' and linear layers' FLOPs for one image, a
  multiply-add counted as 2, measured by one forward pass of the full mixed
  supernet (every op of every edge runs) with hooks on those layers; an op's
  FLOPs are its layers'. That is the unit of
  :attr:`search_spaces.base.ModelStats.flops` (torch's ``FlopCounterMode``,
  which counts the same layers), so a budget can be read off ``nas``'s model
  stats, and a derived sub-network whose skeleton is the supernet's (nb201)
  has exactly its priced FLOPs. Pooling, BatchNorm, activations and sums
  are not counted (a small share, and not what FLOPs budgets in the NAS
  literature count).
  Shapes do not depend on the op weights, so one pass prices every op; the
  supernet runs in eval mode for it, so no BatchNorm statistic changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.supernet.base import CellPath, CellSupernet

#: The two prices of an op.
PARAMS = "params"
FLOPS = "flops"
PRICES = (PARAMS, FLOPS)


@dataclass(frozen=True)
class OpPrices:
    """Per alpha group, ``(edges, ops)`` prices of every candidate op, and the whole supernet's totals."""

    params: Mapping[str, np.ndarray]
    flops: Mapping[str, np.ndarray]
    total_params: float
    total_flops: float

    def costs(self, price: str) -> Mapping[str, np.ndarray]:
        """The per-op matrices of ``price`` (``params`` or ``flops``)."""
        return {PARAMS: self.params, FLOPS: self.flops}[_checked(price)]

    def constant(self, price: str) -> float:
        """What every architecture pays whatever it picks: the total minus all candidate ops' prices."""
        total = self.total_params if _checked(price) == PARAMS else self.total_flops
        return total - float(sum(c.sum() for c in self.costs(price).values()))


def _checked(price: str) -> str:
    if price not in PRICES:
        raise ConfigError(f"unknown op price {price!r}; allowed: {', '.join(PRICES)}")
    return price


def layer_flops(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> float:
    """FLOPs (2 per multiply-add, bias not counted) of one call of a ``Conv2d`` or ``Linear`` per sample."""
    if isinstance(module, nn.Conv2d):
        fan_in = module.in_channels // module.groups * int(np.prod(module.kernel_size))
    else:
        fan_in = module.in_features  # type: ignore[assignment]
    return 2.0 * output.numel() / len(inputs[0]) * fan_in


def price_ops(supernet: CellSupernet, input_shape: tuple[int, ...]) -> OpPrices:
    """Parameters and FLOPs of every candidate op of ``supernet`` for inputs of ``input_shape`` (C, H, W)."""
    groups = {g.name: g for g in supernet.groups}
    params = {name: np.zeros(g.shape) for name, g in groups.items()}
    flops = {name: np.zeros(g.shape) for name, g in groups.items()}
    counted: dict[nn.Module, float] = {}

    def count(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        counted[module] = counted.get(module, 0.0) + layer_flops(module, inputs, output)

    device = next(supernet.parameters()).device
    everything = CellPath(weights={name: torch.ones(g.shape, device=device) for name, g in groups.items()})
    modes = {m: m.training for m in supernet.modules()}
    layers = [m for m in supernet.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(count) for m in layers]
    try:
        supernet.eval()
        with torch.no_grad():
            supernet(torch.zeros(2, *input_shape, device=device), everything)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    priced = set()
    for group, edge, op, module in supernet.candidate_ops():
        params[group][edge, op] += sum(p.numel() for p in module.parameters())
        flops[group][edge, op] += sum(counted.get(m, 0.0) for m in module.modules())
        priced.add(group)
    if missing := sorted(set(groups) - priced):
        raise ConfigError(
            f"{type(supernet).__name__}.candidate_ops() lists no op of alpha group(s) {missing}, "
            "so they cannot be priced"
        )
    return OpPrices(
        params=params,
        flops=flops,
        total_params=float(sum(p.numel() for p in supernet.parameters())),
        total_flops=float(sum(counted.values())),
    )


__all__ = ["FLOPS", "PARAMS", "PRICES", "OpPrices", "layer_flops", "price_ops"]
