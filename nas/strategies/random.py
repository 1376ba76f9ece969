"""Random search: the baseline every other strategy has to beat.

Uniform samples of the space; the base class rejects duplicates (so on
NAS-Bench-201 every query is a new functional cell) and infeasible ones.
"""

from __future__ import annotations

import numpy as np

from nas.core.architecture import Architecture
from nas.core.strategy import STRATEGIES, Strategy


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform sampling without repeats."""

    phase_name = "random"

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        return self.space.sample(rng)
