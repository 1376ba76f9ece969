"""NAS-Bench-201's one-shot view: a cell supernet, its collapse signals, its table.

The one cell is the normal cell, so every decision and every alpha edge feed
the collapse detector; the threshold is half the edges. Supernet scores rank
against the NAS-Bench-201 table (:data:`nas.data.paths.NB201_TABLE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.core.architecture import Architecture
from nas.core.oneshot import OneShotView
from nas.data.paths import NB201_TABLE


def build(space: Any, **options: Any) -> Any:
    """Build the supernet (imports torch only here)."""
    from nas.supernet import CellSupernetSize
    from search_spaces.nb201.supernet import Nb201Supernet

    return Nb201Supernet(space, CellSupernetSize(**options))


def cell_ops(arch: Architecture) -> list[str]:
    return [str(value) for _, value in arch.decisions]


def normal_edges(alphas: Mapping[str, Any]) -> list[Any]:
    return list(alphas.values())


VIEW = OneShotView.cell(build, cell_ops, normal_edges, collapse_threshold=0.5, table=str(NB201_TABLE))

__all__ = ["VIEW"]
