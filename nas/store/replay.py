"""Writes whose commit was not acknowledged: did they apply?

When the connection drops while a transaction commits, the server may have
committed it or not, and the client cannot tell. :func:`nas.store.engine.run_transaction`
retries; for an idempotent write (a heartbeat, a metric upsert, a status)
running it again is harmless, but two writes are not:

* ``ask`` allocates a trial number: running it again would start a second
  trial and leave the first RUNNING, unknown to the driver (a gap in the
  numbers once it is re-queued);
* ``tell`` finishes a RUNNING trial: running it again would find the trial
  finished and refuse (:class:`~nas.store.errors.TrialFinishedError`).

These checks run first in the retry's transaction and find the earlier
attempt's own effect (the exact row it inserted or claimed, the state and
values it told); they return ``None`` when it did not apply, and the write
then runs again.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

from nas.core.trial import Trial, TrialState
from nas.store.database import Database
from nas.store.records import StudyInfo
from nas.store.rows import aware, trial_from_row
from nas.store.schema import trial_values, trials


def started(connection: Connection, attempt: list[Trial]) -> Trial | None:
    """The trial the last ``ask`` attempt started (``attempt[-1]``), if its row shows that attempt committed.

    The row must be the one the attempt inserted or claimed (same id and
    number), still RUNNING, and started at the attempt's own timestamp.
    """
    if not attempt:
        return None
    trial = attempt[-1]
    row = connection.execute(select(trials).where(trials.c.id == trial.trial_id)).first()
    if row is None or row.number != trial.number or row.state != TrialState.RUNNING.value:
        return None
    return trial if aware(row.started_at) == trial.started_at else None


def told(
    connection: Connection,
    db: Database,
    info: StudyInfo,
    number: int,
    state: TrialState,
    values: Mapping[str, float],
) -> Trial | None:
    """Trial ``number`` if it is already finished as this ``tell`` would finish it (same state, same values)."""
    row = db.trial_row(connection, info, number)
    if row.state != state.value:
        return None
    query = select(trial_values.c.objective, trial_values.c.value).where(trial_values.c.trial_id == row.id)
    found = {objective: float(value) for objective, value in connection.execute(query)}
    if found != dict(values):
        return None
    ordered = {name: found[name] for name in info.objectives if name in found}
    return trial_from_row(row._mapping, info, ordered or None)


__all__ = ["started", "told"]
