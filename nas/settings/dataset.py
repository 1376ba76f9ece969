"""``dataset:``: which data to train on and how validation is split off.

A module of its own so that the data loaders (``nas.data``) and training
evaluators can import the dataset schema without the whole search schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from nas.core.errors import ConfigError
from nas.core.space import MAX_CLASSES, MAX_SIDE, check_input_shape
from nas.settings.sections import Section, Seed

#: Datasets built into :mod:`nas.data`; anything else must be ``"package.module:function"``.
BUILTIN_DATASETS: tuple[str, ...] = (
    "digits",
    "cifar10",
    "image_folder",
    "npy",
    "parquet",
    "webdataset",
    "synthetic",
)

#: ``streaming`` unset: a source whose decoded float32 training images would take more than this
#: many bytes is streamed (read per batch by data workers) instead of held in memory.
STREAMING_THRESHOLD_BYTES = 1 << 30

#: Fields that decide how data is read, not which data: they stay out of a study's comparability.
READING_FIELDS = frozenset({"streaming", "loader_workers", "reader"})
FUNCTION_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

#: Dataset fields used only by some datasets (``None`` = unset); the rest apply to all.
_DATASET_FIELDS: dict[str, tuple[str, ...]] = {
    "path": ("cifar10", "image_folder", "npy", "parquet", "webdataset"),
    "image_size": ("image_folder",),
    "grayscale": ("image_folder",),
    "streaming": ("image_folder", "npy", "parquet", "webdataset"),
    "on_error": ("image_folder",),
    "loader_workers": ("image_folder", "npy", "parquet", "webdataset"),
    "reader": ("parquet",),
    "num_samples": ("synthetic",),
    "num_test": ("synthetic",),
    "num_classes": ("synthetic",),
    "shape": ("synthetic",),
    "noise": ("synthetic",),
    "options": ("package.module:function",),
}


class DatasetConfig(Section):
    """Which data to train on and how validation is split off the training set.

    ``name`` is one of :data:`BUILTIN_DATASETS` or ``"package.module:function"``.
    The validation split is a stratified ``val_fraction`` of the training set,
    drawn with ``seed`` (default: the config's top-level ``seed``); the test
    split is never used by a search.
    """

    name: str = "digits"
    path: str | None = Field(
        None, description="cifar10: .npz file or python-batches directory; image_folder: root"
    )
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: Seed | None = None
    limit: int | None = Field(None, ge=2, description="use at most this many training images (stratified)")
    image_size: int | tuple[int, int] | None = None
    grayscale: bool | None = None
    num_samples: int | None = Field(None, ge=2)
    num_test: int | None = Field(None, ge=0)
    num_classes: int | None = Field(None, ge=2, le=MAX_CLASSES)
    shape: (
        tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None
    ) = None
    noise: float | None = Field(None, ge=0.0)
    options: dict[str, Any] | None = None
    streaming: bool | None = Field(
        None,
        description="read batches from the files in data workers instead of holding the set in memory; "
        f"unset: stream when the decoded training images exceed {STREAMING_THRESHOLD_BYTES >> 20} MiB",
    )
    on_error: Literal["fail", "skip"] | None = Field(
        None, description="an unreadable image file: fail before trials start (default) or skip it, counted"
    )
    loader_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="data-loader worker processes per trial when streaming (default 2); with reader: ray, "
        "the CPUs each trial reserves for its Ray Data tasks (default 1)",
    )
    reader: Literal["torch", "ray"] | None = Field(
        None,
        description="who reads a streamed split in a trial: 'torch' (DataLoader workers, default) or 'ray' "
        "(Ray Data tasks in a CPU bundle of the trial's placement group: read_parquet, iter_torch_batches)",
    )

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in BUILTIN_DATASETS and not FUNCTION_REF.match(name):
            raise ConfigError(
                f"unknown dataset {name!r}; allowed: {', '.join(BUILTIN_DATASETS)} "
                "or 'package.module:function' returning a dataset"
            )
        return name

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, size: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sides = (size,) if isinstance(size, int) else size or ()
        if any(not 1 <= side <= MAX_SIDE for side in sides):
            raise ConfigError(
                f"image_size {size!r} is not allowed; expected a positive int or [height, width] "
                f"of at most {MAX_SIDE}"
            )
        return size

    @field_validator("shape")
    @classmethod
    def _buildable_shape(cls, shape: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        return None if shape is None else check_input_shape(shape, "shape")

    @property
    def kind(self) -> str:
        """The dataset name, or ``"package.module:function"`` for a user function."""
        return self.name if self.name in BUILTIN_DATASETS else "package.module:function"

    @property
    def ray_data_cpus(self) -> float:
        """CPUs a trial reserves for Ray Data tasks: 0 unless ``reader: ray``, then ``loader_workers`` (>= 1).

        At least one: Ray Data's file listing task asks for a whole CPU, which
        ``read_parquet`` gives no way to lower.
        """
        if self.reader != "ray":
            return 0.0
        return float(max(1, 1 if self.loader_workers is None else self.loader_workers))

    @model_validator(mode="after")
    def _fields_fit_dataset(self) -> DatasetConfig:
        for field, users in _DATASET_FIELDS.items():
            if getattr(self, field) is not None and self.kind not in users:
                raise ConfigError(
                    f"dataset field {field!r} is not used by dataset {self.name!r}; it applies to: {', '.join(users)}"
                )
        if self.name == "image_folder" and self.path is None:
            raise ConfigError(
                "dataset 'image_folder' needs 'path': a directory with one sub-folder per class"
            )
        if self.name == "parquet" and self.path is None:
            raise ConfigError(
                "dataset 'parquet' needs 'path': a directory of train-*.parquet shards (see `nas shards`)"
            )
        if self.reader == "ray" and self.streaming is False:
            raise ConfigError(
                "dataset reader: ray reads a streamed split; it contradicts streaming: false "
                "(drop one of them)"
            )
        if self.name == "webdataset" and self.path is None:
            raise ConfigError(
                "dataset 'webdataset' needs 'path': a directory of train-*.tar shards "
                "(see `nas shards --format tar`)"
            )
        if self.name == "npy" and self.path is None:
            raise ConfigError(
                "dataset 'npy' needs 'path': a directory with x_train.npy and y_train.npy "
                "(optionally x_test.npy, y_test.npy)"
            )
        return self


__all__ = ["BUILTIN_DATASETS", "FUNCTION_REF", "READING_FIELDS", "STREAMING_THRESHOLD_BYTES", "DatasetConfig"]
