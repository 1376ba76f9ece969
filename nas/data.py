"""Datasets for the train evaluator: small in-memory arrays, never downloaded.

A :class:`Dataset` holds float32 NCHW images already standardised per channel
with statistics of its training split, integer labels, and the preprocessing
(``scale``, ``mean``, ``std``) that export records so a deployed model sees
inputs prepared the same way. The validation split is a stratified fraction of
the training set drawn with an explicit seed; the test split (when the source
has one) is carried along for export and final evaluation only: a search
never reads it.

Sources (``DatasetConfig.name``):

* ``digits`` -- scikit-learn's bundled 8x8 digits (1,797 images, 1x8x8): the
  embedded default, no file needed; a fixed stratified 20% (359 images) is
  the test split, the same whatever the seed;
* ``cifar10`` -- an ``.npz`` with ``x_train, y_train, x_test, y_test`` (uint8
  N x 32 x 32 x 3) or the standard ``cifar-10-batches-py`` directory; default
  ``$NAS_DATA_DIR/cifar10/cifar10_10k_2k.npz``;
* ``image_folder`` -- one sub-folder of images per class (optionally under
  ``train/`` and ``test/``), resized with Pillow;
* ``synthetic`` -- class prototypes plus Gaussian noise: learnable, any shape,
  made from the seed (for tests);
* ``"package.module:function"`` -- a user function returning a
  :class:`Dataset`, a mapping of arrays, or a tuple of arrays (see
  :func:`load_dataset`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nas.settings.dataset import DatasetConfig
from nas.core.errors import ConfigError
from nas.data_paths import CIFAR10_SUBSET, data_path

logger = logging.getLogger(__name__)

Layout = Literal["NCHW", "NHWC"]

#: File suffixes read by ``image_folder`` (all decoded by Pillow).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
#: Defaults of the ``synthetic`` dataset.
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "num_samples": 512,
    "num_test": 128,
    "num_classes": 4,
    "shape": (1, 8, 8),
    "noise": 1.0,
}
_IMAGE_FOLDER_SIZE = 32
#: digits has no official test split: a fixed stratified 20% is held out, the same for every seed.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 20_240_601


@dataclass(frozen=True, eq=False)
class Dataset:
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

    @property
    def preprocessing(self) -> dict[str, Any]:
        """How raw pixels become model inputs: ``(raw * scale - mean) / std`` per channel, NCHW."""
        return {
            "layout": "NCHW",
            "input_shape": list(self.input_shape),
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def summary(self) -> dict[str, Any]:
        """Sizes and shapes for logs and trial attributes (JSON-serialisable)."""
        return {
            "name": self.name,
            "train": len(self.x_train),
            "val": len(self.x_val),
            "test": 0 if self.x_test is None else len(self.x_test),
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
        }

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
        if scale is None:
            scale = 1.0 / 255.0 if x_train_raw.dtype == np.uint8 else 1.0
        if num_classes is None:
            seen = [y_train_arr] + [_labels(name, "y", y) for y in (y_val, y_test) if y is not None]
            num_classes = int(max(int(y.max()) for y in seen if len(y)) + 1) if len(y_train_arr) else 0
        if limit is not None and limit < len(y_train_arr):
            keep = _stratified_pick(y_train_arr, limit, seed, what=f"dataset {name!r} limit={limit}")
            x_train_raw, y_train_arr = x_train_raw[keep], y_train_arr[keep]
        if x_val is None:
            if y_val is not None:
                raise ConfigError(f"dataset {name!r}: y_val given without x_val")
            n_val = int(np.ceil(val_fraction * len(y_train_arr)))
            if len(y_train_arr) < 2 or n_val >= len(y_train_arr):
                raise ConfigError(
                    f"dataset {name!r} has {len(y_train_arr)} training images: too few to split off "
                    f"val_fraction={val_fraction} for validation (need at least one image on each side)"
                )
            val = _stratified_pick(y_train_arr, n_val, seed + 1, what=f"dataset {name!r} validation split")
            train = np.setdiff1d(np.arange(len(y_train_arr)), val)
            x_val_raw, y_val_arr = x_train_raw[val], y_train_arr[val]
            x_train_raw, y_train_arr = x_train_raw[train], y_train_arr[train]
        else:
            x_val_raw, y_val_arr = _images(name, "x_val", x_val, layout), _labels(name, "y_val", y_val)
            _same_length(name, "val", x_val_raw, y_val_arr)
        x_train_f = x_train_raw.astype(np.float32) * np.float32(scale)
        mean = x_train_f.mean(axis=(0, 2, 3), dtype=np.float64)
        std = x_train_f.std(axis=(0, 2, 3), dtype=np.float64)
        std = np.where(std > 1e-8, std, 1.0)

        def standardise(raw: np.ndarray) -> np.ndarray:
            scaled = raw.astype(np.float32) * np.float32(scale)
            return ((scaled - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)

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
            info=dict(info or {}),
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


def _stratified_pick(labels: np.ndarray, count: int, seed: int, what: str) -> np.ndarray:
    """``count`` indices with class proportions kept (plain random if a class is too rare)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        _, picked = train_test_split(index, test_size=count, stratify=labels, random_state=seed)
    except ValueError as exc:  # too few of some class to stratify: fall back to a plain draw
        logger.debug("%s: not stratified (%s)", what, exc)
        picked = np.random.default_rng(seed).choice(index, size=count, replace=False)
    return np.sort(picked)


# -- sources --------------------------------------------------------------------------------------


def load_dataset(config: DatasetConfig | Mapping[str, Any] | str, seed: int | None = None) -> Dataset:
    """The dataset a config describes; ``seed`` splits validation unless ``config.seed`` is set.

    A user function (``"package.module:function"``) is called with
    ``config.options`` as keyword arguments, plus ``seed`` if it takes one,
    and may return:

    * a :class:`Dataset` (used as is);
    * a mapping with ``x_train``, ``y_train`` and optionally ``x_test``,
      ``y_test``, ``x_val``, ``y_val``, ``layout``, ``scale``,
      ``num_classes``, ``class_names`` (see :meth:`Dataset.from_arrays`);
    * a tuple ``(x_train, y_train)`` or ``(x_train, y_train, x_test, y_test)``;
    * a tuple ``(train, test)`` or ``(train,)`` of sequences of ``(image, label)``
      pairs, such as PyTorch datasets returning tensors.

    Nothing is ever downloaded: a missing file is a :class:`ConfigError`.
    """
    if isinstance(config, str):
        config = DatasetConfig(name=config)
    elif not isinstance(config, DatasetConfig):
        try:
            config = DatasetConfig.model_validate(dict(config))
        except ValueError as exc:
            raise ConfigError(f"invalid dataset config {dict(config)!r}: {exc}") from exc
    split_seed = config.seed if config.seed is not None else (seed if seed is not None else 0)
    common: dict[str, Any] = {"val_fraction": config.val_fraction, "seed": split_seed, "limit": config.limit}
    loader = _LOADERS.get(config.name, _load_function)
    dataset = loader(config, common)
    logger.info("dataset %s", dataset.summary())
    return dataset


def _load_digits(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    """sklearn's digits with a fixed stratified test split, so every study holds out the same images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images.astype(np.float32), digits.target  # N x 8 x 8, values 0..16
    count = int(round(DIGITS_TEST_FRACTION * len(labels)))
    test = _stratified_pick(labels, count, DIGITS_TEST_SEED, what="digits test split")
    train = np.setdiff1d(np.arange(len(labels)), test)
    return Dataset.from_arrays(
        "digits",
        images[train],
        labels[train],
        images[test],
        labels[test],
        scale=1.0 / 16.0,
        num_classes=10,
        info={"source": "sklearn.datasets.load_digits", "test_seed": DIGITS_TEST_SEED},
        **common,
    )


def _load_cifar10(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    path = Path(config.path).expanduser() if config.path else data_path(CIFAR10_SUBSET)
    if not path.exists():
        hint = "" if config.path else " (the default; set dataset.path or NAS_DATA_DIR)"
        raise ConfigError(
            f"cifar10 data {path} does not exist{hint}; expected an .npz with x_train, y_train, x_test, y_test "
            "or a cifar-10-batches-py directory"
        )
    arrays = _read_cifar_dir(path) if path.is_dir() else _read_npz(path)
    for key in ("x_train", "x_test"):
        array = arrays[key]
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (32, 32, 3):
            raise ConfigError(
                f"cifar10 data {path}: {key} has dtype {array.dtype} and shape {array.shape}; "
                "expected uint8 N x 32 x 32 x 3"
            )
    return Dataset.from_arrays(
        "cifar10",
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        layout="NHWC",
        num_classes=10,
        info={"source": str(path)},
        **common,
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data.files]
            if missing:
                raise ConfigError(f"{path} lacks array(s) {missing}; found {sorted(data.files)}")
            return {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path} is not a readable .npz file: {exc}") from exc


def _read_cifar_dir(path: Path) -> dict[str, np.ndarray]:
    """The official python batches (``data_batch_1..5``, ``test_batch``), in ``path`` or its ``cifar-10-batches-py``.

    These are pickles, as distributed by the dataset's authors. They are read
    with :class:`_BatchUnpickler`, which builds only the plain containers and
    numpy arrays a batch holds, so a crafted file cannot run code.
    """
    if not (path / "test_batch").exists() and (path / "cifar-10-batches-py").is_dir():
        path = path / "cifar-10-batches-py"
    train_files = [path / f"data_batch_{i}" for i in range(1, 6)]
    missing = [p.name for p in [*train_files, path / "test_batch"] if not p.exists()]
    if missing:
        raise ConfigError(
            f"CIFAR-10 directory {path} lacks {missing}; expected data_batch_1..5 and test_batch"
        )

    def read(batch: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with batch.open("rb") as handle:
                entry = _BatchUnpickler(handle, encoding="bytes").load()
            data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return data, np.asarray(entry[b"labels"], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as exc:
            raise ConfigError(f"{batch} is not a CIFAR-10 python batch: {exc}") from exc

    train = [read(p) for p in train_files]
    x_test, y_test = read(path / "test_batch")
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR python batch without running code: only numpy's array rebuilders are found.

    A batch is a dict of bytes, lists and one uint8 array. The authors' files
    (Python 2 pickles) name ``numpy.core.multiarray._reconstruct``,
    ``numpy.ndarray`` and ``numpy.dtype``; files re-pickled by Python 3 may
    name the ``numpy._core`` spelling or ``_frombuffer`` (protocol 5). Every
    other global, the way a pickle calls arbitrary functions, is refused.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _batch_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which a CIFAR-10 batch never needs; refused without running "
                f"it (allowed: {', '.join(sorted(f'{m}.{n}' for m, n in allowed))})"
            )
        return allowed[module, name]


def _batch_globals() -> dict[tuple[str, str], Any]:
    """The numpy rebuild functions of a pickled array, under each module path numpy has used."""
    try:
        from numpy._core.multiarray import _reconstruct
        from numpy._core.numeric import _frombuffer
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    found: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        found[f"{package}.multiarray", "_reconstruct"] = _reconstruct
        found[f"{package}.numeric", "_frombuffer"] = _frombuffer
    return found


def _load_image_folder(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    if config.path is None:  # DatasetConfig refuses this; kept for configs built with model_construct
        raise ConfigError("dataset 'image_folder' needs 'path': a directory with one sub-folder per class")
    root = Path(config.path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"image_folder path {root} is not a directory of class folders")
    size = config.image_size if config.image_size is not None else _IMAGE_FOLDER_SIZE
    height, width = (size, size) if isinstance(size, int) else size
    mode = "L" if config.grayscale else "RGB"
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ConfigError(f"image_folder {train_root} has {len(classes)} class folder(s); need at least 2")
    x_train, y_train = _read_images(train_root, classes, (height, width), mode, require_all=True)
    x_test = y_test = None
    if train_root != root and (root / "test").is_dir():
        x_test, y_test = _read_images(root / "test", classes, (height, width), mode, require_all=False)
    return Dataset.from_arrays(
        "image_folder",
        x_train,
        y_train,
        x_test,
        y_test,
        layout="NHWC",
        num_classes=len(classes),
        class_names=classes,
        info={"source": str(root), "image_size": [height, width], "mode": mode},
        **common,
    )


def _read_images(
    root: Path, classes: Sequence[str], size: tuple[int, int], mode: str, require_all: bool
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    extra = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in classes
    )
    if extra:
        raise ConfigError(
            f"image_folder {root} has class folder(s) {extra} that the training set lacks: {list(classes)}"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        files = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if folder.is_dir()
            else []
        )
        if not files and require_all:
            raise ConfigError(
                f"image_folder class folder {folder} has no images; allowed suffixes: {sorted(IMAGE_SUFFIXES)}"
            )
        for file in files:
            try:
                with Image.open(file) as image:
                    resized = image.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            except (OSError, UnidentifiedImageError) as exc:
                raise ConfigError(f"image_folder cannot read image {file}: {exc}") from exc
            array = np.asarray(resized, dtype=np.uint8)
            images.append(array[:, :, None] if array.ndim == 2 else array)
            labels.append(label)
    if not images:
        raise ConfigError(f"image_folder {root} has no images")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _load_synthetic(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    """Class prototypes plus noise: a learnable problem of any shape, made from the seed alone."""
    options = {key: getattr(config, key) for key in SYNTHETIC_DEFAULTS}
    options = {key: SYNTHETIC_DEFAULTS[key] if value is None else value for key, value in options.items()}
    num_classes, shape, noise = int(options["num_classes"]), tuple(options["shape"]), float(options["noise"])
    rng = np.random.default_rng([common["seed"], 0x5EED])
    prototypes = rng.standard_normal((num_classes, *shape)).astype(np.float32)

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % num_classes  # balanced, then shuffled
        rng.shuffle(labels)
        images = prototypes[labels] + noise * rng.standard_normal((count, *shape)).astype(np.float32)
        return images.astype(np.float32), labels

    x_train, y_train = draw(int(options["num_samples"]))
    x_test, y_test = draw(int(options["num_test"])) if options["num_test"] else (None, None)
    return Dataset.from_arrays(
        "synthetic",
        x_train,
        y_train,
        x_test,
        y_test,
        num_classes=num_classes,
        info={"noise": noise},
        **common,
    )


def _load_function(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    function = _import_function(config.name)
    kwargs = dict(config.options or {})
    parameters = inspect.signature(function).parameters
    if "seed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        kwargs.setdefault("seed", common["seed"])
    try:
        result = function(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"dataset function {config.name!r} cannot be called with options {kwargs}: {exc}"
        ) from exc
    return _from_result(config.name, result, common)


def _import_function(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"dataset function {reference!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(
            f"dataset function {reference!r}: module {module_name!r} has no callable {attribute!r}"
        )
    return function


_RESULT_FORMS = (
    "a nas.data.Dataset, a mapping with x_train and y_train (optionally x_test, y_test, x_val, y_val, ...), "
    "a tuple (x_train, y_train[, x_test, y_test]) or a tuple (train[, test]) of (image, label) sequences"
)
_MAPPING_KEYS = frozenset(
    {
        "x_train",
        "y_train",
        "x_test",
        "y_test",
        "x_val",
        "y_val",
        "layout",
        "scale",
        "num_classes",
        "class_names",
    }
)


def _from_result(name: str, result: Any, common: dict[str, Any]) -> Dataset:
    if isinstance(result, Dataset):
        return result
    if isinstance(result, Mapping):
        unknown = sorted(set(map(str, result)) - _MAPPING_KEYS)
        if unknown or "x_train" not in result or "y_train" not in result:
            raise ConfigError(
                f"dataset function {name!r} returned keys {sorted(map(str, result))}; expected x_train and "
                f"y_train, optionally {sorted(_MAPPING_KEYS - {'x_train', 'y_train'})}"
            )
        arrays = dict(result)
        return Dataset.from_arrays(name, arrays.pop("x_train"), arrays.pop("y_train"), **arrays, **common)
    if isinstance(result, tuple | list):
        if len(result) in (2, 4) and all(
            isinstance(r, np.ndarray) or hasattr(r, "__array__") for r in result
        ):
            return Dataset.from_arrays(name, *result, **common)
        if 1 <= len(result) <= 2 and all(_is_pair_sequence(r) for r in result):
            x_train, y_train = _stack_pairs(name, "train", result[0])
            test = _stack_pairs(name, "test", result[1]) if len(result) == 2 else (None, None)
            return Dataset.from_arrays(name, x_train, y_train, *test, **common)
    raise ConfigError(f"dataset function {name!r} returned {type(result).__name__}; expected {_RESULT_FORMS}")


def _is_pair_sequence(value: Any) -> bool:
    return (
        hasattr(value, "__len__")
        and hasattr(value, "__getitem__")
        and not isinstance(value, np.ndarray | str)
    )


def _stack_pairs(name: str, split: str, pairs: Any) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for index in range(len(pairs)):
        item = pairs[index]
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ConfigError(
                f"dataset function {name!r}: {split} item {index} is not an (image, label) pair"
            )
        images.append(np.asarray(item[0]))
        labels.append(int(item[1]))
    if not images:
        raise ConfigError(f"dataset function {name!r}: the {split} split is empty")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


_LOADERS: dict[str, Callable[[DatasetConfig, dict[str, Any]], Dataset]] = {
    "digits": _load_digits,
    "cifar10": _load_cifar10,
    "image_folder": _load_image_folder,
    "synthetic": _load_synthetic,
}

__all__ = ["Dataset", "IMAGE_SUFFIXES", "SYNTHETIC_DEFAULTS", "load_dataset"]
