"""``dataset.reader: ray``: a trial reads its streamed splits through Ray Data instead of DataLoader workers.

Why a choice and not the default: the DataLoader reader (:mod:`nas.data.streaming`)
gives batch for batch what the in-memory arrays give for a seed, runs inside
the trial's own CPU reservation, and works the same with or without Ray.
Ray Data earns its place when the data sits in shards on shared storage and
the cluster has CPUs to spare: its read and decode tasks are scheduled
anywhere in the cluster, stream blocks through the object store, and never
fork the trial. So it is asked for explicitly (``reader: ray``, which also
implies ``streaming``); left unset, trials use DataLoader workers.

How a split is read (in the trial process, which only iterates):

* Parquet shards (:class:`~nas.data.shards.ParquetRows`): ``ray.data.read_parquet``
  of the shard files; image folders (:class:`~nas.data.streaming.ImageFiles`):
  ``ray.data.read_images`` of the split's files with the dataset's size and mode;
* ``map_batches`` keeps the split's rows (the seeded split of the driver, by
  the shards' ``index`` column or the file's position);
* training: ``random_shuffle`` seeded from the trial's generator, then a
  ``map_batches`` that decodes, standardises and augments in Ray tasks; each
  row's crop and flip are drawn from ``(epoch seed, position)``, so they do not
  depend on how Ray cuts blocks; validation: no shuffle, order preserved;
* ``iter_torch_batches`` hands ``(x, y)`` CPU tensors to the loop.

A validation epoch is therefore batch for batch the in-memory one; a training
epoch holds the same images and labels, in Ray's shuffled order (not the
in-memory order), with the same standardisation. Outside Ray (export, a test
without a cluster) the reader falls back to DataLoader workers, logged.

Ray Data's tasks of a trial ask for no CPU and at most ``loader_workers`` (at
least one) run at once per stage: a trial already holds its CPUs, and tasks
asking for more would wait forever on a cluster full of trials.
``read_images`` resizes before it converts the mode, the reverse of
:func:`~nas.data.images.decode_image`; both agree only when every file
already has the target mode, so a folder mixing modes is refused before
trials start (write it as shards with ``nas shards``, or use ``reader: torch``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.core.errors import ConfigError
from nas.data.augment import Crops, apply_crops, crop_padding
from nas.data.batching import Batch
from nas.data.dataset import standardised
from nas.data.images import decode_image
from nas.data.shards import ParquetRows
from nas.data.streaming import ImageFiles, StreamBatches, StreamingDataset

logger = logging.getLogger(__name__)


def with_ray_reader(dataset: Any) -> Any:
    """``dataset`` whose trials read through Ray Data; refused (ConfigError) where Ray Data cannot match it."""
    if not isinstance(dataset, StreamingDataset):
        raise ConfigError(
            f"dataset reader: ray reads streamed Parquet shards or image folders; dataset {dataset.name!r} "
            "is held in memory (set streaming: true, or drop reader: ray)"
        )
    source = dataset.source
    if isinstance(source, ImageFiles):
        modes = sorted(set(dataset.info.get("file_modes", {})) - {source.mode})
        if modes:
            raise ConfigError(
                f"dataset reader: ray reads image folders with ray.data.read_images, which resizes before "
                f"converting the mode; {dataset.info.get('source')} has {modes} files besides {source.mode!r}: "
                "convert them, write the folder as shards (`nas shards`), or use reader: torch"
            )
    elif not isinstance(source, ParquetRows):
        raise ConfigError(
            f"dataset reader: ray reads Parquet shards or image folders, not {type(source).__name__} "
            f"(dataset {dataset.name!r}); use reader: torch"
        )
    return dataclasses.replace(dataset, reader=RayDataReader())


class RayDataReader:
    """Reads a split through Ray Data when the trial runs on Ray (picklable: no state)."""

    def batches(self, dataset: StreamingDataset, positions: np.ndarray, *, pin: bool = False) -> Any:
        return RayDataBatches(dataset, positions, pin=pin)


class RayDataBatches:
    """One split of a streamed dataset as Ray Data epochs (DataLoader workers when Ray is not running)."""

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
        seed = None
        if generator is not None:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # validation batches in the split's order
        context.enable_progress_bars = False
        workers = max(1, self.dataset.loader_workers)
        tasks = {"num_cpus": 0, "compute": ray.data.TaskPoolStrategy(size=workers)}
        rows = self._rows({"num_cpus": 0, "concurrency": workers}, tasks)
        if seed is not None:
            rows = rows.random_shuffle(seed=seed)
        d = self.dataset
        prepared = rows.map_batches(
            _prepare,
            batch_format="numpy",
            fn_kwargs={
                "size": d.input_shape[1:],
                "mode": "L" if d.input_shape[0] == 1 else "RGB",
                "scale": d.scale,
                "mean": d.mean,
                "std": d.std,
                "augment_seed": seed if augment else None,
            },
            **tasks,
        )
        # a small split is one block: Ray Data warns that it cannot use every allowed task
        warnings.filterwarnings("ignore", "The maximum number of concurrent tasks", UserWarning)
        drop_single = seed is not None and len(self.positions) % batch_size == 1 and len(self.positions) > 1
        for batch in prepared.iter_torch_batches(
            batch_size=batch_size, prefetch_batches=2, device="cpu", pin_memory=self.pin
        ):
            if drop_single and len(batch["y"]) == 1:  # BatchNorm cannot train on one sample
                continue
            yield batch["x"], batch["y"]

    def _rows(self, reads: dict[str, Any], tasks: dict[str, Any]) -> Any:
        """The split's rows (``image`` encoded or decoded, ``label``, ``index``) as a Ray Dataset."""
        import ray

        source, keep = self.dataset.source, self.positions
        if isinstance(source, ParquetRows):
            data = ray.data.read_parquet(list(source.files), columns=["image", "label", "index"], **reads)
            return data.map_batches(_select, batch_format="numpy", fn_kwargs={"keep": keep}, **tasks)
        if not isinstance(source, ImageFiles):  # with_ray_reader refused anything else
            raise ConfigError(f"reader: ray cannot read {type(source).__name__}")
        root = Path(source.root)
        paths = [os.path.abspath(root / source.files[p]) for p in keep]
        data = ray.data.read_images(paths, size=source.size, mode=source.mode, include_paths=True, **reads)
        return data.map_batches(
            _label_files,
            batch_format="numpy",
            fn_kwargs={"where": dict(zip(paths, keep.tolist(), strict=True)), "labels": self.dataset.labels},
            **tasks,
        )


# -- Ray Data tasks (module functions: pickled by reference) -----------------------------------------


def _select(batch: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of a shard block whose ``index`` is in the split (``keep`` sorted)."""
    mask = np.isin(batch["index"], keep, assume_unique=True)
    return {name: column[mask] for name, column in batch.items()}


def _label_files(batch: dict[str, np.ndarray], where: dict[str, int], labels: np.ndarray) -> dict[str, Any]:
    """Decoded ``read_images`` rows with their position and label (found by path)."""
    index = np.array([where[os.path.abspath("/" + str(p).lstrip("/"))] for p in batch["path"]])
    images = np.stack(list(batch["image"]))
    return {
        "image": images if images.ndim == 4 else images[..., None],
        "label": labels[index],
        "index": index,
    }


def _prepare(
    batch: dict[str, np.ndarray],
    size: tuple[int, int],
    mode: str,
    scale: float,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    augment_seed: int | None,
) -> dict[str, np.ndarray]:
    """Decode (if encoded), standardise and augment a block in a Ray task: the rule of every reader."""
    images = batch["image"]
    if images.dtype == object:  # encoded bytes from shards
        images = np.stack([decode_image(bytes(b), size, mode) for b in images])
    x = torch.from_numpy(standardised(images.transpose(0, 3, 1, 2), scale, mean, std))
    if augment_seed is not None and len(x):
        pad = crop_padding(*x.shape[2:])
        draws = [np.random.default_rng([augment_seed, int(i)]) for i in batch["index"]]
        offsets = np.array([rng.integers(0, 2 * pad + 1, size=2) for rng in draws])
        flips = np.array([rng.random() < 0.5 for rng in draws])
        crops = Crops(
            torch.from_numpy(offsets[:, 0]), torch.from_numpy(offsets[:, 1]), torch.from_numpy(flips)
        )
        x = apply_crops(x, crops)
    return {"x": x.numpy(), "y": np.asarray(batch["label"], dtype=np.int64)}


__all__ = ["RayDataBatches", "RayDataReader", "with_ray_reader"]
