"""What both store facades share: a database, its reads, and method forwarding.

The store is split by role (:mod:`~nas.store.reads`,
:mod:`~nas.store.writes`, :mod:`~nas.store.browse`), but callers want one
object: ``storage.ask(...)``, ``storage.trials(...)``. A facade composes the
role objects it has and forwards their public methods under the same names
(:func:`forward` keeps each method's name, signature and docstring, so
``help()`` and editors show the real thing). The read-write
:class:`~nas.store.RDBStorage` composes reads and writes; the read-only
store of the dashboard composes reads and browse, so a write method does not
exist there at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Self, TypeVar

from nas.store.database import Database
from nas.store.reads import Reads

R = TypeVar("R")


def forward(part: str, method: Callable[..., R]) -> Callable[..., R]:
    """A facade method that calls ``self.<part>.<method name>`` with the same arguments."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> R:
        return getattr(getattr(self, part), name)(*args, **kwargs)

    return call


class StoreFacade:
    """A store on one :class:`Database`: its reads and plumbing (subclasses add writes or browse)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.reads = Reads(database)

    @property
    def url(self) -> str:
        """The storage URL with its password masked (safe to print)."""
        return self.database.url

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.database.backend

    def close(self) -> None:
        """Close pooled connections (the storage can still be used; it reconnects)."""
        self.database.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    schema_revision = forward("reads", Reads.schema_revision)
    get_study = forward("reads", Reads.get_study)
    get_study_by_id = forward("reads", Reads.get_study_by_id)
    list_studies = forward("reads", Reads.list_studies)
    summarize_studies = forward("reads", Reads.summarize_studies)
    get_trial = forward("reads", Reads.get_trial)
    trials = forward("reads", Reads.trials)
    trials_page = forward("reads", Reads.trials_page)
    count_trials = forward("reads", Reads.count_trials)
    best_trials = forward("reads", Reads.best_trials)
    lookup = forward("reads", Reads.lookup)
    metrics = forward("reads", Reads.metrics)
    artifacts = forward("reads", Reads.artifacts)
