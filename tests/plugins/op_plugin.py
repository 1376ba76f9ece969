"""A harmful cell op registered only by the tests: ``noise``, for the search-space poisoning test.

It keeps the input and adds Gaussian noise as large as the input's own
spread, in training and in evaluation alike: an ineffective op (it adds
nothing a network can use and destroys information) that has no weights, so
it sits among the parameter-free ops a supernet is tempted by. A space uses
it only when asked (``nb201``'s ``extra_ops: [noise]``), as a user's plugin
op would be used; see :mod:`search_spaces.op_registry` and
``tests/test_audit.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.op_registry import register_op


class Noise(nn.Module):
    """``x + N(0, std(x)^2)``: the input drowned in noise of its own scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) * x.detach().std()


@register_op("noise", parameter_free=True, spaces=("nb201",))
def noise(channels: int) -> nn.Module:
    return Noise()
