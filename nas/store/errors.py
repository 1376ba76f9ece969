"""Errors of the trial store, all inside the platform's :class:`NASError` hierarchy.

Errors a caller provokes with bad input (a missing or duplicate study name, a
tell on a finished trial) are also :class:`ValueError` through
:class:`ConfigError`, so generic callers can catch them idiomatically; errors of
the database itself (unreachable, out-of-date schema) are plain
:class:`StorageError`.
"""

from __future__ import annotations

from nas.core.errors import ConfigError, StorageError


class StudyNotFoundError(StorageError, ConfigError):
    """No study of that name is stored."""


class DuplicateStudyError(StorageError, ConfigError):
    """A study of that name exists and ``load_if_exists`` was not given."""


class TrialNotFoundError(StorageError, ConfigError):
    """No trial of that number exists in the study."""


class TrialFinishedError(StorageError, ConfigError):
    """The trial is COMPLETE, PRUNED or FAIL: a finished trial is immutable."""


class StudyBusyError(StorageError):
    """Another live driver holds the study's lease (:mod:`nas.store.lease`)."""


class DatabaseUnavailableError(StorageError):
    """The database stayed unreachable for the whole retry window (:mod:`nas.store.outage`)."""


class SchemaOutOfDateError(StorageError):
    """The database schema is older (or newer) than this version of the platform."""


class StoreMissingError(StorageError):
    """The SQLite file of the store does not exist (nothing has been searched there yet)."""


__all__ = [
    "DatabaseUnavailableError",
    "DuplicateStudyError",
    "SchemaOutOfDateError",
    "StoreMissingError",
    "StudyBusyError",
    "StudyNotFoundError",
    "TrialFinishedError",
    "TrialNotFoundError",
]
