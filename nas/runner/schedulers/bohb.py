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
from typing import TYPE_CHECKING

from pydantic import Field

from nas.core.errors import ConfigError
from nas.runner.schedulers.asha import Asha, AshaSettings

if TYPE_CHECKING:
    from nas.runner.plan import SearchPlan


class BohbSettings(AshaSettings):
    """ASHA's options (``grace_epochs``: the smallest bracket's minimum budget; ``reduction_factor``: η)
    and ``brackets``: how many (default: every bracket Hyperband has, ``⌊log_η(epochs/grace)⌋ + 1``)."""

    brackets: int | None = Field(None, ge=1)


def hyperband_brackets(grace: int, eta: float, max_epochs: int) -> int:
    """Hyperband's ``s_max + 1``: brackets whose minimum budgets are ``grace · η^s <= max_epochs``."""
    return int(math.floor(math.log(max(max_epochs / grace, 1.0)) / math.log(eta) + 1e-9)) + 1


class BohbScheduler(Asha):
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

    def brackets(self, epochs: int) -> int:
        """Every bracket Hyperband has for these epochs, unless ``brackets`` says fewer."""
        settings: BohbSettings = self.settings  # type: ignore[assignment]
        return settings.brackets or hyperband_brackets(
            settings.grace_epochs, settings.reduction_factor, epochs
        )


__all__ = ["BohbScheduler", "BohbSettings", "hyperband_brackets"]
