"""NSGA-II (Deb et al. 2002) as a steady-state ask/tell strategy.

Multi-objective search, e.g. accuracy against latency or parameters. The
population is the elitist NSGA-II survivor set of *every* usable trial so far:
sorted by non-dominated rank, ties broken by crowding distance, first
``population_size`` kept. A child comes from binary tournaments on (rank,
crowding), uniform crossover of two parents with probability
``crossover_prob``, then ``1..max_edits`` single-decision mutations.

The population is a function of the told trials only, so asynchronous asks
work (each draws a fresh child from the current population) and a resumed
search continues exactly. Until ``population_size`` trials are told, asks are
random samples.

On spaces where functionally identical architectures differ in a measured
cost (NAS-Bench-201 cells with dead ops still run them, so their latencies
differ), pass ``duplicate_key="exact"`` so the cheaper twin can still be found.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.pareto import crowding_distance, non_dominated_ranks
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Observation, Strategy
from nas.strategies.options import float_option, int_option


@STRATEGIES.register("nsga2")
class NSGA2(Strategy):
    """Elitist non-dominated sorting GA over all objectives."""

    multi_objective = True
    phase_name = "offspring"

    def __init__(
        self,
        space: SearchSpace,
        population_size: int = 10,
        crossover_prob: float = 0.5,
        max_edits: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.population_size = int_option("population_size", population_size, 2)
        self.crossover_prob = float_option("crossover_prob", crossover_prob, 0.0, 1.0)
        self.max_edits = int_option("max_edits", max_edits, 1)
        self._survivors: tuple[int, list[Observation], np.ndarray, np.ndarray] | None = None

    @property
    def initial_size(self) -> int:
        return self.population_size

    def population(self) -> tuple[list[Observation], np.ndarray, np.ndarray]:
        """Survivors with their non-dominated rank and crowding distance (cached per trial count)."""
        n = len(self.observations)
        if self._survivors is None or self._survivors[0] != n:
            points = self.minimisation_matrix()
            ranks = non_dominated_ranks(points)
            crowding = np.zeros(n)
            for rank in np.unique(ranks):
                members = np.flatnonzero(ranks == rank)
                crowding[members] = crowding_distance(points[members])
            # Lower rank first, then larger crowding, then older (stable) first.
            order = np.lexsort((-crowding, ranks))[: self.population_size]
            survivors = [self.observations[int(i)] for i in order]
            self._survivors = (n, survivors, ranks[order], crowding[order])
        return self._survivors[1], self._survivors[2], self._survivors[3]

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if len(self.observations) < self.population_size:
            return self.space.sample(rng)
        population, ranks, crowding = self.population()

        def tournament() -> Architecture:
            a, b = (int(i) for i in rng.choice(len(population), size=2, replace=False))
            if ranks[a] != ranks[b]:
                return population[a if ranks[a] < ranks[b] else b].arch
            return population[a if crowding[a] >= crowding[b] else b].arch

        child = tournament()
        if rng.random() < self.crossover_prob:
            child = self._crossover(child, tournament(), rng)
        for _ in range(1 + int(rng.integers(self.max_edits))):
            child = self.space.mutate(child, rng)
        return child

    def _crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """Uniform crossover; falls back to ``a`` if the mixed decisions are not a valid architecture."""
        mask = rng.random(len(a)) < 0.5
        decisions = {name: (b[name] if take_b else a[name]) for name, take_b in zip(a, mask, strict=True)}
        mixed = Architecture(a.space, tuple(decisions.items()))
        return mixed if self.space.is_valid(mixed) else a
