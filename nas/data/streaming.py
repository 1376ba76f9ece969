"""Streaming datasets: the driver holds references (files, positions, labels), data workers read.

A :class:`StreamingDataset` is what a large source becomes instead of a
:class:`~nas.data.Dataset`: the list of its images (an :class:`ImageFiles`
of an image folder, or the rows of a memory-mapped ``.npy``,
:class:`NpyRows`), all labels, and the training and validation positions of
the one split rule (:func:`~nas.data.dataset.split_indices`, seeded and
recorded as ``info["split"]``). Pickling it (Ray ships it to every trial)
copies names and integers, never pixels. Per-channel mean and std come from
the training split, from a stratified sample of at most
:data:`STATS_SAMPLE` images (all of them below that, which makes a small
folder standardise exactly like its in-memory copy).

In a trial, :meth:`StreamingDataset.loader` gives a split as
:class:`~nas.data.batching.Batches` backed by a PyTorch ``DataLoader``:
the training process draws each epoch's order and augmentation from the
trial's generator (cheap integers), and ``loader_workers`` worker processes
read, decode, resize, standardise and augment whole batches, a few ahead of
the loop. The loop itself only moves tensors to the device.

Sources: :class:`ImageFiles` (an image folder), :class:`NpyRows` (a
memory-mapped ``.npy``) and :class:`~nas.data.shards.ParquetRows` (Parquet
shards of encoded images).

Ray Data is not imported here: ``nas.data`` is below ``nas.runner``, the
only Ray importer (docs/architecture.md). With ``dataset.reader: ray`` the
runner sets :attr:`StreamingDataset.reader` to its Ray Data reader
(:mod:`nas.runner.ray_data`), which hands the trial the same
:class:`~nas.data.batching.Batches` interface.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from nas.core.errors import ConfigError
from nas.data.augment import Crops, apply_crops, draw_crops
from nas.data.batching import Batch, Batches, index_batches
from nas.data.dataset import (
    DatasetReport,
    split_indices,
    split_record,
    standardisation,
    standardised,
    stratified_pick,
)
from nas.data.images import ImageSource, decode_image, read_images

#: Training images read (in the driver) for the per-channel mean and std.
STATS_SAMPLE = 2048
#: Data-loader worker processes per trial when the config does not say.
DEFAULT_LOADER_WORKERS = 2


@dataclass(frozen=True)
class ImageFiles:
    """Image files under ``root`` (paths relative to it), converted to ``mode`` and resized to ``size``."""

    root: str
    files: tuple[str, ...]
    size: tuple[int, int]
    mode: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1 if self.mode == "L" else 3, *self.size)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, position: int) -> np.ndarray:
        path = Path(self.root) / self.files[position]
        try:
            return decode_image(path, self.size, self.mode).transpose(2, 0, 1)
        except OSError as exc:  # verified before the search; damaged pixel data shows only here
            raise ConfigError(f"image_folder cannot decode image {path}: {exc}") from exc


@dataclass(frozen=True)
class NpyRows:
    """Rows of a ``.npy`` image array, memory-mapped (opened once per process, never pickled)."""

    path: str
    layout: str
    _array: list[np.ndarray] = field(default_factory=list, compare=False, repr=False)

    def array(self) -> np.ndarray:
        if not self._array:
            self._array.append(np.load(self.path, mmap_mode="r"))
        return self._array[0]

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "layout": self.layout, "_array": []}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def shape(self) -> tuple[int, int, int]:
        shape = self.array().shape[1:]
        if len(shape) == 2:
            return (1, *shape)
        return shape if self.layout == "NCHW" else (shape[2], shape[0], shape[1])

    def __len__(self) -> int:
        return len(self.array())

    def read(self, position: int) -> np.ndarray:
        row = np.asarray(self.array()[position])
        if row.ndim == 2:
            return row[None]
        return row if self.layout == "NCHW" else row.transpose(2, 0, 1)


class SplitReader(Protocol):
    """Reads one split of a :class:`StreamingDataset` another way than DataLoader workers (picklable)."""

    def batches(self, dataset: StreamingDataset, positions: np.ndarray, *, pin: bool = False) -> Batches:
        """The images at ``positions`` as :class:`~nas.data.batching.Batches`."""


@dataclass(frozen=True, eq=False)
class StreamingDataset(DatasetReport):
    """A dataset read batch by batch from its source; the same split and preprocessing as in memory."""

    streaming: ClassVar[bool] = True
    name: str
    source: ImageSource
    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    num_classes: int
    test_source: ImageSource | None = None
    test_labels: np.ndarray | None = None
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    loader_workers: int = DEFAULT_LOADER_WORKERS
    #: Who reads a split in a trial; ``None``: this module's DataLoader workers. The runner sets a
    #: Ray Data reader here (``dataset.reader: ray``); ``nas.data`` itself never imports Ray.
    reader: SplitReader | None = None

    @classmethod
    def prepare(
        cls,
        name: str,
        source: ImageSource,
        labels: np.ndarray,
        test_source: ImageSource | None = None,
        test_labels: np.ndarray | None = None,
        *,
        num_classes: int,
        val_fraction: float,
        seed: int,
        limit: int | None = None,
        scale: float | None = None,
        class_names: Sequence[str] | None = None,
        info: Mapping[str, Any] | None = None,
        loader_workers: int | None = None,
    ) -> StreamingDataset:
        """Split (the in-memory rule), measure mean and std on the training split, keep references."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(source):
            raise ConfigError(f"dataset {name!r}: {len(source)} images but {len(labels)} labels")
        train, val = split_indices(name, labels, val_fraction=val_fraction, seed=seed, limit=limit)
        sample = train
        if len(train) > STATS_SAMPLE:
            sample = train[
                stratified_pick(labels[train], STATS_SAMPLE, seed + 2, what=f"dataset {name!r} stats")
            ]
        scale, mean, std = standardisation(read_images(source, sample), scale)
        return cls(
            name=name,
            source=source,
            labels=labels,
            train=train,
            val=val,
            num_classes=num_classes,
            test_source=test_source,
            test_labels=test_labels,
            scale=scale,
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
            class_names=None if class_names is None else tuple(class_names),
            info={
                **dict(info or {}),
                "streaming": True,
                "stats_sample": len(sample),
                "split": split_record(len(val), val),
            },
            loader_workers=DEFAULT_LOADER_WORKERS if loader_workers is None else loader_workers,
        )

    # -- what the trial and the records read (the same names as Dataset) ----------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.source.shape
        return int(c), int(h), int(w)

    def split_sizes(self) -> tuple[int, int, int]:
        """Images in the train, validation and test splits (0 without a test split)."""
        return len(self.train), len(self.val), 0 if self.test_labels is None else len(self.test_labels)

    @property
    def y_train(self) -> np.ndarray:
        return self.labels[self.train]

    @property
    def y_val(self) -> np.ndarray:
        return self.labels[self.val]

    @property
    def x_test(self) -> None:
        """No test array: a streamed test split is read through ``test_source`` (export only)."""
        return None

    def loader(self, split: str, *, pin: bool = False) -> Batches:
        """The ``train`` or ``val`` split as batches read by data workers (or by :attr:`reader`)."""
        positions = {"train": self.train, "val": self.val}[split]
        if self.reader is not None:
            return self.reader.batches(self, positions, pin=pin)
        return StreamBatches(self, positions, pin=pin)


class StreamBatches:
    """One split of a :class:`StreamingDataset`, read per epoch by a ``DataLoader`` over whole batches."""

    def __init__(self, dataset: StreamingDataset, positions: np.ndarray, *, pin: bool = False) -> None:
        self.dataset, self.positions, self.pin = dataset, positions, pin

    def __len__(self) -> int:
        return len(self.positions)

    def epoch(
        self, batch_size: int, generator: torch.Generator | None = None, augment: bool = False
    ) -> Iterator[Batch]:
        """Order and augmentation drawn here (as in memory), pixels read by the workers."""
        _, height, width = self.dataset.input_shape
        jobs: list[tuple[np.ndarray, Crops | None]] = []
        for index in index_batches(len(self.positions), batch_size, generator):
            crops = draw_crops(len(index), height, width, generator) if augment and generator else None
            jobs.append((self.positions[index.numpy()], crops))
        workers = self.dataset.loader_workers
        loader = torch.utils.data.DataLoader(
            _BatchReader(self.dataset, jobs),
            batch_size=None,
            shuffle=False,
            num_workers=workers,
            pin_memory=self.pin,
            worker_init_fn=_one_thread if workers else None,
            prefetch_factor=2 if workers else None,
        )
        yield from loader


class _BatchReader(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Item ``k`` is the ``k``-th batch of the epoch: read, standardised and augmented in a worker."""

    def __init__(self, dataset: StreamingDataset, jobs: list[tuple[np.ndarray, Crops | None]]) -> None:
        self.source, self.labels = dataset.source, dataset.labels
        self.scale, self.mean, self.std = dataset.scale, dataset.mean, dataset.std
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, k: int) -> Batch:
        positions, crops = self.jobs[k]
        x = torch.from_numpy(
            standardised(read_images(self.source, positions), self.scale, self.mean, self.std)
        )
        if crops is not None:
            x = apply_crops(x, crops)
        return x, torch.from_numpy(self.labels[positions])


def _one_thread(_: int) -> None:
    """Data workers decode; one intra-op thread each keeps them off the training threads' cores."""
    torch.set_num_threads(1)


__all__ = [
    "DEFAULT_LOADER_WORKERS",
    "STATS_SAMPLE",
    "ImageFiles",
    "ImageSource",  # re-exported from nas.data.images
    "NpyRows",
    "SplitReader",
    "StreamBatches",
    "StreamingDataset",
    "read_images",
]
