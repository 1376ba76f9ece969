"""``webdataset``: an image set as WebDataset-style tar shards, written from an image folder.

The other common shard format besides Parquet (:mod:`nas.data.shards`): plain
uncompressed ``.tar`` files any tool can list and extract, and the layout the
``webdataset`` library reads. A directory holds ``train-NNNNN.tar`` (and
optionally ``test-NNNNN.tar``); each shard starts with a ``__nas__.json``
member (class names, image size and mode the images are prepared at, split),
then one sample per image, two members sharing a key (its position in the
split, nine digits):

* ``000000042.png`` (or ``.jpg``, ...) -- the image file's bytes as they were,
  never re-encoded;
* ``000000042.cls`` -- the class index as decimal text (WebDataset's convention).

Written, checked and loaded by the shared shard code (:func:`~nas.data.shards.write_shards`,
:func:`~nas.data.shards.scan_shards`, :func:`~nas.data.shards.load_shards`),
so the same folder and seed give the same split and batches as the folder, its
Parquet shards, in memory or streamed. What this module adds is the format:
the header of a shard is its member list (names, data offsets and sizes, read
with :mod:`tarfile` without reading images) plus the small ``.cls`` members;
a shard whose samples are incomplete (an image without a label or the other
way round), whose labels are not integers, or whose members are neither is
refused with the counts. A streamed row is one ``seek`` and ``read`` of its
image member (:class:`TarRows`): random access costs one image, not a group.
Only Python's :mod:`tarfile`; no ``webdataset`` package is needed.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nas.core.errors import ConfigError
from nas.data.images import IMAGE_SUFFIXES, decode_image
from nas.data.shards import DEFAULT_ROWS_PER_SHARD, ShardFormat, ShardHeader, write_shards
from nas.settings.dataset import DatasetConfig

#: The first member of every shard: what ``nas shards`` recorded about the images.
META_MEMBER = "__nas__.json"
LABEL_SUFFIX = ".cls"
#: Problem samples named in an error (all are counted).
_NAMED = 5


def write_tar_shards(
    folder: DatasetConfig | dict[str, Any], out: str | Path, *, rows_per_shard: int = DEFAULT_ROWS_PER_SHARD
) -> dict[str, Any]:
    """:func:`~nas.data.shards.write_shards` as WebDataset tar shards."""
    return write_shards(WEBDATASET, folder, out, rows_per_shard=rows_per_shard)


def _write_tar(
    path: Path, images: list[tuple[str, bytes]], labels: np.ndarray, start: int, meta: dict[str, Any]
) -> None:
    """One shard: the metadata member, then image and label members per sample (reproducible headers)."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, META_MEMBER, json.dumps(meta).encode())
        for k, ((name, data), label) in enumerate(zip(images, labels, strict=True)):
            key = f"{start + k:09d}"
            _add(tar, key + Path(name).suffix.lower(), data)
            _add(tar, key + LABEL_SUFFIX, str(int(label)).encode())


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _read_tar_header(path: Path) -> ShardHeader:
    """A tar shard's metadata, labels and image members (``(offset, size)``), checked sample by sample."""
    meta: dict[str, Any] | None = None
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, bytes] = {}
    stray: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key, suffix = _split(member.name)
                if member.name == META_MEMBER:
                    meta = json.loads(_member_bytes(tar, member))
                elif not member.isfile():
                    stray.append(member.name)
                elif suffix == LABEL_SUFFIX:
                    labels[key] = _member_bytes(tar, member)
                elif suffix in IMAGE_SUFFIXES and key not in images:
                    images[key] = (member.offset_data, member.size)
                else:
                    stray.append(member.name)
    except (OSError, tarfile.TarError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read webdataset shard {path}: {exc}") from exc
    if meta is None:
        raise ConfigError(
            f"webdataset shard {path} lacks the {META_MEMBER} member `nas shards --format tar` writes "
            "(class names, image size and mode)"
        )
    keys = sorted(images.keys() & labels.keys())
    unlabelled = sorted(images.keys() - labels.keys())
    imageless = sorted(labels.keys() - images.keys())
    bad_labels = [key for key in keys if not labels[key].strip().isdigit()]
    problems = {
        "images without a .cls label": unlabelled,
        "labels without an image": imageless,
        "labels that are not integers": bad_labels,
        "members that are neither": stray,
    }
    found = {what: names for what, names in problems.items() if names}
    if found:
        counts = ", ".join(f"{len(names)} {what}" for what, names in found.items())
        first = [name for names in found.values() for name in names][:_NAMED]
        raise ConfigError(
            f"webdataset shard {path} has unreadable samples: {counts} (of {len(images)} images); "
            f"first: {first}. Each sample is KEY.<image suffix> and KEY{LABEL_SUFFIX}; rewrite the shards "
            "with `nas shards --format tar`"
        )
    layout = np.array([images[key] for key in keys], dtype=np.int64).reshape(-1, 2)
    return ShardHeader(meta, np.array([int(labels[key]) for key in keys], dtype=np.int64), layout)


def _split(name: str) -> tuple[str, str]:
    """``("000000042", ".png")`` of ``"000000042.png"`` (WebDataset: the key ends at the first dot)."""
    stem, dot, rest = Path(name).name.partition(".")
    return str(Path(name).parent / stem), (dot + rest).lower()


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise tarfile.TarError(f"member {member.name} has no data")
    return handle.read()


@dataclass(frozen=True)
class TarRows:
    """Images of a split's tar shards by position (picklable: file names and member offsets, no pixels)."""

    files: tuple[str, ...]
    #: Per row: its shard, and the byte offset and size of its image member.
    shard: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    size: tuple[int, int]
    mode: str
    _handles: dict[int, BinaryIO] = field(default_factory=dict, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("files", "shard", "offsets", "sizes", "size", "mode")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in {**state, "_handles": {}}.items():
            object.__setattr__(self, key, value)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1 if self.mode == "L" else 3, *self.size)

    def __len__(self) -> int:
        return len(self.offsets)

    def encoded(self, position: int) -> bytes:
        """The stored file bytes of the image at ``position`` (one positional read, the shard kept open).

        ``os.pread``, not seek + read: DataLoader workers forked after this
        process opened a shard share its file offset, and a seek in one worker
        would move another's read to the wrong member.
        """
        f = int(self.shard[position])
        if f not in self._handles:
            self._handles[f] = open(self.files[f], "rb")  # noqa: SIM115 - kept open for the process
        size = int(self.sizes[position])
        data = os.pread(self._handles[f].fileno(), size, int(self.offsets[position]))
        if len(data) != size:
            raise ConfigError(
                f"webdataset shard {self.files[f]} ends inside the image at row {position} "
                f"({len(data)} of {size} bytes); rewrite the shards"
            )
        return data

    def read(self, position: int) -> np.ndarray:
        try:
            return decode_image(self.encoded(position), self.size, self.mode).transpose(2, 0, 1)
        except OSError as exc:
            raise ConfigError(f"webdataset: cannot decode the image at row {position}: {exc}") from exc


def _tar_rows(
    files: tuple[str, ...], headers: list[ShardHeader], size: tuple[int, int], mode: str
) -> TarRows:
    layout = np.concatenate([h.layout for h in headers])
    shard = np.concatenate([np.full(len(h.labels), f, dtype=np.int32) for f, h in enumerate(headers)])
    return TarRows(files, shard, layout[:, 0].copy(), layout[:, 1].copy(), size, mode)


WEBDATASET = ShardFormat("webdataset", ".tar", _write_tar, _read_tar_header, _tar_rows)

__all__ = ["LABEL_SUFFIX", "META_MEMBER", "WEBDATASET", "TarRows", "write_tar_shards"]
