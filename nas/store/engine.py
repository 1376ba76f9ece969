"""Engines and transactions: the only place that knows backend quirks.

* **SQLite** runs in WAL mode with a busy timeout, so a dashboard reading
  never blocks a search writing. Python's ``sqlite3`` module would start
  transactions lazily and as *deferred*, which lets two writers deadlock on
  the upgrade from a read to a write lock; we take over ``BEGIN`` ourselves
  and start every write transaction with ``BEGIN IMMEDIATE`` so writers queue
  on the busy timeout instead (the SQLAlchemy "pysqlite transactions" recipe).
* **PostgreSQL** writes run at READ COMMITTED with explicit row locks; reads
  run at REPEATABLE READ so that a page of trials and its values come from one
  snapshot.
* **Every write is one transaction**, retried with backoff when the database
  reports a deadlock, a serialization failure or a busy lock. A process
  killed mid-write therefore leaves nothing half-written.
* **A server that goes away** (restart, failover, network) is waited for:
  every transaction is retried with a longer backoff for the outage window of
  :mod:`nas.store.outage` (``$NAS_DB_RETRY_S``, default 60 s), then gives up
  with :class:`~nas.store.errors.DatabaseUnavailableError`. SQLAlchemy
  invalidates the pool on a disconnect, so the retry reconnects. A commit whose
  acknowledgement was lost may have applied: a write that is not idempotent
  passes ``applied``, which finds its own earlier effect instead of applying
  it twice.
* **Fork safety**: pooled connections must not be shared by a parent and a
  forked child, so every engine is disposed (without closing the parent's
  sockets) in the child after ``fork``.
* Driver exceptions never escape: they become :class:`StorageError` with the
  cause chained and the URL's password masked.
* **Read-only engines** (:func:`make_readonly_engine`, for the dashboard and
  other watchers of a running search) cannot write on the database side:
  SQLite is opened through a ``file:...?mode=ro`` URI with ``PRAGMA
  query_only``, PostgreSQL sessions are ``READ ONLY``. In WAL mode a SQLite
  reader works on a snapshot and never takes a lock a writer waits for.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from nas.core.errors import NASError, StorageError
from nas.store.outage import FIRST_DELAY_S, is_connection_loss, next_delay, outage_of
from nas.store.url import mask_url

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Milliseconds a SQLite writer waits for the lock before the retry loop takes over.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Seconds to wait for a PostgreSQL connection before reporting the server unreachable.
PG_CONNECT_TIMEOUT_S = 10
#: Milliseconds a reader waits on the rare WAL events that make SQLite busy for readers
#: (recovery of a crashed writer's WAL index); readers never wait on ordinary writes.
READER_BUSY_TIMEOUT_MS = 5_000
#: Memory map and page cache of a read-only SQLite connection (bytes, KiB).
READER_MMAP_BYTES = 512 * 2**20
READER_CACHE_KIB = 64 * 1024
#: Attempts of one transaction when the database reports a transient conflict.
MAX_ATTEMPTS = 12

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock not available.
_PG_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


def make_engine(url: URL) -> Engine:
    """An engine for a validated URL (see :func:`nas.store.url.parse_storage_url`)."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        # No pool_pre_ping: a connection the server dropped fails its first statement as
        # "invalidated" (SQLAlchemy then drops the whole pool), which run_transaction retries.
        engine = create_engine(url, connect_args=_pg_connect_args(url), pool_size=4, max_overflow=8)
    _ENGINES.add(engine)
    return engine


def make_readonly_engine(url: URL) -> Engine:
    """An engine that cannot write, for a validated URL whose SQLite file (if any) exists."""
    if url.get_backend_name() == "sqlite":
        uri = Path(url.database or "").as_uri() + "?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                uri, uri=True, timeout=READER_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )

        # The URL names the file, so SQLAlchemy pools it as a file (QueuePool)
        # and masks/prints it; ``creator`` makes the actual read-only connection.
        engine = create_engine(url, creator=connect)
        event.listen(engine, "connect", _sqlite_readonly_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        engine = create_engine(url, connect_args=_pg_connect_args(url), pool_size=2, max_overflow=4)
        event.listen(engine, "connect", _pg_readonly_on_connect)
    _ENGINES.add(engine)  # disposed in forked children like every store engine
    return engine


def _pg_connect_args(url: URL) -> dict[str, Any]:
    # A server that does not answer is reported after a bounded wait, unless the URL says otherwise.
    return {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}


def _sqlite_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module (see module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is safe in WAL mode: a killed process loses nothing committed;
        # only a power cut may lose the last few commits (never consistency).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("nas_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_readonly_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Transactions are started explicitly (``BEGIN`` above) so that one read sees one snapshot.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = 1")
        cursor.execute(f"PRAGMA busy_timeout = {READER_BUSY_TIMEOUT_MS}")
        # Dashboard reads jump around a large file: map it and keep a bigger page cache.
        cursor.execute(f"PRAGMA mmap_size = {READER_MMAP_BYTES}")
        cursor.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        cursor.close()
    if str(mode).lower() != "wal":
        log.warning(
            "the SQLite store is in %s journal mode, not WAL: reads may delay writers; any write "
            "through the platform switches it to WAL",
            mode,
        )


def _pg_readonly_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    finally:
        cursor.close()
    dbapi_connection.commit()


def _is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_RETRY_STATES:
        return True
    message = str(orig).lower()
    return "database is locked" in message or "database is busy" in message


def describe(exc: BaseException) -> str:
    """A one-line description of a driver error, without SQL, parameters or secrets."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


def run_transaction(
    engine: Engine,
    fn: Callable[[Connection], T],
    *,
    write: bool,
    what: str,
    on_integrity_error: Callable[[IntegrityError], NASError] | None = None,
    rng: np.random.Generator | None = None,
    applied: Callable[[Connection], T | None] | None = None,
) -> T:
    """Run ``fn(connection)`` in one transaction, retrying transient conflicts and outages.

    ``fn`` may be called several times, so it must not have side effects
    outside the database. Platform errors raised by ``fn`` roll the
    transaction back and propagate unchanged; driver errors become
    :class:`StorageError` (or what ``on_integrity_error`` maps an integrity
    violation to; :class:`~nas.store.errors.DatabaseUnavailableError` once an
    outage outlasts its window).

    ``applied``: for a write that must not apply twice. If the connection was
    lost while committing, nobody knows whether the commit happened; the next
    attempt first calls ``applied(connection)``, which returns the earlier
    attempt's result if it finds its effect in the database (``None``: it did
    not apply, ``fn`` runs again).
    """
    rng = rng if rng is not None else np.random.default_rng()
    outage = outage_of(engine)
    delay, outage_delay, conflicts = 0.005, FIRST_DELAY_S, 0
    unsure = False  # a commit was sent and its outcome is unknown
    while True:
        committing = False
        try:
            with engine.connect() as connection:
                if write:
                    connection = connection.execution_options(nas_write=True)
                elif engine.dialect.name == "postgresql":
                    connection = connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    found = applied(connection) if unsure and applied is not None else None
                    result = found if found is not None else fn(connection)
                    committing = True
            outage.ended()
            return result
        except IntegrityError as exc:
            if on_integrity_error is not None:
                raise on_integrity_error(exc) from exc
            raise StorageError(
                f"{what} violated a constraint on {mask_url(engine.url)}: {describe(exc)}"
            ) from exc
        except DBAPIError as exc:
            if outage.reached and is_connection_loss(exc, engine.dialect.name):
                unsure = unsure or (write and committing)
                pause = outage.failed(what, describe(exc), outage_delay)  # raises once the window is spent
                time.sleep(pause)
                outage_delay = next_delay(outage_delay)
                continue
            conflicts += 1
            if conflicts < MAX_ATTEMPTS and _is_transient(exc):
                log.debug("%s: transient conflict (%s), retry %d", what, describe(exc), conflicts)
                time.sleep(delay * (1.0 + float(rng.random())))
                delay = min(delay * 2, 1.0)
                continue
            raise StorageError(f"{what} failed on {mask_url(engine.url)}: {describe(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"{what} failed on {mask_url(engine.url)}: {describe(exc)}") from exc
