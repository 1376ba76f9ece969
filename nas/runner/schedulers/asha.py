"""ASHA (asynchronous successive halving): Ray Tune's own ``ASHAScheduler``, single-objective (see
:class:`~nas.runner.schedulers.tune_rules.FinishingAsha` for the one change: no stop at the last epoch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from nas.runner.schedulers.base import Scheduler, SchedulerSettings

if TYPE_CHECKING:
    from nas.runner.context import SearchRun


class AshaSettings(SchedulerSettings):
    """``grace_epochs``: epochs every trial gets (at most the evaluator's, checked by the settings);
    ``reduction_factor``: η, the top 1/η of a rung's trials go on."""

    grace_epochs: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, gt=1.0)


class Asha(Scheduler):
    """Stops a trial at a rung when it is not in the top 1/η of the trials that reached that rung."""

    name = "asha"
    settings_model = AshaSettings

    def brackets(self, epochs: int) -> int:
        """How many successive-halving brackets run side by side (ASHA: one)."""
        return 1

    def build(self, run: SearchRun) -> Any:
        from nas.runner import trainable as T
        from nas.runner.schedulers.tune_rules import FinishingAsha

        primary, direction = run.primary
        epochs = int(run.plan.fidelity or 1)
        return FinishingAsha(
            metric=primary,
            mode=direction.value,
            time_attr=T.STEP,
            study=run.study,
            label=self.name,
            max_t=epochs,
            grace_period=self.settings.grace_epochs,
            reduction_factor=self.settings.reduction_factor,
            brackets=self.brackets(epochs),
        )


__all__ = ["Asha", "AshaSettings"]
