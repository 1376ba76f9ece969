"""Decoding one image file the one way every loader does (in memory or in a streaming worker).

Its own module so that the image-folder scan and the streaming readers share
it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: File suffixes read by ``image_folder`` (all decoded by Pillow).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)


def decode_image(path: Path | str, size: tuple[int, int], mode: str) -> np.ndarray:
    """One file as uint8 H x W x C, converted to ``mode`` and resized (bilinear) to ``size`` (h, w)."""
    from PIL import Image

    with Image.open(path) as image:
        resized = image.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


__all__ = ["IMAGE_SUFFIXES", "decode_image"]
