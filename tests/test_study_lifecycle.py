"""A study's life cycle in the store: the driver's heartbeat, ``stale`` derived at read time,
``finished``/``interrupted`` stored, and revision 0005 that adds the heartbeat (SQLite and PostgreSQL).

The end-to-end part (a real ``nas search`` stopped by SIGINT, killed by SIGKILL,
resumed to ``finished``) is in ``tests/test_search_lifecycle.py``.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.cli import main
from nas.core import ConfigError, TrialState
from nas.runner.lifecycle import SearchInterrupted, StopRequest, settle
from nas.store import RDBStorage, StudyStatus, head_revision, open_readonly
from nas.store.liveness import ENV_VAR, stale_after_s
from nas.store.testing import downgrade, run_sql, schema_differences

BEAT_S = 0.2  # stale after 0.6 s


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(BEAT_S))


def test_a_driven_study_reads_stale_once_its_driver_stops_beating(storage_url, fast_heartbeat) -> None:  # noqa: F811
    study = nas.create_study("s", storage_url, space="nb201")
    assert study.status is StudyStatus.RUNNING  # no driver holds it: the stored status
    lease = study.acquire_lease(stale_after_s())  # the driver's heartbeat is its lease's
    assert study.status is StudyStatus.RUNNING
    assert study.renew_lease(lease) and study.status is StudyStatus.RUNNING
    time.sleep(stale_after_s() + 0.3)
    assert study.status is StudyStatus.STALE
    assert nas.list_studies(storage_url)[0].info.status is StudyStatus.STALE
    assert nas.load_study("s", storage_url).status is StudyStatus.STALE
    with open_readonly(storage_url) as reader:
        assert reader.study_token(study.study_id)[0] == "stale"  # what the dashboard polls
    lease = study.acquire_lease(stale_after_s())  # a rerun's driver takes over: running again
    assert study.status is StudyStatus.RUNNING
    study.finish(StudyStatus.INTERRUPTED)
    time.sleep(stale_after_s() + 0.3)
    assert study.status is StudyStatus.INTERRUPTED  # a stale lease makes only a running study stale
    study.release_lease(lease)  # as the driver does once it stored how the study ended
    info = nas.list_studies(storage_url)[0].info
    assert (info.status, info.heartbeat_at) == (StudyStatus.INTERRUPTED, None)
    assert info.finished_at is not None
    study.acquire_lease(stale_after_s())  # resuming an interrupted study makes it running again
    info = nas.list_studies(storage_url)[0].info
    assert (info.status, info.finished_at) == (StudyStatus.RUNNING, None) and info.heartbeat_at is not None


def test_stale_is_derived_never_stored(storage_url) -> None:  # noqa: F811
    study = nas.create_study("s", storage_url, space="nb201")
    with pytest.raises(
        ConfigError, match="'stale' is not allowed .it is derived.*allowed: running, finished, interrupted"
    ):
        study.finish("stale")


def test_a_bad_heartbeat_interval_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "fast")
    with pytest.raises(ConfigError, match=r"\$NAS_HEARTBEAT_S='fast' is not allowed"):
        stale_after_s()


def test_settle_marks_finished_or_interrupted_and_leaves_no_trial_running(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    done = nas.create_study("done", url, space="nb201")
    done.tell(done.ask(), 1.0)
    settle(done, StopRequest(), None)
    assert done.status is StudyStatus.FINISHED

    stopped = nas.create_study("stopped", url, space="nb201")
    stopped.tell(stopped.ask(), 1.0)
    running = stopped.ask()
    stop = StopRequest()
    stop.request(2)
    settle(stopped, stop, None)
    assert stopped.status is StudyStatus.INTERRUPTED
    assert not stopped.trials(states=TrialState.RUNNING)
    failed = stopped.trial(running.number)
    assert failed.state is TrialState.FAIL and failed.error.startswith("interrupted")
    (copy,) = stopped.trials(states=TrialState.WAITING)  # re-queued as a rerun re-queues a dead driver's
    assert copy.system_attrs == {"retry_of": running.number} and copy.arch == running.arch

    message = str(SearchInterrupted("stopped", 2, 1, 4))
    assert "interrupted by Ctrl+C" in message and "1 of 4" in message and "same command" in message
    assert SearchInterrupted("stopped", 2, 1, 4).exit_code == 130


def test_nas_studies_and_nas_trials_show_the_status(tmp_path, fast_heartbeat) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    live, dead = (nas.create_study(name, url, space="nb201") for name in ("live", "dead"))
    dead.acquire_lease(stale_after_s())
    time.sleep(stale_after_s() + 0.3)
    live.acquire_lease(stale_after_s())
    runner = CliRunner()
    listed = runner.invoke(main, ["studies", "--storage", url, "--json"])
    assert {s["name"]: s["status"] for s in nas.cli.store.json.loads(listed.output)} == {
        "live": "running",
        "dead": "stale",
    }
    shown = runner.invoke(main, ["trials", "dead", "--storage", url])
    assert shown.exit_code == 0 and "study dead (stale)" in shown.output


def test_upgrade_to_0005_gives_running_studies_a_heartbeat_so_they_read_stale(storage_url) -> None:  # noqa: F811
    store = RDBStorage(storage_url, check_schema=False)
    store.upgrade("0004_comparability_lease")
    t0 = "2024-01-01 10:00:00.000000" + ("" if storage_url.startswith("sqlite") else "+00")
    for name, status in (("old", "running"), ("done", "finished")):
        run_sql(
            storage_url,
            "INSERT INTO studies (name, space, space_options, objectives, config, status, "
            "next_trial_number, created_at) VALUES (:n, 'nb201', '{}', '[[\"acc\",\"max\"]]', '{}', :s, 0, :t0)",
            {"n": name, "s": status, "t0": t0},
        )
    assert store.upgrade("0005_study_heartbeat") == ("0004_comparability_lease", "0005_study_heartbeat")
    assert store.upgrade() == ("0005_study_heartbeat", head_revision())
    assert schema_differences(storage_url) == []
    statuses = {s.info.name: s.info.status for s in nas.list_studies(storage_url)}
    assert statuses == {"old": StudyStatus.STALE, "done": StudyStatus.FINISHED}
    downgrade(storage_url, "0004_comparability_lease")
    assert store.schema_revision() == "0004_comparability_lease"
    assert run_sql(storage_url, "SELECT count(*) FROM studies")[0][0] == 2
    store.close()


def test_upgrade_to_0007_reads_stale_from_the_lease_and_drops_the_study_heartbeat(storage_url) -> None:  # noqa: F811
    """One driver heartbeat: a study's ``heartbeat_at`` moves to a (dead driver's) lease, and back."""
    store = RDBStorage(storage_url, check_schema=False)
    store.upgrade("0006_mask_config_passwords")
    pg = not storage_url.startswith("sqlite")
    old, now = "2024-01-01 10:00:00.000000", time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
    old, now = (f"{t}+00" if pg else t for t in (old, now))
    rows = [
        ("dead", "running", old),
        ("hand", "running", None),
        ("leased", "running", old),
        ("done", "finished", None),
    ]
    for name, status, beat in rows:
        run_sql(
            storage_url,
            "INSERT INTO studies (name, space, space_options, objectives, config, status, next_trial_number, "
            "created_at, heartbeat_at) VALUES (:n, 'nb201', '{}', '[[\"acc\",\"max\"]]', '{}', :s, 0, :t0, :b)",
            {"n": name, "s": status, "t0": old, "b": beat},
        )
    run_sql(  # a live driver (this process) holds "leased"
        storage_url,
        "INSERT INTO study_leases (study_id, token, host, pid, acquired_at, heartbeat_at) "
        "SELECT id, 'live', 'h', 1, :t, :t FROM studies WHERE name = 'leased'",
        {"t": now},
    )

    assert store.upgrade() == ("0006_mask_config_passwords", head_revision())
    assert schema_differences(storage_url) == []
    statuses = {s.info.name: s.info.status for s in nas.list_studies(storage_url)}
    assert statuses == {
        "dead": StudyStatus.STALE,  # its old heartbeat now is a dead driver's lease
        "hand": StudyStatus.RUNNING,  # never driven: the stored status
        "leased": StudyStatus.RUNNING,  # the live lease's heartbeat wins over the study's old one
        "done": StudyStatus.FINISHED,
    }
    dead = nas.load_study("dead", storage_url)
    dead.acquire_lease(stale_after_s())  # a rerun takes the dead driver's lease over at once
    assert dead.status is StudyStatus.RUNNING
    dead.close()

    downgrade(storage_url, "0006_mask_config_passwords")
    assert store.schema_revision() == "0006_mask_config_passwords"
    beats = dict(
        run_sql(storage_url, "SELECT name, heartbeat_at FROM studies WHERE heartbeat_at IS NOT NULL")
    )
    assert set(beats) == {"dead", "leased"}  # running studies get their lease's heartbeat back
    tokens = run_sql(storage_url, "SELECT token FROM study_leases ORDER BY token")
    assert len(tokens) == 2 and ("live",) in [tuple(t) for t in tokens]  # "dead"'s is the rerun's now
    store.close()


# -- the dashboard refreshes live studies only ---------------------------------------------------
@pytest.fixture
def scheduled_reruns(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Intervals of the auto-reruns the app schedules (``st.fragment(run_every=...)`` sends one each)."""
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    intervals: list[float] = []
    enqueue = ForwardMsgQueue.enqueue

    def recording(self: ForwardMsgQueue, msg: object) -> None:
        if msg.HasField("auto_rerun"):  # type: ignore[attr-defined]
            intervals.append(msg.auto_rerun.interval)  # type: ignore[attr-defined]
        enqueue(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", recording)
    return intervals


@pytest.mark.parametrize(
    "ending, refreshes",
    [("live", True), ("finished", False), ("interrupted", False), ("stale", False)],
)
def test_the_studies_page_refreshes_only_while_a_study_is_live(
    tmp_path, monkeypatch, scheduled_reruns, ending: str, refreshes: bool
) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard import APP_PATH

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study = nas.create_study("s", url, space="nb201")
    study.tell(study.ask(), 1.0)
    study.acquire_lease(60)
    if ending == "stale":
        monkeypatch.setenv(ENV_VAR, str(BEAT_S))  # (the default 5 s keeps the live study live meanwhile)
        time.sleep(stale_after_s() + 0.3)
    elif ending != "live":
        study.finish(ending)
    monkeypatch.setenv("NAS_STORAGE", url)
    app = AppTest.from_file(str(APP_PATH), default_timeout=90)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    status = app.dataframe[0].value.iloc[0]["status"]
    assert status.split(" ")[0] == ("running" if ending == "live" else ending)
    assert bool(scheduled_reruns) is refreshes
    assert ("refreshing every" in " ".join(c.value for c in app.caption)) is refreshes
