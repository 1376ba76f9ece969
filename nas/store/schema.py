"""The relational schema of the trial store (SQLAlchemy Core tables).

This module is the head of the Alembic history in ``migrations/versions``; a
test compares the two so they cannot drift. Design choices, each for a query
that must stay fast at 100,000 trials:

* ``trial_values`` holds one row per (trial, objective), written only for
  COMPLETE trials. Besides the value it stores a *score*, the value signed so
  that smaller is better, indexed as ``(study_id, objective, score,
  trial_id)``: "best k" is then ``ORDER BY score, trial_id`` read straight off
  the index for max and min objectives alike, with ties in trial order. (With
  ``ORDER BY value DESC, trial_id`` PostgreSQL must sort every row of the
  study whenever its statistics are stale, e.g. right after a bulk import;
  that took 190 ms at 100,000 trials, against 0.1 ms for the index read.)
* ``trials`` is unique on ``(study_id, number)`` and numbers are dense
  (exactly ``0 .. next_trial_number - 1``), so a page by number is an index
  range, not an ``OFFSET`` scan, as are incremental reads (``after=N``); ``(study_id, state,
  number)`` serves state filters and the search for WAITING trials.
* ``trial_metrics`` has the primary key ``(trial_id, name, step)``: one
  trial's curves are one index range, and re-reporting a step overwrites it.
* ``architectures`` is shared by every study, unique on ``(space,
  canonical_key)``, so a later search finds earlier results of a functionally
  identical cell (``Study.lookup``). Each trial also keeps its exact genotype,
  because two canonical-equal architectures may differ in their decisions.
* ``study_leases.heartbeat_at`` is the driver's heartbeat, one row update per
  interval per search (the lease renewal); a ``running`` study whose lease's
  heartbeat is older than the timeout is read as ``stale``
  (:mod:`nas.store.liveness`).
* ``studies.next_trial_number`` is the trial-number counter: incrementing it
  locks the study row, which is what makes numbers gap- and duplicate-free
  under many writers.

JSON documents (configs, user and system attributes, genotypes) are stored as text
encoded by us (strict JSON, no NaN), identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC times")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


studies = Table(
    "studies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("space", String(128), nullable=False),
    Column("space_options", Text, nullable=False),
    Column("objectives", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("next_trial_number", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # What changes a result (space options, data, evaluator settings, seed, fidelity) as JSON, and its
    # hash: only studies with the same key share results (Study.lookup); NULL for a study created
    # without a description (revision 0004).
    Column("comparability", Text, nullable=True),
    Column("comparability_key", String(64), nullable=True),
    UniqueConstraint("name"),
    Index(None, "comparability_key"),
)

architectures = Table(
    "architectures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("space", String(128), nullable=False),
    Column("canonical_key", String(128), nullable=False),
    Column("genotype", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("space", "canonical_key"),
)

trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("architecture_id", Integer, ForeignKey("architectures.id"), nullable=False),
    Column("genotype", Text, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("budget", Double, nullable=True),
    Column("state", String(8), nullable=False),
    Column("user_attrs", Text, nullable=False),
    # The platform's own bookkeeping (retry_of, kind, method, derived_from, reused_from, workers),
    # kept apart from the users' attributes (revision 0003).
    Column("system_attrs", Text, nullable=False, server_default="{}"),
    Column("error", Text, nullable=True),
    Column("node", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    UniqueConstraint("study_id", "number"),
    Index(None, "study_id", "state", "number"),
    Index(None, "study_id", "state", "heartbeat_at"),
    Index(None, "architecture_id", "state"),
)

trial_values = Table(
    "trial_values",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    Column("objective", String(128), nullable=False),
    Column("study_id", Integer, ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
    Column("value", Double, nullable=False),
    # The value signed so that smaller is better (-value for "max" objectives).
    Column("score", Double, nullable=False),
    PrimaryKeyConstraint("trial_id", "objective"),
    Index(None, "study_id", "objective", "score", "trial_id"),
)

trial_metrics = Table(
    "trial_metrics",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("step", Integer, nullable=False),
    # NULL stands for NaN (a diverged loss): SQLite cannot store NaN.
    Column("value", Double, nullable=True),
    PrimaryKeyConstraint("trial_id", "name", "step"),
)

# The driver lease (revision 0004): at most one row per study, naming the one driver that runs it.
# Taken atomically when a driver opens the study, refreshed by its heartbeat, deleted at exit; a
# lease whose heartbeat is older than the stale timeout may be taken over (see nas.store.lease),
# and a running study whose lease is that old reads as stale (nas.store.liveness, revision 0007).
study_leases = Table(
    "study_leases",
    metadata,
    Column("study_id", Integer, ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("uri", Text, nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "trial_id"),
)
