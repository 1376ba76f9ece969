"""The black-box phase of a search: the plan's ask/tell strategy proposes every trial.

The strategy is warm-started from the study's finished trials (resume is
replay), then :func:`nas.runner.trials.run_trials` runs only what the budget
still allows, so a study ends with exactly ``budget.trials`` finished trials
that no retry supersedes.
"""

from __future__ import annotations

from typing import Any

from nas.runner.context import SearchRun
from nas.runner.plan import SearchPlan
from nas.runner.recovery import effective_finished
from nas.runner.searcher import for_strategy
from nas.runner.trials import run_trials


class BlackBoxPhase:
    """Strategy-driven trials up to ``budget.trials``."""

    def check(self, plan: SearchPlan, dataset: Any) -> None:
        """Nothing beyond the plan: the strategy was built (and its options checked) there."""

    def run(self, run: SearchRun) -> float:
        strategy = run.plan.strategy
        if strategy is None:
            raise TypeError("the black-box phase needs a plan with a strategy")
        done = effective_finished(run.study.trials())
        strategy.warm_start(for_strategy(run.study, trial, strategy) for trial in done)
        budget = run.config.budget
        return run_trials(run, strategy, done, budget.trials, time_s=budget.time_s)


__all__ = ["BlackBoxPhase"]
