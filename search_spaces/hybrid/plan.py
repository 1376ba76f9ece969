"""The hybrid space's vocabulary and block shapes (torch-free).

Shared by the space (:mod:`.space`), the network (:mod:`.model`) and the supernet.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPES: tuple[str, ...] = ("conv", "attn")
DOWNS: tuple[bool, ...] = (False, True)
WIDTHS: tuple[int, ...] = (1, 2)
#: The letter of each block type in the string form (``vA2``: down-sample, attention, width 2).
LETTERS: dict[str, str] = {"conv": "C", "attn": "A"}

#: Target width of one attention head.
HEAD_DIM = 32
MLP_RATIO = 4
#: Inputs whose smaller side is at least this get a stride-4 patchify stem.
PATCHIFY_MIN_SIZE = 64
PATCH = 4


def num_heads(channels: int) -> int:
    """About ``channels / HEAD_DIM`` heads, at least 1, and a divisor of ``channels``."""
    heads = max(1, channels // HEAD_DIM)
    while channels % heads:
        heads -= 1
    return heads


def stem_stride(input_shape: tuple[int, int, int]) -> int:
    """Stride of the stem for an input (C, H, W): patchify large images, keep tiny ones."""
    return PATCH if min(input_shape[1:]) >= PATCHIFY_MIN_SIZE else 1


@dataclass(frozen=True)
class BlockPlan:
    """Shape of one block: what the decisions mean in channels and strides."""

    name: str
    op: str
    width: int
    stride: int
    stage: int
    c_in: int
    c_out: int

    @property
    def heads(self) -> int:
        return num_heads(self.c_out) if self.op == "attn" else 0


__all__ = ["DOWNS", "LETTERS", "MLP_RATIO", "TYPES", "WIDTHS", "BlockPlan", "num_heads", "stem_stride"]
