"""``npy``: a directory with ``x_train.npy`` and ``y_train.npy`` (optionally ``x_test.npy``, ``y_test.npy``).

Images are N x H x W x C (C of 1 or 3), N x C x H x W, or N x H x W; the
layout is read from the shape. The files are opened memory-mapped, so
checking them and choosing in-memory or streaming reads headers only; a
streamed split reads its rows in the data workers (:class:`~nas.data.streaming.NpyRows`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.data.choice import wants_streaming
from nas.data.dataset import Dataset
from nas.settings.dataset import DatasetConfig

logger = logging.getLogger(__name__)


def load_npy(config: DatasetConfig, common: dict[str, Any]) -> Any:
    """The arrays in memory, or streamed from their memory maps (explicit, or above the threshold)."""
    root = Path(str(config.path)).expanduser()
    if not root.is_dir():
        raise ConfigError(f"npy path {root} is not a directory with x_train.npy and y_train.npy")
    x_train, y_train = _pair(root, "train", required=True)
    x_test, y_test = _pair(root, "test", required=False)
    layout = _layout(root / "x_train.npy", x_train)
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise ConfigError(
            f"npy {root}: x_test.npy has image shape {x_test.shape[1:]}, x_train.npy has {x_train.shape[1:]}"
        )
    labels = np.asarray(y_train).astype(np.int64)
    test_labels = None if y_test is None else np.asarray(y_test).astype(np.int64)
    num_classes = int(max(labels.max(), -1 if test_labels is None else test_labels.max())) + 1
    info = {"source": str(root)}
    if not wants_streaming(config, x_train[0].size * len(x_train) * 4, f"npy {root}"):
        return Dataset.from_arrays(
            "npy",
            np.asarray(x_train),
            labels,
            None if x_test is None else np.asarray(x_test),
            test_labels,
            layout=layout,
            num_classes=num_classes,
            info=info,
            **common,
        )
    from nas.data.streaming import NpyRows, StreamingDataset

    test = None if x_test is None else NpyRows(str(root / "x_test.npy"), layout)
    return StreamingDataset.prepare(
        "npy",
        NpyRows(str(root / "x_train.npy"), layout),
        labels,
        test,
        test_labels,
        num_classes=num_classes,
        info=info,
        loader_workers=config.loader_workers,
        **common,
    )


def _pair(root: Path, split: str, *, required: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    x_path, y_path = root / f"x_{split}.npy", root / f"y_{split}.npy"
    if not x_path.exists() and not y_path.exists() and not required:
        return None, None
    arrays = []
    for path in (x_path, y_path):
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"npy {root}: cannot read {path.name}: {exc}") from exc
    x, y = arrays
    if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(
            f"npy {root}: {y_path.name} must be an integer vector as long as {x_path.name} "
            f"({len(x)} images), got dtype {y.dtype} and shape {y.shape}"
        )
    if len(y) and y.min() < 0:
        raise ConfigError(f"npy {root}: {y_path.name} has negative label {y.min()}; labels are 0..K-1")
    return x, y


def _layout(path: Path, x: np.ndarray) -> str:
    if x.ndim == 3:
        return "NCHW"  # N x H x W: one channel, added by the readers
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return "NHWC"
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return "NCHW"
    raise ConfigError(
        f"npy {path} has shape {x.shape}; expected N x H x W x C or N x C x H x W with C of 1 or 3, or N x H x W"
    )


__all__ = ["load_npy"]
