"""Ray Tune schedulers that apply this package's Ray-free decision rules to running trials.

Ray Tune has no learning-curve stopper and no multi-objective ASHA; these two
thin ``FIFOScheduler`` subclasses feed each reported epoch to the rules of
:mod:`nas.curves.stopping` and :mod:`nas.core.promotion` (the same code the
offline replay in ``benchmarks/schedulers.py`` measures) and record each stop
with its reason in the stopped trial's ``system_attrs["scheduler"]``, so the
store says why a trial ended early. Imported only by ``build`` (Ray is up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from nas.core import Architecture
from nas.core.promotion import mo_promotes, promoted_count
from nas.core.trial import Direction
from nas.curves.stopping import LearningCurveRule
from nas.runner import trainable as T


def record_decision(study: Any, trial: Any, decision: Mapping[str, Any]) -> None:
    """Store why a scheduler stopped ``trial`` in its ``system_attrs["scheduler"]`` (the dashboard shows it)."""
    number = trial.config.get("number")
    if study is not None and number is not None:
        study.set_system_attr(int(number), "scheduler", dict(decision))


class FinishingAsha(ASHAScheduler):  # type: ignore[misc]
    """Ray's ASHA (and asynchronous Hyperband), except that a trial's last epoch is never a stop.

    Ray counts ``max_t`` as a rung: a trial below its cutoff there would be
    stopped after training to the end, before its final report (results,
    weights) arrives, and be stored PRUNED. At its last epoch the trial ends by itself.
    With a ``study``, each stop is recorded with its rung, the value against
    the rung's cutoff and the trial's rank there (``label`` names the scheduler).
    """

    def __init__(self, *args: Any, study: Any = None, label: str = "asha", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.study, self.label = study, label

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "study": None}  # Tune pickles its config; the study cannot be

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(T.FINAL) or int(result.get(T.STEP, 0)) >= self._max_t:
            return TrialScheduler.CONTINUE
        rung = self._rung_reached(trial, result)
        action = str(super().on_trial_result(tune_controller, trial, result))
        if action == TrialScheduler.STOP and rung is not None:
            milestone, recorded, cutoff = rung
            signed = self._metric_op * float(result[self._metric])
            record_decision(
                self.study,
                trial,
                {
                    "name": self.label,
                    "epoch": int(result[self._time_attr]),
                    "rung": int(milestone),
                    "value": float(result[self._metric]),
                    "cutoff": None if cutoff is None else self._metric_op * float(cutoff),
                    "rank": 1 + sum(v > signed for v in recorded),
                    "rung_size": len(recorded) + 1,
                    "reduction_factor": float(self._reduction_factor),
                },
            )
        return action

    def _rung_reached(self, trial: Any, result: dict) -> tuple[float, list[float], float | None] | None:
        """The rung this result is judged at, its values so far and cutoff (as Ray's bracket will see them)."""
        bracket = self._trial_info.get(trial.trial_id)
        if bracket is None or self._metric not in result or self._time_attr not in result:
            return None
        step = result[self._time_attr]
        for milestone, recorded in bracket._rungs:  # descending, as in Ray's _Bracket.on_result
            if step >= milestone and trial.trial_id in recorded:
                return None
            if step < milestone or trial.trial_id in recorded:
                continue
            return milestone, [float(v) for v in recorded.values()], bracket.cutoff(recorded)
        return None


class _Recording(FIFOScheduler):  # type: ignore[misc]
    """Keeps the search's study to record decisions; Tune pickles its config, the study cannot be."""

    def __init__(self, study: Any) -> None:
        super().__init__()
        self.study = study

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def record(self, trial: Any, decision: Mapping[str, Any]) -> None:
        record_decision(self.study, trial, decision)


class CurveStopper(_Recording):
    """The ``lc`` scheduler: :class:`~nas.curves.stopping.LearningCurveRule` after every epoch."""

    def __init__(self, study: Any, metric: str, rule: LearningCurveRule, predictor: Any) -> None:
        super().__init__(study)
        self.curve_metric, self.rule, self.predictor = metric, rule, predictor
        self.curves: dict[str, list[float]] = {}
        self.best: float | None = None

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        value = result.get(self.curve_metric)
        if value is None or not math.isfinite(float(value)):
            return TrialScheduler.CONTINUE
        if result.get(T.FINAL):
            if self.rule.better(float(value), self.best):
                self.best = float(value)
            return TrialScheduler.CONTINUE
        step = int(result[T.STEP])
        # A restarted trial reports from epoch 1 again: its curve restarts too.
        curve = [*self.curves.get(trial.trial_id, [])[: step - 1], float(value)]
        self.curves[trial.trial_id] = curve
        if not self.rule.stops(self.predictor, [curve], self.best)[0]:
            return TrialScheduler.CONTINUE
        p = float(self.rule.prob_beats(self.predictor, [curve], self.best)[0])  # type: ignore[arg-type]
        self.record(
            trial,
            {
                "name": "lc",
                "epoch": step,
                "p_beats_best": p,
                "best": self.best,
                "threshold": self.rule.threshold,
            },
        )
        return TrialScheduler.STOP

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.curves.pop(trial.trial_id, None)


class MultiObjectiveAsha(_Recording):
    """The ``moasha`` scheduler: at each rung, :func:`~nas.core.promotion.mo_promotes` or stop.

    Objectives the epoch's report lacks (params, FLOPs) come from ``cost(arch)``,
    the plan's cost model: they do not change while a network trains.
    """

    def __init__(
        self,
        study: Any,
        objectives: Mapping[str, Direction],
        milestones: list[int],
        eta: float,
        tie_break: str,
        cost: Callable[[Architecture], Mapping[str, float]] | None,
    ) -> None:
        super().__init__(study)
        self.objectives, self.milestones, self.eta = dict(objectives), milestones, eta
        self.tie_break, self.cost = tie_break, cost
        self.rungs: dict[int, dict[str, list[float]]] = {m: {} for m in milestones}
        self._costs: dict[str, Mapping[str, float]] = {}

    def _point(self, trial: Any, result: Mapping[str, Any]) -> list[float] | None:
        point = []
        for name, direction in self.objectives.items():
            value = result.get(name)
            if value is None and self.cost is not None:
                if trial.trial_id not in self._costs:
                    self._costs[trial.trial_id] = self.cost(Architecture.from_dict(trial.config["arch"]))
                value = self._costs[trial.trial_id].get(name)
            if value is None or not math.isfinite(float(value)):
                return None
            point.append(-float(value) if direction is Direction.MAX else float(value))
        return point

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(T.FINAL):
            return TrialScheduler.CONTINUE
        step = int(result[T.STEP])
        rung = self.rungs.get(step)
        if rung is None or trial.trial_id in rung:
            return TrialScheduler.CONTINUE
        point = self._point(trial, result)
        if point is None:
            return TrialScheduler.CONTINUE
        recorded = list(rung.values())
        rung[trial.trial_id] = point
        if mo_promotes(point, recorded, self.eta, self.tie_break):
            return TrialScheduler.CONTINUE
        self.record(
            trial,
            {
                "name": "moasha",
                "epoch": step,
                "rung_size": len(recorded) + 1,
                "point": point,
                "recorded": recorded,
                "tie_break": self.tie_break,
                "promoted": promoted_count(len(recorded) + 1, self.eta),
            },
        )
        return TrialScheduler.STOP


__all__ = ["CurveStopper", "FinishingAsha", "MultiObjectiveAsha", "record_decision"]
