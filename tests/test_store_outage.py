"""The store when its PostgreSQL server goes away: wait for it, give up clearly, never apply a write twice.

The server is a private one (:mod:`private_postgres`), stopped and started
by the test; the shared server is never touched. A lost acknowledgement of a
commit cannot be provoked on demand by a real server, so that one test lets
the real commit happen and then drops the connection before the client hears
back, exactly what a network failure at that moment does.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import psycopg
import pytest
from private_postgres import PrivatePostgres, private_postgres, private_postgres_server  # noqa: F401
from store_fixtures import postgres_url  # noqa: F401

import nas
from nas.core import TrialState
from nas.runner.lease import DriverLease
from nas.store import DatabaseUnavailableError, StudyStatus
from nas.store.liveness import ENV_VAR as HEARTBEAT_ENV_VAR
from nas.store.outage import ENV_VAR as RETRY_ENV_VAR
from nas.store.testing import temporary_schema

pytestmark = pytest.mark.postgres

PASSWORD = "pw-never-logged"
OUTAGE_S = 2.0


def password_url(server: PrivatePostgres, name: str) -> str:
    return server.create_database(name).replace("postgres@", f"postgres:{PASSWORD}@")


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "nas.store.outage" and "retry in" in r.getMessage()
    ]


def test_an_outage_shorter_than_the_window_is_waited_for_by_the_search_and_its_heartbeat(
    private_postgres: PrivatePostgres,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(HEARTBEAT_ENV_VAR, "0.2")
    monkeypatch.setenv(RETRY_ENV_VAR, "120")
    url = password_url(private_postgres, "short")
    study = nas.create_study("short", url, space="nb201")
    trial = study.ask()
    lease = DriverLease(study, stale_s=60.0, every_s=0.2)  # renews the lease and beats the trial
    lease.track({"t": trial})
    caplog.set_level(logging.WARNING)
    try:
        private_postgres.stop()
        restart = threading.Timer(OUTAGE_S, private_postgres.start)
        restart.start()
        study.report(trial, 1, {"val_accuracy": 50.0})  # waits for the server
        told = study.tell(trial, values={"val_accuracy": 60.0})
        restart.join()
        time.sleep(0.5)  # a few more beats and renewals, now against the server that is back
        assert lease.is_alive() and not lease.lost
        holder = study.storage.lease_holder(study.study_id)
        assert holder is not None and holder.token == lease.lease.token  # still this driver's lease
        assert study.status is StudyStatus.RUNNING
    finally:
        lease.release()
    assert told.state is TrialState.COMPLETE
    assert study.metrics(trial) == {"val_accuracy": [(1, 50.0)]}
    assert [t.number for t in study.trials()] == [0]
    logged = retries(caplog)
    assert logged and all(f"postgres:***@127.0.0.1:{private_postgres.port}/short" in m for m in logged)
    assert PASSWORD not in caplog.text
    assert "reachable again" in caplog.text
    assert study.storage.lease_holder(study.study_id) is None  # released normally after the outage


def test_an_outage_longer_than_the_window_gives_up_with_a_clear_error_then_recovers(
    private_postgres: PrivatePostgres,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(RETRY_ENV_VAR, "1")
    url = password_url(private_postgres, "long")
    study = nas.create_study("long", url, space="nb201")
    trial = study.ask()
    caplog.set_level(logging.WARNING)
    private_postgres.stop()
    with pytest.raises(DatabaseUnavailableError) as caught:
        study.tell(trial, values={"val_accuracy": 60.0})
    message = str(caught.value)
    assert f"the database postgresql+psycopg://postgres:***@127.0.0.1:{private_postgres.port}/long" in message
    assert "has been unreachable for 1 s" in message and f"${RETRY_ENV_VAR}=1" in message
    assert "telling trial 0 of study 'long' failed" in message and "\n" not in message
    assert PASSWORD not in message + caplog.text
    before = len(retries(caplog))
    assert before >= 1
    with pytest.raises(DatabaseUnavailableError):  # the window is spent: no second wait
        study.report(trial, 1, {"val_accuracy": 1.0})
    assert len(retries(caplog)) == before

    private_postgres.start()
    told = study.tell(trial, values={"val_accuracy": 60.0})  # the same store object works again
    assert told.state is TrialState.COMPLETE and told.values == {"val_accuracy": 60.0}


def test_a_commit_whose_acknowledgement_was_lost_is_not_applied_twice(
    postgres_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with temporary_schema(postgres_url) as url:
        study = nas.create_study("lost", url, space="nb201")
        engine = study.storage.database.engine
        real_commit = engine.dialect.do_commit
        lost = {"left": 0}

        def commit_then_lose_the_answer(dbapi_connection) -> None:
            real_commit(dbapi_connection)
            if lost["left"] > 0:
                lost["left"] -= 1
                dbapi_connection.dbapi_connection.close()  # the socket, under the pool's proxy
                raise psycopg.OperationalError(
                    "consuming input failed: server closed the connection unexpectedly"
                )

        monkeypatch.setattr(engine.dialect, "do_commit", commit_then_lose_the_answer)

        def losing(call):
            lost["left"] = 1
            result = call()
            assert lost["left"] == 0  # the commit did happen and its answer was lost
            return result

        first = losing(study.ask)  # a new trial: number 0, not 0 *and* 1
        queued = study.enqueue(study.space.sample(np.random.default_rng(1)))
        claimed = losing(study.ask)  # the queued trial, claimed once
        told = losing(lambda: study.tell(first, values={"val_accuracy": 70.0}))
        lease = losing(lambda: study.acquire_lease(stale_s=60.0))  # not refused as "another driver" (itself)

        trials = study.trials()
        assert [t.number for t in trials] == [0, 1]
        assert (first.number, claimed.number) == (0, queued.number)
        assert told.state is TrialState.COMPLETE and told.values == {"val_accuracy": 70.0}
        assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING]
        assert study.storage.lease_holder(study.study_id).token == lease.token
        study.close()
