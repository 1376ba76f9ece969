"""The objective scores behind the progress and Pareto plots, read off the covering values index.

A dashboard watching a 100,000-trial study cannot load trials into Python
to draw two plots. :func:`load_scores` reads the scores of all COMPLETE
trials from the ``(study_id, objective, score, trial_id)`` index alone (no
trial row is touched), and incrementally: a later read fetches only the
trials after the *settled* prefix (below it no trial is WAITING or RUNNING,
so nothing can change), which :meth:`ScoreTable.extend` joins on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from nas.core.errors import ConfigError
from nas.core.pareto import pareto_mask
from nas.core.trial import Direction, TrialState
from nas.store.schema import studies, trial_values, trials

#: States of trials that may still change.
UNFINISHED = (TrialState.WAITING.value, TrialState.RUNNING.value)
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


def load_scores(
    connection: Connection,
    study_id: int,
    objectives: Sequence[str],
    directions: Sequence[Direction],
    after: int,
) -> ScoreTable:
    """The :class:`ScoreTable` of ``objectives`` (validated by the caller) for trials numbered above ``after``.

    This relies on trial ids growing with trial numbers within a study, which
    the store guarantees (both are assigned in the transaction that holds the
    study's number counter).
    """
    unfinished = select(func.min(trials.c.number)).where(
        trials.c.study_id == study_id, trials.c.state.in_(UNFINISHED)
    )
    first_open = connection.execute(unfinished).scalar_one_or_none()
    if first_open is None:
        top = select(studies.c.next_trial_number).where(studies.c.id == study_id)
        first_open = connection.execute(top).scalar_one()
    settled = max(int(first_open) - 1, after)
    after_id, settled_id = _trial_id(connection, study_id, after), _trial_id(connection, study_id, settled)
    read = [_sorted_scores(connection, study_id, name, after, after_id) for name in objectives]
    ids, columns = read[0][0], [read[0][1]]
    for these, scores in read[1:]:
        ids, mine, theirs = np.intersect1d(ids, these, assume_unique=True, return_indices=True)
        columns = [c[mine] for c in columns] + [scores[theirs]]
    return ScoreTable(
        tuple(objectives), tuple(directions), ids, np.column_stack(columns), after, settled, settled_id
    )


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
