"""The trial store: the platform's system of record, on SQLAlchemy 2 and Alembic.

This package is the only place that imports SQLAlchemy or Alembic. Most
users want the Study API (``nas.create_study`` and friends, in
:mod:`nas.study`); this package offers the storage underneath it, the URL
rules every component shares, the schema migrations and small records.
"""

from __future__ import annotations

from nas.store.errors import (
    DuplicateStudyError,
    SchemaOutOfDateError,
    StudyNotFoundError,
    TrialFinishedError,
    TrialNotFoundError,
)
from nas.store.migrate import head_revision, revisions
from nas.store.records import Artifact, StudyInfo, StudyStatus, StudySummary, study_to_dict, trial_to_dict
from nas.store.storage import RDBStorage, default_node
from nas.store.url import DEFAULT_URL, ENV_VAR, mask_url, parse_storage_url, resolve_storage_url

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Artifact",
    "DuplicateStudyError",
    "RDBStorage",
    "SchemaOutOfDateError",
    "StudyInfo",
    "StudyNotFoundError",
    "StudyStatus",
    "StudySummary",
    "TrialFinishedError",
    "TrialNotFoundError",
    "default_node",
    "head_revision",
    "mask_url",
    "parse_storage_url",
    "resolve_storage_url",
    "revisions",
    "study_to_dict",
    "trial_to_dict",
]
