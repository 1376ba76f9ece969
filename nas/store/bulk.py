"""Bulk import of finished trials (``add_trials``): validation first, then a few multi-row inserts.

Copying results between stores, warm-starting from a tabular benchmark or
storing a finished supernet all hand the store whole trials at once. Every
trial is validated before the transaction starts (:func:`prepare`), so a bad
item leaves nothing behind; the insert (:func:`insert`) then writes the
architectures, trials, values and curves of all of them in one statement
each, inside the transaction that reserved their numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Insert

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.seeds import check_seed
from nas.core.trial import Trial, TrialState
from nas.store.database import CHUNK
from nas.store.records import StudyInfo
from nas.store.rows import aware, trial_from_row, value_rows
from nas.store.schema import architectures, trial_metrics, trial_values, trials, utcnow
from nas.store.validate import (
    check_budget,
    check_finished_state,
    check_mapping,
    check_space,
    check_step,
    dumps,
    metric_values,
    objective_values,
)

#: Curves of one trial: ``{name: [(step, value), ...]}``.
Curves = Mapping[str, Sequence[tuple[int, float]]]


@dataclass(frozen=True)
class Prepared:
    """One validated trial: its row (without study, number and ids), architecture, values and curves."""

    row: dict[str, Any]
    arch: Architecture
    key: str
    told: dict[str, float]
    curves: dict[str, list[tuple[int, float | None]]]


def prepare(
    info: StudyInfo, finished: Sequence[tuple[Trial, str]], metrics: Sequence[Curves] | None
) -> list[Prepared]:
    """Validate ``(trial, canonical key)`` pairs (and one curve set per trial, if given) for ``info``."""
    if metrics is not None and len(metrics) != len(finished):
        raise ConfigError(
            f"{len(metrics)} metric sets given for {len(finished)} trials; expected one per trial"
        )
    prepared = []
    for index, (trial, key) in enumerate(finished):
        if not isinstance(trial, Trial) or not isinstance(trial.arch, Architecture):
            raise ConfigError(f"item {index} is not a Trial with an Architecture: {trial!r}")
        check_space(trial.arch, info)
        state = check_finished_state(trial.state)
        told = (
            objective_values(trial.values, info.objectives, info.name) if state is TrialState.COMPLETE else {}
        )
        curves = {
            name: [(check_step(step), metric_values({name: value})[name]) for step, value in points]
            for name, points in (metrics[index] if metrics is not None else {}).items()
        }
        row = {
            "genotype": trial.arch.to_json(),
            "seed": check_seed(trial.seed),
            "budget": check_budget(trial.budget),
            "state": state.value,
            "user_attrs": dumps(check_mapping(trial.user_attrs, "user_attrs"), "user_attrs"),
            "system_attrs": dumps(check_mapping(trial.system_attrs, "system_attrs"), "system_attrs"),
            "error": trial.error if trial.error is None else str(trial.error),
            "node": trial.node,
            "started_at": aware(trial.started_at),
            "finished_at": aware(trial.finished_at),
            "heartbeat_at": None,
        }
        prepared.append(Prepared(row, trial.arch, key, told, curves))
    return prepared


def insert(
    connection: Connection, info: StudyInfo, prepared: Sequence[Prepared], first: int, insert_arch: Insert
) -> list[Trial]:
    """Insert ``prepared`` as trials numbered from ``first`` (already reserved); return them as stored."""
    now = utcnow()
    arch_ids = architecture_ids(connection, [(p.arch, p.key) for p in prepared], now, insert_arch)
    rows = [
        {
            **p.row,
            "study_id": info.study_id,
            "number": first + i,
            "architecture_id": arch_ids[p.key],
            "created_at": now,
            "started_at": p.row["started_at"] or now,
            "finished_at": p.row["finished_at"] or now,
        }
        for i, p in enumerate(prepared)
    ]
    statement = trials.insert().returning(trials.c.id, sort_by_parameter_order=True)
    ids = connection.execute(statement, rows).scalars().all()
    values = [value for tid, p in zip(ids, prepared, strict=True) for value in value_rows(info, tid, p.told)]
    points = [
        {"trial_id": tid, "name": name, "step": step, "value": value}
        for tid, p in zip(ids, prepared, strict=True)
        for name, curve in p.curves.items()
        for step, value in curve
    ]
    if values:
        connection.execute(trial_values.insert(), values)
    if points:
        connection.execute(trial_metrics.insert(), points)
    return [
        trial_from_row(dict(row, id=tid), info, p.told or None)
        for row, tid, p in zip(rows, ids, prepared, strict=True)
    ]


def architecture_ids(
    connection: Connection, archs: Iterable[tuple[Architecture, str]], now: datetime, insert_arch: Insert
) -> dict[str, int]:
    """Get-or-insert the shared architecture rows (``insert_arch`` ignores conflicts); canonical key -> id."""
    wanted: dict[tuple[str, str], Architecture] = {}
    for arch, key in archs:
        wanted.setdefault((arch.space, key), arch)
    ids: dict[str, int] = {}
    for space in {space for space, _ in wanted}:
        keys = [key for s, key in wanted if s == space]
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            missing = set(chunk) - set(_arch_ids(connection, space, chunk))
            if missing:
                rows = [
                    {
                        "space": space,
                        "canonical_key": key,
                        "genotype": wanted[(space, key)].to_json(),
                        "created_at": now,
                    }
                    for key in sorted(missing)
                ]
                connection.execute(insert_arch, rows)
            ids.update(_arch_ids(connection, space, chunk))
    return ids


def _arch_ids(connection: Connection, space: str, keys: Sequence[str]) -> dict[str, int]:
    query = select(architectures.c.canonical_key, architectures.c.id).where(
        architectures.c.space == space, architectures.c.canonical_key.in_(keys)
    )
    return {key: int(arch_id) for key, arch_id in connection.execute(query)}
