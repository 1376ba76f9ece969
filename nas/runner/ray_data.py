"""``dataset.reader: ray``: a trial reads its streamed Parquet shards through Ray Data.

Why a choice and not the default: the DataLoader reader (:mod:`nas.data.streaming`)
gives batch for batch what the in-memory arrays give for a seed and works the
same with or without Ray. Ray Data earns its place when shards sit on shared
storage: its read and decode tasks run as Ray tasks, stream blocks through the
object store and never fork the trial.

Where the tasks run (why a search once hung). Tune starts a trial's actor in
the trial's placement group, which holds exactly the trial's CPUs. Ray Data
launches its tasks with its ``DataContext.scheduling_strategy`` (``SPREAD``),
so they leave that placement group and wait for free CPUs of the cluster; its
file-listing task (``ListFiles`` of ``read_parquet``) asks for a whole CPU
whatever ``num_cpus`` the read is given. With every CPU held by a running
trial no task ever starts: the lease requests wait "for remote node resources"
for ever. So (a) every trial of a ``reader: ray`` search reserves one more
bundle, ``{"CPU": loader_workers}`` (at least 1), in its placement group
(:attr:`~nas.settings.search.SearchConfig.trial_bundles`, packed on the
trial's node), and (b) inside the trial, :func:`_schedule_in_trial` points Ray
Data's scheduling strategy at that bundle. Ray Data's tasks then never wait
for CPUs another trial holds, and at most ``loader_workers`` of them run at
once. Without (b) the bundle would sit idle and the search would still hang.

How an epoch is read (in the trial process, which only iterates):

* ``ray.data.read_parquet`` of the shard files, ``image``, ``label``, ``index``
  columns; training epochs shuffle the file order with Ray's seeded
  ``FileShuffleConfig``;
* ``map_batches`` keeps the rows of the split (the driver's seeded split, by
  the shards' ``index`` column), then decodes, standardises and augments in
  Ray tasks; a row's crop and flip are drawn from ``(epoch seed, index)``, so
  they do not depend on how Ray cuts blocks;
* execution preserves block order, and ``iter_torch_batches`` shuffles rows in
  a local buffer seeded from the epoch seed: an epoch is a function of the
  trial's generator. Validation is neither shuffled nor augmented: batch for
  batch the in-memory validation split.

A training epoch therefore holds the same images and labels as the in-memory
one, in another (seeded) order, with the same standardisation. Outside a Ray
worker (export, a test without a cluster) the reader falls back to DataLoader
workers, logged.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from nas.core.errors import ConfigError
from nas.data.augment import Crops, apply_crops, crop_padding
from nas.data.batching import Batch
from nas.data.dataset import standardised
from nas.data.images import decode_image
from nas.data.shards import COLUMNS, ParquetRows
from nas.data.streaming import StreamBatches, StreamingDataset

logger = logging.getLogger(__name__)

#: Rows a training epoch shuffles among at once (per trial, in the trial process).
SHUFFLE_BUFFER_ROWS = 1024


def with_ray_reader(dataset: Any) -> Any:
    """``dataset`` whose trials read through Ray Data; refused (ConfigError) where Ray Data cannot read it."""
    if not isinstance(dataset, StreamingDataset):
        raise ConfigError(
            f"dataset reader: ray reads streamed Parquet shards; dataset {dataset.name!r} is held in memory "
            "(set streaming: true, or drop reader: ray)"
        )
    if not isinstance(dataset.source, ParquetRows):
        raise ConfigError(
            f"dataset reader: ray reads Parquet shards, not {type(dataset.source).__name__} "
            f"(dataset {dataset.name!r}); allowed: reader: torch"
        )
    return dataclasses.replace(dataset, reader=RayDataReader())


class RayDataReader:
    """Reads a split through Ray Data when the trial runs on Ray (picklable: no state)."""

    def batches(self, dataset: StreamingDataset, positions: np.ndarray, *, pin: bool = False) -> Any:
        return RayDataBatches(dataset, positions, pin=pin)


class RayDataBatches:
    """One split of streamed shards as Ray Data epochs (DataLoader workers when Ray is not running)."""

    def __init__(self, dataset: StreamingDataset, positions: np.ndarray, *, pin: bool = False) -> None:
        self.dataset, self.positions, self.pin = dataset, np.sort(positions), pin

    def __len__(self) -> int:
        return len(self.positions)

    def epoch(
        self, batch_size: int, generator: torch.Generator | None = None, augment: bool = False
    ) -> Iterator[Batch]:
        import ray

        if not ray.is_initialized():
            logger.info("dataset reader: ray, but Ray is not running here: reading with DataLoader workers")
            yield from StreamBatches(self.dataset, self.positions, pin=self.pin).epoch(
                batch_size, generator, augment
            )
            return
        seed = None if generator is None else int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # block order fixed: the epoch is the seed's
        context.enable_progress_bars = False
        _schedule_in_trial(ray, context)
        d = self.dataset
        source = d.source
        if not isinstance(source, ParquetRows):  # with_ray_reader refused anything else
            raise ConfigError(f"reader: ray cannot read {type(source).__name__}")
        shuffle = None if seed is None else ray.data.FileShuffleConfig(seed=seed)
        rows = ray.data.read_parquet(list(source.files), columns=list(COLUMNS), shuffle=shuffle)
        prepared = rows.map_batches(
            _prepare,
            batch_format="numpy",
            fn_kwargs={
                "keep": self.positions,
                "size": source.size,
                "mode": source.mode,
                "scale": d.scale,
                "mean": d.mean,
                "std": d.std,
                "augment_seed": seed if augment else None,
            },
        )
        drop_single = seed is not None and len(self.positions) % batch_size == 1 and len(self.positions) > 1
        for batch in prepared.iter_torch_batches(
            batch_size=batch_size,
            prefetch_batches=2,
            device="cpu",
            pin_memory=self.pin,
            local_shuffle_buffer_size=None if seed is None else min(SHUFFLE_BUFFER_ROWS, len(self.positions)),
            local_shuffle_seed=seed,
        ):
            if drop_single and len(batch["y"]) == 1:  # BatchNorm cannot train on one sample
                continue
            yield batch["x"], batch["y"]


def _schedule_in_trial(ray: Any, context: Any) -> None:
    """Point Ray Data's tasks at the data bundle of the trial's placement group (see the module doc).

    Outside a placement group (a driver, a plain Ray worker) Ray's defaults
    stay. ``DataContext.scheduling_strategy`` is the only setting that also
    reaches ``read_parquet``'s file-listing task; Ray marks it deprecated
    (to be removed after January 2027), hence the silenced warning.
    """
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = ray.util.get_current_placement_group()
    if group is None:
        return
    if len(group.bundle_specs) < 2:
        raise ConfigError(
            "dataset reader: ray in a trial whose placement group has no bundle for Ray Data tasks "
            f"(bundles {group.bundle_specs}); its tasks would wait for ever. Trials get one from "
            "SearchConfig.trial_bundles (nas.runner.trainable.ray_trainable)"
        )
    strategy = PlacementGroupSchedulingStrategy(
        placement_group=group,
        placement_group_bundle_index=len(group.bundle_specs) - 1,
        placement_group_capture_child_tasks=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context.scheduling_strategy = strategy
        context.scheduling_strategy_large_args = strategy


# -- the Ray Data task (a module function: pickled by reference) ------------------------------------


def _prepare(
    batch: dict[str, np.ndarray],
    keep: np.ndarray,
    size: tuple[int, int],
    mode: str,
    scale: float,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    augment_seed: int | None,
) -> dict[str, np.ndarray]:
    """The split's rows of a block, decoded, standardised and augmented: the rule of every reader."""
    mask = np.isin(batch["index"], keep, assume_unique=True)
    if not mask.any():
        channels = 1 if mode == "L" else 3
        return {"x": np.zeros((0, channels, *size), np.float32), "y": np.zeros(0, np.int64)}
    encoded, labels, index = batch["image"][mask], batch["label"][mask], batch["index"][mask]
    images = np.stack([decode_image(bytes(b), size, mode) for b in encoded])
    x = torch.from_numpy(standardised(images.transpose(0, 3, 1, 2), scale, mean, std))
    if augment_seed is not None:
        pad = crop_padding(*x.shape[2:])
        draws = [np.random.default_rng([augment_seed, int(i)]) for i in index]
        offsets = np.array([rng.integers(0, 2 * pad + 1, size=2) for rng in draws])
        flips = np.array([rng.random() < 0.5 for rng in draws])
        crops = Crops(
            torch.from_numpy(offsets[:, 0]), torch.from_numpy(offsets[:, 1]), torch.from_numpy(flips)
        )
        x = apply_crops(x, crops)
    return {"x": x.numpy(), "y": np.asarray(labels, dtype=np.int64)}


__all__ = ["SHUFFLE_BUFFER_ROWS", "RayDataBatches", "RayDataReader", "with_ray_reader"]
