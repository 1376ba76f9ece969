"""A minimal strategy plugin: mutate the incumbent (the smallest complete example).

A strategy writes only ``_propose``; the base class rejects duplicates and
infeasible candidates, seeds ``rng`` per proposal (so resuming with
``warm_start`` continues exactly) and keeps failed or NaN trials out of
``observations``. It must pass every contract test in tests/test_strategies.py.
"""

from __future__ import annotations

import numpy as np

from nas.core import STRATEGIES, Architecture, Strategy


@STRATEGIES.register("plugin_mutation")
class IncumbentMutation(Strategy):
    """Random architectures until something has a score, then single-decision edits of the best one."""

    phase_name = "mutation"

    @property
    def initial_size(self) -> int:  # the phase each trial came from is stored with it
        return 1

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        best = self.best()
        if best is None:
            return self.space.sample(rng)
        return self.space.mutate(best.arch, rng)
