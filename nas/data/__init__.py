"""Datasets for the train evaluator: in-memory arrays, or streamed references for large sets; never downloaded.

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
  ``train/`` and ``test/``), checked file by file, resized with Pillow;
* ``npy`` -- ``x_train.npy``, ``y_train.npy`` (optionally ``x_test.npy``,
  ``y_test.npy``) in one directory, read through memory maps;
* ``parquet`` -- ``train-*.parquet`` (optionally ``test-*.parquet``) shards
  of encoded images and labels written from an image folder by ``nas shards``
  (:mod:`nas.data.shards`);
* ``webdataset`` -- ``train-*.tar`` (optionally ``test-*.tar``) WebDataset-style
  shards of the same samples (``NNNNNNNNN.png`` + ``NNNNNNNNN.cls``), written by
  ``nas shards --format tar`` (:mod:`nas.data.tar_shards`);
* ``synthetic`` -- class prototypes plus Gaussian noise: learnable, any shape,
  made from the seed (for tests);
* ``"package.module:function"`` -- a user function returning a
  :class:`Dataset`, a mapping of arrays, or a tuple of arrays (see
  :func:`load_dataset`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from nas.core.errors import ConfigError
from nas.data.builtin import SYNTHETIC_DEFAULTS, load_digits, load_synthetic
from nas.data.cifar import load_cifar10
from nas.data.dataset import Dataset, Layout
from nas.data.functions import load_function
from nas.data.image_folder import IMAGE_SUFFIXES, load_image_folder
from nas.data.npy import load_npy
from nas.data.shards import PARQUET, load_shards
from nas.data.tar_shards import WEBDATASET
from nas.settings.dataset import DatasetConfig

logger = logging.getLogger(__name__)

#: The built-in sources by ``DatasetConfig.name`` (anything else is a user function).
LOADERS: dict[str, Callable[[DatasetConfig, dict[str, Any]], Any]] = {
    "digits": load_digits,
    "cifar10": load_cifar10,
    "image_folder": load_image_folder,
    "npy": load_npy,
    "parquet": partial(load_shards, PARQUET),
    "synthetic": load_synthetic,
    "webdataset": partial(load_shards, WEBDATASET),
}


def load_dataset(config: DatasetConfig | Mapping[str, Any] | str, seed: int | None = None) -> Any:
    """The dataset a config describes; ``seed`` splits validation unless ``config.seed`` is set.

    A :class:`Dataset` in memory, or for ``image_folder``, ``npy`` and ``parquet`` with
    ``streaming: true`` (or unset and over
    :data:`~nas.settings.dataset.STREAMING_THRESHOLD_BYTES` decoded) a
    :class:`~nas.data.streaming.StreamingDataset`: references the data
    workers of each trial read from.

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
    loader = LOADERS.get(config.name, load_function)
    dataset = loader(config, common)
    logger.info("dataset %s", dataset.summary())
    return dataset


__all__ = ["Dataset", "IMAGE_SUFFIXES", "LOADERS", "Layout", "SYNTHETIC_DEFAULTS", "load_dataset"]
