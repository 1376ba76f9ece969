"""The Ray side of a search under faults, with real training: a worker process or a whole node dies.

``nas search`` runs in a subprocess (tiny NAS-Bench-201 cells trained on
``digits``, two trials at a time); once a trial is mid-training, its worker
process is SIGKILLed (a local Ray), or the worker node of a two-node
``deploy/local/cluster.sh`` cluster is (every process of that node at once).
Ray Tune restarts the trial (``FailureConfig(max_failures)``); trials keep no
checkpoint, so the restart trains from scratch, and the driver records it as
a new trial whose ``retry_of`` names the dead attempt, told FAIL with its
partial curve (nas.runner.searcher). Either way the study ends ``finished``
with exactly the budget of COMPLETE trials, nothing RUNNING, one full curve
per complete trial that ends at its stored value, and its weights on disk.

Marked ``slow`` and ``ray`` (the node test also ``postgres``: the cluster
script's store). Only what a test started is ever killed: the driver's
session, or the session ``cluster.sh`` recorded for its own worker node.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
from local_cluster import local_cluster
from search_processes import driver, mid_training
from store_fixtures import postgres_url  # noqa: F401  (fixture)

import nas
from nas.core import Trial, TrialState
from nas.runner.recovery import effective_finished
from nas.store import StudyStatus
from nas.store.testing import temporary_schema

pytestmark = [pytest.mark.slow, pytest.mark.ray]

TRIALS = 4
#: Enough epochs that a trial seen after at most two epochs is still training when its worker dies.
EPOCHS = 4
#: The head declares a silent node dead after 5 missed health checks; 1 s apart (Ray's default: 3 s)
#: the restart comes sooner. It changes only when, not whether, the node is noticed.
HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000"}


def search_config(name: str) -> dict:
    return {
        "name": name,
        "space": {"name": "nb201", "channels": 8, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "epochs": EPOCHS, "batch_size": 64, "lr": 0.05},
        "objectives": {"val_accuracy": "max"},
        "budget": {"trials": TRIALS, "concurrent": 2},
        "resources": {"cpu": 1, "gpu": 0},
    }


def assert_restarted(study: nas.Study, dead_number: int, killed_pid: int) -> Trial:
    """The stored study after one trial's worker died; returns the trial that re-ran it."""
    assert study.status is StudyStatus.FINISHED
    trials = study.trials()
    assert [t.number for t in trials] == list(range(TRIALS + 1))  # the budget plus the one dead attempt
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == TRIALS and len(effective_finished(trials)) == TRIALS

    dead = study.trial(dead_number)
    assert dead.state is TrialState.FAIL
    assert dead.error.startswith(f"Ray lost the worker running this trial on {dead.node} (pid {killed_pid})")
    assert "Failure # 1" in dead.error  # and Ray's own account of it
    assert dead.system_attrs["workers"][-1][1] == killed_pid
    partial = [step for step, _ in study.metrics(dead)["val_accuracy"]]
    assert partial == list(range(1, len(partial) + 1)) and 1 <= len(partial) < EPOCHS  # its curve so far
    assert study.artifacts(dead) == []

    (retry,) = [t for t in trials if t.system_attrs.get("retry_of") == dead.number]
    assert retry.state is TrialState.COMPLETE
    assert (retry.arch, retry.seed, retry.budget) == (dead.arch, dead.seed, dead.budget)
    assert retry.system_attrs["workers"][-1][1] != killed_pid

    for trial in complete:
        curve = study.metrics(trial)["val_accuracy"]
        assert [step for step, _ in curve] == list(range(1, EPOCHS + 1)), trial.number  # one full run, no mix
        assert curve[-1][1] == pytest.approx(trial.value("val_accuracy"))
        (weights,) = study.artifacts(trial)
        path = Path(weights.uri.removeprefix("file://"))
        assert weights.kind == "weights" and hashlib.sha256(path.read_bytes()).hexdigest() == weights.sha256
    return retry


def test_worker_killed_mid_epoch_is_rerun_as_a_new_trial(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "NAS_ARTIFACTS")}
    with driver(search_config("workerkill"), tmp_path, url, env) as search:
        victim, pid = search.wait_for("a trial mid-training", lambda study: mid_training(study, EPOCHS))
        os.kill(pid, signal.SIGKILL)
        search.finish()
        assert_restarted(search.study(), victim.number, pid)


@pytest.mark.postgres
def test_worker_node_leaving_mid_search_reruns_its_trial_on_the_head(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    with (
        temporary_schema(postgres_url) as url,
        local_cluster(url, {"NAS_CLUSTER_DASHBOARD": "0", **HEALTH_CHECKS}) as cluster,
    ):
        worker = cluster.session("worker-1")

        def on_worker_node(pid: int) -> bool:
            try:
                return os.getsid(pid) == worker
            except ProcessLookupError:
                return False

        env = {**cluster.driver_env(), "NAS_ARTIFACTS": str(tmp_path / "artifacts")}
        with driver(search_config("nodeloss"), tmp_path, url, env) as search:
            victim, pid = search.wait_for(
                "a trial mid-training on the worker node",
                lambda study: mid_training(study, EPOCHS, on_worker_node),
            )
            assert pid in cluster.kill("worker-1")
            search.finish()
            study = search.study()
            retry = assert_restarted(study, victim.number, pid)
            assert retry.node != study.trial(victim.number).node  # re-run on the head, the only node left
