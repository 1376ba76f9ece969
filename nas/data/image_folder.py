"""``image_folder``: one sub-folder of images per class (optionally under ``train/`` and ``test/``).

Every file is checked before any trial starts (:func:`scan_image_folder`):
Pillow must recognise it (``verify``), class folders must be the same in
``train/`` and ``test/``, and images of different sizes need an explicit
``image_size`` (resizing distorts them, so it is the user's call); different
modes (RGB, RGBA, palette, grey) are converted to RGB, or to L with
``grayscale: true``. An unreadable file fails the load, or with
``on_error: skip`` is left out and counted (logged and recorded in the
dataset's ``info``), never silently. The scan opens file headers only, so it
is cheap next to decoding; what it finds is then decoded into one array
(small sets) or streamed by data workers (:mod:`nas.data.streaming`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.data.choice import wants_streaming
from nas.data.consistency import check_consistent
from nas.data.dataset import Dataset
from nas.data.images import IMAGE_SUFFIXES, decode_image
from nas.settings.dataset import DatasetConfig

logger = logging.getLogger(__name__)

_IMAGE_FOLDER_SIZE = 32
#: How many skipped files the dataset's ``info`` names (the count is always complete).
_NAMED_SKIPS = 10


@dataclass(frozen=True)
class FolderScan:
    """What an image folder holds, checked: classes, files (relative to ``root``) and labels per split."""

    root: Path
    classes: tuple[str, ...]
    size: tuple[int, int]
    mode: str
    train_files: tuple[str, ...]
    train_labels: np.ndarray
    test_files: tuple[str, ...] = ()
    test_labels: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)

    @property
    def info(self) -> dict[str, Any]:
        """For the dataset's ``info``: where it came from, how images were prepared, what was skipped."""
        info: dict[str, Any] = {
            "source": str(self.root),
            "image_size": list(self.size),
            "mode": self.mode,
            "file_modes": self.modes,
        }
        if self.skipped:
            info["skipped"] = {"count": len(self.skipped), "files": self.skipped[:_NAMED_SKIPS]}
        return info

    def decoded_bytes(self) -> int:
        """What the training images take decoded as float32 (the in-memory path's array)."""
        channels = 1 if self.mode == "L" else 3
        return len(self.train_files) * channels * self.size[0] * self.size[1] * 4


def scan_image_folder(config: DatasetConfig) -> FolderScan:
    """Check an image folder and list its files; every problem is a ConfigError naming what and where."""
    if config.path is None:  # DatasetConfig refuses this; kept for configs built with model_construct
        raise ConfigError("dataset 'image_folder' needs 'path': a directory with one sub-folder per class")
    root = Path(config.path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"image_folder path {root} is not a directory of class folders")
    mode = "L" if config.grayscale else "RGB"
    skip = config.on_error == "skip"
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = _class_folders(train_root)
    if len(classes) < 2:
        raise ConfigError(f"image_folder {train_root} has {len(classes)} class folder(s); need at least 2")
    skipped: list[str] = []
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    train = _list_split(root, train_root, classes, skip, skipped, sizes, modes, require_all=True)
    test: tuple[list[str], list[int]] = ([], [])
    if train_root != root and (root / "test").is_dir():
        found = {"classes": list(_class_folders(root / "test"))}
        check_consistent(f"image_folder {root}", "test", found, "train", {"classes": list(classes)})
        test = _list_split(root, root / "test", classes, skip, skipped, sizes, modes, require_all=False)
    if skipped:
        logger.warning(
            "image_folder %s: skipped %d unreadable file(s) (on_error: skip), e.g. %s",
            root,
            len(skipped),
            skipped[0],
        )
    if config.image_size is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(3))
        raise ConfigError(
            f"image_folder {root} mixes {len(sizes)} image sizes (width x height: {shown}, ...); "
            "set image_size: [height, width] to resize them all"
        )
    size = config.image_size if config.image_size is not None else _IMAGE_FOLDER_SIZE
    height, width = (size, size) if isinstance(size, int) else size
    return FolderScan(
        root=root,
        classes=classes,
        size=(height, width),
        mode=mode,
        train_files=tuple(train[0]),
        train_labels=np.asarray(train[1], dtype=np.int64),
        test_files=tuple(test[0]),
        test_labels=np.asarray(test[1], dtype=np.int64) if test[0] else None,
        skipped=skipped,
        modes=dict(sorted(modes.items())),
    )


def _class_folders(root: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))


def _list_split(
    base: Path,
    root: Path,
    classes: Sequence[str],
    skip: bool,
    skipped: list[str],
    sizes: Counter[tuple[int, int]],
    modes: Counter[str],
    *,
    require_all: bool,
) -> tuple[list[str], list[int]]:
    """The readable image files of one split (relative to the dataset root) and their labels."""
    from PIL import Image, UnidentifiedImageError

    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        found = 0
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(path) as image:
                    size, mode = image.size, image.mode
                    image.verify()  # reads the file through (chunk checksums for PNG) without decoding
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
                if not skip:
                    raise ConfigError(
                        f"image_folder cannot read image {path}: {exc} (on_error: skip leaves such files "
                        "out, counted; the default, fail, stops here)"
                    ) from exc
                skipped.append(str(path))
                continue
            sizes[size] += 1
            modes[mode] += 1
            files.append(str(path.relative_to(base)))
            labels.append(label)
            found += 1
        if not found and require_all:
            raise ConfigError(
                f"image_folder class folder {folder} has no images (none readable); "
                f"allowed suffixes: {sorted(IMAGE_SUFFIXES)}"
            )
    return files, labels


def load_image_folder(config: DatasetConfig, common: dict[str, Any]) -> Any:
    """The folder in memory, or as a :class:`~nas.data.streaming.StreamingDataset` (explicit or by size)."""
    scan = scan_image_folder(config)
    if wants_streaming(config, scan.decoded_bytes(), f"image_folder {scan.root}"):
        from nas.data.streaming import ImageFiles, StreamingDataset

        test = None
        if scan.test_files:
            test = ImageFiles(str(scan.root), scan.test_files, scan.size, scan.mode)
        return StreamingDataset.prepare(
            "image_folder",
            ImageFiles(str(scan.root), scan.train_files, scan.size, scan.mode),
            scan.train_labels,
            test,
            scan.test_labels,
            num_classes=len(scan.classes),
            class_names=scan.classes,
            info=scan.info,
            loader_workers=config.loader_workers,
            **common,
        )
    x_train = _decode_all(scan.root, scan.train_files, scan.size, scan.mode)
    x_test = _decode_all(scan.root, scan.test_files, scan.size, scan.mode) if scan.test_files else None
    return Dataset.from_arrays(
        "image_folder",
        x_train,
        scan.train_labels,
        x_test,
        scan.test_labels,
        layout="NHWC",
        num_classes=len(scan.classes),
        class_names=scan.classes,
        info=scan.info,
        **common,
    )


def _decode_all(root: Path, files: Sequence[str], size: tuple[int, int], mode: str) -> np.ndarray:
    try:
        return np.stack([decode_image(root / file, size, mode) for file in files])
    except OSError as exc:  # verified by the scan; damaged pixel data still shows only when decoding
        raise ConfigError(f"image_folder {root}: cannot decode an image: {exc}") from exc


__all__ = ["IMAGE_SUFFIXES", "FolderScan", "decode_image", "load_image_folder", "scan_image_folder"]
