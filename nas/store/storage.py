"""The read-write trial store: one SQLAlchemy implementation for SQLite and PostgreSQL.

Modelled on Optuna's ``RDBStorage``: the storage speaks in study ids, trial
numbers and kernel :class:`~nas.core.Trial` snapshots and knows nothing of
search spaces (the Study facade, :mod:`nas.store.study`, samples and
computes canonical keys and hands them in). :class:`RDBStorage` composes the
store's roles on one read-write engine: :class:`~nas.store.reads.Reads` and
:class:`~nas.store.writes.Writes` (whose module states the concurrency
rules) and the driver lease, :class:`~nas.store.lease.Leases`. The dashboard's read-only store composes the same reads with the
browse queries instead (:mod:`nas.store.readonly`).
"""

from __future__ import annotations

from nas.core.errors import StorageError
from nas.store import migrate
from nas.store.database import Database
from nas.store.engine import make_engine
from nas.store.facade import StoreFacade, forward
from nas.store.lease import Leases
from nas.store.url import parse_storage_url, resolve_storage_url, with_absolute_file
from nas.store.writes import Writes


class RDBStorage(StoreFacade):
    """A trial store in a SQL database, addressed by URL (``sqlite:///...`` or ``postgresql+psycopg://...``).

    ``create``: if false, a SQLite file that does not exist is an error rather
    than a new empty store (readers such as ``nas studies`` use this, so a
    typo in a path is reported instead of creating a stray file).
    ``check_schema``: if false, skip the schema-version check (only the
    migration commands need that).
    """

    def __init__(self, url: str | None = None, *, create: bool = True, check_schema: bool = True) -> None:
        parsed, path = with_absolute_file(parse_storage_url(resolve_storage_url(url)))
        if path is not None and not create and not path.exists():
            raise StorageError(
                f"there is no SQLite store at {path}; create a study there first or run "
                f"`nas db upgrade --storage sqlite:///{path}`"
            )
        super().__init__(Database(make_engine(parsed)))
        self.writes = Writes(self.database)
        self.leases = Leases(self.database)
        if check_schema:
            try:
                migrate.ensure_schema(self.database.engine)
            except BaseException:
                self.database.close()
                raise

    upgrade = forward("writes", Writes.upgrade)
    create_study = forward("writes", Writes.create_study)
    describe_study = forward("writes", Writes.describe_study)
    set_study_status = forward("writes", Writes.set_study_status)
    delete_study = forward("writes", Writes.delete_study)
    ask = forward("writes", Writes.ask)
    enqueue = forward("writes", Writes.enqueue)
    tell = forward("writes", Writes.tell)
    report = forward("writes", Writes.report)
    heartbeat = forward("writes", Writes.heartbeat)
    set_trial_user_attr = forward("writes", Writes.set_trial_user_attr)
    set_trial_system_attr = forward("writes", Writes.set_trial_system_attr)
    fail_stale_trials = forward("writes", Writes.fail_stale_trials)
    add_trials = forward("writes", Writes.add_trials)
    add_artifact = forward("writes", Writes.add_artifact)
    acquire_lease = forward("leases", Leases.acquire_lease)
    renew_lease = forward("leases", Leases.renew_lease)
    release_lease = forward("leases", Leases.release_lease)
    lease_holder = forward("leases", Leases.lease_holder)
