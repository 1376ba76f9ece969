"""Read-only access to the trial store, and the aggregate queries the dashboard needs.

The dashboard watches searches that are writing at full speed, so it must
never slow them down or make them fail. This module guarantees that on the
database side rather than by convention:

* **SQLite** is opened through a ``file:...?mode=ro`` URI with ``PRAGMA
  query_only``, so the connection cannot write, create or migrate anything
  (a missing file is reported, never created). Stores are in WAL mode (the
  writer side sets it; see :mod:`nas.store.engine`), where a reader works on
  a snapshot and never takes a lock a writer waits for. Every read is one
  short transaction, so checkpoints are not held back either.
* **PostgreSQL** sessions are ``READ ONLY`` (``SET SESSION CHARACTERISTICS``
  on connect) and read at REPEATABLE READ, one snapshot per query.

:class:`ReadOnlyStorage` is an :class:`~nas.store.RDBStorage` on such an
engine: it keeps every read of the storage (pages, counts, curves, Pareto
sets, summaries) and refuses every write before it reaches the database. On
top it adds what a dashboard needs at 100,000 trials without loading trials
into Python: filtered and sorted pages with their total, counted in SQL
(:meth:`ReadOnlyStorage.query_trials`); objective bounds (index seeks); a
cheap change token to poll (:meth:`ReadOnlyStorage.study_token`); and, for
the progress and Pareto plots, the objective scores of all COMPLETE trials
read off the covering values index alone (:meth:`ReadOnlyStorage.score_table`,
incremental: a later read fetches only trials after the settled prefix).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import and_, bindparam, create_engine, event, func, select
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement

from nas.core.errors import ConfigError, NASError, StorageError
from nas.core.pareto import pareto_mask
from nas.core.trial import Direction, Trial, TrialState
from nas.store import migrate
from nas.store.engine import _ENGINES, PG_CONNECT_TIMEOUT_S
from nas.store.errors import SchemaOutOfDateError
from nas.store.records import StudyInfo, StudySummary
from nas.store.schema import studies, trial_values, trials
from nas.store.storage import _CHUNK, MAX_PAGE, RDBStorage
from nas.store.url import parse_storage_url, resolve_storage_url
from nas.store.validate import check_states

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Milliseconds a reader waits on the rare WAL events that make SQLite busy for readers
#: (recovery of a crashed writer's WAL index); readers never wait on ordinary writes.
READER_BUSY_TIMEOUT_MS = 5_000
#: Memory map and page cache of a reader connection (bytes, KiB).
READER_MMAP_BYTES = 512 * 2**20
READER_CACHE_KIB = 64 * 1024
#: Longest "genotype contains" term and the most terms one query may combine.
MAX_CONTAINS_CHARS = 200
MAX_CONTAINS_TERMS = 10
_UNFINISHED = (TrialState.WAITING.value, TrialState.RUNNING.value)
_TRIAL_ID = select(trials.c.id).where(
    trials.c.study_id == bindparam("sid"), trials.c.number == bindparam("num")
)
# Answered from the covering index (study_id, objective, score, trial_id) alone.
_SCORES = select(trial_values.c.trial_id, trial_values.c.score).where(
    trial_values.c.study_id == bindparam("sid"),
    trial_values.c.objective == bindparam("objective"),
    trial_values.c.trial_id > bindparam("after_id"),
)
# A tail: a range of the (study_id, number) index, then primary-key reads of the values.
_TAIL_SCORES = (
    select(trial_values.c.trial_id, trial_values.c.score)
    .select_from(trials.join(trial_values, trial_values.c.trial_id == trials.c.id))
    .where(
        trials.c.study_id == bindparam("sid"),
        trials.c.number > bindparam("after"),
        trial_values.c.objective == bindparam("objective"),
    )
)


class StoreMissingError(StorageError):
    """The SQLite file of the store does not exist (nothing has been searched there yet)."""


class ReadOnlyError(StorageError):
    """A write was attempted through a read-only storage."""


# -- engine --------------------------------------------------------------------------------
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
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        engine = create_engine(url, connect_args=connect_args, pool_size=2, max_overflow=4)
        event.listen(engine, "connect", _pg_readonly_on_connect)
    _ENGINES.add(engine)  # disposed in forked children like every store engine
    return engine


def _sqlite_readonly_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Transactions are started explicitly (``BEGIN`` below) so that one read sees one snapshot.
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


def _sqlite_on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _pg_readonly_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    finally:
        cursor.close()
    dbapi_connection.commit()


# -- records -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialQuery:
    """What the trials table shows: filters and order (paging is separate).

    ``ranges`` maps an objective to ``(low, high)`` (either may be ``None``);
    a range keeps only trials with a value inside it, i.e. COMPLETE ones.
    ``contains`` terms must all occur in the stored genotype JSON
    (case-insensitive), which finds architectures using an op. ``order_by``
    is ``"number"`` or an objective; ordering by an objective lists only
    trials with a value for it. ``descending`` refers to the shown column
    (trial number or objective value), whatever the objective's direction.
    """

    states: tuple[TrialState, ...] | None = None
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    contains: tuple[str, ...] = ()
    order_by: str = "number"
    descending: bool = True


@dataclass(frozen=True)
class TrialPage:
    """One page of a :class:`TrialQuery`: the trials and how many match in total."""

    trials: list[Trial]
    total: int
    offset: int


@dataclass(frozen=True)
class ScoreTable:
    """Objective scores of the COMPLETE trials numbered above ``after``: the raw material of the plots.

    ``ids``: trial ids, ascending (trial ids grow with trial numbers within
    a study, so this is trial order); ``scores``: one row per trial, one
    column per objective, signed so that smaller is better (``values()``
    signs them back). Only trials with a value for every objective are in.
    ``settled``: the highest number up to which no trial is WAITING or
    RUNNING any more, so nothing up to it can change; ``settled_id`` is its
    trial id (0 if none). A later read ``after=settled`` gets only the new
    tail, which :meth:`extend` joins on.
    """

    objectives: tuple[str, ...]
    directions: tuple[Direction, ...]
    ids: np.ndarray
    scores: np.ndarray
    after: int
    settled: int
    settled_id: int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def signs(self) -> np.ndarray:
        """Per objective: -1 for "max" (score = -value), +1 for "min"."""
        return np.array([-1.0 if d is Direction.MAX else 1.0 for d in self.directions])

    def values(self) -> np.ndarray:
        """The objective values (``scores`` signed back; + 0.0 turns -0.0 into 0.0)."""
        return self.scores * self.signs + 0.0

    def pareto_mask(self) -> np.ndarray:
        """Which rows no other row beats on every objective (ties stay in), as :func:`nas.core.pareto.pareto_mask`."""
        return pareto_mask(self.scores, [Direction.MIN] * len(self.objectives))

    def extend(self, tail: ScoreTable) -> ScoreTable:
        """This table's settled part followed by ``tail`` (read with ``after=self.settled``)."""
        if tail.after != self.settled or tail.objectives != self.objectives:
            raise ConfigError(
                f"cannot extend a score table settled at {self.settled} ({list(self.objectives)}) with one "
                f"read after {tail.after} ({list(tail.objectives)})"
            )
        keep = self.ids <= self.settled_id
        return ScoreTable(
            self.objectives,
            self.directions,
            np.concatenate([self.ids[keep], tail.ids]),
            np.concatenate([self.scores[keep], tail.scores]),
            self.after,
            tail.settled,
            tail.settled_id,
        )


def improvements(scores: np.ndarray) -> np.ndarray:
    """Positions where a score beats every earlier one (strictly): the incumbent's steps."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.minimum.accumulate(np.concatenate([[np.inf], scores[:-1]]))
    return np.flatnonzero(scores < before)


@dataclass(frozen=True)
class TrialLabel:
    """A trial's number and stored genotype JSON (for plot points and their hover text)."""

    number: int
    genotype: str


# -- storage -------------------------------------------------------------------------------
class ReadOnlyStorage(RDBStorage):
    """An :class:`RDBStorage` that only reads, on a read-only engine (see the module docstring).

    Opening never creates or migrates anything: a missing SQLite file raises
    :class:`StoreMissingError`, a database at an old schema revision raises
    :class:`~nas.store.SchemaOutOfDateError` with the upgrade command, and
    an empty database is open but has no studies (``has_schema`` is false).
    Every write method raises :class:`ReadOnlyError`.
    """

    def __init__(self, url: str | None = None) -> None:
        parsed = parse_storage_url(resolve_storage_url(url))
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "").expanduser().resolve()
            if not path.is_file():
                raise StoreMissingError(
                    f"there is no store at {path} yet; run a search first (`nas search CONFIG`) "
                    "or point --storage / $NAS_STORAGE at an existing store"
                )
            parsed = parsed.set(database=str(path))
        # The parent sets up everything the read methods use, without touching the database
        # (no schema check, engines connect lazily); its read-write engine is then replaced
        # before it ever connects.
        super().__init__(parsed.render_as_string(hide_password=False), create=False, check_schema=False)
        self._engine.dispose()
        self._engine = make_readonly_engine(parsed)
        self.has_schema = False
        try:
            self.check_schema()
        except BaseException:
            self._engine.dispose()
            raise

    def check_schema(self) -> bool:
        """Re-read the schema revision (an empty store gets one when a search starts); sets ``has_schema``."""

        def inspect_db(connection: Connection) -> str | None:
            return migrate.current_revision(connection)

        revision = self._read(inspect_db, "opening the store read-only")
        if revision is None:
            self.has_schema = False
            return False
        if revision != migrate.head_revision():
            if revision not in migrate.revisions():
                raise SchemaOutOfDateError(
                    f"the store at {self.url} has schema revision {revision!r}, written by a newer "
                    "version of the platform; upgrade nas-platform to read it"
                )
            raise SchemaOutOfDateError(
                f"the store at {self.url} has schema revision {revision!r} but this version needs "
                f"{migrate.head_revision()!r}; back it up and run `{migrate.upgrade_command(self._engine)}`"
            )
        self.has_schema = True
        return True

    # -- writes are refused --------------------------------------------------------------
    def _write(
        self,
        fn: Callable[[Connection], T],
        what: str,
        on_integrity_error: Callable[[IntegrityError], NASError] | None = None,
    ) -> T:
        raise ReadOnlyError(f"{what} is not possible: {self.url} is open read-only")

    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        raise ReadOnlyError(f"cannot migrate {self.url}: it is open read-only")

    # -- listing ---------------------------------------------------------------------------
    def list_studies(self) -> list[StudyInfo]:
        return super().list_studies() if self.has_schema else []

    def summarize_studies(self) -> list[StudySummary]:
        return super().summarize_studies() if self.has_schema else []

    def study_token(self, study_id: int) -> tuple[str, int, int, int]:
        """A cheap value that changes whenever the study's trials or status change.

        ``(status, next trial number, RUNNING count, WAITING count)``: every
        ask or enqueue raises the counter, every tell lowers the unfinished
        count (which only the counter's events raise again) and every claim of
        a queued trial moves one from WAITING to RUNNING. It is read from the
        study row and the short WAITING/RUNNING ranges of the ``(study_id,
        state, number)`` index, so polling it costs the same at any study
        size; caches of heavier queries are keyed by it.
        """
        info = self._info(study_id)

        def load(connection: Connection) -> tuple[str, int, int, int]:
            head = connection.execute(
                select(studies.c.status, studies.c.next_trial_number).where(studies.c.id == study_id)
            ).first()
            if head is None:
                raise StorageError(f"study {info.name!r} no longer exists in {self.url}")
            open_counts = dict(
                connection.execute(
                    select(trials.c.state, func.count())
                    .where(trials.c.study_id == study_id, trials.c.state.in_(_UNFINISHED))
                    .group_by(trials.c.state)
                ).all()
            )
            return (
                str(head[0]),
                int(head[1]),
                int(open_counts.get(TrialState.RUNNING.value, 0)),
                int(open_counts.get(TrialState.WAITING.value, 0)),
            )

        return self._read(load, f"polling study {info.name!r}")

    # -- the trials table --------------------------------------------------------------------
    def query_trials(
        self, study_id: int, query: TrialQuery, *, offset: int = 0, limit: int = 50
    ) -> TrialPage:
        """A page of the trials matching ``query`` and the number of matches, in one snapshot."""
        info = self._info(study_id)
        _check_int("offset", offset, 0, 2**62)
        _check_int("limit", limit, 1, MAX_PAGE)
        wanted = check_states(query.states)
        terms = _check_terms(query.contains)
        ranges = _check_ranges(query.ranges, info)
        if query.order_by != "number" and query.order_by not in info.objectives:
            raise ConfigError(
                f"cannot order trials of study {info.name!r} by {query.order_by!r}; "
                f"allowed: 'number', {', '.join(map(repr, info.objectives))}"
            )
        if not isinstance(query.descending, bool):
            raise ConfigError(f"descending={query.descending!r} is not allowed; expected True or False")

        # Objectives filtered or sorted on: one join of trial_values each. Range bounds are put on
        # the indexed score (the value signed so that smaller is better), so that the values
        # index answers them; for a "max" objective, value >= low is score <= -low.
        used = dict.fromkeys([*ranges, *([query.order_by] if query.order_by in info.objectives else [])])
        aliases = {objective: trial_values.alias(f"v_{i}") for i, objective in enumerate(used)}
        value_conditions: list[ColumnElement[bool]] = []
        for objective, (low, high) in ranges.items():
            score = aliases[objective].c.score
            if info.objectives[objective] is Direction.MAX:
                low, high = (None if high is None else -high), (None if low is None else -low)
            if low is not None:
                value_conditions.append(score >= low)
            if high is not None:
                value_conditions.append(score <= high)
        trial_conditions: list[ColumnElement[bool]] = []
        if wanted is not None:
            trial_conditions.append(trials.c.state.in_([s.value for s in wanted]))
        # SQLite's LIKE ignores ASCII case by itself (lower() on every row would double the
        # scan); PostgreSQL's LIKE does not, so it compares lower-cased text.
        contains = "contains" if self.backend == "sqlite" else "icontains"
        trial_conditions += [getattr(trials.c.genotype, contains)(term, autoescape=True) for term in terms]

        # FROM: the values aliases (the first one filtered by study, the others joined to it by
        # trial id) joined to trials; or trials alone when no objective is involved.
        values_only: Any = None
        first: Any = None
        for objective, alias in aliases.items():
            on = alias.c.objective == objective
            if first is None:
                values_only, first = alias, alias
                value_conditions.insert(0, and_(alias.c.study_id == study_id, on))
            else:
                values_only = values_only.join(alias, and_(alias.c.trial_id == first.c.trial_id, on))
        if first is None:
            joined: Any = trials
            conditions = [trials.c.study_id == study_id, *trial_conditions]
        else:
            joined = values_only.join(trials, trials.c.id == first.c.trial_id)
            conditions = [*value_conditions, *trial_conditions]

        if query.order_by in aliases:
            # The values index (study_id, objective, score, trial_id) answers the study filter
            # and the order together, so a page is read off the index, best first or last.
            sort = aliases[query.order_by]
            maximise = info.objectives[query.order_by] is Direction.MAX
            score_ascending = query.descending == maximise
            score, tid = sort.c.score, sort.c.trial_id
            order = [score.asc(), tid.asc()] if score_ascending else [score.desc(), tid.desc()]
        else:
            number = trials.c.number
            order = [number.desc() if query.descending else number.asc()]
        page_query = select(trials.c.id).select_from(joined).where(*conditions).order_by(*order)
        page_query = page_query.offset(offset).limit(limit)
        plain = not aliases and not trial_conditions
        if values_only is not None and not trial_conditions:
            # Nothing to check on the trial rows: count index entries only.
            count_query = select(func.count()).select_from(values_only).where(*value_conditions)
        else:
            count_query = select(func.count()).select_from(joined).where(*conditions)

        def load(connection: Connection) -> TrialPage:
            ids = list(connection.execute(page_query).scalars())
            if plain:
                # Numbers are dense: the total is the counter, no scan needed.
                total = connection.execute(
                    select(studies.c.next_trial_number).where(studies.c.id == study_id)
                ).scalar_one()
            elif not ids and offset == 0:
                total = 0
            else:
                total = connection.execute(count_query).scalar_one()
            return TrialPage(self._trials_by_ids(connection, info, ids), int(total), offset)

        return self._read(load, f"querying trials of study {info.name!r}")

    def trials_by_numbers(self, study_id: int, numbers: Iterable[int]) -> list[Trial]:
        """The trials with these numbers, in the given order (missing numbers are left out)."""
        info = self._info(study_id)
        wanted = [_check_int("trial number", n, 0, 2**31 - 1) for n in numbers]

        def load(connection: Connection) -> list[Trial]:
            found = dict(
                connection.execute(
                    select(trials.c.number, trials.c.id).where(
                        trials.c.study_id == study_id, trials.c.number.in_(wanted)
                    )
                ).all()
            )
            return self._trials_by_ids(connection, info, [found[n] for n in wanted if n in found])

        return self._read(load, f"loading trials {wanted} of study {info.name!r}")

    def objective_bounds(self, study_id: int) -> dict[str, tuple[float, float] | None]:
        """Smallest and largest value of each objective (``None`` before any COMPLETE trial).

        Two index seeks per objective (min and max of the score), whatever the study size.
        """
        info = self._info(study_id)

        def load(connection: Connection) -> dict[str, tuple[float, float] | None]:
            result: dict[str, tuple[float, float] | None] = {}
            for objective, direction in info.objectives.items():
                # Separate statements: SQLite seeks the index for a lone min() or max() only.
                where = (trial_values.c.study_id == study_id, trial_values.c.objective == objective)
                low = connection.execute(select(func.min(trial_values.c.score)).where(*where)).scalar()
                high = connection.execute(select(func.max(trial_values.c.score)).where(*where)).scalar()
                if low is None:
                    result[objective] = None
                elif direction is Direction.MAX:
                    result[objective] = (0.0 - float(high), 0.0 - float(low))  # no -0.0
                else:
                    result[objective] = (float(low), float(high))
            return result

        return self._read(load, f"reading objective bounds of study {info.name!r}")

    # -- plots -------------------------------------------------------------------------------
    def score_table(self, study_id: int, objectives: Sequence[str], *, after: int = -1) -> ScoreTable:
        """Scores of the COMPLETE trials numbered above ``after``, read off the covering values index.

        One index-only scan per objective (``(study_id, objective, score,
        trial_id)``): no trial row is touched, whatever the study size, and a
        later call with ``after=table.settled`` reads only what is new. This
        relies on trial ids growing with trial numbers within a study, which
        the storage guarantees (both are assigned in the transaction that
        holds the study's number counter).
        """
        info = self._info(study_id)
        names = tuple(dict.fromkeys(objectives))
        if not names:
            raise ConfigError(
                f"a score table needs objectives; allowed: {', '.join(map(repr, info.objectives))}"
            )
        directions = tuple(_objective(info, name) for name in names)
        after = _check_int("after", after, -1, 2**31 - 1)
        unfinished = select(func.min(trials.c.number)).where(
            trials.c.study_id == study_id, trials.c.state.in_(_UNFINISHED)
        )
        top = select(studies.c.next_trial_number).where(studies.c.id == study_id)

        def load(connection: Connection) -> ScoreTable:
            first_open = connection.execute(unfinished).scalar_one_or_none()
            settled = (connection.execute(top).scalar_one() if first_open is None else first_open) - 1
            settled = max(int(settled), after)
            after_id, settled_id = (
                _trial_id(connection, study_id, after),
                _trial_id(connection, study_id, settled),
            )
            read = [_sorted_scores(connection, study_id, name, after, after_id) for name in names]
            ids, columns = read[0][0], [read[0][1]]
            for these, scores in read[1:]:
                ids, mine, theirs = np.intersect1d(ids, these, assume_unique=True, return_indices=True)
                columns = [c[mine] for c in columns] + [scores[theirs]]
            return ScoreTable(names, directions, ids, np.column_stack(columns), after, settled, settled_id)

        return self._read(load, f"reading objective scores of study {info.name!r}")

    def sampled_trials(self, study_id: int, stride: int) -> list[tuple[int, int]]:
        """``(number, trial id)`` of every trial whose number is a multiple of ``stride``.

        Read off the ``(study_id, number)`` index (on SQLite it also holds the
        id, so no trial row is touched): how a plot picks its thinned points
        without looking up thousands of trials.
        """
        info = self._info(study_id)
        stride = _check_int("stride", stride, 1, 2**31 - 1)
        query = select(trials.c.number, trials.c.id).where(trials.c.study_id == study_id)
        if stride > 1:
            query = query.where(trials.c.number % stride == 0)
        return self._read(
            lambda c: [(int(n), int(i)) for n, i in c.execute(query.order_by(trials.c.number))],
            f"sampling trials of study {info.name!r}",
        )

    def labels(self, study_id: int, ids: Iterable[int]) -> dict[int, TrialLabel]:
        """Number and genotype of trials by id (primary-key reads, in chunks)."""
        info = self._info(study_id)
        wanted = sorted({int(i) for i in ids})

        def load(connection: Connection) -> dict[int, TrialLabel]:
            found: dict[int, TrialLabel] = {}
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(trials.c.id, trials.c.number, trials.c.genotype).where(
                    trials.c.study_id == study_id, self._id_in(trials.c.id, chunk)
                )
                for tid, number, genotype in connection.execute(query):
                    found[int(tid)] = TrialLabel(int(number), str(genotype))
            return found

        return self._read(load, f"reading trial labels of study {info.name!r}")


def _sorted_scores(
    connection: Connection, study_id: int, objective: str, after: int, after_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """(trial ids ascending, their scores) of one objective, for trials numbered above ``after``.

    From the start (``after == -1``) this is an index-only scan of the values
    index, fetched through the raw DB-API cursor (100,000 rows as plain
    tuples); a tail is a range of the trials' ``(study_id, number)`` index.
    """
    if after < 0:
        rows = _raw_rows(connection, _SCORES, {"sid": study_id, "objective": objective, "after_id": after_id})
    else:
        rows = connection.execute(
            _TAIL_SCORES, {"sid": study_id, "objective": objective, "after": after}
        ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    scores = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    order = np.argsort(ids, kind="stable")
    return ids[order], scores[order]


def _raw_rows(connection: Connection, statement: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of a large read as plain DB-API tuples (SQLAlchemy rows cost more than the query here)."""
    compiled = statement.compile(dialect=connection.dialect)
    values = compiled.construct_params(params)
    if compiled.positiontup is not None:  # qmark / numeric paramstyles (SQLite)
        bound: Any = tuple(values[name] for name in compiled.positiontup)
    else:  # named / pyformat paramstyles (psycopg)
        bound = values
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), bound)
        return cursor.fetchall()
    finally:
        cursor.close()


def _trial_id(connection: Connection, study_id: int, number: int) -> int:
    """The id of trial ``number`` (0 for -1: before every trial)."""
    if number < 0:
        return 0
    return int(connection.execute(_TRIAL_ID, {"sid": study_id, "num": number}).scalar_one())


# -- validation helpers ----------------------------------------------------------------------
def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= int(value) <= high:
        raise ConfigError(f"{name}={value!r} is not allowed; expected an integer in [{low}, {high}]")
    return int(value)


def _objective(info: StudyInfo, name: str) -> Direction:
    try:
        return info.objectives[name]
    except KeyError:
        raise ConfigError(
            f"study {info.name!r} has no objective {name!r}; allowed: {', '.join(map(repr, info.objectives))}"
        ) from None


def _check_terms(terms: object) -> list[str]:
    if isinstance(terms, str):
        terms = (terms,)
    if not isinstance(terms, Iterable):
        raise ConfigError(f"contains={terms!r} is not allowed; expected a sequence of strings")
    result = []
    for term in terms:
        if not isinstance(term, str) or len(term) > MAX_CONTAINS_CHARS:
            raise ConfigError(
                f"genotype filter {term!r} is not allowed; expected a string of at most {MAX_CONTAINS_CHARS} characters"
            )
        if term.strip():
            result.append(term.strip())
    if len(result) > MAX_CONTAINS_TERMS:
        raise ConfigError(f"{len(result)} genotype filters given; at most {MAX_CONTAINS_TERMS} are allowed")
    return result


def _check_ranges(
    ranges: Mapping[str, tuple[float | None, float | None]], info: StudyInfo
) -> dict[str, tuple[float | None, float | None]]:
    if not isinstance(ranges, Mapping):
        raise ConfigError(f"ranges={ranges!r} is not allowed; expected a mapping objective -> (low, high)")
    result = {}
    for objective, bounds in ranges.items():
        _objective(info, objective)
        if not isinstance(bounds, tuple | list) or len(bounds) != 2:
            raise ConfigError(f"range of {objective!r} is {bounds!r}; expected (low, high), None for open")
        checked = []
        for bound in bounds:
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound)
            ):
                raise ConfigError(
                    f"range of {objective!r} has bound {bound!r}; expected a finite number or None"
                )
            checked.append(None if bound is None else float(bound))
        if checked[0] is not None and checked[1] is not None and checked[0] > checked[1]:
            raise ConfigError(f"range of {objective!r} is empty: low {checked[0]} > high {checked[1]}")
        if checked != [None, None]:
            result[objective] = (checked[0], checked[1])
    return result


def open_readonly(url: str | None = None) -> ReadOnlyStorage:
    """Open the store at ``url`` (default: ``$NAS_STORAGE``, else ``sqlite:///nas.db``) for reading only."""
    return ReadOnlyStorage(url)


__all__ = [
    "ReadOnlyError",
    "ReadOnlyStorage",
    "ScoreTable",
    "StoreMissingError",
    "TrialLabel",
    "TrialPage",
    "TrialQuery",
    "improvements",
    "make_readonly_engine",
    "open_readonly",
]
