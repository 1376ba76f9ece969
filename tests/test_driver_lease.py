"""One driver per study, with real ``nas search`` processes on one SQLite store.

A second ``nas search`` on a study that a live driver runs is refused (exit
2, naming the driver) instead of running the budget a second time; after the
first is SIGKILLed, a rerun takes the dead driver's lease over and the study
ends with exactly ``budget.trials`` finished trials, none of them a copy.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from search_processes import kill_group, plugin_env, search_command, wait_for

import nas
from nas.core import TrialState
from nas.runner.recovery import effective_finished

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BUDGET = 4


def test_a_second_driver_is_refused_and_a_rerun_takes_over_after_a_crash(tmp_path) -> None:
    db = tmp_path / "nas.db"
    url = f"sqlite:///{db}"
    config = {
        "name": "one-driver",
        "plugins": ["nas_test_plugins"],
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "strategy": {"name": "random"},
        "evaluator": {"name": "curve", "steps": 4, "sleep_s": 0.5},
        "budget": {"trials": BUDGET, "concurrent": 1},
    }
    command = search_command(config, tmp_path, url)
    env = plugin_env()
    first = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True)
    try:
        study = wait_for(
            "the first driver's lease", lambda: db.exists() and nas.load_study("one-driver", url)
        )
        wait_for("the first driver's lease", lambda: study.storage.lease_holder(study.study_id))

        second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert "another driver" in second.stderr and f"pid {first.pid}" in second.stderr

        wait_for("a finished trial", lambda: study.count_trials().get(TrialState.COMPLETE, 0) >= 1)
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            kill_group(first.pid)
    assert first.returncode == -signal.SIGKILL
    assert study.storage.lease_holder(study.study_id).pid == first.pid  # a crash leaves its lease

    subprocess.run(command, env=env, cwd=tmp_path, check=True, timeout=300)
    trials = study.trials()
    assert len(effective_finished(trials)) == BUDGET
    assert sum(t.state is TrialState.COMPLETE for t in trials) == BUDGET  # no trial ran twice
    assert study.storage.lease_holder(study.study_id) is None  # released at exit
