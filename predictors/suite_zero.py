"""Reader of NAS-Bench-Suite-Zero's zero-cost scores (NASLib's JSON).

NASLib stores, per NAS-Bench-201 cell, every proxy's score and the 200-epoch
validation accuracy, keyed by a tuple of NASLib op indices. These published
scores are the reference our own proxies are checked against and the proxy
values we use where recomputing one is too expensive. Cells are parsed by the
space passed in, so a malformed key fails with the space's own error.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.core import Architecture, ConfigError, SearchSpace, UnknownNameError

#: Our proxy names that NASLib spells differently.
NASLIB_NAMES: dict[str, str] = {"jacob_cov": "jacov"}

#: NASLib's op indices on NAS-Bench-201 (see the data directory's README).
NASLIB_NB201_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist; set NAS_DATA_DIR to the shared data directory")
    return path


def naslib_nb201_string(key: str) -> str:
    """NASLib's ``"(e01, e02, e03, e12, e13, e23)"`` op-index tuple as a NAS-Bench-201 string."""
    try:
        indices = ast.literal_eval(key)
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(f"NASLib NAS-Bench-201 key {key!r} is not a tuple of op indices") from exc
    if (
        not isinstance(indices, tuple)
        or len(indices) != 6
        or not all(isinstance(i, int) and 0 <= i < len(NASLIB_NB201_OPS) for i in indices)
    ):
        raise ConfigError(f"NASLib NAS-Bench-201 key {key!r} must be six op indices in 0..4")
    e01, e02, e03, e12, e13, e23 = (NASLIB_NB201_OPS[i] for i in indices)
    return f"|{e01}~0|+|{e02}~0|{e12}~1|+|{e03}~0|{e13}~1|{e23}~2|"


@dataclass(frozen=True)
class ZeroCostSample:
    """NAS-Bench-Suite-Zero scores: per architecture, each proxy's score and the accuracy."""

    archs: tuple[Architecture, ...]
    scores: dict[str, np.ndarray]
    val_accuracy: np.ndarray


def read_zero_cost_nb201(path: str | Path, space: SearchSpace, dataset: str = "cifar10") -> ZeroCostSample:
    """Read NASLib's ``zc_nasbench201*.json`` for one dataset (e.g. ``cifar10``)."""
    with _require(Path(path)).open() as handle:
        data = json.load(handle)
    if dataset not in data:
        raise UnknownNameError("zero-cost dataset", dataset, data)
    entries = data[dataset]
    archs: list[Architecture] = []
    scores: dict[str, list[float]] = {}
    accuracy: list[float] = []
    for key, entry in entries.items():
        archs.append(space.parse(naslib_nb201_string(key)))
        accuracy.append(float(entry["val_accuracy"]))
        for name, value in entry.items():
            if isinstance(value, dict) and "score" in value:
                scores.setdefault(name, []).append(float(value["score"]))
    lengths = {len(v) for v in scores.values()}
    if lengths != {len(archs)}:
        raise ConfigError(f"{path}: not every architecture has every proxy score")
    return ZeroCostSample(tuple(archs), {k: np.asarray(v) for k, v in scores.items()}, np.asarray(accuracy))
