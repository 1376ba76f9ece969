"""DARTS' one-shot view: a cell supernet with a normal and a reduction alpha matrix.

Collapse is judged on the normal cell (DARTS+' rule: two or more of its eight
ops are skip connections, threshold 0.25); there is no tabular benchmark of
this space in the shared data, so rank correlation needs a ``rank_table``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.core.architecture import Architecture
from nas.core.oneshot import OneShotView

NORMAL = "normal."


def build(space: Any, **options: Any) -> Any:
    """Build the supernet (imports torch only here)."""
    from nas.supernet import CellSupernetSize
    from search_spaces.darts.supernet import DartsSupernet

    return DartsSupernet(space, CellSupernetSize(**options))


def cell_ops(arch: Architecture) -> list[str]:
    """The eight ops of the normal cell."""
    return [str(value) for name, value in arch.decisions if name.startswith(NORMAL) and ".op" in name]


def normal_edges(alphas: Mapping[str, Any]) -> list[Any]:
    """The normal cell's edges (alpha labels ``normal.<edge>``)."""
    return [ops for edge, ops in alphas.items() if edge.startswith(NORMAL)]


VIEW = OneShotView.cell(build, cell_ops, normal_edges, collapse_threshold=0.25)

__all__ = ["VIEW"]
