"""Many writers on one store: the race, the SIGKILL, fork safety, and WAL readers (every backend)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.core import TrialState
from nas.store.testing import ChainSpace, ask_tell_worker, run_sql

# The multi-process tests use a torch-free space so each spawned process costs
# an import of the store, not of torch; the store code they exercise is the same.


@pytest.mark.slow
def test_eight_processes_get_gap_free_unique_numbers(storage_url: str) -> None:  # noqa: F811
    nas.create_study("race", storage_url, space=ChainSpace(), objectives={"val_accuracy": "max"})
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        results = pool.starmap(ask_tell_worker, [(storage_url, "race", 100, w) for w in range(8)])
    numbers = sorted(n for worker in results for n in worker)
    assert numbers == list(range(800))
    trials = nas.load_study("race", storage_url).trials()
    assert [t.number for t in trials] == list(range(800))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    # Each trial holds the value its own worker told for it (worker * 1000 + i).
    for worker, told in enumerate(results):
        for i, number in enumerate(told):
            assert trials[number].node == f"worker-{worker}"
            assert trials[number].values == {"val_accuracy": float(worker * 1000 + i)}


def _start_writer(url: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nas.store.testing", "writer", url, "kill"],
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
    )


def _read_told(process: subprocess.Popen[str], count: int, log: Path) -> list[int]:
    told = []
    while len(told) < count:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            pytest.fail(f"writer exited early (code {process.wait()}): {log.read_text()[-2000:]}")
        told.append(int(line))
    return told


@pytest.mark.slow
def test_writer_killed_mid_run_leaves_a_consistent_store(storage_url: str, tmp_path: Path) -> None:  # noqa: F811
    objectives = {"val_accuracy": "max", "latency_ms": "min"}
    nas.create_study("kill", storage_url, space=ChainSpace(), objectives=objectives)
    log = tmp_path / "writer.log"
    told: list[int] = []
    for _round in range(2):  # kill, reopen, resume, kill again
        writer = _start_writer(storage_url, log)
        told += _read_told(writer, 25, log)
        os.kill(writer.pid, signal.SIGKILL)  # it is somewhere inside ask/report/tell
        assert writer.wait() == -signal.SIGKILL
        study = nas.load_study("kill", storage_url, space=ChainSpace())
        trials = study.trials()
        # Numbers stay gap-free: a killed transaction gives its number back.
        assert [t.number for t in trials] == list(range(len(trials)))
        for trial in trials:
            curves = study.metrics(trial)
            if trial.state is TrialState.COMPLETE:
                i = trial.user_attrs["i"]
                assert trial.values == {"val_accuracy": float(i), "latency_ms": float(i)}
                assert [len(c) for c in curves.values()] == [3]
            else:  # the trial in flight (or one a dead writer left): never half-told
                assert trial.state in (TrialState.RUNNING, TrialState.FAIL) and trial.values is None
                assert len(curves.get("loss", [])) <= 3
        assert set(told) <= {t.number for t in trials if t.state is TrialState.COMPLETE}
        assert sum(t.state is TrialState.RUNNING for t in trials) <= 1
        study.fail_stale_trials(grace_s=0, requeue=False)  # what a new driver does first
        study.close()
    if storage_url.startswith("sqlite"):
        assert run_sql(storage_url, "PRAGMA integrity_check") == [("ok",)]


def _fork_worker(study: nas.Study, worker: int) -> None:
    for i in range(10):
        study.tell(study.ask(node=f"fork-{worker}"), float(i))


def test_forked_children_reuse_a_parents_study(storage_url: str) -> None:  # noqa: F811
    study = nas.create_study("fork", storage_url, space="nb201")
    study.tell(study.ask(), 0.0)  # the parent's pool now holds a connection
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_fork_worker, args=(study, w)) for w in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    study.tell(study.ask(), 1.0)  # and the parent's connections still work
    assert [t.number for t in study.trials()] == list(range(22))
    assert study.count_trials()[TrialState.COMPLETE] == 22


def test_sqlite_reader_never_blocks_a_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    study = nas.create_study("wal", url, space="nb201")
    study.tell(study.ask(), 1.0)
    reader = sqlite3.connect(tmp_path / "wal.db", isolation_level=None)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (1,)  # holds a snapshot
        for i in range(5):  # without WAL these would wait out the busy timeout and fail "database is locked"
            study.tell(study.ask(), float(i))
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (1,)  # its snapshot is stable
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (6,)
    finally:
        reader.close()
