"""The closing summary: how much better the best trial is than the median and the first one."""

from __future__ import annotations

import pytest

from nas.core import Architecture, Direction, Trial, TrialState
from nas.runner.summary import improvement


def trial(number: int, value: float | None, state: TrialState = TrialState.COMPLETE) -> Trial:
    values = None if value is None else {"acc": value, "lat": 1.0}
    return Trial(number, Architecture("nb201", {"x": number}), state, values)


def test_best_against_median_and_first_in_trial_order() -> None:
    trials = [trial(2, 90.0), trial(0, 80.0), trial(1, 85.0), trial(3, None, TrialState.FAIL)]
    summary = improvement(trials, {"acc": Direction.MAX, "lat": Direction.MIN})
    assert summary is not None
    assert (summary.best, summary.median, summary.first, summary.trials) == (90.0, 85.0, 80.0, 3)
    assert summary.gain(summary.median) == 5.0 and summary.gain(summary.first) == 10.0
    assert (
        summary.describe() == "acc 90: +5 over the median trial (85), +10 over the first (80) of 3 completed"
    )


def test_a_minimised_objective_gains_by_going_down() -> None:
    summary = improvement([trial(0, 3.0), trial(1, 1.0), trial(2, 2.0)], {"acc": Direction.MIN})
    assert summary is not None and summary.best == 1.0 and summary.gain(summary.first) == pytest.approx(2.0)


def test_nothing_completed_gives_no_summary() -> None:
    assert improvement([trial(0, None, TrialState.FAIL)], {"acc": Direction.MAX}) is None
    assert improvement([trial(0, 1.0)], {}) is None
