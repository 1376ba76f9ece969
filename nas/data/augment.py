"""The standard CIFAR augmentation (random crop with zero padding, horizontal flip), in two halves.

Drawing the random parameters and applying them are separate so that a
streaming loader can draw them in the training process, from the trial's
generator and in the same order as the in-memory loop, and apply them in its
data workers: both paths then see the same augmented batches for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Crops:
    """One batch's augmentation: crop offsets (top, left) into the padded image and which to flip."""

    top: torch.Tensor
    left: torch.Tensor
    flip: torch.Tensor


def crop_padding(height: int, width: int) -> int:
    """Zero padding on each side: 1/8 of the shorter side (4 px at 32x32), at least 1."""
    return max(1, min(height, width) // 8)


def draw_crops(count: int, height: int, width: int, generator: torch.Generator) -> Crops:
    """The random parameters of one batch of ``count`` images, drawn from ``generator``."""
    pad = crop_padding(height, width)
    top = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
    left = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
    flip = torch.rand(count, generator=generator) < 0.5
    return Crops(top, left, flip)


def apply_crops(images: torch.Tensor, crops: Crops) -> torch.Tensor:
    """Pad ``images`` (N x C x H x W), cut each at its offset, flip those marked."""
    n, c, h, w = images.shape
    pad = crop_padding(h, w)
    device = images.device
    padded = nn.functional.pad(images, (pad, pad, pad, pad))
    rows = (crops.top.to(device)[:, None] + torch.arange(h, device=device))[:, None, :, None]
    cols = (crops.left.to(device)[:, None] + torch.arange(w, device=device))[:, None, None, :]
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    cropped = padded[batch, channel, rows, cols]
    flip = crops.flip.to(device)[:, None, None, None]
    return torch.where(flip, cropped.flip(3), cropped)


__all__ = ["Crops", "apply_crops", "crop_padding", "draw_crops"]
