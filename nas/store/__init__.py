"""The trial store: the platform's system of record, on SQLAlchemy 2 and Alembic.

This package is the only place that imports SQLAlchemy or Alembic. Most
users want the Study API (``nas.create_study`` and friends, in
:mod:`nas.store.study`); this package offers the storage underneath it, the URL
rules every component shares, the schema migrations and small records.

The storage is split by role, each on a shared :mod:`~nas.store.database`:
:mod:`~nas.store.writes` (study management, ask/tell, reports, heartbeats,
imports, artifacts), :mod:`~nas.store.reads` (trials, pages, counts, best
trials, curves) and :mod:`~nas.store.browse` (the dashboard's queries).
:class:`RDBStorage` composes reads and writes on a read-write engine;
:func:`open_readonly` composes reads and browse on a read-only one.
"""

from __future__ import annotations

from nas.store.errors import (
    DatabaseUnavailableError,
    DuplicateStudyError,
    SchemaOutOfDateError,
    StoreMissingError,
    StudyBusyError,
    StudyNotFoundError,
    TrialFinishedError,
    TrialNotFoundError,
)
from nas.store.lease import Lease
from nas.store.migrate import head_revision, revisions
from nas.store.readonly import ReadOnlyStorage, open_readonly
from nas.store.records import Artifact, StudyInfo, StudyStatus, StudySummary, study_to_dict, trial_to_dict
from nas.store.storage import RDBStorage
from nas.store.url import DEFAULT_URL, ENV_VAR, mask_url, parse_storage_url, resolve_storage_url
from nas.store.writes import default_node

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Artifact",
    "DatabaseUnavailableError",
    "DuplicateStudyError",
    "Lease",
    "RDBStorage",
    "ReadOnlyStorage",
    "SchemaOutOfDateError",
    "StoreMissingError",
    "StudyBusyError",
    "StudyInfo",
    "StudyNotFoundError",
    "StudyStatus",
    "StudySummary",
    "TrialFinishedError",
    "TrialNotFoundError",
    "default_node",
    "head_revision",
    "mask_url",
    "open_readonly",
    "parse_storage_url",
    "resolve_storage_url",
    "revisions",
    "study_to_dict",
    "trial_to_dict",
]
