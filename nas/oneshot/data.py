"""The data a supernet search sees: the training set split in two, and the validation split.

Bilevel methods train the weights on one part of the training set and the
architecture weights on the other (``train_portion``), as DARTS does, so alpha
never fits the data the weights memorised. SPOS trains on the first part and
scores candidate sub-networks on the second. The dataset's own validation
split is only used for the supernet's validation curve, which makes that
curve comparable across methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nas.core.errors import ConfigError
from nas.data import Dataset


@dataclass(frozen=True, eq=False)
class SearchData:
    """Tensors of the three parts (CPU, float32 NCHW images, int64 labels)."""

    x_weights: torch.Tensor
    y_weights: torch.Tensor
    x_arch: torch.Tensor
    y_arch: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    input_shape: tuple[int, int, int]


def split_dataset(dataset: Dataset, train_portion: float, batch_size: int, seed: int) -> SearchData:
    """Split ``dataset``'s training images ``train_portion : rest`` with a seeded permutation.

    Refuses (ConfigError) when either part is smaller than one batch: a search
    whose epoch is less than one batch on either side learns nothing useful.
    """
    count = len(dataset.y_train)
    first = int(round(count * train_portion))
    second = count - first
    if min(first, second) < batch_size:
        raise ConfigError(
            f"dataset {dataset.name!r} is too small to split for a supernet search: {count} training images "
            f"with train_portion={train_portion} give {first} for the weights and {second} for the "
            f"architecture, but each part needs at least one batch (batch_size={batch_size}); use a smaller "
            f"batch_size (<= {max(1, min(first, second))}), a train_portion nearer 0.5, or more data"
        )
    order = np.random.default_rng(seed).permutation(count)
    weights, arch = order[:first], order[first:]
    x = np.asarray(dataset.x_train)
    y = np.asarray(dataset.y_train)
    return SearchData(
        x_weights=torch.tensor(x[weights]),
        y_weights=torch.tensor(y[weights]),
        x_arch=torch.tensor(x[arch]),
        y_arch=torch.tensor(y[arch]),
        x_val=torch.tensor(np.asarray(dataset.x_val)),
        y_val=torch.tensor(np.asarray(dataset.y_val)),
        num_classes=dataset.num_classes,
        input_shape=dataset.input_shape,
    )


def epoch_batches(count: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches of one epoch; an incomplete last batch is dropped (BatchNorm, fairness)."""
    order = torch.randperm(count, generator=generator)
    full = count // size
    return list(order[: full * size].split(size))


__all__ = ["SearchData", "epoch_batches", "split_dataset"]
