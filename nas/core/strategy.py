"""The ask/tell contract between search logic and execution.

Strategies are pure Python: no I/O, no torch, no Ray. The runner asks for
architectures (possibly several before any is told, as on a cluster), trains
or looks them up, and tells the finished :class:`~nas.core.trial.Trial` back.
Resuming a search is ``warm_start`` with the trials replayed from the store.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping

import numpy as np

from nas.core.architecture import Architecture
from nas.core.registry import Registry
from nas.core.space import SearchSpace, as_rng
from nas.core.trial import Direction, Trial, parse_objectives


class Strategy(abc.ABC):
    """Base class of every black-box search strategy."""

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | None = None,
        seed: int | np.random.Generator | None = 0,
    ) -> None:
        self.space = space
        self.objectives: dict[str, Direction] = parse_objectives(objectives or {"val_accuracy": "max"})
        self.rng = as_rng(seed)

    @abc.abstractmethod
    def ask(self) -> Architecture | None:
        """The next architecture to evaluate, or ``None`` if nothing can be proposed right now."""

    @abc.abstractmethod
    def tell(self, trial: Trial) -> None:
        """Learn from a finished trial (COMPLETE, PRUNED or FAIL)."""

    def warm_start(self, trials: Iterable[Trial]) -> None:
        """Replay stored trials (resume); by default each is told in order."""
        for trial in trials:
            self.tell(trial)


#: Registered strategies; importing ``nas.strategies`` registers the built-ins.
STRATEGIES: Registry[type[Strategy]] = Registry("strategy", builtins="nas.strategies")
