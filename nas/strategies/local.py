"""Local search: hill climbing over ``space.neighbours`` with random restarts.

White et al. (2021, "Local search is state of the art for NAS benchmarks")
found this simple loop hard to beat on cell benchmarks: evaluate neighbours of
the current point in random order, move as soon as one is better (first
improvement), and restart from a random architecture at a local optimum.

All state is derived from the told trials (the current point moves in
``tell``, never in ``ask``), so a resumed search walks the same path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Observation, Strategy
from nas.core.trial import Trial


@STRATEGIES.register("local")
class LocalSearch(Strategy):
    """First-improvement hill climbing with random restarts (primary objective)."""

    phase_name = "neighbour"

    def __init__(self, space: SearchSpace, **options: Any) -> None:
        super().__init__(space, **options)
        self._current: Observation | None = None

    @property
    def current(self) -> Observation | None:
        """The point whose neighbourhood is being explored (None: restarting)."""
        return self._current

    @property
    def initial_size(self) -> int:
        return 1

    def phase(self) -> str:
        """``initial`` for the first sample, ``restart`` for later random restarts, else ``neighbour``."""
        if self._current is None:
            return super().phase() if not self.observations else "restart"
        return self.phase_name

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if self._current is None:
            return self.space.sample(rng)
        neighbours = self.space.neighbours(self._current.arch)
        for index in rng.permutation(len(neighbours)):
            candidate = neighbours[int(index)]
            if not self.is_duplicate(candidate) and self.feasible(candidate):
                return candidate
        # Every neighbour is told or still pending: explore until they finish.
        return self.space.sample(rng)

    def _observe(self, trial: Trial, observation: Observation | None) -> None:
        if observation is not None and (
            self._current is None or self.utility(observation) > self.utility(self._current)
        ):
            self._current = observation
        if self._current is not None and self._at_local_optimum(self._current.arch):
            self._current = None

    def _at_local_optimum(self, arch: Architecture) -> bool:
        """Every feasible neighbour has been told (and none was better, or we would have moved)."""
        return all(
            self._dedupe_key(n) in self._seen or not self.feasible(n) for n in self.space.neighbours(arch)
        )
