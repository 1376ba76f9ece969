"""Schema versions, driven through Alembic's Python API (no ``alembic.ini``).

The migration scripts ship inside the package (``migrations/versions``). A
brand-new empty database is brought to the head revision on first open; a
database at an older revision refuses to open with a message naming the
exact ``nas db upgrade`` command, because silently migrating a shared
production database under a running search is not something a library should
do behind the user's back (Optuna makes the same choice).

Upgrades run in one transaction under a lock (an advisory lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two processes opening a new
database at once cannot both create the schema.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from nas.core.errors import StorageError
from nas.store.engine import run_transaction
from nas.store.errors import SchemaOutOfDateError
from nas.store.url import mask_url

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
#: Key of the PostgreSQL advisory lock held while migrating ("nasstore" in ASCII).
_PG_LOCK_KEY = 0x6E617373746F7265


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (and ``connection``, if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this version of the platform expects."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StorageError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def revisions() -> list[str]:
    """Every known revision, oldest first."""
    return [s.revision for s in reversed(list(_script().walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    """The revision stamped in the database (``None`` if it has none)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_command(engine: Engine) -> str:
    return f"nas db upgrade --storage '{mask_url(engine.url)}'"


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to ``revision``; return (revision before, revision after)."""
    known = set(revisions()) | {"head"}
    if revision not in known:
        raise StorageError(f"unknown schema revision {revision!r}; known: {sorted(known)}")

    def migrate(connection: Connection) -> tuple[str | None, str | None]:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = current_revision(connection)
        _check_known(before, engine)
        command.upgrade(alembic_config(connection), revision)
        return before, current_revision(connection)

    before, after = run_transaction(engine, migrate, write=True, what="schema upgrade")
    if before != after:
        log.info("upgraded %s from %s to %s", mask_url(engine.url), before, after)
    return before, after


def _check_known(revision: str | None, engine: Engine) -> None:
    if revision is not None and revision not in revisions():
        raise SchemaOutOfDateError(
            f"the store at {mask_url(engine.url)} has schema revision {revision!r}, written by a newer "
            f"version of the platform (this one knows up to {head_revision()!r}); upgrade nas-platform"
        )


def ensure_schema(engine: Engine) -> None:
    """Open-time check: create the schema in an empty database, refuse an old one."""

    def inspect_db(connection: Connection) -> tuple[str | None, bool]:
        revision = current_revision(connection)
        others = [t for t in inspect(connection).get_table_names() if t != VERSION_TABLE]
        return revision, bool(others)

    revision, has_tables = run_transaction(engine, inspect_db, write=False, what="opening the store")
    head = head_revision()
    if revision == head:
        return
    _check_known(revision, engine)
    if revision is None:
        if has_tables:
            raise StorageError(
                f"the database at {mask_url(engine.url)} has tables but no nas schema version; "
                "point the platform at an empty database or one created by `nas db upgrade`"
            )
        upgrade(engine)
        return
    require_head(revision, engine)


def require_head(revision: str, engine: Engine) -> None:
    """Refuse a store at another revision than the head, naming the upgrade (or the newer platform) it needs."""
    _check_known(revision, engine)
    head = head_revision()
    if revision != head:
        raise SchemaOutOfDateError(
            f"the store at {mask_url(engine.url)} has schema revision {revision!r} but this version of the "
            f"platform needs {head!r}; back it up and run `{upgrade_command(engine)}`"
        )
