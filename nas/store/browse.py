"""The dashboard's queries: filtered trial pages, change tokens, objective bounds, plot points.

What a dashboard needs at 100,000 trials without loading trials into
Python: filtered and sorted pages with their total, counted in SQL
(:meth:`Browse.query_trials`); objective bounds (index seeks); a cheap
change token to poll (:meth:`Browse.study_token`); and, for the progress and
Pareto plots, the objective scores of all COMPLETE trials
(:meth:`Browse.score_table`, see :mod:`nas.store.scores`) with thinned
points and their labels. Only the read-only store
(:func:`nas.store.open_readonly`) composes a :class:`Browse`; every method is
one read transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from nas.core.errors import ConfigError, StorageError
from nas.core.trial import Direction, Trial, TrialState
from nas.store.database import CHUNK, Database
from nas.store.liveness import derived_status
from nas.store.reads import MAX_PAGE
from nas.store.records import StudyInfo, StudyStatus
from nas.store.rows import aware
from nas.store.schema import studies, study_leases, trial_values, trials
from nas.store.scores import UNFINISHED, ScoreTable, load_scores
from nas.store.validate import check_states

#: Longest "genotype contains" term and the most terms one query may combine.
MAX_CONTAINS_CHARS = 200
MAX_CONTAINS_TERMS = 10


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
class TrialLabel:
    """A trial's number and stored genotype JSON (for plot points and their hover text)."""

    number: int
    genotype: str


class Browse:
    """The dashboard's aggregate queries, on one (read-only) :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def study_token(self, study_id: int) -> tuple[str, int, int, int]:
        """A cheap value that changes whenever the study's trials or status change.

        ``(status, next trial number, RUNNING count, WAITING count)``, the
        status as read (``stale`` once a running study's driver stops beating): every
        ask or enqueue raises the counter, every tell lowers the unfinished
        count (which only the counter's events raise again) and every claim of
        a queued trial moves one from WAITING to RUNNING. It is read from the
        study row (and its lease's heartbeat) and the short WAITING/RUNNING ranges of the ``(study_id,
        state, number)`` index, so polling it costs the same at any study
        size; caches of heavier queries are keyed by it.
        """
        info = self._db.info(study_id)

        def load(connection: Connection) -> tuple[str, int, int, int]:
            head = connection.execute(
                select(studies.c.status, studies.c.next_trial_number, study_leases.c.heartbeat_at)
                .outerjoin(study_leases, study_leases.c.study_id == studies.c.id)
                .where(studies.c.id == study_id)
            ).first()
            if head is None:
                raise StorageError(f"study {info.name!r} no longer exists in {self._db.url}")
            open_counts = dict(
                connection.execute(
                    select(trials.c.state, func.count())
                    .where(trials.c.study_id == study_id, trials.c.state.in_(UNFINISHED))
                    .group_by(trials.c.state)
                ).all()
            )
            status = derived_status(StudyStatus(head[0]), aware(head[2]), datetime.now(timezone.utc))
            return (
                status.value,
                int(head[1]),
                int(open_counts.get(TrialState.RUNNING.value, 0)),
                int(open_counts.get(TrialState.WAITING.value, 0)),
            )

        return self._db.read(load, f"polling study {info.name!r}")

    # -- the trials table --------------------------------------------------------------------
    def query_trials(
        self, study_id: int, query: TrialQuery, *, offset: int = 0, limit: int = 50
    ) -> TrialPage:
        """A page of the trials matching ``query`` and the number of matches, in one snapshot."""
        info = self._db.info(study_id)
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
        contains = "contains" if self._db.backend == "sqlite" else "icontains"
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
            return TrialPage(self._db.trials_by_ids(connection, info, ids), int(total), offset)

        return self._db.read(load, f"querying trials of study {info.name!r}")

    def trials_by_numbers(self, study_id: int, numbers: Iterable[int]) -> list[Trial]:
        """The trials with these numbers, in the given order (missing numbers are left out)."""
        info = self._db.info(study_id)
        wanted = [_check_int("trial number", n, 0, 2**31 - 1) for n in numbers]

        def load(connection: Connection) -> list[Trial]:
            found = dict(
                connection.execute(
                    select(trials.c.number, trials.c.id).where(
                        trials.c.study_id == study_id, trials.c.number.in_(wanted)
                    )
                ).all()
            )
            return self._db.trials_by_ids(connection, info, [found[n] for n in wanted if n in found])

        return self._db.read(load, f"loading trials {wanted} of study {info.name!r}")

    def objective_bounds(self, study_id: int) -> dict[str, tuple[float, float] | None]:
        """Smallest and largest value of each objective (``None`` before any COMPLETE trial).

        Two index seeks per objective (min and max of the score), whatever the study size.
        """
        info = self._db.info(study_id)

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

        return self._db.read(load, f"reading objective bounds of study {info.name!r}")

    # -- plots -------------------------------------------------------------------------------
    def score_table(self, study_id: int, objectives: Sequence[str], *, after: int = -1) -> ScoreTable:
        """Scores of the COMPLETE trials numbered above ``after``, read off the covering values index.

        One index-only scan per objective (``(study_id, objective, score,
        trial_id)``): no trial row is touched, whatever the study size, and a
        later call with ``after=table.settled`` reads only what is new.
        """
        info = self._db.info(study_id)
        names = tuple(dict.fromkeys(objectives))
        if not names:
            raise ConfigError(
                f"a score table needs objectives; allowed: {', '.join(map(repr, info.objectives))}"
            )
        directions = tuple(_objective(info, name) for name in names)
        after = _check_int("after", after, -1, 2**31 - 1)
        return self._db.read(
            lambda c: load_scores(c, study_id, names, directions, after),
            f"reading objective scores of study {info.name!r}",
        )

    def sampled_trials(self, study_id: int, stride: int) -> list[tuple[int, int]]:
        """``(number, trial id)`` of every trial whose number is a multiple of ``stride``.

        Read off the ``(study_id, number)`` index (on SQLite it also holds the
        id, so no trial row is touched): how a plot picks its thinned points
        without looking up thousands of trials.
        """
        info = self._db.info(study_id)
        stride = _check_int("stride", stride, 1, 2**31 - 1)
        query = select(trials.c.number, trials.c.id).where(trials.c.study_id == study_id)
        if stride > 1:
            query = query.where(trials.c.number % stride == 0)
        return self._db.read(
            lambda c: [(int(n), int(i)) for n, i in c.execute(query.order_by(trials.c.number))],
            f"sampling trials of study {info.name!r}",
        )

    def labels(self, study_id: int, ids: Iterable[int]) -> dict[int, TrialLabel]:
        """Number and genotype of trials by id (primary-key reads, in chunks)."""
        info = self._db.info(study_id)
        wanted = sorted({int(i) for i in ids})

        def load(connection: Connection) -> dict[int, TrialLabel]:
            found: dict[int, TrialLabel] = {}
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                query = select(trials.c.id, trials.c.number, trials.c.genotype).where(
                    trials.c.study_id == study_id, self._db.id_in(trials.c.id, chunk)
                )
                for tid, number, genotype in connection.execute(query):
                    found[int(tid)] = TrialLabel(int(number), str(genotype))
            return found

        return self._db.read(load, f"reading trial labels of study {info.name!r}")


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
