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
every shard of both splits, no empty shard, labels in range; it reads metadata and the
``label`` column only.

The writing loop (:func:`write_shards`), the checks (:func:`scan_shards`)
and the loading (:func:`load_shards`) are shared with the WebDataset-style
tar shards of :mod:`nas.data.tar_shards`: a :class:`ShardFormat` supplies
only what differs (how a shard is written, how its header is read, which
:class:`~nas.data.images.ImageSource` reads its rows).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.data.choice import wants_streaming
from nas.data.consistency import check_consistent
from nas.data.dataset import Dataset
from nas.data.image_folder import FolderScan, scan_image_folder
from nas.data.images import ImageSource, decode_image, read_images
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


# -- what differs between shard formats ---------------------------------------------------------------


@dataclass(frozen=True)
class ShardHeader:
    """What a shard's header tells before any image is read: recorded metadata, labels, row layout."""

    meta: dict[str, Any]
    labels: np.ndarray
    #: Format-specific row layout (row-group sizes of a Parquet file, member offsets of a tar).
    layout: Any


@dataclass(frozen=True)
class ShardFormat:
    """One shard file format: its ``name`` (the dataset name), file suffix, writer, header reader, rows."""

    name: str
    suffix: str
    #: ``write(path, images, labels, start, meta, **options)``: one shard of encoded ``images``
    #: (file name, bytes), rows ``start``, ``start + 1``, ... of the split.
    write: Callable[..., None]
    #: ``read_header(path)``: the shard's :class:`ShardHeader`; ConfigError naming the file if unreadable.
    read_header: Callable[[Path], ShardHeader]
    #: ``rows(files, headers, size, mode)``: the split's images by position.
    rows: Callable[[tuple[str, ...], list[ShardHeader], tuple[int, int], str], ImageSource]


# -- writing ----------------------------------------------------------------------------------------


def write_shards(
    fmt: ShardFormat,
    folder: DatasetConfig | dict[str, Any],
    out: str | Path,
    *,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    **options: Any,
) -> dict[str, Any]:
    """Write the image folder ``folder`` describes as ``fmt`` shards under ``out``; what was written.

    ``folder`` is an ``image_folder`` dataset config (``path``, and
    ``image_size``, ``grayscale``, ``on_error`` as for training on it). The
    folder is checked first, file by file, exactly as a search would;
    ``out`` must be empty or new, so shards of two folders never mix.
    ``options`` go to the format's writer (Parquet: ``row_group_size``).
    """
    config = folder if isinstance(folder, DatasetConfig) else DatasetConfig.model_validate(dict(folder))
    if config.name != "image_folder":
        raise ConfigError(f"shards are written from an image_folder dataset, not {config.name!r}")
    for name, value in {"rows_per_shard": rows_per_shard, **options}.items():
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
        meta = _shard_meta(scan, split)
        shards = 0
        for shards, start in enumerate(range(0, len(files), rows_per_shard), start=1):
            stop = min(start + rows_per_shard, len(files))
            images = [(f, (scan.root / f).read_bytes()) for f in files[start:stop]]
            path = target / f"{split}-{shards - 1:05d}{fmt.suffix}"
            fmt.write(path, images, np.asarray(labels[start:stop]), start, meta, **options)
        written[split] = {"rows": len(files), "shards": shards}
    return written


def write_parquet_shards(
    folder: DatasetConfig | dict[str, Any],
    out: str | Path,
    *,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
) -> dict[str, Any]:
    """:func:`write_shards` as Parquet, ``row_group_size`` rows per row group."""
    _pyarrow()
    return write_shards(PARQUET, folder, out, rows_per_shard=rows_per_shard, row_group_size=row_group_size)


def _write_parquet(
    path: Path,
    images: list[tuple[str, bytes]],
    labels: np.ndarray,
    start: int,
    meta: dict[str, Any],
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
) -> None:
    pa = _pyarrow()
    table = pa.table(
        {
            "image": pa.array([data for _, data in images], pa.binary()),
            "label": pa.array(labels, pa.int64()),
            "index": pa.array(np.arange(start, start + len(images)), pa.int64()),
        }
    ).replace_schema_metadata({_META: json.dumps(meta).encode()})
    pa.parquet.write_table(table, path, row_group_size=row_group_size)


def _shard_meta(scan: FolderScan, split: str) -> dict[str, Any]:
    return {"classes": list(scan.classes), "image_size": list(scan.size), "mode": scan.mode, "split": split}


# -- checking and reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardScan:
    """Checked shards of one directory: their images by position, labels, classes, size and mode."""

    root: Path
    classes: tuple[str, ...]
    size: tuple[int, int]
    mode: str
    train: ImageSource
    train_labels: np.ndarray
    test: ImageSource | None = None
    test_labels: np.ndarray | None = None

    @property
    def info(self) -> dict[str, Any]:
        return {"source": str(self.root), "image_size": list(self.size), "mode": self.mode, "shards": True}


def scan_shards(fmt: ShardFormat, config: DatasetConfig) -> ShardScan:
    """Check a shard directory (headers and labels only); every problem is a ConfigError naming the file.

    At least one training shard; every shard readable, not empty, and written
    for the same classes, image size and mode; labels in range.
    """
    root = Path(str(config.path)).expanduser()
    pattern = f"train-*{fmt.suffix}"
    if not root.is_dir():
        raise ConfigError(f"{fmt.name} path {root} is not a directory of {pattern} shards")
    train_files = sorted(root.glob(pattern))
    if not train_files:
        raise ConfigError(
            f"{fmt.name} {root} has no {pattern} shard; write shards with `nas shards IMAGE_FOLDER {root}`"
            + ("" if fmt is PARQUET else f" --format {fmt.suffix.lstrip('.')}")
        )
    meta: dict[str, Any] | None = None
    splits: dict[str, tuple[ImageSource, np.ndarray]] = {}
    for split, files in (("train", train_files), ("test", sorted(root.glob(f"test-*{fmt.suffix}")))):
        if not files:
            continue
        headers = []
        for path in files:
            header = fmt.read_header(path)
            expected = {**(meta or header.meta), "split": split}
            check_consistent(f"{fmt.name} {root}", path.name, header.meta, train_files[0].name, expected)
            if len(header.labels) == 0:
                raise ConfigError(
                    f"{fmt.name} shard {path} is empty (0 rows); remove it or rewrite the shards"
                )
            meta = meta or header.meta
            headers.append(header)
        size = (int(meta["image_size"][0]), int(meta["image_size"][1]))
        rows = fmt.rows(tuple(str(p) for p in files), headers, size, str(meta["mode"]))
        splits[split] = (rows, np.concatenate([h.labels for h in headers]).astype(np.int64))
    if meta is None:  # unreachable: a train shard exists and was read (kept for the type checker)
        raise ConfigError(f"{fmt.name} {root} has no readable shard")
    classes = tuple(meta["classes"])
    for split, (_, labels_) in splits.items():
        if labels_.min() < 0 or labels_.max() >= len(classes):
            raise ConfigError(
                f"{fmt.name} {root}: {split} labels span [{labels_.min()}, {labels_.max()}]; "
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


def _read_parquet_header(path: Path) -> ShardHeader:
    """A Parquet shard's recorded metadata, its labels and its row-group sizes."""
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
    return ShardHeader(meta, np.asarray(labels, dtype=np.int64), sizes)


def _parquet_rows(
    files: tuple[str, ...], headers: list[ShardHeader], size: tuple[int, int], mode: str
) -> ParquetRows:
    groups: list[tuple[int, int, int]] = []
    rows = 0
    for f, header in enumerate(headers):
        for g, count in enumerate(header.layout):
            groups.append((f, g, rows))
            rows += count
    return ParquetRows(files, tuple(groups), rows, size, mode)


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


def load_shards(fmt: ShardFormat, config: DatasetConfig, common: dict[str, Any]) -> Any:
    """``fmt`` shards in memory, or as a :class:`~nas.data.streaming.StreamingDataset` (explicit or by size)."""
    scan = scan_shards(fmt, config)
    channels, height, width = scan.train.shape
    decoded = len(scan.train_labels) * channels * height * width * 4
    options: dict[str, Any] = {
        "num_classes": len(scan.classes),
        "class_names": scan.classes,
        "info": scan.info,
    }
    if wants_streaming(config, decoded, f"{config.name} {scan.root}"):
        from nas.data.streaming import StreamingDataset

        return StreamingDataset.prepare(
            config.name,
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
        config.name,
        read_images(scan.train, range(len(scan.train_labels))),
        scan.train_labels,
        x_test,
        scan.test_labels,
        **options,
        **common,
    )


PARQUET = ShardFormat("parquet", ".parquet", _write_parquet, _read_parquet_header, _parquet_rows)


__all__ = [
    "COLUMNS",
    "DEFAULT_ROWS_PER_SHARD",
    "DEFAULT_ROW_GROUP_SIZE",
    "PARQUET",
    "ParquetRows",
    "ShardFormat",
    "ShardHeader",
    "ShardScan",
    "load_shards",
    "scan_shards",
    "write_parquet_shards",
    "write_shards",
]
