"""The ``specialize:`` section: device targets for sub-networks of a trained elastic supernet.

A BigNAS supernet is trained once; each target (a device and a latency
budget) then gets its own sub-network, searched with inherited weights and
no retraining (``nas specialize STUDY``, :mod:`nas.specialize`). The section
may sit in the search config (stored with the study, so ``nas specialize
STUDY`` with no options runs every target) or in a file of its own
(``nas specialize STUDY --config FILE``).

The schema checks shapes and ranges only; whether a device is known (a
column of the latency table, or ``local`` with a profiled lookup table) is
checked by :mod:`nas.specialize`, which owns the data, before any work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nas.core.errors import ConfigError
from nas.settings.sections import Section, Seed

#: How candidates are ranked: inherited accuracy only (``evolution``), or accuracy and latency (``nsga2``).
OBJECTIVES = ("accuracy", "pareto")
#: The strategies a specialisation may use, and the default one per objective.
STRATEGY_FOR = {"accuracy": "evolution", "pareto": "nsga2"}


class TargetConfig(Section):
    """One device and the largest predicted batch-1 latency (ms) a sub-network may have on it."""

    device: str = Field(min_length=1)
    max_latency_ms: float = Field(gt=0)

    @property
    def key(self) -> str:
        """``device<=budget`` (e.g. ``pixel3<=20``): how the store tells one target's trials from another's."""
        return f"{self.device}<={self.max_latency_ms:g}"


class SpecializeConfig(Section):
    """Targets and how to search each one (see the module docstring)."""

    targets: list[TargetConfig] = Field(min_length=1)
    objective: Literal["accuracy", "pareto"] = "accuracy"
    strategy: Literal["evolution", "nsga2"] | None = None
    #: Sub-networks scored per target (each one stored as a trial).
    candidates: int = Field(default=60, ge=2)
    #: Population of the evolution / NSGA-II strategy.
    population_size: int = Field(default=16, ge=2)
    #: Epochs of fine-tuning of each target's selected sub-network (0: inherited weights as they are).
    finetune_epochs: int = Field(default=0, ge=0)
    #: Learning rate of that fine-tuning (a small one: the weights are already trained).
    finetune_lr: float = Field(default=0.005, gt=0)
    seed: Seed = 0

    @model_validator(mode="after")
    def _check(self) -> SpecializeConfig:
        keys = [t.key for t in self.targets]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ConfigError(f"specialize.targets lists {repeated} more than once; each target once")
        if self.population_size > self.candidates:
            raise ConfigError(
                f"specialize.population_size={self.population_size} exceeds candidates={self.candidates}; "
                "allowed: 2..candidates"
            )
        return self

    @property
    def strategy_name(self) -> str:
        """The configured strategy, else the objective's (evolution for accuracy, nsga2 for pareto)."""
        return self.strategy or STRATEGY_FOR[self.objective]


__all__ = ["OBJECTIVES", "STRATEGY_FOR", "SpecializeConfig", "TargetConfig"]
