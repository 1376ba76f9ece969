"""``"package.module:function"`` datasets: a user function returning a Dataset, arrays or pairs."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nas.core.errors import ConfigError, shorten
from nas.data.dataset import Dataset
from nas.settings.dataset import DatasetConfig


def load_function(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
    function = _import_function(config.name)
    kwargs = dict(config.options or {})
    parameters = inspect.signature(function).parameters
    if "seed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        kwargs.setdefault("seed", common["seed"])
    try:
        result = function(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"dataset function {config.name!r} cannot be called with options {shorten(repr(kwargs), 300)}: {exc}"
        ) from exc
    except Exception as exc:  # the user's code failed: say so in one line (--debug shows the traceback)
        raise ConfigError(
            f"dataset function {config.name!r} failed: {type(exc).__name__}: {shorten(str(exc), 500)}"
        ) from exc
    return _from_result(config.name, result, common)


def _import_function(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # missing, or the module's own code failed while importing
        raise ConfigError(
            f"dataset function {reference!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {shorten(str(exc), 500)}"
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


__all__ = ["load_function"]
