"""The writes of the trial store: study management, ask/tell, reports, heartbeats, imports, artifacts.

Only the read-write facade (:class:`~nas.store.RDBStorage`) has a
:class:`Writes`; the dashboard's read-only store has none, so it has no
write method to refuse. Every public method is one transaction (see
:mod:`nas.store.engine`), so it either happens completely or not at all.

Concurrency rules, in one place:

* Trial numbers come from ``studies.next_trial_number``, incremented by an
  ``UPDATE ... RETURNING`` in the same transaction that inserts the trial.
  The update locks the study row (PostgreSQL) or the database (SQLite's
  ``BEGIN IMMEDIATE``), so concurrent askers get consecutive numbers with no
  gap and no duplicate, and a rolled-back ask gives its number back.
* A finished trial is immutable: every write to a trial locks its row and
  re-checks its state in the ``WHERE`` clause of the update.
* WAITING trials are claimed with ``FOR UPDATE SKIP LOCKED`` so two drivers
  never run the same queued trial.
* Shared architecture rows are inserted with ``ON CONFLICT DO NOTHING`` and
  read back, so two studies inserting the same cell at once both succeed.

Two attribute maps per trial: ``user_attrs`` belong to the user (and the
evaluator's reports), ``system_attrs`` to the platform's own bookkeeping
(``retry_of``, ``kind``, ``method``, ``derived_from``, ``reused_from``,
``workers``), so neither can overwrite the other.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, NASError
from nas.core.seeds import check_seed
from nas.core.trial import Direction, Trial, TrialState, parse_objectives
from nas.store import bulk, migrate, replay
from nas.store.database import Database
from nas.store.engine import run_transaction
from nas.store.errors import DuplicateStudyError, StudyNotFoundError, TrialFinishedError
from nas.store.liveness import status_changes
from nas.store.records import Artifact, StudyInfo, StudyStatus
from nas.store.rows import aware, comparability_columns, trial_from_row, value_rows, waiting_row
from nas.store.schema import architectures, artifacts, studies, trial_metrics, trial_values, trials, utcnow
from nas.store.url import mask_secrets
from nas.store.validate import (
    MAX_ARTIFACT_KIND,
    MAX_NODE,
    check_budget,
    check_finished_state,
    check_mapping,
    check_name,
    check_sha256,
    check_space,
    check_step,
    check_study_name,
    dumps,
    finished_error,
    metric_values,
    objective_values,
    require_running,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``propose(number) -> (architecture, canonical key)``: how the facade samples inside ``ask``.
Proposer = Callable[[int], tuple[Architecture, str]]
#: An architecture with its canonical key (computed by its space).
KeyedArch = tuple[Architecture, str]
#: User or system attributes of a trial: a JSON object.
Attrs = Mapping[str, Any]

# Statements of the hot paths (ask, tell, report), built once: constructing
# SQLAlchemy expressions costs more Python time than executing the cached SQL.
_RUNNING = TrialState.RUNNING.value
_ALLOCATE = (
    update(studies)
    .where(studies.c.id == bindparam("sid"))
    .values(
        next_trial_number=studies.c.next_trial_number + bindparam("count"),
        status=StudyStatus.RUNNING.value,
        finished_at=None,
    )
    .returning(studies.c.next_trial_number)
)
_REOPEN = (
    update(studies)
    .where(studies.c.id == bindparam("sid"), studies.c.status != StudyStatus.RUNNING.value)
    .values(status=StudyStatus.RUNNING.value, finished_at=None)
)
_CLAIM = (
    select(trials)
    .where(trials.c.study_id == bindparam("sid"), trials.c.state == TrialState.WAITING.value)
    .order_by(trials.c.number)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_UPDATE_TRIAL = update(trials).where(trials.c.id == bindparam("tid"))
_FINISH_TRIAL = update(trials).where(trials.c.id == bindparam("tid"), trials.c.state == _RUNNING)
_BEAT = update(trials).where(
    trials.c.study_id == bindparam("sid"), trials.c.number == bindparam("num"), trials.c.state == _RUNNING
)
_INSERT_TRIAL = trials.insert().returning(trials.c.id)
_INSERT_VALUES = trial_values.insert()
_ARCH_ID = select(architectures.c.id).where(
    architectures.c.space == bindparam("sp"), architectures.c.canonical_key == bindparam("key")
)


def default_node() -> str:
    """Worker id recorded on trials when the caller gives none: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Writes:
    """Every write of the store, on one read-write :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        dialect = pg_dialect if database.backend == "postgresql" else sqlite_dialect
        self._insert_arch = dialect.insert(architectures).on_conflict_do_nothing(
            index_elements=["space", "canonical_key"]
        )
        upsert = dialect.insert(trial_metrics)
        self._upsert_metric = upsert.on_conflict_do_update(
            index_elements=["trial_id", "name", "step"], set_={"value": upsert.excluded.value}
        )

    def _write(
        self,
        fn: Callable[[Connection], T],
        what: str,
        on_integrity_error: Callable[[IntegrityError], NASError] | None = None,
        applied: Callable[[Connection], T | None] | None = None,
    ) -> T:
        engine, rng = self._db.engine, self._db.rng
        return run_transaction(
            engine, fn, write=True, what=what, on_integrity_error=on_integrity_error, rng=rng, applied=applied
        )

    # -- schema -----------------------------------------------------------------
    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Migrate the schema (what ``nas db upgrade`` runs); returns (before, after)."""
        return migrate.upgrade(self._db.engine, revision)

    # -- studies ------------------------------------------------------------------
    def create_study(
        self,
        name: str,
        *,
        space: str,
        objectives: Mapping[str, str | Direction],
        space_options: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        comparability: Mapping[str, Any] | None = None,
    ) -> StudyInfo:
        """Insert a new study; :class:`DuplicateStudyError` if the name is taken.

        Every URL password in ``config`` (the YAML's ``storage:``...) is stored masked.
        ``comparability`` describes what changes a result (:mod:`nas.core.comparability`);
        only studies with the same description share results.
        """
        check_study_name(name)
        check_name("space name", space, 128)
        parsed = parse_objectives({k: getattr(v, "value", v) for k, v in objectives.items()})
        for objective in parsed:
            check_name("objective name", objective, 128)
        row = {
            "name": name,
            "space": space,
            "space_options": dumps(check_mapping(space_options, "space options"), "space options"),
            "objectives": dumps([[k, v.value] for k, v in parsed.items()], "objectives"),
            # Readers of the store see the config (dashboard, exports): never a password in it.
            "config": dumps(mask_secrets(check_mapping(config, "config")), "config"),
            "status": StudyStatus.RUNNING.value,
            "next_trial_number": 0,
            "created_at": utcnow(),
            "finished_at": None,
            **comparability_columns(comparability),
        }

        def duplicate() -> DuplicateStudyError:
            return DuplicateStudyError(
                f"study {name!r} already exists in {self._db.url}; pass load_if_exists=True to continue it "
                "or choose another name"
            )

        def insert(connection: Connection) -> int:
            if connection.execute(select(studies.c.id).where(studies.c.name == name)).first():
                raise duplicate()
            return connection.execute(studies.insert().returning(studies.c.id), row).scalar_one()

        study_id = self._write(insert, f"creating study {name!r}", on_integrity_error=lambda _: duplicate())
        log.info("created study %r (space %s) in %s", name, space, self._db.url)
        return self._db.remember(dict(row, id=study_id))

    def describe_study(
        self, study_id: int, comparability: Mapping[str, Any], *, replace: bool = False
    ) -> StudyInfo:
        """Record the comparability of a study created without one (before 0004).

        One that has one keeps it, unless ``replace``: the caller found the
        two comparable (only options added since, at their defaults).
        """
        columns = comparability_columns(comparability)
        where = (
            [studies.c.id == study_id]
            if replace
            else [studies.c.id == study_id, studies.c.comparability_key.is_(None)]
        )

        def write(connection: Connection) -> None:
            connection.execute(update(studies).where(*where).values(**columns))

        self._write(write, f"describing study #{study_id}")
        return self._db.load_info(study_id)

    def set_study_status(self, study_id: int, status: StudyStatus | str) -> None:
        """Store a study's status (``stale`` is derived from the driver's lease, never stored)."""
        self._update_study(study_id, status_changes(status), f"setting the status of study #{study_id}")

    def _update_study(self, study_id: int, changes: Mapping[str, Any], what: str) -> None:
        def write(connection: Connection) -> None:
            done = connection.execute(update(studies).where(studies.c.id == study_id).values(**changes))
            if done.rowcount != 1:
                raise StudyNotFoundError(f"study #{study_id} no longer exists in {self._db.url}")

        self._write(write, what)

    def delete_study(self, name: str) -> None:
        """Delete a study with its trials, values, metrics and artifact records (architectures stay)."""

        def delete(connection: Connection) -> int:
            study_id = connection.execute(
                studies.delete().where(studies.c.name == name).returning(studies.c.id)
            ).scalar_one_or_none()
            if study_id is None:
                raise StudyNotFoundError(f"no study named {name!r} in {self._db.url}")
            return int(study_id)

        self._db.forget(self._write(delete, f"deleting study {name!r}"))

    # -- asking -----------------------------------------------------------------------
    def ask(
        self,
        study_id: int,
        *,
        arch: KeyedArch | None = None,
        propose: Proposer | None = None,
        seed: int = 0,
        budget: float | None = None,
        node: str | None = None,
        system_attrs: Attrs | None = None,
    ) -> Trial:
        """Start a trial (RUNNING): the given ``arch``, else the oldest WAITING trial, else ``propose(number)``.

        ``system_attrs`` go to a new trial only (a claimed WAITING trial keeps those it was queued with).
        """
        if arch is None and propose is None:
            raise ConfigError("ask needs an architecture or a way to propose one")
        seed = check_seed(seed)
        budget = check_budget(budget)
        system = _attrs_json(system_attrs, "system_attrs")
        node = check_name("node", node, MAX_NODE) if node is not None else default_node()
        info = self._db.info(study_id)
        attempt: list[Trial] = []  # what each attempt started: a lost commit must not start a second trial

        def work(connection: Connection) -> Trial:
            now = utcnow()
            if arch is None:
                claimed = self._claim_waiting(connection, info, node, now)
                if claimed is not None:
                    attempt.append(claimed)
                    return claimed
            number = self._allocate_numbers(connection, info, 1)
            chosen, key = arch if arch is not None else propose(number)  # type: ignore[misc]
            check_space(chosen, info)
            row = {
                "study_id": study_id,
                "number": number,
                "architecture_id": self._architecture_id(connection, chosen, key, now),
                "genotype": chosen.to_json(),
                "seed": seed,
                "budget": budget,
                "state": TrialState.RUNNING.value,
                "user_attrs": "{}",
                "system_attrs": system,
                "error": None,
                "node": node,
                "created_at": now,
                "started_at": now,
                "finished_at": None,
                "heartbeat_at": now,
            }
            row["id"] = connection.execute(_INSERT_TRIAL, row).scalar_one()
            attempt.append(trial_from_row(row, info))
            return attempt[-1]

        what = f"asking for a trial of study {info.name!r}"
        return self._write(work, what, applied=lambda connection: replay.started(connection, attempt))

    def enqueue(
        self,
        study_id: int,
        arch: KeyedArch,
        *,
        seed: int = 0,
        budget: float | None = None,
        user_attrs: Attrs | None = None,
        system_attrs: Attrs | None = None,
    ) -> Trial:
        """Queue a WAITING trial; the next ``ask`` without an architecture starts it."""
        seed = check_seed(seed)
        budget = check_budget(budget)
        attrs = (_attrs_json(user_attrs, "user_attrs"), _attrs_json(system_attrs, "system_attrs"))
        info = self._db.info(study_id)
        check_space(arch[0], info)

        def work(connection: Connection) -> Trial:
            now = utcnow()
            number = self._allocate_numbers(connection, info, 1)
            row = waiting_row(info, number, arch[0].to_json(), seed, budget, attrs, now)
            row["architecture_id"] = self._architecture_id(connection, arch[0], arch[1], now)
            row["id"] = connection.execute(_INSERT_TRIAL, row).scalar_one()
            return trial_from_row(row, info)

        return self._write(work, f"enqueueing a trial in study {info.name!r}")

    def _allocate_numbers(self, connection: Connection, info: StudyInfo, count: int) -> int:
        """Reserve ``count`` consecutive trial numbers (locks the study row); return the first."""
        after = connection.execute(_ALLOCATE, {"sid": info.study_id, "count": count}).scalar_one_or_none()
        if after is None:
            raise StudyNotFoundError(f"study {info.name!r} no longer exists in {self._db.url}")
        return int(after) - count

    def _claim_waiting(
        self, connection: Connection, info: StudyInfo, node: str, now: datetime
    ) -> Trial | None:
        found = connection.execute(_CLAIM, {"sid": info.study_id}).first()
        if found is None:
            return None
        changes = {"state": _RUNNING, "node": node, "started_at": now, "heartbeat_at": now}
        connection.execute(_UPDATE_TRIAL, {"tid": found.id, **changes})
        connection.execute(_REOPEN, {"sid": info.study_id})
        return trial_from_row({**found._mapping, **changes}, info)

    def _architecture_id(self, connection: Connection, arch: Architecture, key: str, now: datetime) -> int:
        """Get-or-insert one shared architecture row (the common case of ``ask``)."""
        params = {"sp": arch.space, "key": key}
        found = connection.execute(_ARCH_ID, params).scalar_one_or_none()
        if found is None:
            row = {"space": arch.space, "canonical_key": key, "genotype": arch.to_json(), "created_at": now}
            connection.execute(self._insert_arch, row)
            found = connection.execute(_ARCH_ID, params).scalar_one()
        return int(found)

    # -- telling and reporting ---------------------------------------------------------
    def tell(
        self,
        study_id: int,
        number: int,
        *,
        state: TrialState | str = TrialState.COMPLETE,
        values: object = None,
        error: str | None = None,
        user_attrs: Attrs | None = None,
        system_attrs: Attrs | None = None,
    ) -> Trial:
        """Finish a RUNNING trial: COMPLETE with ``values`` (one per objective), or PRUNED/FAIL without.

        ``user_attrs`` and ``system_attrs`` are merged into the trial's own (given keys win).
        """
        info = self._db.info(study_id)
        state = check_finished_state(state)
        if state is TrialState.COMPLETE:
            if values is None:
                raise ConfigError(
                    f"telling trial {number} of study {info.name!r} COMPLETE needs values for {list(info.objectives)}"
                )
            told = objective_values(values, info.objectives, info.name)
        else:
            if values is not None:
                raise ConfigError(
                    f"a {state.value} trial has no objective values (got {values!r}); report curves with report()"
                )
            told = {}
        if error is not None and not isinstance(error, str):
            raise ConfigError(
                f"error must be a string (the message and traceback), got {type(error).__name__}"
            )
        given = {"user_attrs": user_attrs, "system_attrs": system_attrs}
        attrs = {column: check_mapping(value, column) for column, value in given.items() if value}

        def work(connection: Connection) -> Trial:
            row = self._db.trial_row(connection, info, number, lock=True)
            require_running(row, info, "tell")
            changes = {"state": state.value, "finished_at": utcnow(), "error": error}
            for column, added in attrs.items():
                changes[column] = dumps({**json.loads(row._mapping[column]), **added}, column)
            done = connection.execute(_FINISH_TRIAL, {"tid": row.id, **changes})
            if done.rowcount != 1:  # lost a race with another writer (only possible without row locks)
                raise TrialFinishedError(f"trial {number} of study {info.name!r} was finished concurrently")
            if told:
                connection.execute(_INSERT_VALUES, value_rows(info, row.id, told))
            return trial_from_row({**row._mapping, **changes}, info, told or None)

        again = lambda connection: replay.told(connection, self._db, info, number, state, told)  # noqa: E731
        return self._write(work, f"telling trial {number} of study {info.name!r}", applied=again)

    def report(self, study_id: int, number: int, step: int, metrics: Mapping[str, float]) -> None:
        """Store metrics of one step of a RUNNING trial (re-reporting a step overwrites it); beats the heartbeat."""
        info = self._db.info(study_id)
        step = check_step(step)
        reported = metric_values(metrics)

        def work(connection: Connection) -> None:
            row = self._db.trial_row(connection, info, number, lock=True)
            require_running(row, info, "report")
            if reported:
                connection.execute(
                    self._upsert_metric,
                    [{"trial_id": row.id, "name": k, "step": step, "value": v} for k, v in reported.items()],
                )
            connection.execute(_UPDATE_TRIAL, {"tid": row.id, "heartbeat_at": utcnow()})

        self._write(work, f"reporting metrics of trial {number} of study {info.name!r}")

    def heartbeat(self, study_id: int, number: int, node: str | None = None) -> bool:
        """Record that the worker of a RUNNING trial is alive; ``False`` if the trial has finished meanwhile.

        ``node`` (optional) records where the trial runs now: the driver learns a
        trial's Ray node only from its first report, and again after a retry.
        """
        info = self._db.info(study_id)
        changes: dict[str, Any] = {"heartbeat_at": utcnow()}
        if node is not None:
            changes["node"] = check_name("node", node, MAX_NODE)

        def work(connection: Connection) -> bool:
            done = connection.execute(_BEAT, {"sid": study_id, "num": number, **changes})
            if done.rowcount == 1:
                return True
            self._db.trial_row(connection, info, number)  # raises TrialNotFoundError if it does not exist
            return False

        return self._write(work, f"heartbeat of trial {number} of study {info.name!r}")

    def set_trial_user_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        """Set one user attribute of an unfinished trial."""
        self._set_attr(study_id, number, "user_attrs", key, value)

    def set_trial_system_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        """Set one system attribute (the platform's bookkeeping, e.g. ``workers``) of an unfinished trial."""
        self._set_attr(study_id, number, "system_attrs", key, value)

    def _set_attr(self, study_id: int, number: int, column: str, key: str, value: Any) -> None:
        info = self._db.info(study_id)
        what = f"{column[:-6]} attribute"  # "user attribute" / "system attribute"
        check_name(f"{what} name", key, 255)
        dumps(value, f"{what} {key!r}")

        def work(connection: Connection) -> None:
            row = self._db.trial_row(connection, info, number, lock=True)
            if TrialState(row.state).finished:
                raise finished_error(row, info, f"set a {what} of")
            merged = dumps({**json.loads(row._mapping[column]), key: value}, column)
            connection.execute(_UPDATE_TRIAL, {"tid": row.id, column: merged})

        self._write(work, f"setting {what} {key!r} of trial {number} of study {info.name!r}")

    def fail_stale_trials(
        self, study_id: int, grace_s: float, *, requeue: bool = True, reason: str | None = None
    ) -> list[Trial]:
        """Mark RUNNING trials whose heartbeat is older than ``grace_s`` FAIL; re-queue a WAITING copy of each.

        Returns the trials marked FAIL. Run by a driver that starts after a
        crash (or periodically), and with ``grace_s=0`` by a driver stopped by
        Ctrl+C: the copies carry ``retry_of`` (the failed trial's number) in
        their system attributes and are handed out by the next ``ask``.
        ``reason`` replaces the stored error message (default: the missed heartbeats).
        """
        if isinstance(grace_s, bool) or not isinstance(grace_s, int | float) or not grace_s >= 0:
            raise ConfigError(f"grace_s={grace_s!r} is not allowed; expected seconds >= 0")
        info = self._db.info(study_id)
        me = default_node()

        def work(connection: Connection) -> list[Trial]:
            now = utcnow()
            cutoff = now - timedelta(seconds=float(grace_s))
            stale = connection.execute(
                select(trials)
                .where(
                    trials.c.study_id == study_id,
                    trials.c.state == TrialState.RUNNING.value,
                    (trials.c.heartbeat_at < cutoff) | trials.c.heartbeat_at.is_(None),
                )
                .order_by(trials.c.number)
                .with_for_update(skip_locked=True)
            ).all()
            failed: list[Trial] = []
            for row in stale:
                last = aware(row.heartbeat_at)
                message = reason or (
                    f"worker {row.node or '?'} stopped sending heartbeats (last at "
                    f"{last.isoformat() if last else 'never'}); marked FAIL by {me} after {grace_s:g} s"
                )
                changes = {"state": TrialState.FAIL.value, "finished_at": now, "error": message}
                done = connection.execute(_FINISH_TRIAL, {"tid": row.id, **changes})
                if done.rowcount != 1:
                    continue
                failed.append(trial_from_row({**row._mapping, **changes}, info))
                if requeue:
                    system = {**json.loads(row.system_attrs), "retry_of": row.number}
                    attrs = (row.user_attrs, dumps(system, "system_attrs"))
                    number = self._allocate_numbers(connection, info, 1)
                    copy = waiting_row(info, number, row.genotype, row.seed, row.budget, attrs, now)
                    copy["architecture_id"] = row.architecture_id
                    connection.execute(_INSERT_TRIAL, copy)
            return failed

        failed = self._write(work, f"failing stale trials of study {info.name!r}")
        if failed:
            log.warning(
                "study %r: %d trial(s) of dead workers marked FAIL%s: %s",
                info.name,
                len(failed),
                " and re-queued" if requeue else "",
                [t.number for t in failed],
            )
        return failed

    def add_trials(
        self,
        study_id: int,
        finished: Sequence[tuple[Trial, str]],
        metrics: Sequence[Mapping[str, Sequence[tuple[int, float]]]] | None = None,
    ) -> list[Trial]:
        """Import finished trials (with canonical keys and, optionally, curves) in one transaction.

        For copying results between stores or warm-starting from a tabular
        benchmark; the trials get new consecutive numbers in this study.
        """
        info = self._db.info(study_id)
        prepared = bulk.prepare(info, finished, metrics)

        def work(connection: Connection) -> list[Trial]:
            if not prepared:
                return []
            first = self._allocate_numbers(connection, info, len(prepared))
            return bulk.insert(connection, info, prepared, first, self._insert_arch)

        return self._write(work, f"adding {len(prepared)} trials to study {info.name!r}")

    # -- artifacts -----------------------------------------------------------------------
    def add_artifact(
        self, study_id: int, number: int, kind: str, uri: str, sha256: str | None = None
    ) -> Artifact:
        """Record a file a trial produced. Allowed on finished trials too (e.g. a later export)."""
        info = self._db.info(study_id)
        check_name("artifact kind", kind, MAX_ARTIFACT_KIND)
        check_name("artifact URI", uri, 1_000_000)
        digest = check_sha256(sha256)

        def work(connection: Connection) -> Artifact:
            row = self._db.trial_row(connection, info, number)
            now = utcnow()
            connection.execute(
                artifacts.insert(),
                {"trial_id": row.id, "kind": kind, "uri": uri, "sha256": digest, "created_at": now},
            )
            return Artifact(number, kind, uri, digest, now)

        return self._write(work, f"adding a {kind!r} artifact to trial {number} of study {info.name!r}")


def _attrs_json(attrs: Attrs | None, what: str) -> str:
    return dumps(check_mapping(attrs, what), what)
