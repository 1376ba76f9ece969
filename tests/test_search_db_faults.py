"""Real searches against a database that goes away, and a driver that dies, on PostgreSQL and SQLite.

Each test runs ``nas search`` as a subprocess with its own local Ray and real
training (tiny nb201 networks on the bundled digits data), and watches the
store from here:

* the private PostgreSQL server (:mod:`private_postgres`; never the shared
  one) is stopped after the first trial completes and started again a few
  seconds later: the search waits, logs each retry with the password masked,
  and ends ``finished`` with exactly the budget;
* the server stays down past ``$NAS_DB_RETRY_S``: the driver exits 2 with one
  line (masked URL, what was retried, how to resume) and no traceback; the
  same command, once the server is back, completes the budget;
* the driver is SIGKILLed mid-search: the same command completes the budget.

"Exactly the budget": numbers 0..n-1, ``budget`` COMPLETE trials each with one
curve point per epoch and its weights file, nothing RUNNING or WAITING
(:func:`search_processes.assert_exact_budget`).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from private_postgres import PrivatePostgres, private_postgres, private_postgres_server  # noqa: F401
from search_processes import (
    assert_exact_budget,
    digits_search,
    kill_group,
    plugin_env,
    search_command,
    wait_for,
)
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.core import TrialState
from nas.store import StudyStatus, open_readonly
from nas.store.outage import ENV_VAR as RETRY_ENV_VAR

pytestmark = [pytest.mark.ray, pytest.mark.slow]

#: Enough trials that a fault injected after the first completes still finds the driver at work
#: (with 4, CI once saw the last trial complete while the server was being stopped).
BUDGET = 8
#: How many trials of the budget are still incomplete when a fault is injected, at least.
LEFT = 4
EPOCHS = 2
PASSWORD = "pw-never-printed"  # trust authentication ignores it; it must never reach a log line
#: Generous: on a loaded machine a local Ray takes minutes to start (never a pass/fail criterion).
WAIT_S = 600.0
OUTAGE_S = 6.0  # shorter than the lease's stale timeout (15 s at the default heartbeat)


def search_config(name: str) -> dict:
    return digits_search(name, BUDGET, EPOCHS)


def start_search(command: list[str], directory: Path, **env: str) -> subprocess.Popen[str]:
    """A driver in a process group of its own (so that its local Ray can be killed with it)."""
    return subprocess.Popen(
        command,
        env=plugin_env(**env),
        cwd=directory,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(driver: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for a driver's end; its stdout and stderr."""
    try:
        return driver.communicate(timeout=WAIT_S)
    finally:
        kill_group(driver.pid)


def running_after_complete(study: str, url: str) -> Callable[[], bool]:
    """A check: a trial has completed, another is running and ``LEFT`` are not complete yet.

    So a fault injected now interrupts one and still finds the driver at work:
    these tiny trials take about a second, stopping the server about as long.

    Read-only: a read-write open of the still empty database would create the
    schema under the driver that is creating it too.
    """

    def check() -> bool:
        with open_readonly(url) as store:
            counts = nas.load_study(study, storage=store).count_trials()
        complete = counts.get(TrialState.COMPLETE, 0)
        return 1 <= complete <= BUDGET - LEFT and counts.get(TrialState.RUNNING, 0) >= 1

    return check


@pytest.mark.postgres
def test_a_database_outage_mid_search_is_waited_for(private_postgres: PrivatePostgres, tmp_path) -> None:  # noqa: F811
    url = private_postgres.create_database("outage").replace("postgres@", f"postgres:{PASSWORD}@")
    command = search_command(search_config("outage"), tmp_path, url)
    driver = start_search(command, tmp_path, **{RETRY_ENV_VAR: "180"})
    try:
        wait_for("a running trial after a completed one", running_after_complete("outage", url))
        private_postgres.stop()
        time.sleep(OUTAGE_S)
        private_postgres.start()
    finally:
        out, err = finish(driver)
    assert driver.returncode == 0, err[-3000:]
    assert "unreachable" in err and "retry in" in err, err[-3000:]
    assert f"postgres:***@127.0.0.1:{private_postgres.port}/outage" in err
    assert PASSWORD not in err + out
    study = nas.load_study("outage", storage=url)
    assert study.status is StudyStatus.FINISHED
    assert_exact_budget(study, BUDGET, EPOCHS)
    assert {t.state for t in study.trials()} == {TrialState.COMPLETE}  # nothing had to be re-run


@pytest.mark.postgres
def test_a_database_gone_for_good_stops_with_one_line_then_the_rerun_resumes(
    private_postgres: PrivatePostgres,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = private_postgres.create_database("gone").replace("postgres@", f"postgres:{PASSWORD}@")
    command = search_command(search_config("gone"), tmp_path, url)
    driver = start_search(command, tmp_path, **{RETRY_ENV_VAR: "3"})
    try:
        wait_for("a running trial after a completed one", running_after_complete("gone", url))
        private_postgres.stop()
    finally:
        out, err = finish(driver)
    assert driver.returncode == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err[-3000:]
    (line,) = errors
    assert f"postgresql+psycopg://postgres:***@127.0.0.1:{private_postgres.port}/gone" in line
    assert "has been unreachable for" in line and f"${RETRY_ENV_VAR}=3" in line
    assert "run the same command again" in line and "resumes" in line
    assert PASSWORD not in err + out

    private_postgres.start()
    rerun = start_search(command, tmp_path)
    _, err = finish(rerun)
    assert rerun.returncode == 0, err[-3000:]
    study = nas.load_study("gone", storage=url)
    assert study.status is StudyStatus.FINISHED
    assert_exact_budget(study, BUDGET, EPOCHS)


@pytest.mark.parametrize("storage_url", ["postgres"], indirect=True)
def test_a_killed_driver_is_resumed_by_the_same_command(storage_url: str, tmp_path) -> None:  # noqa: F811
    """On PostgreSQL (a schema on the shared server).

    SQLite's kill-and-rerun with real training is tests/test_freeze_thaw.py's driver-kill test
    (it also resumes a paused trial), and tests/test_search_lifecycle.py kills a SQLite driver
    between Ctrl+C and a rerun; a third SQLite run here cost CI about a minute and a half.
    """
    command = search_command(search_config("killed"), tmp_path, storage_url)
    driver = start_search(command, tmp_path)
    try:
        wait_for("a running trial after a completed one", running_after_complete("killed", storage_url))
        driver.send_signal(signal.SIGKILL)
    finally:
        finish(driver)
    assert driver.returncode == -signal.SIGKILL
    left = nas.load_study("killed", storage=storage_url).trials()
    assert [t for t in left if t.state is TrialState.RUNNING]  # a killed driver cleans nothing up

    rerun = start_search(command, tmp_path)
    _, err = finish(rerun)
    assert rerun.returncode == 0, err[-3000:]
    study = nas.load_study("killed", storage=storage_url)
    assert study.status is StudyStatus.FINISHED
    assert_exact_budget(study, BUDGET, EPOCHS)


def test_tunes_traceback_of_a_store_error_is_dropped_and_other_errors_are_kept(caplog) -> None:  # noqa: ANN001
    """The gone-for-good test's one-line promise: Tune logs a store error a searcher callback raised while it
    stopped a trial ("Error stopping trial."); the driver reports that error itself, so Tune's copy goes."""
    from nas.core.errors import StorageError
    from nas.runner.cluster import quiet_ray

    quiet_ray()
    controller = logging.getLogger("ray.tune.execution.tune_controller")
    for error in (StorageError("the database is unreachable"), RuntimeError("a bug in a callback")):
        try:
            raise error
        except Exception:
            with caplog.at_level(logging.ERROR, logger=controller.name):
                controller.exception("Trial %s: Error stopping trial.", "trial-1")
    assert [r.exc_info[1].__class__ for r in caplog.records if r.exc_info] == [RuntimeError]
