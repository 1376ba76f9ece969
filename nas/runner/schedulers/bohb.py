"""``bohb``: Hyperband brackets for the ``bohb`` strategy's per-budget model (Falkner et al. 2018).

BOHB pairs Hyperband's brackets (each a successive-halving run with its own
minimum budget, so neither few-epoch nor many-epoch evidence is trusted
blindly) with a TPE-style density model fitted on the largest budget that has
enough results. The model is the ``bohb`` strategy (:mod:`nas.strategies.bohb`),
told every trial's curve; the brackets are Ray Tune's asynchronous Hyperband
(``ASHAScheduler`` with several brackets, Li et al. 2020), which stops rather
than pauses: a promoted trial simply trains on. The two work together, so this
scheduler requires that strategy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from nas.core.errors import ConfigError
from nas.runner.schedulers.base import Scheduler, SchedulerSettings

if TYPE_CHECKING:
    from nas.runner.context import SearchRun
    from nas.runner.plan import SearchPlan


class BohbSettings(SchedulerSettings):
    """``grace_epochs``: the smallest bracket's minimum budget; ``reduction_factor``: η;
    ``brackets``: how many (default: every bracket Hyperband has, ``⌊log_η(epochs/grace)⌋ + 1``)."""

    grace_epochs: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, gt=1.0)
    brackets: int | None = Field(None, ge=1)


def hyperband_brackets(grace: int, eta: float, max_epochs: int) -> int:
    """Hyperband's ``s_max + 1``: brackets whose minimum budgets are ``grace · η^s <= max_epochs``."""
    return int(math.floor(math.log(max(max_epochs / grace, 1.0)) / math.log(eta) + 1e-9)) + 1


class BohbScheduler(Scheduler):
    """Asynchronous Hyperband brackets for the ``bohb`` strategy."""

    name = "bohb"
    settings_model = BohbSettings

    def check(self, plan: SearchPlan) -> None:
        super().check(plan)
        if plan.config.strategy.name != "bohb":
            raise ConfigError(
                f"scheduler 'bohb' is BOHB's brackets and needs its model, strategy 'bohb'; the config has "
                f"strategy {plan.config.strategy.name!r}: set strategy: {{name: bohb}}, or use scheduler asha"
            )
        settings: BohbSettings = self.settings  # type: ignore[assignment]
        epochs = int(plan.fidelity or 1)
        most = hyperband_brackets(settings.grace_epochs, settings.reduction_factor, epochs)
        if settings.brackets is not None and settings.brackets > most:
            raise ConfigError(
                f"scheduler.brackets={settings.brackets} is not allowed with grace_epochs="
                f"{settings.grace_epochs}, reduction_factor={settings.reduction_factor:g} and {epochs} "
                f"epochs; allowed: 1..{most}"
            )

    def build(self, run: SearchRun) -> Any:
        from nas.runner import trainable as T
        from nas.runner.schedulers.tune_rules import FinishingAsha

        settings: BohbSettings = self.settings  # type: ignore[assignment]
        primary, direction = run.primary
        epochs = int(run.plan.fidelity or 1)
        return FinishingAsha(
            metric=primary,
            mode=direction.value,
            time_attr=T.STEP,
            study=run.study,
            label="bohb",
            max_t=epochs,
            grace_period=settings.grace_epochs,
            reduction_factor=settings.reduction_factor,
            brackets=settings.brackets
            or hyperband_brackets(settings.grace_epochs, settings.reduction_factor, epochs),
        )


__all__ = ["BohbScheduler", "BohbSettings", "hyperband_brackets"]
