"""CIFAR-10 from local files: an ``.npz`` subset or the official python batches (never downloaded)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.data.dataset import Dataset
from nas.data.paths import CIFAR10_SUBSET, data_path
from nas.settings.dataset import DatasetConfig


def load_cifar10(config: DatasetConfig, common: dict[str, Any]) -> Dataset:
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


__all__ = ["load_cifar10"]
