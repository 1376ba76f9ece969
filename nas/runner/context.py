"""What every phase of a search run shares: the plan, the open study, the data, where things go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core.trial import Direction
from nas.runner.lifecycle import StopRequest
from nas.runner.plan import SearchPlan
from nas.settings.search import SearchConfig


@dataclass(frozen=True)
class SearchRun:
    """One run (or resumption) of a search, as the driver opened it."""

    plan: SearchPlan
    #: The open :class:`~nas.study.Study` (the driver is its only writer).
    study: Any
    storage: str
    artifacts: Path
    #: The loaded dataset (``None`` when neither a supernet nor the evaluator trains).
    dataset: Any
    address: str | None
    show_progress: bool
    #: The driver's lease on the study and its heartbeat (:class:`~nas.runner.lease.DriverLease`):
    #: it beats for the trials it is told to ``track``; ``lost`` stops proposals. ``None`` in tests.
    lease: Any = None
    #: Set by Ctrl+C or SIGTERM: the phase starts nothing new and Tune stops the running trials.
    stop: StopRequest = field(default_factory=StopRequest)

    @property
    def config(self) -> SearchConfig:
        return self.plan.config

    @property
    def trial_dataset(self) -> Any:
        """What ordinary trials get: the dataset if their evaluator trains on it."""
        return self.dataset if self.plan.evaluator.needs_data else None

    @property
    def primary(self) -> tuple[str, Direction]:
        """The first objective and its direction (progress display, ASHA)."""
        return next(iter(self.config.directions.items()))


__all__ = ["SearchRun"]
