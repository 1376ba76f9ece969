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

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from search_processes import driver

import nas
from nas.core import TrialState
from nas.runner.recovery import effective_finished
from nas.store import StudyStatus
from nas.store.liveness import ENV_VAR, stale_after_s

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TRIALS = 5
BEAT_S = "0.5"
#: Where a one-shot search checkpoints its first seed's supernet, under the store's artifacts.
CHECKPOINT = "*-checkpoints/seed-0/oneshot.pt"


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

    def study() -> nas.Study:
        return nas.load_study("life", storage=url)

    def started(*, complete: int) -> Callable[[nas.Study], bool | None]:
        def find(study: nas.Study) -> bool | None:
            counts = study.count_trials()
            return (counts[TrialState.COMPLETE] >= complete and counts[TrialState.RUNNING] > 0) or None

        return find

    # 1. Ctrl+C mid-search.
    with driver(config, tmp_path, url) as search:
        search.wait_for("a running trial after a finished one", started(complete=1))
        assert search.interrupt(timeout=90) == 130, search.output()
        log = search.log.read_text(errors="replace")
    assert "study 'life' interrupted by Ctrl+C" in log
    assert "run the same command again to resume it" in log
    assert "finished trials" not in log  # no success summary
    assert study().status is StudyStatus.INTERRUPTED
    trials = study().trials()
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    stopped = [t for t in trials if t.state is TrialState.FAIL]
    assert stopped and all(t.error.startswith("interrupted") for t in stopped)
    assert len(effective_finished(trials)) < TRIALS

    # 2. The rerun resumes (running again), then its driver is SIGKILLed: the study reads stale.
    with driver(config, tmp_path, url) as search:
        search.wait_for(
            "the rerun to run a trial",
            lambda study: (study.status is StudyStatus.RUNNING and started(complete=0)(study)) or None,
        )
        search.kill()
    time.sleep(stale_after_s() + 0.5)
    assert study().status is StudyStatus.STALE

    # 3. The next rerun brings it to finished with exactly the budget.
    with driver(config, tmp_path, url) as search:
        search.finish(timeout=300)
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
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    checkpoints = tmp_path / "nas_artifacts" / config["name"] / "oneshot"
    with driver(config, tmp_path, url) as search:
        # The supernet has finished an epoch: it is training now.
        search.until("the supernet's first checkpoint", lambda: next(checkpoints.glob(CHECKPOINT), None))
        assert search.interrupt(timeout=180) == 130, search.output()
        log = search.log.read_text(errors="replace")
    assert f"study '{config['name']}' interrupted by Ctrl+C" in log
    assert "finished trials" not in log  # no success summary
    study = nas.load_study(config["name"], storage=url)
    assert study.status is StudyStatus.INTERRUPTED
    assert not study.trials(states=TrialState.RUNNING)
    assert not [t for t in study.trials() if t.system_attrs.get("kind") == "supernet"]  # it had not finished
