"""What a scheduler plugin is: checked options, then a Ray Tune ``TrialScheduler`` for one search.

A scheduler is built in two steps so that bad input fails before Ray starts:
:meth:`Scheduler.check` runs in the plan (options against :attr:`Scheduler.settings_model`,
and the rules that need the rest of the config: a budget in epochs, the objectives),
:meth:`Scheduler.build` runs in the driver once Ray is up and returns the Tune scheduler
(Ray's own classes where they fit).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from nas.core.errors import ConfigError
from nas.settings.errors import format_validation_error

if TYPE_CHECKING:
    from nas.runner.context import SearchRun
    from nas.runner.plan import SearchPlan


class SchedulerSettings(BaseModel):
    """Base of every scheduler's options: typos refused, no NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Scheduler(abc.ABC):
    """One scheduler: its settings model, its plan-time checks and its Tune scheduler."""

    #: Registered name (``asha``, ...).
    name: ClassVar[str]
    #: Options accepted under ``scheduler:`` besides ``name``.
    settings_model: ClassVar[type[SchedulerSettings]] = SchedulerSettings
    #: Whether the scheduler decides on per-epoch curves (refused with an evaluator that has none).
    needs_curves: ClassVar[bool] = True
    #: Whether it pauses trials and resumes them later (then its rungs are checkpointed, and an
    #: evaluator that cannot checkpoint is refused).
    pauses: ClassVar[bool] = False

    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Scheduler:
        """Validate ``options`` into the settings model (a ConfigError naming the bad field)."""
        try:
            settings = cls.settings_model.model_validate(options)
        except ValidationError as exc:
            raise ConfigError(
                f"invalid options of scheduler {cls.name!r}:\n"
                + format_validation_error(exc, cls.settings_model)
            ) from None
        return cls(settings)

    def check(self, plan: SearchPlan) -> None:
        """Refuse a config this scheduler cannot serve (called by the plan, before Ray starts)."""
        if self.needs_curves and plan.evaluator.fidelity is None:
            raise ConfigError(
                f"scheduler {self.name!r} stops trials on their learning curves, but evaluator "
                f"{plan.config.evaluator.name!r} reports none; use scheduler: {{name: none}} or a "
                "training evaluator such as 'train'"
            )
        if self.pauses and not plan.evaluator.checkpoints:
            raise ConfigError(
                f"scheduler {self.name!r} pauses trials and resumes them from checkpoints, but evaluator "
                f"{plan.config.evaluator.name!r} cannot checkpoint its state; use scheduler 'asha' "
                "(stops trials instead of pausing them) or an evaluator that checkpoints such as 'train'"
            )

    def checkpoint_epochs(self, plan: SearchPlan) -> frozenset[int]:
        """The epochs after which trials are checkpointed (where this scheduler may pause them)."""
        return frozenset()

    @abc.abstractmethod
    def build(self, run: SearchRun) -> Any:
        """The Ray Tune ``TrialScheduler`` for this search (imports Ray; called with Ray up)."""


__all__ = ["Scheduler", "SchedulerSettings"]
