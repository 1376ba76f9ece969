"""``lc``: stop a trial when our LC-PFN says it will probably not beat the best (LC-PFN's rule).

After each epoch from ``min_epochs`` on, the trial's curve so far predicts the
distribution of its final value; it stops when ``P(final > best final so far)
< threshold`` (:class:`nas.curves.stopping.LearningCurveRule`). The model reads
values in [0, 1], so the metric needs known bounds: accuracies (percent) have
them, any other metric takes ``bounds: [low, high]``. The shipped weights are
loaded (checksum verified) in the plan, before Ray starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from nas.core.errors import ConfigError
from nas.core.trial import Direction
from nas.runner.schedulers.base import Scheduler, SchedulerSettings

if TYPE_CHECKING:
    from nas.curves.stopping import LearningCurveRule
    from nas.runner.context import SearchRun
    from nas.runner.plan import SearchPlan


class LcSettings(SchedulerSettings):
    """``threshold``: stop below this probability of beating the best; ``min_epochs``: epochs every
    trial gets; ``bounds``: the metric's range when its name does not say it (accuracies: 0..100)."""

    threshold: float = Field(0.05, gt=0.0, lt=1.0)
    min_epochs: int = Field(3, ge=1)
    bounds: tuple[float, float] | None = None


class LearningCurveScheduler(Scheduler):
    """Stops trials whose predicted final value is unlikely to beat the incumbent."""

    name = "lc"
    settings_model = LcSettings

    def __init__(self, settings: SchedulerSettings) -> None:
        super().__init__(settings)
        self.rule: LearningCurveRule | None = None

    def check(self, plan: SearchPlan) -> None:
        super().check(plan)
        from nas.curves.predict import load_predictor
        from nas.curves.stopping import LearningCurveRule, known_bounds

        settings: LcSettings = self.settings  # type: ignore[assignment]
        metric, direction = next(iter(plan.config.directions.items()))
        bounds = settings.bounds or known_bounds(metric)
        if bounds is None:
            raise ConfigError(
                f"scheduler 'lc' predicts the objective {metric!r} from its curve, but its range is unknown "
                "(the curve model reads accuracy-like values in a fixed range); set scheduler.bounds: "
                "[low, high] to the metric's range, or use scheduler: {name: asha}"
            )
        epochs = int(plan.fidelity or 0)
        try:
            self.rule = LearningCurveRule(
                horizon=epochs,
                threshold=settings.threshold,
                min_epochs=settings.min_epochs,
                bounds=(float(bounds[0]), float(bounds[1])),
                maximize=direction is Direction.MAX,
            )
        except ConfigError as exc:
            raise ConfigError(f"scheduler 'lc' with evaluator epochs={epochs}: {exc}") from None
        load_predictor()  # missing or corrupted weights: CurveWeightsError now, not in the driver

    def build(self, run: SearchRun) -> Any:
        from nas.curves.predict import load_predictor
        from nas.runner.schedulers.tune_rules import CurveStopper

        if self.rule is None:
            self.check(run.plan)
        metric, _ = run.primary
        return CurveStopper(run.study, metric, self.rule, load_predictor())  # type: ignore[arg-type]


__all__ = ["LcSettings", "LearningCurveScheduler"]
