"""Hyperband (Li et al., 2018): synchronous successive-halving brackets that pause trials, not kill them.

Ray Tune's own ``HyperBandScheduler`` does the bookkeeping: a bracket of ``n``
trials trains each for ``r`` epochs, pausing each trial that reaches ``r``
until all of the bracket's have; the top 1/η go on to η·r epochs (resumed
from their checkpoints, see :mod:`nas.runner.checkpoints`), the rest are
stopped (stored PRUNED), until the survivors reach the full budget. Brackets
trade many short trials against few long ones; the band holds
``round(log_η(max epochs)) + 1`` of them.

What Ray lacks, written here (:class:`_Hyperband`):

* brackets run from the most aggressive (most trials, fewest first epochs) to
  plain full training, as in the paper's loop ``for s = s_max .. 0``; Ray
  fills them the other way round, so a search of a few dozen trials would
  train most of them to the end before any halving;
* the last rung's trials run to their natural end (Ray's ``stop_last_trials``
  would stop them at their final epoch, before the worker reports their
  objective values, and they would be stored PRUNED);
* a result without the objective (a trial's failure report) is not ranked;
* a rung whose every live trial is already past it is processed at once: a
  copy resumed from a stored checkpoint after a driver restart (see
  :mod:`nas.runner.checkpoints`) may stand beyond the new bracket's rung, and
  Ray, which processes a bracket only when a result arrives, would leave such
  trials paused forever.
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


class HyperbandSettings(SchedulerSettings):
    """``reduction_factor``: η, the top 1/η of a rung's trials go on to η times the epochs."""

    reduction_factor: int = Field(3, ge=2, le=16)


class Hyperband(Scheduler):
    """Pauses each trial at its bracket's rung until the rung is complete; promotes the top 1/η."""

    name = "hyperband"
    settings_model = HyperbandSettings
    pauses = True

    def check(self, plan: SearchPlan) -> None:
        super().check(plan)
        epochs, eta = plan.fidelity, self.settings.reduction_factor
        if epochs is None or int(epochs) < eta:
            raise ConfigError(
                f"scheduler 'hyperband' with reduction_factor {eta} needs at least {eta} epochs per trial "
                f"to halve anything; the evaluator trains {epochs!r}: raise its epochs or lower "
                "reduction_factor (2 is the least)"
            )

    def checkpoint_epochs(self, plan: SearchPlan) -> frozenset[int]:
        """The rungs below the full budget: where a trial may be paused, so where it is checkpointed."""
        return rungs(int(plan.fidelity or 1), self.settings.reduction_factor)

    def build(self, run: SearchRun) -> Any:
        from nas.runner import trainable as T

        primary, direction = run.primary
        return _hyperband_class()(
            time_attr=T.STEP,
            metric=primary,
            mode=direction.value,
            max_t=int(run.plan.fidelity or 1),
            reduction_factor=self.settings.reduction_factor,
            stop_last_trials=False,
        )


def brackets(max_epochs: int, eta: int) -> list[tuple[int, int]]:
    """The band as it runs: ``(trials, first rung's epochs)`` of each bracket, most aggressive first."""
    count = int(round(math.log(max_epochs) / math.log(eta))) + 1
    order = range(count - 1, -1, -1)
    return [(math.ceil(count / (s + 1) * eta**s), max(1, int(max_epochs * eta ** (-s)))) for s in order]


def rungs(max_epochs: int, eta: int) -> frozenset[int]:
    """Every epoch at which some bracket of the band pauses or stops trials (Ray's rule: r·η, capped)."""
    found = set()
    for _, epochs in brackets(max_epochs, eta):
        while epochs < max_epochs:
            found.add(epochs)
            epochs = int(min(epochs * eta, max_epochs))
    return frozenset(found)


def _hyperband_class() -> type:
    """Ray's ``HyperBandScheduler`` with the changes listed in the module docstring (imports Ray)."""
    from ray.tune.schedulers import HyperBandScheduler, TrialScheduler
    from ray.tune.schedulers.hyperband import _Bracket

    class _Hyperband(HyperBandScheduler):  # type: ignore[misc, valid-type]
        def _create_bracket(self, s: int) -> Any:
            # Ray asks for bracket s = 0, 1, ... of a band; hand out s_max, s_max - 1, ... instead.
            halvings = self._s_max_1 - 1 - s
            return _Bracket(
                time_attr=self._time_attr,
                max_trials=math.ceil(self._s_max_1 / (halvings + 1) * self._eta**halvings),
                init_t_attr=max(1, int(self._max_t_attr * self._eta ** (-halvings))),
                max_t_attr=self._max_t_attr,
                eta=self._eta,
                s=halvings,
                stop_last_trials=self._stop_last_trials,
            )

        def _process_bracket(self, tune_controller: Any, bracket: Any) -> str:
            action = super()._process_bracket(tune_controller, bracket)
            # Every live trial past the next rung too (none will report to trigger it): process it now.
            while bracket._halves > 0 and bracket.current_trials() and bracket.cur_iter_done():
                again = super()._process_bracket(tune_controller, bracket)
                action = action if action == TrialScheduler.STOP else again
            return action

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            if self._metric not in result or not math.isfinite(float(result[self._metric])):
                return TrialScheduler.CONTINUE  # a failure report, or a diverged epoch: not ranked
            return super().on_trial_result(tune_controller, trial, result)

    return _Hyperband


__all__ = ["Hyperband", "HyperbandSettings", "brackets", "rungs"]
