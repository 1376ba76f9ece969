"""Where the read-only benchmark data lives.

The tables (NAS-Bench-201 results, device latencies, zero-cost scores) are
never copied into the repository: they sit next to it in ``../shared/data``
and ``$NAS_DATA_DIR`` points elsewhere (CI, a laptop). One function resolves
that, so every evaluator, test and benchmark agrees on it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable overriding the data directory.
ENV_VAR = "NAS_DATA_DIR"

#: Named tables, relative to :func:`data_dir` (see the data directory's README).
NB201_TABLE = Path("nb201/nb201_12epoch.csv")
NB201_LATENCY = Path("nb201/nb201_latency_ms.csv")
FBNET_LATENCY = Path("fbnet/fbnet_latency_ms.csv")
ZERO_COST_NB201 = Path("zero_cost/zc_nasbench201_sample.json")
ZERO_COST_NB301 = Path("zero_cost/zc_nasbench301_sample.json")
CIFAR10_SUBSET = Path("cifar10/cifar10_10k_2k.npz")


def repo_root() -> Path:
    """The repository root (the directory holding the ``nas`` package)."""
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$NAS_DATA_DIR`` if set (``~`` expanded), else ``<repo root>/../shared/data``.

    The directory is not required to exist: callers that need a file report
    its absence with the full path, so the message says what to set.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return repo_root().parent / "shared" / "data"


def data_path(relative: str | os.PathLike[str]) -> Path:
    """A path inside :func:`data_dir` (e.g. ``data_path(NB201_TABLE)``)."""
    return data_dir() / relative
