"""Network-morphism search (EAS, path-level network transformation): children of good trials.

After ``n_initial`` random architectures, each proposal picks a parent by a
tournament among the ``population_size`` best results so far and applies one
of the parent's function-preserving edits (:mod:`nas.core.morphism`: widen,
deepen, ...), chosen at random among those not yet proposed. The proposal
records its parent trial and the edit in :attr:`Strategy.last_attrs`
(``{"parent": number, "morphism": {"kind", "decision", "from", "to"}}``), which
the runner stores in the child's ``system_attrs``; the ``train`` evaluator with
``inherit: parent`` then starts the child from its parent's trained weights
mapped through the edit, and trains it for ``inherit_epochs`` only.

Pure ask/tell like every strategy: the edits come from the space's torch-free
morphism view; weights never pass through here. A space without morphisms is
refused when the strategy is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.morphism import Morphism, morphism_view, morphisms
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Observation, Strategy
from nas.strategies.options import int_option


@STRATEGIES.register("morphism")
class MorphismSearch(Strategy):
    """Tournament-selected parents, each child one function-preserving edit of its parent."""

    phase_name = "morphism"

    def __init__(
        self,
        space: SearchSpace,
        n_initial: int = 5,
        population_size: int = 10,
        tournament_size: int = 3,
        kinds: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.n_initial = int_option("n_initial", n_initial, 1)
        self.population_size = int_option("population_size", population_size, 1)
        self.tournament_size = int_option("tournament_size", tournament_size, 1)
        if self.tournament_size > self.population_size:
            raise ConfigError(
                f"morphism tournament_size={tournament_size} exceeds population_size={population_size}; "
                "allowed: 1..population_size"
            )
        offered = morphism_view(space).kinds
        if kinds is None:
            kinds = offered
        if isinstance(kinds, str) or not all(k in offered for k in kinds) or not kinds:
            raise ConfigError(
                f"morphism option kinds={kinds!r} is not allowed; expected a non-empty list of "
                f"{space.name}'s morphism kinds {list(offered)}"
            )
        self.kinds = frozenset(kinds)

    @classmethod
    def check_space(cls, space: SearchSpace | type[SearchSpace]) -> None:
        morphism_view(space)

    @property
    def initial_size(self) -> int:
        return self.n_initial

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if len(self.observations) < self.n_initial:
            return self.space.sample(rng)
        for parent in self._parents(rng):
            children = [m for m in self._allowed(parent.arch) if self.admissible(m.child)]
            if children:
                chosen = children[int(rng.integers(len(children)))]
                self.last_attrs = {"parent": parent.trial.number, "morphism": chosen.to_dict()}
                return chosen.child
        self.last_phase = "restart"  # every child of every good trial is taken: a fresh random root
        return self.space.sample(rng)

    def _parents(self, rng: np.random.Generator) -> list[Observation]:
        """The population in the order parents are tried: the tournament's winner first."""
        ranked = sorted(self.observations, key=self.utility, reverse=True)[: self.population_size]
        picks = rng.choice(len(ranked), size=min(self.tournament_size, len(ranked)), replace=False)
        winner = min(int(i) for i in picks)  # ranked best first
        return [ranked[winner], *(o for i, o in enumerate(ranked) if i != winner)]

    def _allowed(self, parent: Architecture) -> list[Morphism]:
        return [m for m in morphisms(self.space, parent) if set(m.kind.split("+")) <= self.kinds]


__all__ = ["MorphismSearch"]
