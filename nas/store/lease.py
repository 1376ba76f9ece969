"""The driver lease: at most one driver runs a study at a time.

Two ``nas search`` processes on one study would both ask the strategy,
both re-queue each other's "orphaned" trials and together run twice the
budget. So a driver takes the study's lease (one row of ``study_leases``)
before it writes anything else (taking it marks the study ``running``),
refreshes its heartbeat while it runs, and deletes it when it exits. That
heartbeat is the driver's only one: a running study whose lease's heartbeat
is too old reads as ``stale`` (:mod:`nas.store.liveness`). Taking the lease is one transaction that reads the
row locked (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
of two drivers starting at once exactly one gets it; the other is refused
with :class:`~nas.store.StudyBusyError` naming the holder (host, pid, since).

A driver that crashed cannot delete its lease. Its lease is taken over once
its heartbeat is older than the caller's stale timeout, or at once if it was
held on this host by a process that no longer exists (so a rerun right after
a crash resumes without waiting). Each lease has a random token: a driver
whose lease was taken over finds out at its next heartbeat (``renew`` returns
``False``) instead of overwriting its successor's.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from nas.store.database import Database
from nas.store.engine import run_transaction
from nas.store.errors import StudyBusyError
from nas.store.liveness import status_changes
from nas.store.records import StudyStatus
from nas.store.rows import aware
from nas.store.schema import studies, study_leases, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """Who runs a study: the driver's host and pid, since when, and its last heartbeat."""

    study_id: int
    token: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def age(self, now: datetime) -> float:
        """Seconds since the last heartbeat."""
        return (now - self.heartbeat_at).total_seconds()

    def describe(self, now: datetime) -> str:
        return (
            f"{self.host} pid {self.pid}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"last heartbeat {self.age(now):.0f} s ago"
        )


def _from_row(row: Any) -> Lease:
    m = row._mapping
    return Lease(
        study_id=int(m["study_id"]),
        token=m["token"],
        host=m["host"],
        pid=int(m["pid"]),
        acquired_at=aware(m["acquired_at"]),  # type: ignore[arg-type]
        heartbeat_at=aware(m["heartbeat_at"]),  # type: ignore[arg-type]
    )


def _gone(lease: Lease) -> bool:
    """Whether the holder ran on this host and its process no longer exists."""
    if lease.host != socket.gethostname() or lease.pid == os.getpid():
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class Leases:
    """Taking, refreshing, releasing and reading driver leases, on a read-write :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        dialect = pg_dialect if database.backend == "postgresql" else sqlite_dialect
        insert = dialect.insert(study_leases).on_conflict_do_nothing(index_elements=["study_id"])
        self._insert = insert.returning(study_leases.c.study_id)  # no row back: another driver's won

    def _run(self, fn: Any, what: str, *, write: bool = True) -> Any:
        return run_transaction(self._db.engine, fn, write=write, what=what, rng=self._db.rng)

    def acquire_lease(self, study_id: int, *, stale_s: float) -> Lease:
        """Take the study's lease for this process; :class:`StudyBusyError` if a live driver holds it."""
        info = self._db.info(study_id)
        mine = {"study_id": study_id, "token": uuid.uuid4().hex, "host": socket.gethostname()}
        mine["pid"] = os.getpid()
        locked = select(study_leases).where(study_leases.c.study_id == study_id).with_for_update()
        running = update(studies).where(studies.c.id == study_id).values(status_changes(StudyStatus.RUNNING))

        def work(connection: Connection) -> Lease:
            now = utcnow()
            row = {**mine, "acquired_at": now, "heartbeat_at": now}
            found = connection.execute(locked).first()
            if found is not None and found.token == mine["token"]:
                return _from_row(found)  # an earlier attempt committed, its acknowledgement was lost
            if found is None:
                if connection.execute(self._insert, row).first() is not None:
                    connection.execute(running)
                    return Lease(**row)
                found = connection.execute(locked).one()  # inserted by another driver meanwhile
            held = _from_row(found)
            if held.age(now) <= stale_s and not _gone(held):
                raise StudyBusyError(
                    f"study {info.name!r} is being run by another driver ({held.describe(now)}); "
                    "wait for it to finish or stop it. A driver that crashed is taken over "
                    f"{stale_s:.0f} s after its last heartbeat (at once on the same host): rerun then"
                )
            log.warning("taking over study %r from a dead driver (%s)", info.name, held.describe(now))
            connection.execute(update(study_leases).where(study_leases.c.study_id == study_id).values(row))
            connection.execute(running)
            return Lease(**row)

        lease: Lease = self._run(work, f"taking the driver lease of study {info.name!r}")
        return lease

    def renew_lease(self, lease: Lease) -> bool:
        """Refresh the heartbeat; ``False`` if the lease is no longer this one's (taken over or released)."""
        mine = (study_leases.c.study_id == lease.study_id) & (study_leases.c.token == lease.token)

        def work(connection: Connection) -> bool:
            return (
                connection.execute(update(study_leases).where(mine).values(heartbeat_at=utcnow())).rowcount
                == 1
            )

        renewed: bool = self._run(work, f"renewing the driver lease of study #{lease.study_id}")
        return renewed

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up (a no-op if it was taken over meanwhile)."""
        mine = (study_leases.c.study_id == lease.study_id) & (study_leases.c.token == lease.token)
        self._run(lambda c: c.execute(study_leases.delete().where(mine)), "releasing a driver lease")

    def lease_holder(self, study_id: int) -> Lease | None:
        """The study's current lease (live or stale), or ``None``."""
        query = select(study_leases).where(study_leases.c.study_id == study_id)
        found = self._run(lambda c: c.execute(query).first(), "reading a driver lease", write=False)
        return None if found is None else _from_row(found)


__all__ = ["Lease", "Leases"]
