"""``image_folder``: one sub-folder of images per class (optionally under ``train/`` and ``test/``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.data.dataset import Dataset
from nas.settings.dataset import DatasetConfig

#: File suffixes read by ``image_folder`` (all decoded by Pillow).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
_IMAGE_FOLDER_SIZE = 32


def load_image_folder(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    if config.path is None:  # DatasetConfig refuses this; kept for configs built with model_construct
        raise ConfigError("dataset 'image_folder' needs 'path': a directory with one sub-folder per class")
    root = Path(config.path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"image_folder path {root} is not a directory of class folders")
    size = config.image_size if config.image_size is not None else _IMAGE_FOLDER_SIZE
    height, width = (size, size) if isinstance(size, int) else size
    mode = "L" if config.grayscale else "RGB"
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ConfigError(f"image_folder {train_root} has {len(classes)} class folder(s); need at least 2")
    x_train, y_train = _read_images(train_root, classes, (height, width), mode, require_all=True)
    x_test = y_test = None
    if train_root != root and (root / "test").is_dir():
        x_test, y_test = _read_images(root / "test", classes, (height, width), mode, require_all=False)
    return Dataset.from_arrays(
        "image_folder",
        x_train,
        y_train,
        x_test,
        y_test,
        layout="NHWC",
        num_classes=len(classes),
        class_names=classes,
        info={"source": str(root), "image_size": [height, width], "mode": mode},
        **common,
    )


def _read_images(
    root: Path, classes: Sequence[str], size: tuple[int, int], mode: str, require_all: bool
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    extra = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in classes
    )
    if extra:
        raise ConfigError(
            f"image_folder {root} has class folder(s) {extra} that the training set lacks: {list(classes)}"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        files = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if folder.is_dir()
            else []
        )
        if not files and require_all:
            raise ConfigError(
                f"image_folder class folder {folder} has no images; allowed suffixes: {sorted(IMAGE_SUFFIXES)}"
            )
        for file in files:
            try:
                with Image.open(file) as image:
                    resized = image.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            except (OSError, UnidentifiedImageError) as exc:
                raise ConfigError(f"image_folder cannot read image {file}: {exc}") from exc
            array = np.asarray(resized, dtype=np.uint8)
            images.append(array[:, :, None] if array.ndim == 2 else array)
            labels.append(label)
    if not images:
        raise ConfigError(f"image_folder {root} has no images")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


__all__ = ["IMAGE_SUFFIXES", "load_image_folder"]
