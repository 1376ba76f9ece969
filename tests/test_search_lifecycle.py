"""``nas search`` in a real subprocess: Ctrl+C, a SIGKILLed driver, and the reruns that resume it.

One study lives through three drivers: the first is stopped by SIGINT (exit
130, one line saying how to resume, no success summary, no trial left
RUNNING, status ``interrupted``); the second resumes it (``running``) and is
SIGKILLed, so the study reads ``stale`` once its heartbeat is older than the
timeout (``$NAS_HEARTBEAT_S`` shortens it here); the third brings it to
``finished`` with exactly ``budget.trials`` finished trials. The evaluator is
the test plugin's cheap curve (training is not the point; ``sleep_s`` makes
each trial last long enough to be interrupted). A one-shot search is stopped
by SIGINT while its supernet trains, before any trial exists: it ends
``interrupted`` with exit 130 as well.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from search_processes import kill_group, plugin_env, search_command, wait_for

import nas
from nas.core import TrialState
from nas.runner.recovery import effective_finished
from nas.store import StudyStatus
from nas.store.liveness import ENV_VAR, stale_after_s

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TRIALS = 5
BEAT_S = "0.5"


def test_interrupt_then_kill_then_resume_to_finished(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, BEAT_S)  # the reader here and the drivers agree on the timeout
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = {
        "name": "life",
        "plugins": ["nas_test_plugins"],
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "strategy": {"name": "random"},
        "evaluator": {"name": "curve", "steps": 3, "sleep_s": 0.4},
        "budget": {"trials": TRIALS, "concurrent": 1},
    }
    command = search_command(config, tmp_path, url)
    env = plugin_env()

    def study() -> nas.Study:
        return nas.load_study("life", storage=url)

    def started(*, complete: int) -> Callable[[], bool]:
        def check() -> bool:
            counts = study().count_trials()
            return counts[TrialState.COMPLETE] >= complete and counts[TrialState.RUNNING] > 0

        return check

    # 1. Ctrl+C mid-search.
    driver = subprocess.Popen(
        command, env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for("a running trial after a finished one", started(complete=1))
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=90)
    finally:
        kill_group(driver.pid)
    assert driver.returncode == 130, err.decode()[-2000:]
    assert "study 'life' interrupted by Ctrl+C" in err.decode()
    assert "run the same command again to resume it" in err.decode()
    assert b"finished trials" not in out  # no success summary
    assert study().status is StudyStatus.INTERRUPTED
    trials = study().trials()
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    stopped = [t for t in trials if t.state is TrialState.FAIL]
    assert stopped and all(t.error.startswith("interrupted") for t in stopped)
    assert len(effective_finished(trials)) < TRIALS

    # 2. The rerun resumes (running again), then its driver is SIGKILLed: the study reads stale.
    driver = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True)
    try:
        wait_for(
            "the rerun to run a trial",
            lambda: study().status is StudyStatus.RUNNING and started(complete=0)(),
        )
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        kill_group(driver.pid)
    time.sleep(stale_after_s() + 0.5)
    assert study().status is StudyStatus.STALE

    # 3. The next rerun brings it to finished with exactly the budget.
    subprocess.run(command, env=env, cwd=tmp_path, check=True, timeout=300, capture_output=True)
    final = study()
    assert final.status is StudyStatus.FINISHED
    trials = final.trials()
    assert len(effective_finished(trials)) == TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_ctrl_c_during_one_shot_supernet_training_ends_interrupted(tmp_path, data_dir) -> None:
    """SIGINT while a supernet trains (a one-shot search's first phase): exit 130, ``interrupted``."""
    config = yaml.safe_load((REPO / "examples" / "oneshot_nb201.yaml").read_text())
    config["space"] = {"name": "nb201", "channels": 4, "cells": 1}
    config["dataset"] = {"name": "digits"}
    config["strategy"].update(
        {
            "epochs": 30,
            "batch_size": 32,
            "rank_correlation": 0,
            "score_images": 64,
            "bn_batches": 1,
            "seeds": 1,
        }
    )
    path = tmp_path / "oneshot.yaml"
    path.write_text(yaml.safe_dump(config))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    checkpoints = tmp_path / "nas_artifacts" / config["name"] / "oneshot"
    command = [sys.executable, "-m", "nas.cli", "search", str(path), "--storage", url, "--quiet"]
    driver = subprocess.Popen(
        command, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def training() -> bool:  # the supernet has finished an epoch: it is training now
        assert driver.poll() is None, driver.communicate()[1].decode()[-2000:]
        return bool(list(checkpoints.glob("*-checkpoints/seed-0/oneshot.pt")))

    try:
        wait_for("the supernet's first checkpoint", training, timeout=600)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=180)
    finally:
        kill_group(driver.pid)
    assert driver.returncode == 130, err.decode()[-2000:]
    assert f"study '{config['name']}' interrupted by Ctrl+C" in err.decode()
    assert b"finished trials" not in out  # no success summary
    study = nas.load_study(config["name"], storage=url)
    assert study.status is StudyStatus.INTERRUPTED
    assert not study.trials(states=TrialState.RUNNING)
    assert not [t for t in study.trials() if t.system_attrs.get("kind") == "supernet"]  # it had not finished
