"""Live progress of a search: counts, best so far, elapsed and ETA, in one line.

Replaces Ray Tune's verbose tables. Updated by the driver only (the searcher
knows every trial's fate, including reused ones that never reach Tune).
"""

from __future__ import annotations

import math
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nas.core import Direction, Trial, TrialState


class SearchProgress:
    """A rich progress bar over ``total`` trials with running/failed counts and the incumbent."""

    def __init__(
        self, name: str, total: int, done: int, primary: str, direction: Direction, enabled: bool = True
    ) -> None:
        self.primary, self.direction = primary, direction
        self.counts = {state: 0 for state in TrialState}
        self.running = 0
        self.reused = 0
        self.best = math.nan
        self.started = time.monotonic()
        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn(f"[bold]{name}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task("search", total=total, completed=done, status="")

    def __enter__(self) -> SearchProgress:
        self._progress.start()
        self._refresh()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def seed(self, trials: list[Trial]) -> None:
        """Account for trials already finished before this run (resume)."""
        for trial in trials:
            self._count(trial)
        self._refresh()

    def started_trial(self) -> None:
        self.running += 1
        self._refresh()

    def finished_trial(self, trial: Trial, *, was_running: bool = True, reused: bool = False) -> None:
        if was_running:
            self.running -= 1
        self.reused += reused
        self._count(trial)
        self._progress.advance(self._task)
        self._refresh()

    def _count(self, trial: Trial) -> None:
        self.counts[trial.state] += 1
        value = trial.value(self.primary)
        if trial.state is TrialState.COMPLETE and math.isfinite(value):
            better = value > self.best if self.direction is Direction.MAX else value < self.best
            if math.isnan(self.best) or better:
                self.best = value

    def _refresh(self) -> None:
        best = "—" if math.isnan(self.best) else f"{self.best:.4g}"
        status = (
            f"running {self.running}  failed {self.counts[TrialState.FAIL]}  "
            f"pruned {self.counts[TrialState.PRUNED]}  reused {self.reused}  best {self.primary} {best}"
        )
        self._progress.update(self._task, status=status)
