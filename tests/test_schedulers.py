"""The schedulers' decision rules on hand-made curves, and their bad input refused in the plan.

The rules (``nas.curves.stopping``, ``nas.core.promotion``) are the code the
Tune schedulers and ``benchmarks/schedulers.py`` both call; the searches that
show them stopping real trials are in tests/test_search_schedulers.py.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

import numpy as np
import pytest

from nas.core import Trial, TrialState
from nas.core.errors import ConfigError
from nas.core.promotion import (
    asha_promotes,
    epsnet_order,
    median_stops,
    mo_order,
    mo_promotes,
    rung_milestones,
)
from nas.curves import weights
from nas.curves.predict import load_predictor
from nas.curves.stopping import LearningCurveRule, known_bounds
from nas.runner import build_plan
from nas.strategies import create_strategy
from search_spaces import get_space

# -- the lc rule ----------------------------------------------------------------------------------


def test_lc_rule_stops_a_hopeless_curve_and_keeps_a_promising_one() -> None:
    rule = LearningCurveRule(horizon=30, threshold=0.05, min_epochs=3, bounds=(0, 100))
    predictor = load_predictor()
    flat_low = [20.0, 21.0, 21.5, 21.7, 21.8]
    rising = [40.0, 55.0, 63.0, 68.0, 71.0]
    p = rule.prob_beats(predictor, [flat_low, rising], best=75.0)
    assert p[0] < 0.05 < p[1]
    assert rule.stops(predictor, [flat_low, rising], best=75.0).tolist() == [True, False]
    # P(final > best) falls as the best rises: the rule is monotone in the incumbent.
    assert rule.prob_beats(predictor, [rising], 90.0)[0] < rule.prob_beats(predictor, [rising], 60.0)[0]


def test_lc_rule_decides_only_between_min_epochs_and_the_last_epoch_and_with_an_incumbent() -> None:
    rule = LearningCurveRule(horizon=5, threshold=0.5, min_epochs=3, bounds=(0, 100))
    predictor = load_predictor()
    hopeless = [5.0, 5.0, 5.0, 5.0, 5.0]
    assert not rule.stops(predictor, [hopeless[:2]], best=90.0)[0]  # before min_epochs
    assert rule.stops(predictor, [hopeless[:3]], best=90.0)[0]
    assert not rule.stops(predictor, [hopeless], best=90.0)[0]  # the last epoch: nothing to save
    assert not rule.stops(predictor, [hopeless[:3]], best=None)[0]  # no incumbent yet


def test_lc_rule_flips_a_metric_to_minimise_into_the_models_units() -> None:
    rule = LearningCurveRule(horizon=10, bounds=(0, 1), maximize=False)
    assert rule.scaled([0.1, 0.9, 1.5]).tolist() == pytest.approx([0.9, 0.1, 0.0])
    assert rule.better(0.1, 0.2) and not rule.better(0.3, 0.2)
    assert known_bounds("val_accuracy") == (0.0, 100.0) and known_bounds("val_loss") is None


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"threshold": 0.0}, "threshold 0.0"),
        ({"threshold": 1.0}, "threshold 1.0"),
        ({"min_epochs": 10}, "min_epochs 10"),
        ({"bounds": (1.0, 1.0)}, "bounds"),
        ({"horizon": 500, "min_epochs": 3}, "horizon 500"),
    ],
)
def test_lc_rule_refuses_out_of_range_settings(options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LearningCurveRule(**{"horizon": 10, **options})


# -- successive halving, single- and multi-objective ------------------------------------------------


def test_rungs_and_single_objective_promotion() -> None:
    assert rung_milestones(1, 3, 30) == [1, 3, 9, 27]
    assert rung_milestones(2, 2, 8) == [2, 4]
    assert asha_promotes(5.0, [], 3)  # the first at a rung goes on
    assert not asha_promotes(4.0, [5.0], 3)
    assert asha_promotes(6.0, [5.0, 1.0], 3)  # top 1 of 3
    assert not asha_promotes(5.5, [6.0, 1.0], 3)
    assert median_stops(4.0, [5.0, 6.0, 7.0]) and not median_stops(6.5, [5.0, 6.0, 7.0])
    assert not median_stops(0.0, [5.0, 6.0])  # too few to judge


def test_non_dominated_sorting_ranks_fronts_then_spreads_the_tie_break() -> None:
    # Minimise both: a front of four points, one dominated point.
    points = np.array([[0.0, 4.0], [1.0, 1.0], [1.1, 1.05], [4.0, 0.0], [3.0, 3.0]])
    for tie_break in ("epsnet", "crowding"):
        order = mo_order(points, tie_break).tolist()
        assert order[-1] == 4 and sorted(order[:4]) == [0, 1, 2, 3]
    # ε-net: an extreme first, then the farthest from it, then the middle; the near-twin comes last.
    assert epsnet_order(points[:4]).tolist() == [0, 3, 1, 2]
    # Crowding: the extremes (infinite distance) first, the crowded twin last.
    assert mo_order(points[:4], "crowding").tolist()[:2] == [0, 3]
    with pytest.raises(ConfigError, match="tie_break 'random'"):
        mo_order(points, "random")


def test_mo_promotion_keeps_non_dominated_trials_and_stops_dominated_ones() -> None:
    recorded = [[0.0, 4.0], [4.0, 0.0]]
    assert not mo_promotes([3.0, 3.0], [*recorded, [1.0, 1.0]], eta=2)  # dominated: last of 4, top 2 go on
    assert mo_promotes([-1.0, 5.0], recorded, eta=3)  # best on the first objective: the ε-net's first pick
    assert not mo_promotes([1.0, 1.0], recorded, eta=3)  # non-dominated, but only the top 1 of 3 goes on
    # Top 3 of 4: the whole front goes on, the point it dominates stops, whoever arrived first.
    assert mo_promotes([1.0, 1.0], [[0.0, 4.0], [0.1, 4.1], [4.0, 0.0]], eta=1.3)
    assert not mo_promotes([0.1, 4.1], [[0.0, 4.0], [4.0, 0.0], [1.0, 1.0]], eta=1.3)
    assert not mo_promotes([5.0, 5.0], recorded, eta=1.5)


# -- bohb's model -------------------------------------------------------------------------------------


def _trial(number: int, arch, curve: list[float]) -> Trial:  # noqa: ANN001
    return Trial(
        number,
        arch,
        TrialState.PRUNED if len(curve) < 3 else TrialState.COMPLETE,
        values={"val_accuracy": curve[-1]} if len(curve) == 3 else None,
        budget=3.0,
        system_attrs={"curve": [[e + 1, v] for e, v in enumerate(curve)]},
    )


def test_bohb_fits_the_largest_budget_with_enough_results_and_proposes_where_it_was_good() -> None:
    space = get_space("nb201")
    strategy = create_strategy("bohb", space, seed=1, min_points=8, random_fraction=0.0)
    rng = np.random.default_rng(0)
    for number in range(30):
        arch = strategy.ask()
        good = arch["1<-0"] == "nor_conv_3x3"
        value = 70.0 + 20.0 * good + rng.normal()
        # Only the first 8 trials train to epoch 3; the rest stop after epoch 1 (as a bracket would).
        curve = [value - 10, value - 5, value] if number < 8 else [value - 10]
        strategy.tell(_trial(number, arch, curve))
    assert strategy.model_budget() == 3.0  # epoch 3 has 8 results: the most faithful budget wins
    assert len(strategy.by_budget[1.0]) == 30
    proposals = [strategy.ask() for _ in range(20)]
    share = np.mean([a["1<-0"] == "nor_conv_3x3" for a in proposals])
    assert strategy.last_phase == "kde" and share > 0.5  # random would give 1/5


# -- bad input, refused in the plan (before Ray starts) ---------------------------------------------

TRAIN = {"name": "train", "epochs": 4}


def config(scheduler: dict, **changes: object) -> dict:
    return {
        "name": "s",
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "evaluator": TRAIN,
        "scheduler": scheduler,
        **changes,
    }


def plan_error(source: dict) -> str:
    with pytest.raises(ConfigError) as info:
        build_plan(source)
    return str(info.value)


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        (config({"name": "moasha"}), ["has one (['val_accuracy'])", "use scheduler: {name: asha}"]),
        (
            config({"name": "moasha"}, objectives={"val_accuracy": "max", "latency_ms": "min"}),
            ["['latency_ms'] are known only after it", "params"],
        ),
        (
            config({"name": "lc"}, objectives={"val_loss": "min"}),
            ["'val_loss'", "set scheduler.bounds: [low, high]", "scheduler: {name: asha}"],
        ),
        (config({"name": "lc", "threshold": 1.5}), ["threshold", "1.5"]),
        (config({"name": "lc", "threshold": 0}), ["threshold", "greater than 0"]),
        (config({"name": "lc", "min_epochs": 4}), ["min_epochs 4 is not allowed", "1..3"]),
        (config({"name": "lc"}, evaluator={"name": "train", "epochs": 150}), ["epochs 1..100"]),
        (config({"name": "bohb"}), ["needs its model, strategy 'bohb'", "'random'"]),
        (
            config({"name": "bohb", "brackets": 5}, strategy={"name": "bohb"}),
            ["brackets=5", "allowed: 1..2"],
        ),
        (config({"name": "lc"}, evaluator={"name": "nb201_table"}), ["reports none"]),
        (config({"name": "moasha", "tie_break": "best"}), ["tie_break"]),
    ],
)
def test_scheduler_bad_input_is_a_config_error_before_ray(source: dict, fragments: list[str]) -> None:
    message = plan_error(source)
    for fragment in fragments:
        assert fragment in message, message


def test_good_scheduler_configs_build_plans() -> None:
    build_plan(config({"name": "lc", "threshold": 0.1, "min_epochs": 2}))
    build_plan(config({"name": "lc", "bounds": [0, 5]}, objectives={"val_loss": "min"}))
    build_plan(config({"name": "moasha"}, objectives={"val_accuracy": "max", "params": "min"}))
    build_plan(config({"name": "bohb", "grace_epochs": 1}, strategy={"name": "bohb"}))


def test_corrupted_curve_weights_are_refused_in_the_plan(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    broken = tmp_path / "lcpfn.pt"
    shutil.copy(weights.DEFAULT_WEIGHTS, broken)
    with broken.open("r+b") as stream:
        stream.seek(100)
        stream.write(b"\x00" * 16)
    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS", broken)
    load_predictor.cache_clear()
    try:
        message = plan_error(config({"name": "lc"}))
    finally:
        load_predictor.cache_clear()
    assert "CurveWeightsError" in message and str(broken) in message


# -- the curve set and its replay (benchmarks/curve_set.py, benchmarks/schedulers.py) ----------------


def _script(name: str):  # noqa: ANN202
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (dataclasses look their module up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_exported_curve_set_matches_the_store_and_replays(tmp_path) -> None:  # noqa: ANN001
    import csv

    import nas

    url = f"sqlite:///{tmp_path / 'curves.db'}"
    study = nas.create_study("curves", url, space="nb201")
    space, rng = get_space("nb201"), np.random.default_rng(0)
    stored = {}
    for _ in range(6):
        trial = study.ask(space.sample(rng))
        values = np.round(np.sort(rng.uniform(10, 90, 5)), 4)
        for epoch, value in enumerate(values, start=1):
            study.report(trial, epoch, {"val_accuracy": float(value), "train_loss": 1.0})
        study.tell(trial, float(values[-1]))
        stored[space.format(trial.arch)] = values.tolist()
    curve_set, schedulers = _script("curve_set"), _script("schedulers")
    output = tmp_path / "curves.csv"
    assert curve_set.export(url, "curves", output, split_seed=17) == 6
    with output.open() as stream:
        rows = list(csv.DictReader(stream))
    exported: dict[str, list[float]] = {}
    for row in rows:
        exported.setdefault(row["arch"], []).append(float(row["val_accuracy"]))
    assert exported == stored
    assert sorted({r["split"] for r in rows}) == ["test", "tune"]
    data, how = schedulers.read_curve_set(output, "test", 17)
    assert len(data.curves) == 3 and "split column" in how and (data.latency > 0).all()
    # Full training on 2 workers spends every epoch; ASHA (η = 3) stops some trials at rung 1 or 3.
    order = np.arange(len(data.curves))
    full = schedulers.replay(data, order, schedulers.full_policy)
    assert set(full.trained.values()) == {5} and full.finished[-1][0] == 15
    asha = schedulers.replay(data, order, schedulers.asha_policy(3.0, 1, 5))
    assert sum(asha.trained.values()) < 15 and set(asha.trained.values()) <= {1, 3, 5}


def test_a_strategy_that_uses_curves_is_told_each_trial_with_its_stored_curve(tmp_path) -> None:  # noqa: ANN001
    """What the driver tells ``bohb``, after each trial and when a search resumes (warm start)."""
    import nas
    from nas.runner.searcher import for_strategy

    study = nas.create_study("told", f"sqlite:///{tmp_path / 'told.db'}", space="nb201")
    trial = study.ask(get_space("nb201").sample(0))
    for epoch, value in [(1, 30.0), (2, 41.0)]:
        study.report(trial, epoch, {"val_accuracy": value, "val_loss": 2.0})
    pruned = study.tell(trial, state=TrialState.PRUNED)
    bohb = create_strategy("bohb", get_space("nb201"))
    told = for_strategy(study, pruned, bohb)
    assert told.system_attrs["curve"] == [[1, 30.0], [2, 41.0]] and "curve" not in study.trial(0).system_attrs
    bohb.warm_start([told])
    assert {b: len(r) for b, r in bohb.by_budget.items()} == {1.0: 1, 2.0: 1}
    assert for_strategy(study, pruned, create_strategy("random", get_space("nb201"))) is pruned


class _Controller:
    """What Ray's Hyperband asks of Tune's controller while it processes a bracket: stop a paused trial
    (as Tune's ``TuneController.stop_trial`` does for a trial that is not running: tell the scheduler)."""

    def __init__(self) -> None:
        self.scheduler: Any = None
        self.stopped: list[Any] = []

    def stop_trial(self, trial: Any) -> None:
        self.stopped.append(trial)
        self.scheduler.on_trial_remove(self, trial)
        trial.set_status(trial.TERMINATED)


def test_hyperband_processes_a_rung_whose_trials_are_all_past_it() -> None:
    """Copies resumed after a driver restart may report past the new bracket's rung: no trial waits forever."""
    from ray.tune.experiment import Trial

    from nas.runner.schedulers.hyperband import _hyperband_class

    scheduler = _hyperband_class()(
        time_attr="step", metric="acc", mode="max", max_t=4, reduction_factor=2, stop_last_trials=False
    )
    controller = _Controller()
    controller.scheduler = scheduler
    ahead, second, slow, slower = trials = [Trial("__fake", stub=True) for _ in range(4)]
    for trial in trials:
        scheduler.on_trial_add(controller, trial)
        trial.set_status(Trial.RUNNING)
    # Two resumed copies report epoch 2 first (the bracket's first rung is epoch 1): they wait, paused.
    for trial, acc in ((ahead, 0.9), (second, 0.8)):
        assert scheduler.on_trial_result(controller, trial, {"step": 2, "acc": acc}) == "PAUSE"
        trial.set_status(Trial.PAUSED)
    assert scheduler.on_trial_result(controller, slow, {"step": 1, "acc": 0.2}) == "PAUSE"
    slow.set_status(Trial.PAUSED)
    # The rung at epoch 1 completes: the two fresh trials go, and the copies, both past the next rung
    # (epoch 2), are ranked there at once: the better goes on, the other stops.
    assert scheduler.on_trial_result(controller, slower, {"step": 1, "acc": 0.1}) == "STOP"
    assert set(controller.stopped) == {slow, second}
    assert scheduler.choose_trial_to_run(controller) is ahead
