"""Regularized (aging) evolution, Real et al. 2019.

The population is the ``population_size`` most recently told usable trials:
the oldest member dies whatever its fitness, which is what makes the method
robust to noisy evaluations. A child is a one-decision mutation of the best of
``tournament_size`` members sampled without replacement.

It is asynchronous by construction: until the population is full, asks are
random samples, so any number of concurrent asks can be served; afterwards a
child only needs the current population, not the pending trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Strategy
from nas.strategies.options import int_option


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    """Aging evolution with tournament selection and single-decision mutation."""

    phase_name = "mutation"

    def __init__(
        self,
        space: SearchSpace,
        population_size: int = 20,
        tournament_size: int = 5,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.population_size = int_option("population_size", population_size, 1)
        self.tournament_size = int_option("tournament_size", tournament_size, 1)
        if self.tournament_size > self.population_size:
            raise ConfigError(
                f"evolution tournament_size={tournament_size} exceeds population_size={population_size}; "
                "allowed: 1..population_size"
            )

    @property
    def initial_size(self) -> int:
        return self.population_size

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if len(self.observations) < self.population_size:
            return self.space.sample(rng)
        population = self.observations[-self.population_size :]
        picks = rng.choice(len(population), size=self.tournament_size, replace=False)
        parent = max((population[int(i)] for i in picks), key=self.utility)
        return self.space.mutate(parent.arch, rng)
