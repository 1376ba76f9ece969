"""The search driver: one plan, one store-URL rule and one outcome for black-box and one-shot searches.

The precedence tests run real (tiny) searches on a local Ray: a tabular
black-box search and a one-epoch one-shot search on digits. ``$NAS_STORAGE``
must beat the config's ``storage:`` in both, and ``--storage`` beat both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nas
from nas.core import ConfigError, TrialState
from nas.runner import build_plan, run_search
from nas.runner.locations import storage_url
from nas.store.url import DEFAULT_URL, ENV_VAR

TABLE = {
    "name": "table",
    "space": {"name": "nb201"},
    "strategy": {"name": "random"},
    "evaluator": {"name": "nb201_table", "metric": "cifar10-val"},
    "budget": {"trials": 2, "concurrent": 1},
}
ONESHOT = {
    "name": "oneshot",
    "space": {"name": "nb201", "channels": 4, "cells": 1},
    "dataset": {"name": "digits", "limit": 200},
    "strategy": {
        "name": "darts",
        "epochs": 1,
        "batch_size": 32,
        "rank_correlation": 0,
        "check_memory": False,
        "early_stop_on_collapse": False,
    },
    "evaluator": {"name": "nb201_table", "metric": "cifar10-val"},
}


def urls(tmp_path: Path) -> tuple[str, str, str]:
    return tuple(f"sqlite:///{tmp_path / f'{name}.db'}" for name in ("flag", "env", "config"))  # type: ignore[return-value]


# -- the plan and the URL rule (no Ray) ----------------------------------------------------------


def test_the_plan_builds_each_plugin_once_and_the_strategy_searches_its_space() -> None:
    plan = build_plan({**TABLE, "constraints": {"params": "<= 1e6"}})
    assert plan.strategy is not None and plan.strategy.space is plan.space
    assert plan.oneshot is None and not plan.needs_data and plan.fidelity is None
    trained = build_plan({**TABLE, "evaluator": {"name": "train", "epochs": 3}})
    assert trained.needs_data and trained.fidelity == 3.0 and trained.config.dataset is not None


def test_a_oneshot_plan_names_the_method_and_builds_no_strategy() -> None:
    plan = build_plan({**ONESHOT, "strategy": {**ONESHOT["strategy"], "seeds": 2}})
    assert plan.strategy is None and plan.is_oneshot and plan.needs_data
    assert plan.seeds == [0, 1] and plan.oneshot.epochs == 1


def test_storage_rule_flag_then_environment_then_config_then_default(monkeypatch, tmp_path) -> None:
    flag, env, config = urls(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert storage_url(None, None) == DEFAULT_URL
    assert storage_url(None, config) == config
    monkeypatch.setenv(ENV_VAR, env)
    assert storage_url(None, config) == env
    assert storage_url(flag, config) == flag


def test_bad_plugin_options_fail_before_the_store_is_written(tmp_path) -> None:
    db = tmp_path / "never.db"
    with pytest.raises(ConfigError, match="tournament_size=5"):
        run_search(
            {**TABLE, "strategy": {"name": "evolution", "population_size": 2, "tournament_size": 5}},
            storage=f"sqlite:///{db}",
            show_progress=False,
        )
    assert not db.exists()


# -- real runs ------------------------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_environment_beats_config_storage_in_a_blackbox_search(
    local_ray, monkeypatch, tmp_path, data_dir
) -> None:
    flag, env, config = urls(tmp_path)
    monkeypatch.setenv(ENV_VAR, env)
    outcome = run_search({**TABLE, "storage": config}, show_progress=False)
    assert outcome.storage == env and outcome.finished == 2
    assert len(nas.load_study("table", storage=env).trials()) == 2
    assert not Path(config.removeprefix("sqlite:///")).exists()
    again = run_search({**TABLE, "name": "flagged", "storage": config}, storage=flag, show_progress=False)
    assert again.storage == flag and nas.load_study("flagged", storage=flag).trials()


@pytest.mark.ray
@pytest.mark.slow
def test_environment_beats_config_storage_in_a_oneshot_search(
    local_ray, monkeypatch, tmp_path, data_dir
) -> None:
    _, env, config = urls(tmp_path)
    monkeypatch.setenv(ENV_VAR, env)
    monkeypatch.setenv("NAS_ARTIFACTS", str(tmp_path / "artifacts"))
    outcome = run_search({**ONESHOT, "storage": config}, show_progress=False)
    assert outcome.storage == env
    assert not Path(config.removeprefix("sqlite:///")).exists()
    trials = nas.load_study("oneshot", storage=env).trials()
    assert sorted(t.state for t in trials) == sorted([TrialState.PRUNED, TrialState.COMPLETE])
    assert outcome.finished == 2
