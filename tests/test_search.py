"""``nas search`` end to end on a real local Ray: training, failures, reuse, early stopping, retries.

Marked ``ray`` and ``slow``; CI runs them. A module-scoped Ray (conftest's
``local_ray``) is shared by the tests. A driver killed and resumed (SQLite and
PostgreSQL, real training) is tests/test_search_db_faults.py; a worker process
or node that dies mid-trial is tests/test_worker_faults.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nas
from nas.core import TrialState
from nas.core.morphism import find_morphism
from nas.runner import run_search
from nas.runner.recovery import effective_finished

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PLUGINS = Path(__file__).parent / "plugins"


def curve_config(name: str, trials: int = 4, **evaluator) -> dict:
    return {
        "name": name,
        "plugins": ["nas_test_plugins"],
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "strategy": {"name": "random"},
        "evaluator": {"name": "curve", **evaluator},
        "budget": {"trials": trials, "concurrent": 2},
    }


def test_search_trains_on_digits_with_two_concurrent_trials(local_ray, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = {
        "name": "digits",
        "space": {"name": "nb201", "channels": 8, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "evolution", "population_size": 4, "tournament_size": 2},
        "evaluator": {"name": "train", "epochs": 2, "batch_size": 64, "lr": 0.05},
        "budget": {"trials": 4, "concurrent": 2},
    }
    outcome = run_search(config, storage=url, show_progress=False)
    study = nas.load_study("digits", storage=url)
    trials = study.trials()
    assert outcome.finished == 4 and len(trials) == 4
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert max(t.value("val_accuracy") for t in trials) > 80.0
    for trial in trials:
        curves = study.metrics(trial)
        assert [step for step, _ in curves["val_accuracy"]] == [1, 2]
        assert trial.user_attrs["metrics"]["params"] > 0 and trial.user_attrs["metrics"]["latency_ms"] > 0
        assert trial.node and "/" in trial.node  # host/ray-node of the worker
        (artifact,) = study.artifacts(trial)
        path = Path(artifact.uri.removeprefix("file://"))
        state = torch.load(path, weights_only=True)
        model = study.space.build(trial.arch, num_classes=10, input_shape=(1, 8, 8))
        model.load_state_dict(state)


@pytest.mark.parametrize("scheduler", [None, "asha"])
def test_failing_evaluator_becomes_fail_trial_and_search_goes_on(local_ray, tmp_path, scheduler) -> None:
    """A trial whose evaluator raises is stored FAIL; the rest go on, with or without a scheduler.

    Its report has a traceback, not the metric: under a scheduler Tune's strict
    metric check used to end the whole search at the first failure.
    """
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = curve_config("flaky", trials=10, fail_on="nor_conv_3x3")
    if scheduler is not None:
        config["scheduler"] = {"name": scheduler, "grace_epochs": 1, "reduction_factor": 3}
    run_search(config, storage=url, show_progress=False)
    trials = nas.load_study("flaky", storage=url).trials()
    assert len(effective_finished(trials)) == 10
    failed = [t for t in trials if t.state is TrialState.FAIL]
    assert failed and all(t.arch["1<-0"] == "nor_conv_3x3" for t in failed)
    assert all("RuntimeError: this model cannot be trained" in t.error for t in failed)
    others = {TrialState.COMPLETE} if scheduler is None else {TrialState.COMPLETE, TrialState.PRUNED}
    assert all(t.state in others for t in trials if t.arch["1<-0"] != "nor_conv_3x3")


def test_stored_results_are_reused_not_retrained(local_ray, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(curve_config("first", trials=5), storage=url, show_progress=False)
    run_search(curve_config("second", trials=5), storage=url, show_progress=False)
    first = {t.arch: t for t in nas.load_study("first", storage=url).trials()}
    second = nas.load_study("second", storage=url).trials()
    reused = [t for t in second if "reused_from" in t.system_attrs]
    assert reused, "same seed, same strategy: the second study proposes what the first evaluated"
    for trial in reused:
        origin = trial.system_attrs["reused_from"]
        assert origin["study"] == "first"
        assert trial.values == first[trial.arch].values
        assert nas.load_study("second", storage=url).metrics(trial) == {}  # never trained
    # Other conditions (another evaluator setting): nothing is comparable, everything is trained.
    run_search(curve_config("other", trials=5, steps=2), storage=url, show_progress=False)
    other = nas.load_study("other", storage=url).trials()
    assert not [t for t in other if "reused_from" in t.system_attrs]


def test_a_strategy_that_explains_itself_has_the_explanation_stored(local_ray, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = curve_config("bowl", trials=8)
    config["strategy"] = {"name": "bowl", "n_initial": 4, "n_candidates": 10}
    run_search(config, storage=url, show_progress=False)
    trials = nas.load_study("bowl", storage=url).trials()
    explained = [t for t in trials if "explanation" in t.system_attrs]
    assert not [t for t in explained if t.number < 4]  # the random start has no model to explain
    assert explained, "bowl proposed trials from its model but no explanation was stored"
    for trial in explained:
        explanation = trial.system_attrs["explanation"]
        assert explanation["model"] == "wl_gp" and explanation["trials"] >= 4
        assert all(
            row["feature"].startswith("h") for row in explanation["positive"] + explanation["negative"]
        )


def test_asha_stops_weak_trials_and_stores_them_pruned(local_ray, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = curve_config("asha", trials=12, steps=9, sleep_s=0.05)
    config["budget"]["concurrent"] = 1
    config["scheduler"] = {"name": "asha", "grace_epochs": 1, "reduction_factor": 3}
    run_search(config, storage=url, show_progress=False)
    study = nas.load_study("asha", storage=url)
    trials = study.trials()
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert len(effective_finished(trials)) == 12
    assert pruned
    for trial in pruned:
        points = study.metrics(trial)["val_accuracy"]
        assert 1 <= len(points) < 9  # stopped early, with its curve so far
        # Why, as the dashboard shows it: at a rung (1 or 3), below the rung's cutoff, not in the top 1/3.
        decision = trial.system_attrs["scheduler"]
        assert decision["name"] == "asha" and decision["epoch"] == trial.user_attrs["stopped_at_step"]
        assert decision["rung"] == decision["epoch"] == points[-1][0] and decision["rung"] in (1, 3)
        assert decision["value"] == points[-1][1] < decision["cutoff"]
        assert decision["rank"] > max(1, decision["rung_size"] // 3)
    for trial in trials:  # a trial that trained to the end is never stopped there (Ray's max_t rung)
        if len(study.metrics(trial)["val_accuracy"]) == 9:
            assert trial.state is TrialState.COMPLETE


def test_search_stores_children_that_inherit_their_parents_weights(local_ray, tmp_path: Path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = {
        "name": "morph",
        "space": {"name": "hybrid", "blocks": 3, "downsamples": 1, "base_width": 8},
        "dataset": {"name": "digits"},
        "strategy": {"name": "morphism", "n_initial": 2, "population_size": 2, "tournament_size": 1},
        "evaluator": {
            "name": "train",
            "epochs": 2,
            "inherit": "parent",
            "inherit_epochs": 1,
            "batch_size": 64,
            "latency_repeats": 1,
            "latency_warmup": 0,
        },
        "budget": {"trials": 4, "concurrent": 1},
    }
    run_search(config, storage=url, show_progress=False)
    study = nas.load_study("morph", storage=url)
    trials = sorted(study.trials(), key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    children = [t for t in trials if "parent" in t.system_attrs]
    assert children and all(t.system_attrs["phase"] == "morphism" for t in children)
    for child in children:
        parent = study.trial(child.system_attrs["parent"])
        assert parent.number < child.number
        morphism = find_morphism(study.space, parent.arch, child.arch)
        assert child.system_attrs["morphism"] == morphism.to_dict()
        assert child.system_attrs["inherits"] is True and child.budget == 1
        assert child.user_attrs["inherited_from"] == {"trial": parent.number, "morphism": morphism.to_dict()}
        assert [step for step, _ in study.metrics(child)["val_accuracy"]] == [1]
    for root in trials[:2]:
        assert "parent" not in root.system_attrs and root.budget == 2
        assert "inherited_from" not in root.user_attrs
