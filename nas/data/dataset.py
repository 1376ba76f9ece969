"""The dataset record: train/validation(/test) arrays ready for a model, and how they were prepared.

A :class:`Dataset` holds float32 NCHW images already standardised per channel
with statistics of its training split, integer labels, and the preprocessing
(``scale``, ``mean``, ``std``) that export records so a deployed model sees
inputs prepared the same way. :meth:`Dataset.from_arrays` checks raw arrays
and draws the stratified validation split with an explicit seed; the loaders
of :mod:`nas.data` all end there.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from nas.core.errors import ConfigError

logger = logging.getLogger(__name__)

Layout = Literal["NCHW", "NHWC"]


class DatasetReport:
    """What every dataset kind reports the same way: its preprocessing record and its summary.

    :class:`Dataset` (arrays) and :class:`~nas.data.streaming.StreamingDataset`
    (references) hold their splits differently but must describe themselves
    identically, because export and the trial records compare these dicts;
    one implementation here keeps the two from drifting apart. A subclass
    provides ``name``, ``num_classes``, ``scale``, ``mean``, ``std``,
    ``info``, ``input_shape`` and :meth:`split_sizes`.
    """

    streaming: ClassVar[bool] = False
    name: str
    num_classes: int
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    info: Mapping[str, Any]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def split_sizes(self) -> tuple[int, int, int]:
        """Images in the train, validation and test splits (0 without a test split)."""
        raise NotImplementedError

    @property
    def preprocessing(self) -> dict[str, Any]:
        """How raw pixels become model inputs: ``(raw * scale - mean) / std`` per channel, NCHW."""
        return preprocessing_record(self.input_shape, self.scale, self.mean, self.std)

    def summary(self) -> dict[str, Any]:
        """Sizes and shapes for logs and trial attributes (JSON-serialisable)."""
        train, val, test = self.split_sizes()
        summary: dict[str, Any] = {
            "name": self.name,
            "train": train,
            "val": val,
            "test": test,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "split": self.info.get("split"),
        }
        if self.streaming:
            summary["streaming"] = True
        return summary


@dataclass(frozen=True, eq=False)
class Dataset(DatasetReport):
    """Train/validation(/test) arrays ready for a model, and how they were prepared.

    Images are float32 N x C x H x W, standardised with the training split's
    per-channel ``mean`` and ``std`` after multiplying raw pixels by ``scale``;
    labels are int64 in ``[0, num_classes)``. The arrays are made read-only so
    one dataset can be shared by every trial of a process.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 2
        ):
            raise ConfigError(
                f"dataset {self.name!r}: num_classes={self.num_classes!r}; expected an integer >= 2"
            )
        if (self.x_test is None) != (self.y_test is None):
            raise ConfigError(f"dataset {self.name!r}: x_test and y_test must both be given or both be None")
        shape: tuple[int, ...] | None = None
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x is None:
                continue
            if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4:
                raise ConfigError(
                    f"dataset {self.name!r}: x_{split} must be a float32 N x C x H x W array, got "
                    f"{getattr(x, 'dtype', type(x).__name__)} of shape {getattr(x, 'shape', '?')}"
                )
            if shape is not None and x.shape[1:] != shape:
                raise ConfigError(
                    f"dataset {self.name!r}: x_{split} has image shape {x.shape[1:]}, x_train has {shape}"
                )
            shape = x.shape[1:]
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
                raise ConfigError(
                    f"dataset {self.name!r}: y_{split} must be an int64 vector of length {len(x)}, got "
                    f"{getattr(y, 'dtype', type(y).__name__)} of shape {getattr(y, 'shape', '?')}"
                )
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise ConfigError(
                    f"dataset {self.name!r}: y_{split} has labels in [{y.min()}, {y.max()}]; "
                    f"allowed: 0..{self.num_classes - 1}"
                )
            x.setflags(write=False)
            y.setflags(write=False)
        if len(self.x_train) == 0 or len(self.x_val) == 0:
            raise ConfigError(
                f"dataset {self.name!r} has {len(self.x_train)} training and {len(self.x_val)} validation "
                "images; both must be non-empty"
            )
        channels = self.input_shape[0]
        for stat in ("mean", "std"):
            values = getattr(self, stat)
            if len(values) not in (0, channels):
                raise ConfigError(
                    f"dataset {self.name!r}: {stat} has {len(values)} values for {channels} channels"
                )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) of one image."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def split_sizes(self) -> tuple[int, int, int]:
        """Images in the train, validation and test splits (0 without a test split)."""
        return len(self.x_train), len(self.x_val), 0 if self.x_test is None else len(self.x_test)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        name: str,
        x_train: Any,
        y_train: Any,
        x_test: Any = None,
        y_test: Any = None,
        *,
        x_val: Any = None,
        y_val: Any = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        limit: int | None = None,
        layout: Layout = "NCHW",
        scale: float | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Prepare raw arrays: optional ``limit`` subset, validation split, standardisation.

        Images are N x C x H x W (``layout="NCHW"``), N x H x W x C
        (``"NHWC"``) or N x H x W (one channel). ``scale`` multiplies raw
        pixels first; its default is 1/255 for uint8 images and 1 otherwise.
        Unless ``x_val`` is given, a stratified ``val_fraction`` of the
        training set (after ``limit``) becomes the validation split, drawn
        with ``seed``. Mean and std come from the training split only.
        """
        x_train_raw, y_train_arr = (
            _images(name, "x_train", x_train, layout),
            _labels(name, "y_train", y_train),
        )
        _same_length(name, "train", x_train_raw, y_train_arr)
        if num_classes is None:
            seen = [y_train_arr] + [_labels(name, "y", y) for y in (y_val, y_test) if y is not None]
            num_classes = int(max(int(y.max()) for y in seen if len(y)) + 1) if len(y_train_arr) else 0
        if x_val is None:
            if y_val is not None:
                raise ConfigError(f"dataset {name!r}: y_val given without x_val")
            train, val = split_indices(name, y_train_arr, val_fraction=val_fraction, seed=seed, limit=limit)
            x_val_raw, y_val_arr = x_train_raw[val], y_train_arr[val]
            x_train_raw, y_train_arr = x_train_raw[train], y_train_arr[train]
            split = split_record(len(y_val_arr), val)
        else:
            if limit is not None and limit < len(y_train_arr):
                keep = stratified_pick(y_train_arr, limit, seed, what=f"dataset {name!r} limit={limit}")
                x_train_raw, y_train_arr = x_train_raw[keep], y_train_arr[keep]
            x_val_raw, y_val_arr = _images(name, "x_val", x_val, layout), _labels(name, "y_val", y_val)
            _same_length(name, "val", x_val_raw, y_val_arr)
            split = split_record(len(y_val_arr), None)
        scale, mean, std = standardisation(x_train_raw, scale)

        def standardise(raw: np.ndarray) -> np.ndarray:
            return standardised(raw, scale, mean, std)

        x_test_arr = y_test_arr = None
        if x_test is not None or y_test is not None:
            if x_test is None or y_test is None:
                raise ConfigError(f"dataset {name!r}: x_test and y_test must be given together")
            x_test_raw, y_test_arr = _images(name, "x_test", x_test, layout), _labels(name, "y_test", y_test)
            _same_length(name, "test", x_test_raw, y_test_arr)
            x_test_arr = standardise(x_test_raw)
        return cls(
            name=name,
            x_train=standardise(x_train_raw),
            y_train=y_train_arr,
            x_val=standardise(x_val_raw),
            y_val=y_val_arr,
            x_test=x_test_arr,
            y_test=y_test_arr,
            num_classes=num_classes,
            scale=float(scale),
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
            class_names=None if class_names is None else tuple(class_names),
            info={**dict(info or {}), "split": split},
        )


# -- array checks ----------------------------------------------------------------------------------


def _images(name: str, what: str, value: Any, layout: Layout) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ConfigError(f"dataset {name!r}: {what} must hold numbers, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[:, None, :, :]
    elif array.ndim == 4:
        if layout == "NHWC":
            array = array.transpose(0, 3, 1, 2)
        elif layout != "NCHW":
            raise ConfigError(
                f"dataset {name!r}: layout {layout!r} is not allowed; expected 'NCHW' or 'NHWC'"
            )
    else:
        raise ConfigError(
            f"dataset {name!r}: {what} has shape {array.shape}; expected N x C x H x W ({layout}) or N x H x W"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ConfigError(f"dataset {name!r}: {what} contains NaN or infinite values")
    return np.ascontiguousarray(array)


def _labels(name: str, what: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        raise ConfigError(
            f"dataset {name!r}: {what} must be a vector of integer class labels, got dtype {array.dtype} "
            f"and shape {array.shape}"
        )
    if len(array) and array.min() < 0:
        raise ConfigError(f"dataset {name!r}: {what} has negative label {array.min()}; labels are 0..K-1")
    return array.astype(np.int64)


def _same_length(name: str, split: str, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ConfigError(
            f"dataset {name!r}: x_{split} has {len(x)} images but y_{split} has {len(y)} labels"
        )


def preprocessing_record(
    input_shape: Sequence[int], scale: float, mean: Sequence[float], std: Sequence[float]
) -> dict[str, Any]:
    """How raw pixels become model inputs (what export records): ``(raw * scale - mean) / std``, NCHW."""
    return {
        "layout": "NCHW",
        "input_shape": list(input_shape),
        "scale": scale,
        "mean": list(mean),
        "std": list(std),
    }


def split_indices(
    name: str, labels: np.ndarray, *, val_fraction: float, seed: int, limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation positions into ``labels``: the one split rule of every source.

    An optional stratified ``limit`` subset (drawn with ``seed``), then a
    stratified ``val_fraction`` of it for validation (drawn with ``seed + 1``).
    It sees labels only, so an in-memory and a streaming copy of the same
    files split identically.
    """
    index = np.arange(len(labels))
    if limit is not None and limit < len(labels):
        index = stratified_pick(labels, limit, seed, what=f"dataset {name!r} limit={limit}")
    kept = labels[index]
    n_val = int(np.ceil(val_fraction * len(kept)))
    if len(kept) < 2 or n_val >= len(kept):
        raise ConfigError(
            f"dataset {name!r} has {len(kept)} training images: too few to split off "
            f"val_fraction={val_fraction} for validation (need at least one image on each side)"
        )
    val = stratified_pick(kept, n_val, seed + 1, what=f"dataset {name!r} validation split")
    train = np.setdiff1d(np.arange(len(kept)), val)
    return index[train], index[val]


def split_record(count: int, positions: np.ndarray | None) -> dict[str, Any]:
    """What identifies a validation split: its size and a hash of its positions in the source.

    Recorded with the dataset (``info["split"]``, in every trial's
    ``dataset`` attribute) and in the study's comparability, so a study can
    show that all its trials validated on the same images. A split the
    source gives (``x_val``) is hashed as ``given``.
    """
    text = "given" if positions is None else ",".join(map(str, np.asarray(positions).tolist()))
    return {"validation": int(count), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


def standardisation(raw: np.ndarray, scale: float | None) -> tuple[float, np.ndarray, np.ndarray]:
    """``scale`` (default 1/255 for uint8 pixels, else 1) and the per-channel mean and std of ``raw``.

    The one rule of every loader, in memory or streaming, applied to the
    training split (a streaming source passes its stratified sample).
    """
    if scale is None:
        scale = 1.0 / 255.0 if raw.dtype == np.uint8 else 1.0
    mean, std = channel_stats(raw, scale)
    return float(scale), mean, std


def channel_stats(raw: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float64) of raw N x C x H x W images times ``scale``; std 0 -> 1."""
    scaled = raw.astype(np.float32) * np.float32(scale)
    mean = scaled.mean(axis=(0, 2, 3), dtype=np.float64)
    std = scaled.std(axis=(0, 2, 3), dtype=np.float64)
    return mean, np.where(std > 1e-8, std, 1.0)


def standardised(raw: np.ndarray, scale: float, mean: Any, std: Any) -> np.ndarray:
    """``(raw * scale - mean) / std`` per channel as float32 (N x C x H x W; the same in every loader)."""
    mean = np.asarray(mean, dtype=np.float64)[None, :, None, None]
    std = np.asarray(std, dtype=np.float64)[None, :, None, None]
    return ((raw.astype(np.float32) * np.float32(scale) - mean) / std).astype(np.float32)


def stratified_pick(labels: np.ndarray, count: int, seed: int, what: str) -> np.ndarray:
    """``count`` indices with class proportions kept (plain random if a class is too rare)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        _, picked = train_test_split(index, test_size=count, stratify=labels, random_state=seed)
    except ValueError as exc:  # too few of some class to stratify: fall back to a plain draw
        logger.debug("%s: not stratified (%s)", what, exc)
        picked = np.random.default_rng(seed).choice(index, size=count, replace=False)
    return np.sort(picked)


__all__ = [
    "Dataset",
    "DatasetReport",
    "Layout",
    "channel_stats",
    "preprocessing_record",
    "split_indices",
    "split_record",
    "standardisation",
    "standardised",
    "stratified_pick",
]
