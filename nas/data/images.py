"""Decoding one image file the one way every loader does (in memory or in a streaming worker).

Its own module so that the image-folder scan and the streaming readers share
it without importing each other.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

#: File suffixes read by ``image_folder`` (all decoded by Pillow).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)


def decode_image(path: Path | str | bytes, size: tuple[int, int], mode: str) -> np.ndarray:
    """One file as uint8 H x W x C, converted to ``mode`` and resized (bilinear) to ``size`` (h, w).

    ``path`` may also be the encoded file itself (bytes, as a Parquet shard stores it).
    """
    from PIL import Image

    with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path) as image:
        resized = image.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


class ImageSource(Protocol):
    """Images by position, as C x H x W arrays of one shape (picklable: names, not pixels)."""

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def __len__(self) -> int: ...

    def read(self, position: int) -> np.ndarray: ...


def read_images(source: ImageSource, positions: Iterable[int] | np.ndarray) -> np.ndarray:
    """The images at ``positions`` stacked as N x C x H x W (raw dtype)."""
    return np.ascontiguousarray(np.stack([source.read(int(p)) for p in positions]))


__all__ = ["IMAGE_SUFFIXES", "ImageSource", "decode_image", "read_images"]
