"""``moasha``: multi-objective ASHA (Schmucker et al. 2021) for studies with several objectives.

Trials are compared at rungs (``grace_epochs · η^k``) as in ASHA, but ranked by
non-dominated sorting of all objectives (accuracy and params, say), ties in a
front broken by an ε-net or NSGA-II crowding (:mod:`nas.core.promotion`);
the top ``1/η`` go on. Objectives the evaluator reports every epoch are read
from the curve; params and FLOPs, fixed for an architecture, come from the
plan's cost model. Anything else (latency measured after training) is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from nas.core.errors import ConfigError
from nas.runner.schedulers.base import Scheduler, SchedulerSettings

if TYPE_CHECKING:
    from nas.runner.context import SearchRun
    from nas.runner.plan import SearchPlan


class MoashaSettings(SchedulerSettings):
    """As ``asha`` (``grace_epochs``, ``reduction_factor`` η), plus the front's ``tie_break``."""

    grace_epochs: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, gt=1.0)
    tie_break: Literal["epsnet", "crowding"] = "epsnet"


class MultiObjectiveAshaScheduler(Scheduler):
    """Stops a trial at a rung when it is not in the top 1/η by non-dominated rank."""

    name = "moasha"
    settings_model = MoashaSettings

    def check(self, plan: SearchPlan) -> None:
        super().check(plan)
        from nas.runner.plan import COST_METRICS

        objectives = list(plan.config.objectives)
        if len(objectives) < 2:
            raise ConfigError(
                f"scheduler 'moasha' ranks trials on several objectives, but the study has one ({objectives}); "
                "add one (e.g. objectives: {val_accuracy: max, params: min}) or use scheduler: {name: asha}"
            )
        per_epoch = getattr(plan.evaluator, "epoch_metrics", None)
        if per_epoch is not None:
            known = (*per_epoch, *COST_METRICS)
            unknown = [name for name in objectives if name not in known]
            if unknown:
                raise ConfigError(
                    f"scheduler 'moasha' compares trials during training, but objective(s) {unknown} are "
                    f"known only after it; allowed: {sorted(known)} (reported every epoch by evaluator "
                    f"{plan.config.evaluator.name!r}, or measured before training)"
                )

    def build(self, run: SearchRun) -> Any:
        from nas.core.promotion import rung_milestones
        from nas.runner.plan import COST_METRICS, cost_model
        from nas.runner.schedulers.tune_rules import MultiObjectiveAsha

        settings: MoashaSettings = self.settings  # type: ignore[assignment]
        plan = run.plan
        needs_cost = any(name in COST_METRICS for name in plan.config.objectives)
        return MultiObjectiveAsha(
            run.study,
            run.config.directions,
            rung_milestones(settings.grace_epochs, settings.reduction_factor, int(plan.fidelity or 1)),
            settings.reduction_factor,
            settings.tie_break,
            cost_model(plan.space, plan.data_shape) if needs_cost else None,
        )


__all__ = ["MoashaSettings", "MultiObjectiveAshaScheduler"]
