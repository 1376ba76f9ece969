"""A minimal zero-cost proxy plugin: the size of the network's output on the batch.

A proxy is a function ``(model, x, y, loss_fn) -> float`` registered with
:func:`predictors.zero_cost.register_proxy`, which records whether the batch's
values matter (``uses_data``) and whether labels are needed. The model is a
throwaway copy (or built for the proxy), so the function may change it. It must
pass every contract test in tests/test_proxies.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from predictors.zero_cost import register_proxy


@register_proxy("plugin_output_norm", uses_data=True, needs_labels=False)
def output_norm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., torch.Tensor]
) -> float:
    """Mean absolute logit at initialisation (a crude signal-propagation score)."""
    with torch.no_grad():
        return float(model(x).abs().mean())
