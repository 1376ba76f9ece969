"""Batches of a split, in memory or streamed: one rule for order and augmentation, two ways to read.

The training loop asks a :class:`Batches` for an epoch and gets ``(x, y)``
CPU tensors. Both kinds draw the epoch's order from the trial's generator
with :func:`index_batches` and then one batch's augmentation after the
other (:func:`~nas.data.augment.draw_crops`), so for one seed an in-memory
dataset and a streamed copy of the same files give the same batches; the
streamed kind only moves reading, decoding, standardising and augmenting
into data workers (:mod:`nas.data.streaming`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from nas.data.augment import apply_crops, draw_crops

Batch = tuple[torch.Tensor, torch.Tensor]


def index_batches(count: int, size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches of a (shuffled, if ``generator``) epoch; a trailing batch of one is dropped.

    BatchNorm cannot normalise a batch of one sample in training mode, so such
    a remainder would crash some architectures and not others.
    """
    order = torch.randperm(count, generator=generator) if generator is not None else torch.arange(count)
    chunks = list(order.split(size))
    if len(chunks) > 1 and len(chunks[-1]) == 1 and generator is not None:
        chunks.pop()
    return chunks


def steps_per_epoch(count: int, size: int) -> int:
    """How many batches :func:`index_batches` gives for a shuffled epoch of ``count`` images."""
    steps = -(-count // size)
    return steps - 1 if steps > 1 and count % size == 1 else steps


class Batches(Protocol):
    """One split, read batch by batch."""

    def __len__(self) -> int:
        """Images in the split."""

    def epoch(
        self, batch_size: int, generator: torch.Generator | None = None, augment: bool = False
    ) -> Iterator[Batch]:
        """The split once, shuffled and augmented with ``generator`` (in order if ``None``)."""


class ArrayBatches:
    """A split held in memory as tensors (pinned on CUDA, so copies to the GPU are asynchronous)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, pin: bool = False) -> None:
        with warnings.catch_warnings():  # read-only arrays: indexing copies, nothing writes to them
            warnings.simplefilter("ignore", UserWarning)
            self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)
        if pin:
            self.images, self.labels = self.images.pin_memory(), self.labels.pin_memory()

    def __len__(self) -> int:
        return len(self.labels)

    def epoch(
        self, batch_size: int, generator: torch.Generator | None = None, augment: bool = False
    ) -> Iterator[Batch]:
        for index in index_batches(len(self.labels), batch_size, generator):
            x = self.images[index]
            if augment and generator is not None:
                x = apply_crops(x, draw_crops(len(index), x.shape[2], x.shape[3], generator))
            yield x, self.labels[index]


def split_batches(dataset: Any, split: str, *, pin: bool = False) -> Batches:
    """The ``train`` or ``val`` split of a dataset (in memory or streaming) as :class:`Batches`."""
    if split not in ("train", "val"):
        raise ValueError(f"split {split!r}: expected 'train' or 'val' (a search never reads 'test')")
    loader = getattr(dataset, "loader", None)
    if callable(loader):
        return loader(split, pin=pin)
    return ArrayBatches(getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}"), pin=pin)


__all__ = ["ArrayBatches", "Batch", "Batches", "index_batches", "split_batches", "steps_per_epoch"]
