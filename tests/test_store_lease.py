"""The driver lease: one driver per study, refused by name while alive, taken over once dead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.store import StudyBusyError


def test_a_second_driver_is_refused_naming_the_live_one(storage_url) -> None:  # noqa: F811
    first = nas.create_study("s", storage_url, space="nb201")
    lease = first.acquire_lease(stale_s=60)
    second = nas.load_study("s", storage_url)
    with pytest.raises(StudyBusyError) as caught:
        second.acquire_lease(stale_s=60)
    message = str(caught.value)
    assert f"{socket.gethostname()} pid {os.getpid()}, since " in message and "last heartbeat" in message
    assert first.renew_lease(lease)
    first.release_lease(lease)
    assert second.storage.lease_holder(second.study_id) is None
    assert second.acquire_lease(stale_s=60).pid == os.getpid()


def test_a_stale_lease_is_taken_over_and_its_old_holder_finds_out(storage_url) -> None:  # noqa: F811
    first = nas.create_study("s", storage_url, space="nb201")
    old = first.acquire_lease(stale_s=60)
    time.sleep(0.05)
    second = nas.load_study("s", storage_url)
    new = second.acquire_lease(stale_s=0.01)  # the first one's heartbeat is older than that
    assert new.token != old.token
    assert not first.renew_lease(old) and second.renew_lease(new)
    first.release_lease(old)  # too late: releases nothing of the new holder's
    assert second.storage.lease_holder(second.study_id).token == new.token


def test_of_drivers_starting_at_once_exactly_one_gets_the_lease(storage_url) -> None:  # noqa: F811
    nas.create_study("s", storage_url, space="nb201")
    handles = [nas.load_study("s", storage_url) for _ in range(4)]
    outcomes: list[object] = []
    barrier = threading.Barrier(len(handles))

    def take(study) -> None:
        barrier.wait()
        try:
            outcomes.append(study.acquire_lease(stale_s=60))
        except StudyBusyError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=take, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(not isinstance(o, StudyBusyError) for o in outcomes) == 1


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(storage_url) -> None:  # noqa: F811
    nas.create_study("s", storage_url, space="nb201")
    crash = textwrap.dedent(
        f"""
        import os, nas
        nas.load_study("s", {storage_url!r}).acquire_lease(stale_s=60)
        os._exit(9)  # dies holding it, as after SIGKILL
        """
    )
    assert subprocess.run([sys.executable, "-c", crash], timeout=60).returncode == 9
    study = nas.load_study("s", storage_url)
    dead = study.storage.lease_holder(study.study_id)
    assert dead is not None and dead.pid != os.getpid()
    assert study.acquire_lease(stale_s=60).pid == os.getpid()


def test_a_driver_whose_lease_was_taken_over_notices_and_leaves_the_new_lease_alone(tmp_path) -> None:
    from nas.runner.lease import DriverLease

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    held = DriverLease(nas.create_study("s", url, space="nb201"), stale_s=60, every_s=0.05)
    time.sleep(0.2)
    assert not held.lost  # its own heartbeat keeps it
    time.sleep(0.05)
    successor = nas.load_study("s", url)
    new = successor.acquire_lease(stale_s=0.0)  # as if the first had stalled past the timeout
    deadline = time.monotonic() + 10
    while not held.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held.lost
    held.release()
    assert successor.storage.lease_holder(successor.study_id).token == new.token
