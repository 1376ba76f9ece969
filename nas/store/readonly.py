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
top it adds what a dashboard needs at 100,000 trials, each computed in SQL so
that no query loads every trial into Python: filtered and sorted pages with
their total (:meth:`ReadOnlyStorage.query_trials`), objective bounds for
range filters, the incumbent curve and a thinned trial cloud
(:meth:`ReadOnlyStorage.progress`, incremental with ``after``), thinned
objective points for scatter plots, a two-objective Pareto front, and a cheap
change token to poll (:meth:`ReadOnlyStorage.study_token`).
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
from sqlalchemy import and_, bindparam, create_engine, event, func, or_, select
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement

from nas.core.errors import ConfigError, NASError, StorageError
from nas.core.trial import Direction, Trial, TrialState
from nas.store import migrate
from nas.store.engine import _ENGINES, PG_CONNECT_TIMEOUT_S
from nas.store.errors import SchemaOutOfDateError
from nas.store.records import StudyInfo, StudyStatus, StudySummary
from nas.store.schema import studies, trial_values, trials
from nas.store.storage import MAX_PAGE, RDBStorage
from nas.store.url import mask_url, parse_storage_url, resolve_storage_url
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
#: Most points a thinned cloud (progress or scatter) returns.
MAX_CLOUD_POINTS = 100_000

_UNFINISHED = (TrialState.WAITING.value, TrialState.RUNNING.value)
_TRIAL_ID = select(trials.c.id).where(
    trials.c.study_id == bindparam("sid"), trials.c.number == bindparam("num")
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
class Progress:
    """The incumbent-vs-trials view of one objective, restricted to trials numbered above ``after``.

    ``incumbent``: ``(number, value)`` at each trial that improved on every
    earlier-numbered trial (within the range). ``cloud``: ``(number, value)``
    of every ``stride``-th COMPLETE trial (the 1st, the ``stride+1``-th, ...).
    ``settled``: the highest number up to which no trial is WAITING or
    RUNNING any more, so nothing up to it can change and a later read may
    start ``after`` it. ``count``: COMPLETE trials in the range;
    ``settled_count``: those of them numbered up to ``settled``.
    """

    objective: str
    direction: Direction
    after: int
    stride: int
    count: int
    incumbent: list[tuple[int, float]]
    cloud: list[tuple[int, float]]
    settled: int
    settled_count: int


@dataclass(frozen=True)
class ObjectivePoint:
    """One COMPLETE trial in objective space (for scatter plots with the architecture on hover)."""

    number: int
    genotype: str
    values: tuple[float, ...]


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

    def study_status(self, study_id: int) -> StudyStatus:
        return StudyStatus(self.study_token(study_id)[0])

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

        by_objective = query.order_by in info.objectives
        conditions: list[ColumnElement[bool]] = []
        if wanted is not None:
            conditions.append(trials.c.state.in_([s.value for s in wanted]))
        conditions += [trials.c.genotype.icontains(term, autoescape=True) for term in terms]
        joined = trials
        aliases = {}
        for objective in dict.fromkeys(
            [*ranges, *([query.order_by] if query.order_by in info.objectives else [])]
        ):
            alias = trial_values.alias(f"v_{len(aliases)}")
            aliases[objective] = alias
            joined = joined.join(alias, and_(alias.c.trial_id == trials.c.id, alias.c.objective == objective))
        for objective, (low, high) in ranges.items():
            if low is not None:
                conditions.append(aliases[objective].c.value >= low)
            if high is not None:
                conditions.append(aliases[objective].c.value <= high)

        if not by_objective:
            conditions.insert(0, trials.c.study_id == study_id)
            number = trials.c.number
            order = [number.desc() if query.descending else number.asc()]
        else:
            # The values index (study_id, objective, score, trial_id) answers the study filter
            # and the order together, so a page is read off the index, best first or last.
            sort = aliases[query.order_by]
            conditions.insert(0, sort.c.study_id == study_id)
            score, tid = sort.c.score, sort.c.trial_id
            maximise = info.objectives[query.order_by] is Direction.MAX
            score_ascending = query.descending == maximise
            order = [score.asc(), tid.asc()] if score_ascending else [score.desc(), tid.desc()]
        page_query = select(trials.c.id).select_from(joined).where(*conditions).order_by(*order)
        page_query = page_query.offset(offset).limit(limit)
        plain = wanted is None and not terms and not ranges and query.order_by == "number"
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
                low, high = connection.execute(
                    select(func.min(trial_values.c.score), func.max(trial_values.c.score)).where(
                        trial_values.c.study_id == study_id, trial_values.c.objective == objective
                    )
                ).one()
                if low is None:
                    result[objective] = None
                elif direction is Direction.MAX:
                    result[objective] = (0.0 - float(high), 0.0 - float(low))  # no -0.0
                else:
                    result[objective] = (float(low), float(high))
            return result

        return self._read(load, f"reading objective bounds of study {info.name!r}")

    # -- plots -------------------------------------------------------------------------------
    def progress(
        self, study_id: int, objective: str, *, after: int = -1, stride: int = 1, counted: int = 0
    ) -> Progress:
        """Incumbent steps and a thinned cloud of one objective for trials numbered above ``after``.

        The running best and the thinning are window functions over the
        covering index of ``trial_values`` (score and trial id: the value is
        the score signed back), so the scan touches no trial row; only the
        improving trials and every ``stride``-th COMPLETE one (by position,
        counting ``counted`` earlier ones) are looked up for their numbers.
        This relies on trial ids growing with trial numbers within a study,
        which the storage guarantees: both are assigned in the transaction
        that holds the study's number counter. Reading again with
        ``after=previous.settled`` fetches only the new tail, which
        :func:`merge_progress` joins to the earlier result.
        """
        info = self._info(study_id)
        direction = _objective(info, objective)
        after = _check_int("after", after, -1, 2**31 - 1)
        stride = _check_int("stride", stride, 1, 2**31 - 1)
        counted = _check_int("counted", counted, 0, 2**62)
        sign = -1.0 if direction is Direction.MAX else 1.0
        v = trial_values
        values = select(v.c.trial_id, v.c.score).where(
            v.c.study_id == study_id, v.c.objective == objective, v.c.trial_id > bindparam("after_id")
        )
        ranked = values.add_columns(
            func.row_number().over(order_by=v.c.trial_id).label("rn"),
            func.min(v.c.score).over(order_by=v.c.trial_id, rows=(None, -1)).label("before"),
        ).subquery()
        improving = or_(ranked.c.before.is_(None), ranked.c.score < ranked.c.before)
        in_cloud = (ranked.c.rn + (counted - 1)) % stride == 0
        picked = (
            select(trials.c.number, ranked.c.score, improving.label("improving"), in_cloud.label("in_cloud"))
            .select_from(ranked.join(trials, trials.c.id == ranked.c.trial_id))
            .where(or_(improving, in_cloud))
            .order_by(ranked.c.trial_id)
        )
        counts = values.subquery()
        counting = select(func.count(), func.count().filter(counts.c.trial_id <= bindparam("settled_id")))
        unfinished = select(func.min(trials.c.number)).where(
            trials.c.study_id == study_id, trials.c.state.in_(_UNFINISHED)
        )
        top = select(studies.c.next_trial_number).where(studies.c.id == study_id)

        def trial_id(connection: Connection, number: int) -> int:
            if number < 0:
                return 0
            return int(connection.execute(_TRIAL_ID, {"sid": study_id, "num": number}).scalar_one())

        def load(connection: Connection) -> Progress:
            first_open = connection.execute(unfinished).scalar_one_or_none()
            settled = (connection.execute(top).scalar_one() if first_open is None else first_open) - 1
            settled = max(int(settled), after)
            ids = {"after_id": trial_id(connection, after), "settled_id": trial_id(connection, settled)}
            count, settled_count = connection.execute(counting, ids).one()
            incumbent, cloud = [], []
            for number, score, better, thinned in connection.execute(picked, ids):
                point = (int(number), sign * float(score) + 0.0)  # + 0.0: no -0.0
                if better:
                    incumbent.append(point)
                if thinned:
                    cloud.append(point)
            return Progress(
                objective=objective,
                direction=direction,
                after=after,
                stride=stride,
                count=int(count),
                incumbent=incumbent,
                cloud=cloud,
                settled=settled,
                settled_count=int(settled_count or 0),
            )

        return self._read(load, f"reading the progress of study {info.name!r}")

    def objective_points(
        self, study_id: int, objectives: Sequence[str], *, stride: int = 1, numbers: Iterable[int] = ()
    ) -> list[ObjectivePoint]:
        """COMPLETE trials with their genotype and values of ``objectives``: every ``stride``-th one plus ``numbers``."""
        info = self._info(study_id)
        names = [*dict.fromkeys(objectives)]
        if not names:
            raise ConfigError("objective_points needs at least one objective")
        for name in names:
            _objective(info, name)
        stride = _check_int("stride", stride, 1, 2**31 - 1)
        extra = [_check_int("trial number", n, 0, 2**31 - 1) for n in numbers]
        joined = trials
        columns = []
        for i, name in enumerate(names):
            alias = trial_values.alias(f"p_{i}")
            joined = joined.join(alias, and_(alias.c.trial_id == trials.c.id, alias.c.objective == name))
            columns.append(alias.c.value)
        query = (
            select(trials.c.number, trials.c.genotype, *columns)
            .select_from(joined)
            .where(trials.c.study_id == study_id)
            .order_by(trials.c.number)
        )
        if stride > 1:
            picked = trials.c.number % stride == 0
            query = query.where(or_(picked, trials.c.number.in_(extra)) if extra else picked)

        def load(connection: Connection) -> list[ObjectivePoint]:
            return [
                ObjectivePoint(int(row[0]), str(row[1]), tuple(float(v) for v in row[2:]))
                for row in connection.execute(query)
            ]

        return self._read(load, f"reading objective values of study {info.name!r}")

    def pareto_numbers(self, study_id: int) -> list[int]:
        """Numbers of the non-dominated COMPLETE trials (all objectives), ascending.

        Two objectives, the common case, are answered in SQL: sorted by the
        first score and then the second, a point is non-dominated exactly when
        every strictly earlier point (``GROUPS`` frame, so exact duplicates
        stay together in the front) has a worse second score. Other counts
        use :meth:`RDBStorage.best_trials` (the Pareto mask in numpy).
        """
        info = self._info(study_id)
        names = list(info.objectives)
        if len(names) != 2:
            return sorted(t.number for t in self.best_trials(study_id))
        first, second = trial_values.alias("f"), trial_values.alias("s")
        points = (
            select(
                first.c.trial_id.label("trial_id"),
                first.c.score.label("s1"),
                second.c.score.label("s2"),
            )
            .select_from(
                first.join(
                    second, and_(second.c.trial_id == first.c.trial_id, second.c.objective == names[1])
                )
            )
            .where(first.c.study_id == study_id, first.c.objective == names[0])
            .subquery()
        )
        ranked = select(
            points.c.trial_id,
            points.c.s2,
            func.min(points.c.s2).over(order_by=[points.c.s1, points.c.s2], groups=(None, -1)).label("m"),
        ).subquery()
        query = (
            select(trials.c.number)
            .select_from(ranked.join(trials, trials.c.id == ranked.c.trial_id))
            .where(or_(ranked.c.m.is_(None), ranked.c.m > ranked.c.s2))
            .order_by(trials.c.number)
        )
        return self._read(
            lambda c: [int(n) for n in c.execute(query).scalars()],
            f"finding the Pareto front of study {info.name!r}",
        )


def merge_progress(earlier: Progress, later: Progress) -> Progress:
    """Join a progress read with the read of the trials after ``earlier.settled``.

    Everything of ``earlier`` up to its ``settled`` number is final (those
    trials are finished and finished trials never change), so it is kept and
    the rest replaced by ``later``, whose incumbent steps count only where
    they beat the best kept so far.
    """
    if (
        later.after != earlier.settled
        or later.stride != earlier.stride
        or later.objective != earlier.objective
    ):
        raise ConfigError(
            f"cannot merge a progress read after {later.after} (stride {later.stride}) into one settled "
            f"at {earlier.settled} (stride {earlier.stride})"
        )
    sign = -1.0 if earlier.direction is Direction.MAX else 1.0
    kept = [(n, v) for n, v in earlier.incumbent if n <= earlier.settled]
    best = sign * kept[-1][1] if kept else math.inf
    for n, v in later.incumbent:
        if sign * v < best:
            kept.append((n, v))
            best = sign * v
    return Progress(
        objective=earlier.objective,
        direction=earlier.direction,
        after=earlier.after,
        stride=earlier.stride,
        count=earlier.settled_count + later.count,
        incumbent=kept,
        cloud=[(n, v) for n, v in earlier.cloud if n <= earlier.settled] + later.cloud,
        settled=later.settled,
        settled_count=earlier.settled_count + later.settled_count,
    )


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
    "ObjectivePoint",
    "Progress",
    "ReadOnlyError",
    "ReadOnlyStorage",
    "StoreMissingError",
    "TrialPage",
    "TrialQuery",
    "make_readonly_engine",
    "mask_url",
    "merge_progress",
    "open_readonly",
]
