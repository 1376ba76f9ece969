"""``parquet``: an image set as Parquet shards (encoded image bytes + labels), written from an image folder.

Millions of small files are slow to list, copy and open on shared or object
storage; a few hundred shards of encoded images are not. The layout is a
directory of ``train-NNNNN.parquet`` (and optionally ``test-NNNNN.parquet``)
files with three columns:

* ``image`` -- the image file's bytes as they were (PNG, JPEG, ...), never
  re-encoded, so nothing is lost and decoding stays in the data workers;
* ``label`` -- int64 class index;
* ``index`` -- the row's position in its split (shard after shard), which a
  reader that loses row order would use to find the seeded split.

Each shard's schema metadata records the class names, the image size and
mode the images are prepared at (resolved by the image-folder rules when the
shards were written: a folder mixing sizes needs ``image_size`` then), and
the split. :func:`write_parquet_shards` (``nas shards``) makes them from an
image folder after the folder's full check (unreadable files fail or are
skipped and counted as ``on_error`` says), so the same folder and the same
seed give the same validation split and the same batches as shards or as
files. :func:`scan_shards` checks shards before any trial starts: at least
one training shard, the three columns, one set of classes, size and mode in
every shard of both splits, labels in range; it reads metadata and the
``label`` column only.

A streamed split reads its rows through :class:`ParquetRows`: a position is
found by its row group, which is read whole (``image`` column only) and kept
in a small per-process cache, so rows of the same group in one batch cost one
read. Random access over large row groups is the cost of batches identical to
the in-memory ones; the writer's ``row_group_size`` (default 64) keeps it small.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.data.choice import wants_streaming
from nas.data.consistency import check_consistent
from nas.data.dataset import Dataset
from nas.data.image_folder import FolderScan, scan_image_folder
from nas.data.images import decode_image, read_images
from nas.settings.dataset import DatasetConfig

#: Rows per shard file and per row group when the writer is not told.
DEFAULT_ROWS_PER_SHARD = 4096
DEFAULT_ROW_GROUP_SIZE = 64
#: Row groups a reading process keeps decoded-from-disk (encoded bytes) at once.
_CACHED_GROUPS = 8
_META = b"nas"
COLUMNS = ("image", "label", "index")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - pyarrow is the shards extra
        raise ConfigError(
            "Parquet shards need pyarrow: pip install 'nas-platform[shards]' (or pyarrow)"
        ) from exc
    return pyarrow


# -- writing ----------------------------------------------------------------------------------------


def write_parquet_shards(
    folder: DatasetConfig | dict[str, Any],
    out: str | Path,
    *,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
) -> dict[str, Any]:
    """Write the image folder ``folder`` describes as Parquet shards under ``out``; what was written.

    ``folder`` is an ``image_folder`` dataset config (``path``, and
    ``image_size``, ``grayscale``, ``on_error`` as for training on it). The
    folder is checked first, file by file, exactly as a search would;
    ``out`` must be empty or new, so shards of two folders never mix.
    """
    pa = _pyarrow()
    config = folder if isinstance(folder, DatasetConfig) else DatasetConfig.model_validate(dict(folder))
    if config.name != "image_folder":
        raise ConfigError(f"shards are written from an image_folder dataset, not {config.name!r}")
    for name, value in (("rows_per_shard", rows_per_shard), ("row_group_size", row_group_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r}; expected a positive integer")
    scan = scan_image_folder(config)
    target = Path(out).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"shard directory {target} exists and is not empty; give a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"path": str(target), "classes": list(scan.classes), **scan.info}
    for split, files, labels in (
        ("train", scan.train_files, scan.train_labels),
        ("test", scan.test_files, scan.test_labels),
    ):
        if not files or labels is None:
            continue
        metadata = {_META: json.dumps(_shard_meta(scan, split)).encode()}
        shards = 0
        for shards, start in enumerate(range(0, len(files), rows_per_shard), start=1):
            stop = min(start + rows_per_shard, len(files))
            table = pa.table(
                {
                    "image": pa.array([(scan.root / f).read_bytes() for f in files[start:stop]], pa.binary()),
                    "label": pa.array(labels[start:stop], pa.int64()),
                    "index": pa.array(np.arange(start, stop), pa.int64()),
                }
            ).replace_schema_metadata(metadata)
            pa.parquet.write_table(
                table, target / f"{split}-{shards - 1:05d}.parquet", row_group_size=row_group_size
            )
        written[split] = {"rows": len(files), "shards": shards}
    return written


def _shard_meta(scan: FolderScan, split: str) -> dict[str, Any]:
    return {"classes": list(scan.classes), "image_size": list(scan.size), "mode": scan.mode, "split": split}


# -- checking and reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardScan:
    """Checked shards of one directory: files, row-group boundaries, labels, classes, size and mode."""

    root: Path
    classes: tuple[str, ...]
    size: tuple[int, int]
    mode: str
    train: ParquetRows
    train_labels: np.ndarray
    test: ParquetRows | None = None
    test_labels: np.ndarray | None = None

    @property
    def info(self) -> dict[str, Any]:
        return {"source": str(self.root), "image_size": list(self.size), "mode": self.mode, "shards": True}


def scan_shards(config: DatasetConfig) -> ShardScan:
    """Check a shard directory (metadata and labels only); every problem is a ConfigError naming the file."""
    root = Path(str(config.path)).expanduser()
    if not root.is_dir():
        raise ConfigError(f"parquet path {root} is not a directory of train-*.parquet shards")
    train_files = sorted(root.glob("train-*.parquet"))
    if not train_files:
        raise ConfigError(
            f"parquet {root} has no train-*.parquet shard; write shards with `nas shards IMAGE_FOLDER {root}`"
        )
    meta: dict[str, Any] | None = None
    splits: dict[str, tuple[ParquetRows, np.ndarray]] = {}
    for split, files in (("train", train_files), ("test", sorted(root.glob("test-*.parquet")))):
        if not files:
            continue
        groups: list[tuple[int, int, int]] = []
        labels: list[np.ndarray] = []
        rows = 0
        for f, path in enumerate(files):
            shard_meta, sizes, shard_labels = _read_shard_header(path)
            expected = {**(meta or shard_meta), "split": split}
            check_consistent(f"parquet {root}", path.name, shard_meta, train_files[0].name, expected)
            meta = meta or shard_meta
            for g, count in enumerate(sizes):
                groups.append((f, g, rows))
                rows += count
            labels.append(shard_labels)
        all_labels = np.concatenate(labels)
        if len(all_labels) == 0:
            raise ConfigError(f"parquet {root}: the {split} shards hold no rows")
        splits[split] = (
            ParquetRows(
                tuple(str(p) for p in files),
                tuple(groups),
                rows,
                tuple(meta["image_size"]),
                str(meta["mode"]),
            ),
            all_labels,
        )
    if meta is None:  # unreachable: a train shard exists and was read (kept for the type checker)
        raise ConfigError(f"parquet {root} has no readable shard")
    classes = tuple(meta["classes"])
    for split, (_, labels_) in splits.items():
        if labels_.min() < 0 or labels_.max() >= len(classes):
            raise ConfigError(
                f"parquet {root}: {split} labels span [{labels_.min()}, {labels_.max()}]; "
                f"allowed: 0..{len(classes) - 1} for classes {list(classes)}"
            )
    test = splits.get("test")
    return ShardScan(
        root=root,
        classes=classes,
        size=(int(meta["image_size"][0]), int(meta["image_size"][1])),
        mode=str(meta["mode"]),
        train=splits["train"][0],
        train_labels=splits["train"][1],
        test=None if test is None else test[0],
        test_labels=None if test is None else test[1],
    )


def _read_shard_header(path: Path) -> tuple[dict[str, Any], list[int], np.ndarray]:
    """A shard's recorded metadata, its row-group sizes and its labels (checked against its ``index``)."""
    pa = _pyarrow()
    try:
        handle = pa.parquet.ParquetFile(path)
        schema = handle.schema_arrow
        raw = (schema.metadata or {}).get(_META)
        meta = json.loads(raw) if raw else None
        missing = [c for c in COLUMNS if c not in schema.names]
        if meta is None or missing:
            raise ConfigError(
                f"parquet shard {path} lacks {missing or 'the nas metadata'}: expected columns "
                f"{list(COLUMNS)} and the metadata `nas shards` writes"
            )
        labels = handle.read(columns=["label"]).column("label").to_numpy()
        sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot read parquet shard {path}: {exc}") from exc
    return meta, sizes, np.asarray(labels, dtype=np.int64)


@dataclass(frozen=True)
class ParquetRows:
    """Images of a split's shards by position (picklable: file names and row-group starts, no pixels)."""

    files: tuple[str, ...]
    #: ``(file, row group, first position)`` of every row group, in reading order.
    groups: tuple[tuple[int, int, int], ...]
    rows: int
    size: tuple[int, int]
    mode: str
    _cache: OrderedDict[int, list[bytes]] = field(default_factory=OrderedDict, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("files", "groups", "rows", "size", "mode")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in {**state, "_cache": OrderedDict()}.items():
            object.__setattr__(self, key, value)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1 if self.mode == "L" else 3, *self.size)

    def __len__(self) -> int:
        return self.rows

    def encoded(self, position: int) -> bytes:
        """The stored file bytes of the image at ``position``."""
        g = bisect.bisect_right([start for _, _, start in self.groups], position) - 1
        if g not in self._cache:
            file, group, _ = self.groups[g]
            table = _pyarrow().parquet.ParquetFile(self.files[file]).read_row_group(group, columns=["image"])
            self._cache[g] = table.column("image").to_pylist()
            if len(self._cache) > _CACHED_GROUPS:
                self._cache.popitem(last=False)
        self._cache.move_to_end(g)
        return self._cache[g][position - self.groups[g][2]]

    def read(self, position: int) -> np.ndarray:
        try:
            return decode_image(self.encoded(position), self.size, self.mode).transpose(2, 0, 1)
        except OSError as exc:
            raise ConfigError(f"parquet: cannot decode the image at row {position}: {exc}") from exc


def load_parquet(config: DatasetConfig, common: dict[str, Any]) -> Any:
    """The shards in memory, or as a :class:`~nas.data.streaming.StreamingDataset` (explicit or by size)."""
    scan = scan_shards(config)
    channels, height, width = scan.train.shape
    decoded = len(scan.train_labels) * channels * height * width * 4
    options: dict[str, Any] = {
        "num_classes": len(scan.classes),
        "class_names": scan.classes,
        "info": scan.info,
    }
    if wants_streaming(config, decoded, f"parquet {scan.root}"):
        from nas.data.streaming import StreamingDataset

        return StreamingDataset.prepare(
            "parquet",
            scan.train,
            scan.train_labels,
            scan.test,
            scan.test_labels,
            loader_workers=config.loader_workers,
            **options,
            **common,
        )
    x_test = None if scan.test is None else read_images(scan.test, range(len(scan.test_labels)))
    return Dataset.from_arrays(
        "parquet",
        read_images(scan.train, range(len(scan.train_labels))),
        scan.train_labels,
        x_test,
        scan.test_labels,
        **options,
        **common,
    )


__all__ = [
    "COLUMNS",
    "DEFAULT_ROWS_PER_SHARD",
    "DEFAULT_ROW_GROUP_SIZE",
    "ParquetRows",
    "ShardScan",
    "load_parquet",
    "scan_shards",
    "write_parquet_shards",
]
