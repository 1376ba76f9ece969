"""A PostgreSQL server a test owns: stop it mid-search, start it again, throw it away.

The machine's own server (``NAS_TEST_POSTGRES_URL``, port 5432) is shared by
every test and must never go down; a test of what the platform does when the
database goes away runs its own: ``initdb`` into a temporary directory owned
by the ``postgres`` user (the server refuses to run as root), trust
authentication, a free TCP port on 127.0.0.1 and its Unix socket in that
directory too, so nothing it does touches the system cluster.

``initdb`` and ``pg_ctl`` live in ``/usr/lib/postgresql/<version>/bin``, not on
``PATH``; :func:`require_tool` finds them there (a skip locally, a failure in CI).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_tool
from sqlalchemy import create_engine, text

#: Where Debian/Ubuntu install the server binaries (newest version last).
PG_BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """One throw-away PostgreSQL cluster: :meth:`start`, :meth:`stop`, :meth:`url`, :meth:`destroy`."""

    def __init__(self) -> None:
        path = os.pathsep.join(reversed(PG_BIN_DIRS)) or None
        why = "the database-outage tests run a private PostgreSQL server"
        self.initdb = require_tool("initdb", why, path=path)
        self.pg_ctl = require_tool("pg_ctl", why, path=path)
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            self.as_postgres = [require_tool("runuser", why), "-u", PG_USER, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="nas-private-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if self.as_postgres:
            shutil.chown(self.root, user=PG_USER)
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", PG_USER, "--no-sync", "-E", "UTF8")

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self.as_postgres, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (same port every time)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        log = self.root / "server.log"
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once (``-m fast``: open connections are terminated, as in a crash or failover)."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        status = subprocess.run(
            [*self.as_postgres, self.pg_ctl, "-D", str(self.data), "status"], capture_output=True
        )
        return status.returncode == 0

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://{PG_USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL (without password)."""
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres_server() -> Iterator[PrivatePostgres]:
    """One private server for a test module (``initdb`` takes seconds); removed afterwards."""
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_postgres(private_postgres_server: PrivatePostgres) -> PrivatePostgres:
    """The module's private server, running when the test starts (an earlier test may have stopped it)."""
    if not private_postgres_server.running():
        private_postgres_server.start()
    return private_postgres_server
