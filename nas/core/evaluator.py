"""The evaluator interface: turn an architecture into objective values.

Evaluators are plugins: a tabular benchmark looks results up, a zero-cost
proxy scores a fresh network, the train evaluator trains one. The runner
calls ``evaluate`` inside a Ray trial; ``report`` streams per-epoch metrics
(learning curves, for early stopping and the store).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.core.architecture import Architecture
from nas.core.registry import Registry
from nas.core.space import SearchSpace

#: ``report(step, {"val_accuracy": 81.2, ...})``; may raise to stop a trial early.
Reporter = Callable[[int, Mapping[str, float]], None]


@dataclass(frozen=True)
class EvalResult:
    """What one evaluation produced.

    ``values`` holds every measured metric (objectives are looked up in it by
    name); ``user_attrs`` holds things kept for reporting only, such as a test
    accuracy that a search must never optimise; ``artifacts`` maps an artifact
    kind (e.g. ``"weights"``) to a local file path.
    """

    values: Mapping[str, float]
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)


class Evaluator(abc.ABC):
    """Base class of every evaluator plugin."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    @abc.abstractmethod
    def evaluate(
        self,
        arch: Architecture,
        seed: int = 0,
        budget: float | None = None,
        report: Reporter | None = None,
    ) -> EvalResult:
        """Evaluate ``arch``; ``budget`` is a fidelity such as epochs (None: the default)."""


#: Registered evaluators: training and tabular ones in ``nas.evaluators``,
#: zero-cost proxy scorers in ``predictors`` (both plugin packages register here).
EVALUATORS: Registry[type[Evaluator]] = Registry(
    "evaluator", builtins=("nas.evaluators", "predictors.evaluators")
)
