"""The part every role of the store shares: one engine, read transactions, study infos, trial rows.

:class:`Database` wraps an engine (read-write or read-only, see
:mod:`nas.store.engine`) with what the roles built on it need in common:
read transactions, the cache of study descriptions (a study's name, space
and objectives never change, so a cached copy is safe to validate against)
and the lookups of trial rows by number or id. It has no write path: writing
is the job of :class:`nas.store.writes.Writes`, which a read-only store
simply does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Integer, any_, bindparam, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from nas.core.errors import ConfigError
from nas.core.trial import Trial
from nas.store.engine import run_transaction
from nas.store.errors import StudyNotFoundError, TrialNotFoundError
from nas.store.records import StudyInfo
from nas.store.rows import info_from_row, trial_from_row
from nas.store.schema import studies, study_leases, trial_values, trials
from nas.store.url import mask_url

T = TypeVar("T")

#: Rows per statement when a query lists ids (keeps every backend's parameter limit happy).
CHUNK = 500

#: Study rows with their driver's heartbeat (the lease's, NULL without a driver): what
#: :func:`~nas.store.rows.info_from_row` needs to read a dead driver's study as ``stale``.
STUDY_ROWS = select(studies, study_leases.c.heartbeat_at).outerjoin(
    study_leases, study_leases.c.study_id == studies.c.id
)

TRIAL = select(trials).where(trials.c.study_id == bindparam("sid"), trials.c.number == bindparam("num"))
TRIAL_LOCKED = TRIAL.with_for_update()


class Database:
    """An engine plus the study-info cache and trial-row lookups shared by reads, writes and browse."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rng = np.random.default_rng()
        self._infos: dict[int, StudyInfo] = {}

    @property
    def url(self) -> str:
        """The storage URL with its password masked (safe to print)."""
        return mask_url(self.engine.url)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Close pooled connections (the database can still be used; it reconnects)."""
        self.engine.dispose()

    def read(self, fn: Callable[[Connection], T], what: str) -> T:
        """Run ``fn`` in one read transaction (one snapshot on PostgreSQL), retrying transient conflicts."""
        return run_transaction(self.engine, fn, write=False, what=what, rng=self.rng)

    # -- study infos ---------------------------------------------------------------------------
    def remember(self, row: Mapping[str, Any]) -> StudyInfo:
        """The study of ``row``, cached for later validation."""
        info = info_from_row(row)
        self._infos[info.study_id] = info
        return info

    def forget(self, study_id: int) -> None:
        self._infos.pop(study_id, None)

    def load_info(self, study_id: int) -> StudyInfo:
        """The study read afresh (its status may have changed); :class:`StudyNotFoundError` if gone."""
        found = self.read(
            lambda c: c.execute(STUDY_ROWS.where(studies.c.id == study_id)).first(),
            f"loading study #{study_id}",
        )
        if found is None:
            raise StudyNotFoundError(f"study #{study_id} no longer exists in {self.url}")
        return self.remember(found._mapping)

    def info(self, study_id: int) -> StudyInfo:
        """The study, from the cache if known (for validation: names and objectives never change)."""
        info = self._infos.get(study_id)
        return info if info is not None else self.load_info(study_id)

    def info_for(self, connection: Connection, study_id: int) -> StudyInfo:
        """:meth:`info` inside a running transaction."""
        info = self._infos.get(study_id)
        if info is None:
            row = connection.execute(STUDY_ROWS.where(studies.c.id == study_id)).one()
            info = self.remember(row._mapping)
        return info

    # -- trial rows ----------------------------------------------------------------------------
    def trial_row(
        self, connection: Connection, info: StudyInfo, number: int, *, lock: bool = False
    ) -> Row[Any]:
        """The row of trial ``number`` (locked for update if ``lock``); :class:`TrialNotFoundError` if none."""
        if isinstance(number, bool) or not isinstance(number, int):
            raise ConfigError(f"trial number {number!r} is not allowed; expected an integer")
        query = TRIAL_LOCKED if lock else TRIAL
        row = connection.execute(query, {"sid": info.study_id, "num": number}).first()
        if row is None:
            raise TrialNotFoundError(f"study {info.name!r} has no trial number {number}")
        return row

    def id_in(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        """``column IN ids``; on PostgreSQL one array parameter, so the statement (and its plan) never changes."""
        if self.backend == "postgresql":
            return column == any_(bindparam("ids", ids, type_=pg_dialect.ARRAY(Integer)))
        return column.in_(ids)

    def trials_by_ids(self, connection: Connection, info: StudyInfo, ids: Sequence[int]) -> list[Trial]:
        """Trials by id, in the order of ``ids``.

        Two queries, each filtering an indexed column directly: a join lets
        PostgreSQL pick a hash join over all of ``trial_values`` when its
        statistics are stale (77 ms instead of 0.2 ms at 100,000 trials).
        """
        rows: dict[int, Row[Any]] = {}
        values: list[Row[Any]] = []
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            for row in connection.execute(select(trials).where(self.id_in(trials.c.id, chunk))):
                rows[row.id] = row
            values += connection.execute(
                select(trial_values.c.trial_id, trial_values.c.objective, trial_values.c.value).where(
                    self.id_in(trial_values.c.trial_id, chunk)
                )
            ).all()
        return assemble([rows[i] for i in ids if i in rows], values, info)


def assemble(rows: Sequence[Row[Any]], values: Iterable[Row[Any]], info: StudyInfo) -> list[Trial]:
    """Trials from their rows and ``(trial id, objective, value)`` rows, values in objective order."""
    by_trial: dict[int, dict[str, float]] = {}
    for tid, objective, value in values:
        by_trial.setdefault(tid, {})[objective] = float(value)
    result = []
    for row in rows:
        found = by_trial.get(row.id)
        ordered = {n: found[n] for n in info.objectives if n in found} if found else None
        result.append(trial_from_row(row._mapping, info, ordered))
    return result
