"""Torch side of the space interface: building models and measuring them.

Every built-in space derives from :class:`TorchSpace`, which adds parameter and
FLOP counting of the built model on top of the kernel's torch-free
:class:`nas.core.SearchSpace`. This module imports torch only when a model is
measured, so spaces (decisions, sampling, keys) stay usable without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.core import Architecture, ConfigError, SearchSpace

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelStats:
    """Size and cost of a model for one input shape (batch 1)."""

    params: int
    flops: int  # multiply-adds counted as 2 FLOPs, as torch's FlopCounterMode does


def check_input_shape(space: str, input_shape: object) -> tuple[int, int, int]:
    """Validate a (C, H, W) input shape, naming the bad value."""
    if (
        not isinstance(input_shape, tuple | list)
        or len(input_shape) != 3
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    ):
        raise ConfigError(
            f"{space}: input_shape={input_shape!r} is not allowed; expected (C, H, W) positive ints"
        )
    return tuple(input_shape)  # type: ignore[return-value]


def check_num_classes(space: str, num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"{space}: num_classes={num_classes!r} is not allowed; expected an integer >= 1")
    return num_classes


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: torch.nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs of one batch-1 forward pass in eval mode, counted by torch itself."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


class TorchSpace(SearchSpace):
    """A search space whose architectures compile to ``torch.nn.Module``.

    :meth:`build` checks the architecture, the input shape and the class
    count once for every space, then asks :meth:`network` for the module, so
    a space writes only what differs: how a valid architecture becomes a network.
    """

    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (3, 32, 32),
    ) -> torch.nn.Module:
        self.validate(arch)
        shape = check_input_shape(self.name, input_shape)
        return self.network(arch, check_num_classes(self.name, num_classes), shape)

    def network(
        self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]
    ) -> torch.nn.Module:
        """The network of a valid ``arch`` for checked ``num_classes`` and ``input_shape``."""
        raise NotImplementedError(f"space {self.name!r} defines neither build() nor network()")

    def stats(
        self,
        arch: Architecture,
        input_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 10,
    ) -> ModelStats:
        model = self.build(arch, num_classes=num_classes, input_shape=input_shape)
        return ModelStats(params=count_params(model), flops=count_flops(model, input_shape))
