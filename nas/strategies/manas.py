"""Multi-agent search (MANAS, Carlucci et al. 2019): one independent learner per decision.

MANAS splits the joint choice of an architecture among agents, one per
decision, that each play an adversarial bandit over their own choices and
share nothing but the reward of the architecture they built together. Each
agent runs EXP3 (exponential weights with importance-weighted reward
estimates): agent ``i`` plays

    pi_i = (1 - gamma) * softmax(eta * G_i) + gamma / K_i

and, when the architecture it helped build returns reward ``r``, adds
``r / pi_i(a_i)`` to the estimate ``G_i(a_i)`` of the choice ``a_i`` it played.
The number of parameters grows with the sum, not the product, of the
decisions' sizes, which is the point of the paper.

EXP3 needs bounded rewards; the reward is the result's quantile among the
results told so far (ties count half), which is bounded, independent of the
objective's units and not dominated by a few diverged runs, centred on 0.5
(in [-0.5, 0.5]): a constant shift changes no expected difference between
choices, but the centred estimates have a quarter of the variance, so an
agent whose decision does not matter drifts far less (measured in
``tests/test_policy_strategies.py``). ``eta`` is ``gamma / K_max`` (EXP3's
rate, ``K_max`` the most choices of any decision) times ``eta_scale``; the
default 10 was the best of 1, 3, 10 and 30 on NAS-Bench-201 seeds 100-109
(100 queries), seeds never reported as figures. EXP3's own rate learns too
slowly for a budget of a hundred architectures.

Adaptations: the importance weight uses the policy at the time the result is
told (an ask may precede several tells on a cluster, and only told trials
may shape the state, so that a warm start replays exactly); each attempt
draws a batch of joint samples and proposes the first valid one not told yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Observation, Strategy
from nas.core.trial import Trial
from nas.strategies.decisions import BATCH, DecisionTable, draw_independent, quantile
from nas.strategies.options import float_option


@STRATEGIES.register("manas")
class MultiAgentSearch(Strategy):
    """MANAS: an EXP3 agent per decision, all rewarded with the architecture's result."""

    def __init__(
        self,
        space: SearchSpace,
        gamma: float = 0.1,
        eta_scale: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.gamma = float_option("gamma", gamma, 0.0, 1.0)
        self.eta_scale = float_option("eta_scale", eta_scale, 0.0)
        self.table = DecisionTable(space)
        self.eta = self.eta_scale * max(self.gamma, 1e-3) / max(self.table.sizes)
        #: Each agent's cumulative importance-weighted reward estimate per choice.
        self.gains: list[np.ndarray] = [np.zeros(k) for k in self.table.sizes]

    def policies(self) -> list[np.ndarray]:
        """Each agent's current distribution over its choices."""
        result = []
        for gain in self.gains:
            weights = np.exp(self.eta * (gain - gain.max()))
            result.append((1.0 - self.gamma) * weights / weights.sum() + self.gamma / len(gain))
        return result

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        rows = draw_independent(self.policies(), BATCH, rng)
        return self.table.first_admissible(rows, self.admissible, rng)

    def _observe(self, trial: Trial, observation: Observation | None) -> None:
        if observation is None:
            return
        reward = quantile(self.utility(observation), [self.utility(o) for o in self.observations]) - 0.5
        policies = self.policies()
        for agent, choice in enumerate(self.table.indices(observation.arch)):
            self.gains[agent][choice] += reward / policies[agent][choice]
