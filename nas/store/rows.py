"""Rows and records: the one place that decodes what the schema holds (and encodes objective values).

Every role of the store (writes, reads, the dashboard's browse queries)
hands out :class:`~nas.core.Trial` and :class:`~nas.store.StudyInfo`
snapshots; they are built here, so a new column (such as ``system_attrs``)
is decoded once for all of them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from nas.core.architecture import Architecture
from nas.core.comparability import comparability_key
from nas.core.trial import Direction, Trial, TrialState
from nas.store.liveness import derived_status
from nas.store.records import StudyInfo, StudyStatus
from nas.store.validate import check_mapping, dumps


def info_from_row(row: Mapping[str, Any]) -> StudyInfo:
    """A study row as a :class:`StudyInfo`, its status as of now (``stale`` if its driver died)."""
    heartbeat_at = aware(row.get("heartbeat_at"))
    status = derived_status(StudyStatus(row["status"]), heartbeat_at, datetime.now(timezone.utc))
    return StudyInfo(
        study_id=int(row["id"]),
        name=row["name"],
        space=row["space"],
        space_options=json.loads(row["space_options"]),
        objectives={name: Direction(d) for name, d in json.loads(row["objectives"])},
        config=json.loads(row["config"]),
        status=status,
        created_at=aware(row["created_at"]),  # type: ignore[arg-type]
        finished_at=aware(row["finished_at"]),
        comparability=None if row.get("comparability") is None else json.loads(row["comparability"]),
        comparability_key=row.get("comparability_key"),
        heartbeat_at=heartbeat_at,
    )


def comparability_columns(description: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The study columns of a comparability description: its JSON and its key (both NULL for none)."""
    if description is None:
        return {"comparability": None, "comparability_key": None}
    checked = check_mapping(description, "comparability")
    return {"comparability": dumps(checked, "comparability"), "comparability_key": comparability_key(checked)}


def trial_from_row(
    row: Mapping[str, Any], info: StudyInfo, values: Mapping[str, float] | None = None
) -> Trial:
    """A trial row (with its objective values, in objective order) as a frozen :class:`Trial`."""
    return Trial(
        number=int(row["number"]),
        arch=genotype(row["genotype"]),
        state=TrialState(row["state"]),
        values=dict(values) if values else None,
        seed=int(row["seed"]),
        budget=None if row["budget"] is None else float(row["budget"]),
        user_attrs=json.loads(row["user_attrs"]),
        system_attrs=json.loads(row["system_attrs"]),
        error=row["error"],
        node=row["node"],
        started_at=aware(row["started_at"]),
        finished_at=aware(row["finished_at"]),
        trial_id=int(row["id"]),
        study=info.name,
    )


def waiting_row(
    info: StudyInfo,
    number: int,
    genotype: str,
    seed: int,
    budget: float | None,
    attrs: tuple[str, str],
    now: datetime,
) -> dict[str, Any]:
    """A WAITING trial's row (without its architecture id); ``attrs`` are its user and system attributes as JSON."""
    return {
        "study_id": info.study_id,
        "number": number,
        "genotype": genotype,
        "seed": seed,
        "budget": budget,
        "state": TrialState.WAITING.value,
        "user_attrs": attrs[0],
        "system_attrs": attrs[1],
        "error": None,
        "node": None,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
    }


def value_rows(info: StudyInfo, trial_id: int, told: Mapping[str, float]) -> list[dict[str, Any]]:
    """``trial_values`` rows; the score is the value signed so that smaller is better."""
    return [
        {
            "trial_id": trial_id,
            "objective": name,
            "study_id": info.study_id,
            "value": value,
            "score": -value if info.objectives[name] is Direction.MAX else value,
        }
        for name, value in told.items()
    ]


@functools.lru_cache(maxsize=65_536)
def genotype(text: str) -> Architecture:
    """Parse a stored genotype; architectures are immutable, so equal texts can share one object."""
    return Architecture.from_json(text)


def aware(moment: datetime | str | None) -> datetime | None:
    """Aggregates (``max``) bypass the column type on SQLite; normalise to aware UTC here."""
    if moment is None or (isinstance(moment, datetime) and moment.tzinfo is timezone.utc):
        return moment  # type: ignore[return-value]
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
