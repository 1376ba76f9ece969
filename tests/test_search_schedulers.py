"""``lc``, ``moasha`` and ``bohb`` stopping real digits trials on a local Ray, checked on the store.

Each stopped trial carries the scheduler's reason (``system_attrs["scheduler"]``);
the tests recompute the decision from the stored curve with the same rule
(:mod:`nas.curves.stopping`, :mod:`nas.core.promotion`) and check it held.
"""

from __future__ import annotations

import pytest
from search_processes import digits_search

import nas
from nas.core import TrialState
from nas.core.promotion import mo_order, promoted_count
from nas.curves.predict import load_predictor
from nas.curves.stopping import LearningCurveRule
from nas.runner import build_plan, run_search
from nas.runner.plan import DataShape, cost_model

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EPOCHS = 3


def digits_config(name: str, scheduler: dict, trials: int = 6, **changes: object) -> dict:
    return digits_search(name, trials, EPOCHS, scheduler=scheduler, **changes)


def curve(study, trial, metric: str = "val_accuracy") -> list[float]:  # noqa: ANN001
    points = study.metrics(trial)[metric]
    assert [s for s, _ in points] == list(range(1, len(points) + 1))  # continuous, from epoch 1
    return [v for _, v in points]


def test_lc_stops_trials_unlikely_to_beat_the_best_final_value(local_ray, tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = digits_config("lc", {"name": "lc", "threshold": 0.5, "min_epochs": 2})
    run_search(config, storage=url, show_progress=False)
    study = nas.load_study("lc", storage=url)
    trials = study.trials()
    finals = {t.value("val_accuracy") for t in trials if t.state is TrialState.COMPLETE}
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and finals
    rule = LearningCurveRule(horizon=EPOCHS, threshold=0.5, min_epochs=2, bounds=(0, 100))
    for trial in pruned:
        decision = trial.system_attrs["scheduler"]
        values = curve(study, trial)
        assert decision["name"] == "lc" and decision["epoch"] == len(values) and 2 <= len(values) < EPOCHS
        assert decision["best"] in finals  # the incumbent is a final value of a finished trial
        p = rule.prob_beats(load_predictor(), [values], decision["best"])[0]
        assert p == pytest.approx(decision["p_beats_best"], abs=1e-5) and p < 0.5
    for trial in trials:
        if trial.state is TrialState.COMPLETE:
            assert "scheduler" not in trial.system_attrs and len(curve(study, trial)) == EPOCHS


def test_moasha_stops_trials_outside_the_top_of_the_non_dominated_ranking(local_ray, tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = digits_config(
        "moasha",
        {"name": "moasha", "grace_epochs": 1, "reduction_factor": 2},
        objectives={"val_accuracy": "max", "params": "min"},
    )
    run_search(config, storage=url, show_progress=False)
    study = nas.load_study("moasha", storage=url)
    plan = build_plan(config)
    params = cost_model(plan.space, DataShape((1, 8, 8), 10))  # digits, as the driver measured
    pruned = [t for t in study.trials() if t.state is TrialState.PRUNED]
    assert pruned
    for trial in pruned:
        decision = trial.system_attrs["scheduler"]
        values = curve(study, trial)
        epoch = decision["epoch"]
        assert decision["name"] == "moasha" and epoch in (1, 2) and len(values) == epoch
        # The point ranked is the stored curve's value at the rung and the measured params.
        assert decision["point"] == pytest.approx([-values[epoch - 1], params(trial.arch)["params"]])
        points = [*decision["recorded"], decision["point"]]
        top = mo_order(points, "epsnet")[: promoted_count(len(points), 2)]
        assert len(points) - 1 not in top and decision["rung_size"] == len(points)


def test_bohb_brackets_stop_at_rungs_and_its_model_learns_from_the_curves(local_ray, tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = digits_config(
        "bohb",
        {"name": "bohb", "grace_epochs": 1, "reduction_factor": 2},
        trials=8,
        strategy={"name": "bohb", "min_points": 3, "random_fraction": 0.0},
    )
    run_search(config, storage=url, show_progress=False)
    study = nas.load_study("bohb", storage=url)
    trials = study.trials()
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and len(trials) == 8
    assert all(len(curve(study, t)) == EPOCHS for t in trials if t.state is TrialState.COMPLETE)
    for trial in pruned:  # Hyperband's rungs below 3 epochs, η = 2: epochs 1 and 2
        assert len(curve(study, trial)) in (1, 2) and trial.user_attrs["stopped_at_step"] in (1, 2)
        decision = trial.system_attrs["scheduler"]  # recorded for the dashboard, as asha's
        assert decision["name"] == "bohb" and decision["rung"] == trial.user_attrs["stopped_at_step"]
        assert decision["value"] == curve(study, trial)[-1] < decision["cutoff"]
    modelled = [t for t in trials if t.system_attrs.get("phase") == "kde"]
    assert modelled  # the density model took over once a budget had 3 results (pruned ones count)
    budgets = {t.system_attrs["explanation"]["model_budget"] for t in modelled}
    assert budgets <= {1.0, 2.0, 3.0}
