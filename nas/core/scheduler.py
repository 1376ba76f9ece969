"""The registry of trial schedulers: the rules that stop, pause or promote running trials.

A scheduler watches the learning curves a search's trials report and decides
which trials go on (ASHA today; Hyperband, BOHB, multi-objective ASHA and the
learning-curve stopper are added the same way). Schedulers drive Ray Tune, so
their code lives in the orchestration layer (:mod:`nas.runner.schedulers`);
the registry lives here, declared lazily by the Ray-free
:mod:`nas.runner.schedulers.catalog`, so the config can check a scheduler's
name without importing Ray. ``none`` is not a scheduler: it means every trial
trains to its full budget.
"""

from __future__ import annotations

from typing import Any

from nas.core.registry import Registry

#: Registered schedulers, name -> class (see :class:`nas.runner.schedulers.base.Scheduler`).
SCHEDULERS: Registry[Any] = Registry("scheduler", builtins="nas.runner.schedulers.catalog")

#: The scheduler name that means "no early stopping".
NO_SCHEDULER = "none"

__all__ = ["NO_SCHEDULER", "SCHEDULERS"]
