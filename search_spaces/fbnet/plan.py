"""FBNet's skeleton in numbers: the blocks, the stages and each layer's shape (torch-free).

Shared by the space (:mod:`.space`), the network (:mod:`.model`) and the supernet.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Block name -> (kernel, expansion, groups of the 1x1 convs); ``skip`` has no entry.
MBCONV: dict[str, tuple[int, int, int]] = {
    "k3_e1": (3, 1, 1),
    "k3_e1_g2": (3, 1, 2),
    "k3_e3": (3, 3, 1),
    "k3_e6": (3, 6, 1),
    "k5_e1": (5, 1, 1),
    "k5_e1_g2": (5, 1, 2),
    "k5_e3": (5, 3, 1),
    "k5_e6": (5, 6, 1),
}
SKIP = "skip"
#: The nine blocks in HW-NAS-Bench's order.
BLOCKS: tuple[str, ...] = (*MBCONV, SKIP)

STEM_CHANNELS = 16
#: (layers, channels, stride of the first layer) per stage.
STAGES: tuple[tuple[int, int, int], ...] = (
    (1, 16, 1),
    (4, 24, 2),
    (4, 32, 2),
    (4, 64, 2),
    (4, 112, 1),
    (4, 184, 2),
    (1, 352, 1),
)
HEAD_CHANNELS = 1984
NUM_LAYERS = sum(n for n, _, _ in STAGES)
LAYER_NAMES: tuple[str, ...] = tuple(f"layer{i:02d}" for i in range(NUM_LAYERS))

#: Channel counts are multiples of this (FBNet's and MobileNet's divisor).
CHANNEL_DIVISOR = 8
MAX_WIDTH_MULT = 4.0


def round_channels(channels: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Nearest multiple of ``divisor`` (at least ``divisor``), never more than 10% below.

    MobileNet's ``make_divisible`` rule: multiples of 8 keep grouped convs and
    hardware kernels happy, and the 10% rule stops small widths collapsing.
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class LayerPlan:
    """Shape of one searchable layer for a given width multiplier."""

    name: str
    stage: int
    c_in: int
    c_out: int
    stride: int

    @property
    def keeps_shape(self) -> bool:
        """True where ``skip`` is the identity and MBConv blocks add a residual."""
        return self.stride == 1 and self.c_in == self.c_out


def layer_plan(width_mult: float) -> tuple[LayerPlan, ...]:
    """The 22 layers' shapes for ``width_mult``."""
    plans = []
    c_in = round_channels(STEM_CHANNELS * width_mult)
    for stage, (layers, channels, stride) in enumerate(STAGES):
        c_out = round_channels(channels * width_mult)
        for j in range(layers):
            plans.append(LayerPlan(LAYER_NAMES[len(plans)], stage, c_in, c_out, stride if j == 0 else 1))
            c_in = c_out
    return tuple(plans)


__all__ = [
    "BLOCKS",
    "HEAD_CHANNELS",
    "LAYER_NAMES",
    "MBCONV",
    "NUM_LAYERS",
    "SKIP",
    "STAGES",
    "LayerPlan",
    "layer_plan",
    "round_channels",
]
