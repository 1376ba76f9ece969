"""Orchestration of searches on Ray Tune (``nas search``): one driver for black-box and one-shot.

The names below are imported on first use (PEP 562): a Ray worker that
imports :mod:`nas.runner.trainable` to run a trial then loads neither the
driver nor the store's SQLAlchemy, which it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.runner.driver import SearchOutcome, run_search
    from nas.runner.lifecycle import SearchInterrupted
    from nas.runner.plan import SearchPlan, build_plan

_HOMES = {
    "SearchInterrupted": "nas.runner.lifecycle",
    "SearchOutcome": "nas.runner.driver",
    "SearchPlan": "nas.runner.plan",
    "build_plan": "nas.runner.plan",
    "run_search": "nas.runner.driver",
}


def __getattr__(name: str) -> Any:
    try:
        home = _HOMES[name]
    except KeyError:
        raise AttributeError(f"module 'nas.runner' has no attribute {name!r}") from None
    return getattr(importlib.import_module(home), name)


__all__ = ["SearchInterrupted", "SearchOutcome", "SearchPlan", "build_plan", "run_search"]
