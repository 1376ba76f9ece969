"""The built-in datasets that need no files: scikit-learn's ``digits`` and ``synthetic`` data."""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.data.dataset import Dataset, stratified_pick
from nas.settings.dataset import DatasetConfig

#: Defaults of the ``synthetic`` dataset.
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "num_samples": 512,
    "num_test": 128,
    "num_classes": 4,
    "shape": (1, 8, 8),
    "noise": 1.0,
}
#: digits has no official test split: a fixed stratified 20% is held out, the same for every seed.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 20_240_601


def load_digits(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    """sklearn's digits with a fixed stratified test split, so every study holds out the same images."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images, labels = digits.images.astype(np.float32), digits.target  # N x 8 x 8, values 0..16
    count = int(round(DIGITS_TEST_FRACTION * len(labels)))
    test = stratified_pick(labels, count, DIGITS_TEST_SEED, what="digits test split")
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


def load_synthetic(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
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


__all__ = ["DIGITS_TEST_FRACTION", "DIGITS_TEST_SEED", "SYNTHETIC_DEFAULTS", "load_digits", "load_synthetic"]
