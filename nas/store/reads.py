"""The reads of the trial store: studies, trials, pages, counts, best trials, curves, artifacts.

:class:`Reads` is shared by both facades: the read-write
:class:`~nas.store.RDBStorage` and the read-only store of the dashboard
(:func:`nas.store.open_readonly`) compose the same object on their own
:class:`~nas.store.database.Database`, so a read behaves the same whichever
engine it runs on. Every method is one read transaction: on PostgreSQL one
REPEATABLE READ snapshot, so a page of trials and its values agree.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from nas.core.errors import ConfigError
from nas.core.pareto import pareto_mask
from nas.core.trial import Direction, Trial, TrialState
from nas.store import migrate
from nas.store.database import STUDY_ROWS, Database, assemble
from nas.store.errors import StudyNotFoundError
from nas.store.records import Artifact, StudyInfo, StudySummary
from nas.store.rows import aware, trial_from_row
from nas.store.schema import architectures, artifacts, studies, trial_metrics, trial_values, trials
from nas.store.validate import check_budget, check_name, check_states

#: Up to this many trials, values are fetched by trial id rather than by a join.
_BY_ID_LIMIT = 2_000
#: Largest page of trials one call returns.
MAX_PAGE = 10_000


class Reads:
    """Every read of the store, on one :class:`Database` (read-write or read-only)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def schema_revision(self) -> str | None:
        """The schema revision stamped in the database (``None`` for an empty database)."""
        return self._db.read(migrate.current_revision, "reading the schema revision")

    # -- studies ------------------------------------------------------------------
    def get_study(self, name: str) -> StudyInfo:
        """The study called ``name``; :class:`StudyNotFoundError` (naming close matches) if none."""

        def load(connection: Connection) -> Row[Any] | list[str]:
            found = connection.execute(STUDY_ROWS.where(studies.c.name == name)).first()
            if found is not None:
                return found
            return list(connection.execute(select(studies.c.name).order_by(studies.c.id)).scalars())

        result = self._db.read(load, f"loading study {name!r}")
        if isinstance(result, list):
            close = difflib.get_close_matches(str(name), result, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            listed = ", ".join(map(repr, result[:20])) + (" ..." if len(result) > 20 else "")
            raise StudyNotFoundError(
                f"no study named {name!r} in {self._db.url}.{hint} Stored studies: {listed or '(none)'}."
            )
        return self._db.remember(result._mapping)

    def get_study_by_id(self, study_id: int) -> StudyInfo:
        """The study with this id, read afresh (its status may have changed)."""
        return self._db.load_info(study_id)

    def list_studies(self) -> list[StudyInfo]:
        """Every study, oldest first."""
        rows = self._db.read(lambda c: c.execute(STUDY_ROWS.order_by(studies.c.id)).all(), "listing studies")
        return [self._db.remember(r._mapping) for r in rows]

    def summarize_studies(self) -> list[StudySummary]:
        """Every study with its trial counts by state, best value per objective and last activity."""

        def load(connection: Connection) -> list[StudySummary]:
            infos = [
                self._db.remember(r._mapping) for r in connection.execute(STUDY_ROWS.order_by(studies.c.id))
            ]
            stats = connection.execute(
                select(
                    trials.c.study_id,
                    trials.c.state,
                    func.count(),
                    func.max(trials.c.started_at),
                    func.max(trials.c.finished_at),
                ).group_by(trials.c.study_id, trials.c.state)
            ).all()
            counts: dict[int, dict[TrialState, int]] = {}
            updated: dict[int, datetime] = {}
            for study_id, state, n, started, finished in stats:
                counts.setdefault(study_id, {})[TrialState(state)] = int(n)
                for moment in (started, finished):
                    moment = aware(moment)
                    if moment is not None and (study_id not in updated or moment > updated[study_id]):
                        updated[study_id] = moment
            result = []
            for info in infos:
                best = {
                    objective: _best_value(connection, info.study_id, objective)
                    for objective in info.objectives
                }
                by_state = {state: counts.get(info.study_id, {}).get(state, 0) for state in TrialState}
                result.append(StudySummary(info, by_state, best, updated.get(info.study_id)))
            return result

        return self._db.read(load, "summarising studies")

    # -- trials ---------------------------------------------------------------------
    def get_trial(self, study_id: int, number: int) -> Trial:
        info = self._db.info(study_id)

        def load(connection: Connection) -> Trial:
            row = self._db.trial_row(connection, info, number)
            return self._db.trials_by_ids(connection, info, [row.id])[0]

        return self._db.read(load, f"loading trial {number} of study {info.name!r}")

    def trials(self, study_id: int, *, states: object = None, after: int | None = None) -> list[Trial]:
        """Trials ordered by number; only those in ``states`` and numbered above ``after`` if given."""
        info = self._db.info(study_id)
        wanted = check_states(states)
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ConfigError(f"after={after!r} is not allowed; expected a trial number or None")
        conditions: list[ColumnElement[bool]] = [trials.c.study_id == study_id]
        if after is not None:
            conditions.append(trials.c.number > after)
        if wanted is not None:
            conditions.append(trials.c.state.in_([s.value for s in wanted]))

        def load(connection: Connection) -> list[Trial]:
            rows = connection.execute(select(trials).where(*conditions).order_by(trials.c.number)).all()
            if len(rows) <= _BY_ID_LIMIT:  # e.g. a dashboard polling with after=N: stay on the indexes
                return self._db.trials_by_ids(connection, info, [row.id for row in rows])
            values = connection.execute(
                select(trial_values.c.trial_id, trial_values.c.objective, trial_values.c.value)
                .join(trials, trials.c.id == trial_values.c.trial_id)
                .where(*conditions)
            ).all()
            return assemble(rows, values, info)

        return self._db.read(load, f"loading trials of study {info.name!r}")

    def trials_page(
        self,
        study_id: int,
        *,
        offset: int = 0,
        limit: int = 100,
        order_by: str | None = None,
        descending: bool | None = None,
        states: object = None,
    ) -> list[Trial]:
        """One page of trials for server-side paging.

        ``order_by`` is ``None``/``"number"`` or an objective name; ordering by
        an objective lists only trials that have a value for it (COMPLETE
        ones), best first unless ``descending`` says otherwise.
        """
        info = self._db.info(study_id)
        for name, value, low, high in (("offset", offset, 0, 2**62), ("limit", limit, 1, MAX_PAGE)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name}={value!r} is not allowed; expected an integer in [{low}, {high}]")
        wanted = check_states(states)
        if order_by not in (None, "number") and order_by not in info.objectives:
            raise ConfigError(
                f"cannot order trials of study {info.name!r} by {order_by!r}; "
                f"allowed: 'number', {', '.join(map(repr, info.objectives))}"
            )

        def load(connection: Connection) -> list[Trial]:
            number = trials.c.number
            if order_by in (None, "number") and wanted is None:
                # Numbers are dense (0 .. next_trial_number - 1), so the page is the
                # bounded range [first, end): no OFFSET scan, and at most ``limit``
                # rows whatever plan the database picks.
                if descending:
                    top = connection.execute(
                        select(studies.c.next_trial_number).where(studies.c.id == study_id)
                    ).scalar_one()
                    first, end = max(top - offset - limit, 0), top - offset
                else:
                    first, end = offset, offset + limit
                query = (
                    select(trials.c.id)
                    .where(trials.c.study_id == study_id, number >= first, number < end)
                    .order_by(number.desc() if descending else number.asc())
                )
            elif order_by in (None, "number"):
                query = select(trials.c.id).where(
                    trials.c.study_id == study_id, trials.c.state.in_([s.value for s in wanted])
                )
                query = query.order_by(number.desc() if descending else number.asc())
                query = query.offset(offset).limit(limit)
            else:
                if wanted is not None and TrialState.COMPLETE not in wanted:
                    return []
                maximise = info.objectives[order_by] is Direction.MAX
                best_first = descending is None or descending == maximise
                score, tid = trial_values.c.score, trial_values.c.trial_id
                query = (
                    select(tid)
                    .where(trial_values.c.study_id == study_id, trial_values.c.objective == order_by)
                    .order_by(*((score.asc(), tid.asc()) if best_first else (score.desc(), tid.desc())))
                    .offset(offset)
                    .limit(limit)
                )
            ids = list(connection.execute(query).scalars())
            return self._db.trials_by_ids(connection, info, ids)

        return self._db.read(load, f"loading a page of trials of study {info.name!r}")

    def count_trials(self, study_id: int) -> dict[TrialState, int]:
        """Number of trials in each state (every state is a key)."""
        info = self._db.info(study_id)
        rows = self._db.read(
            lambda c: c.execute(
                select(trials.c.state, func.count())
                .where(trials.c.study_id == study_id)
                .group_by(trials.c.state)
            ).all(),
            f"counting trials of study {info.name!r}",
        )
        found = {TrialState(state): int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in TrialState}

    def best_trials(self, study_id: int) -> list[Trial]:
        """The best COMPLETE trials: all tied for best (one objective) or the Pareto set (several)."""
        info = self._db.info(study_id)
        names = list(info.objectives)

        def load(connection: Connection) -> list[Trial]:
            if len(names) == 1:
                best = _best_score(connection, study_id, names[0])
                if best is None:
                    return []
                ids = connection.execute(
                    select(trial_values.c.trial_id)
                    .where(
                        trial_values.c.study_id == study_id,
                        trial_values.c.objective == names[0],
                        trial_values.c.score == best,
                    )
                    .order_by(trial_values.c.trial_id)
                ).scalars()
                return self._db.trials_by_ids(connection, info, list(ids))
            # One (trial id, value) column per objective, aligned on trial ids.
            ids = np.empty(0, dtype=np.int64)
            columns: list[np.ndarray] = []
            for position, name in enumerate(names):
                pairs = connection.execute(
                    select(trial_values.c.trial_id, trial_values.c.value)
                    .where(trial_values.c.study_id == study_id, trial_values.c.objective == name)
                    .order_by(trial_values.c.trial_id)
                ).all()
                # Plain tuples: numpy probing Row objects for array protocols is very slow.
                table = np.array([tuple(p) for p in pairs], dtype=np.float64).reshape(-1, 2)
                these = table[:, 0].astype(np.int64)
                if position == 0:
                    ids, columns = these, [table[:, 1]]
                    continue
                ids, keep_old, keep_new = np.intersect1d(ids, these, assume_unique=True, return_indices=True)
                columns = [c[keep_old] for c in columns] + [table[keep_new, 1]]
            if ids.size == 0:
                return []
            mask = pareto_mask(np.column_stack(columns), [info.objectives[n] for n in names])
            return self._db.trials_by_ids(connection, info, [int(i) for i in ids[mask]])

        return self._db.read(load, f"finding the best trials of study {info.name!r}")

    def lookup(
        self,
        space: str,
        canonical_key: str,
        budget: float | None,
        objectives: Sequence[str],
        prefer_study_id: int | None = None,
        comparability_key: str | None = None,
    ) -> Trial | None:
        """An earlier COMPLETE trial of the same canonical architecture and budget in any comparable study.

        Comparable: a study of ``space`` with the same ``comparability_key``
        (studies without one match only each other). Only trials with a value
        for every name in ``objectives`` qualify; trials of
        ``prefer_study_id`` come first, then the earliest finished.
        """
        budget = check_budget(budget)
        budget_match = trials.c.budget.is_(None) if budget is None else trials.c.budget == budget
        key = studies.c.comparability_key
        comparable = key.is_(None) if comparability_key is None else key == comparability_key
        preferred = case((trials.c.study_id == prefer_study_id, 0), else_=1)

        def load(connection: Connection) -> Trial | None:
            candidates = connection.execute(
                select(trials, studies.c.name.label("study_name"))
                .join(architectures, architectures.c.id == trials.c.architecture_id)
                .join(studies, studies.c.id == trials.c.study_id)
                .where(
                    architectures.c.space == space,
                    architectures.c.canonical_key == canonical_key,
                    trials.c.state == TrialState.COMPLETE.value,
                    budget_match,
                    comparable,
                )
                .order_by(preferred, trials.c.finished_at, trials.c.id)
            ).all()
            for row in candidates:
                values = dict(
                    connection.execute(
                        select(trial_values.c.objective, trial_values.c.value).where(
                            trial_values.c.trial_id == row.id
                        )
                    ).all()
                )
                if all(name in values for name in objectives):
                    info = self._db.info_for(connection, row.study_id)
                    ordered = {n: values[n] for n in info.objectives if n in values}
                    return trial_from_row(row._mapping, info, ordered)
            return None

        return self._db.read(load, f"looking up architecture {canonical_key} of space {space!r}")

    def metrics(
        self, study_id: int, number: int, names: Iterable[str] | None = None
    ) -> dict[str, list[tuple[int, float]]]:
        """A trial's reported curves: ``{name: [(step, value), ...]}`` ordered by step (NaN restored)."""
        info = self._db.info(study_id)
        wanted = None if names is None else [check_name("metric name", n, 128) for n in names]

        def load(connection: Connection) -> dict[str, list[tuple[int, float]]]:
            row = self._db.trial_row(connection, info, number)
            query = select(trial_metrics.c.name, trial_metrics.c.step, trial_metrics.c.value).where(
                trial_metrics.c.trial_id == row.id
            )
            if wanted is not None:
                query = query.where(trial_metrics.c.name.in_(wanted))
            curves: dict[str, list[tuple[int, float]]] = {}
            for name, step, value in connection.execute(
                query.order_by(trial_metrics.c.name, trial_metrics.c.step)
            ):
                curves.setdefault(name, []).append(
                    (int(step), float("nan") if value is None else float(value))
                )
            return curves

        return self._db.read(load, f"loading metrics of trial {number} of study {info.name!r}")

    def artifacts(self, study_id: int, number: int) -> list[Artifact]:
        info = self._db.info(study_id)

        def load(connection: Connection) -> list[Artifact]:
            row = self._db.trial_row(connection, info, number)
            found = connection.execute(
                select(artifacts).where(artifacts.c.trial_id == row.id).order_by(artifacts.c.id)
            )
            return [Artifact(number, a.kind, a.uri, a.sha256, aware(a.created_at)) for a in found]  # type: ignore[arg-type]

        return self._db.read(load, f"listing artifacts of trial {number} of study {info.name!r}")


def _best_score(connection: Connection, study_id: int, objective: str) -> float | None:
    return connection.execute(
        select(func.min(trial_values.c.score)).where(
            trial_values.c.study_id == study_id, trial_values.c.objective == objective
        )
    ).scalar_one_or_none()


def _best_value(connection: Connection, study_id: int, objective: str) -> float | None:
    return connection.execute(
        select(trial_values.c.value)
        .where(trial_values.c.study_id == study_id, trial_values.c.objective == objective)
        .order_by(trial_values.c.score.asc())
        .limit(1)
    ).scalar_one_or_none()
