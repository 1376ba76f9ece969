"""The read-only store: what the dashboard (and any watcher of a running search) opens.

The dashboard watches searches that are writing at full speed, so it must
never slow them down or make them fail. :class:`ReadOnlyStorage` guarantees
that on the database side rather than by convention: it runs on a read-only
engine (:func:`nas.store.engine.make_readonly_engine`: a ``mode=ro`` SQLite
URI with ``PRAGMA query_only``, or ``READ ONLY`` PostgreSQL sessions), and
it is built by composition: the store's reads (:mod:`nas.store.reads`) plus
the dashboard's queries (:mod:`nas.store.browse`), and no writes, so there
is no write method to refuse. Every read is one short transaction, so WAL
checkpoints are not held back either.
"""

from __future__ import annotations

from nas.store import migrate
from nas.store.browse import MAX_CONTAINS_CHARS, MAX_CONTAINS_TERMS, Browse, TrialLabel, TrialPage, TrialQuery
from nas.store.catalog import Catalog, CatalogStamp, StoredTrial, TrialRef
from nas.store.database import Database
from nas.store.engine import make_readonly_engine
from nas.store.errors import StoreMissingError
from nas.store.facade import StoreFacade, forward
from nas.store.records import StudyInfo, StudySummary
from nas.store.scores import ScoreTable
from nas.store.url import ENV_VAR, parse_storage_url, resolve_storage_url, with_absolute_file


class ReadOnlyStorage(StoreFacade):
    """The store's reads and the dashboard's queries, on a read-only engine (see the module docstring).

    Opening never creates or migrates anything: a missing SQLite file raises
    :class:`StoreMissingError`, a database at an old schema revision raises
    :class:`~nas.store.SchemaOutOfDateError` with the upgrade command, and
    an empty database is open but has no studies (``has_schema`` is false).
    """

    def __init__(self, url: str | None = None) -> None:
        parsed, path = with_absolute_file(parse_storage_url(resolve_storage_url(url)))
        if path is not None and not path.is_file():
            raise StoreMissingError(
                f"there is no store at {path} yet; run a search first (`nas search CONFIG`) "
                f"or point --storage / ${ENV_VAR} at an existing store"
            )
        super().__init__(Database(make_readonly_engine(parsed)))
        self.browse = Browse(self.database)
        self.catalog = Catalog(self.database)
        self.has_schema = False
        try:
            self.check_schema()
        except BaseException:
            self.database.close()
            raise

    def check_schema(self) -> bool:
        """Re-read the schema revision (an empty store gets one when a search starts); sets ``has_schema``."""
        revision = self.database.read(migrate.current_revision, "opening the store read-only")
        if revision is not None:
            migrate.require_head(revision, self.database.engine)
        self.has_schema = revision is not None
        return self.has_schema

    def list_studies(self) -> list[StudyInfo]:
        """Every study, oldest first (none before the store has a schema)."""
        return self.reads.list_studies() if self.has_schema else []

    def summarize_studies(self) -> list[StudySummary]:
        """Every study with counts, best values and last activity (none before the store has a schema)."""
        return self.reads.summarize_studies() if self.has_schema else []

    study_token = forward("browse", Browse.study_token)
    query_trials = forward("browse", Browse.query_trials)
    trials_by_numbers = forward("browse", Browse.trials_by_numbers)
    objective_bounds = forward("browse", Browse.objective_bounds)
    score_table = forward("browse", Browse.score_table)
    sampled_trials = forward("browse", Browse.sampled_trials)
    labels = forward("browse", Browse.labels)
    catalog_stamp = forward("catalog", Catalog.stamp)
    architectures = forward("catalog", Catalog.architectures)
    studies_of_space = forward("catalog", Catalog.studies_of_space)
    used_architectures = forward("catalog", Catalog.used_architectures)
    trial_refs = forward("catalog", Catalog.trial_refs)
    stored_trials = forward("catalog", Catalog.stored_trials)


def open_readonly(url: str | None = None) -> ReadOnlyStorage:
    """Open the store at ``url`` (default: ``$NAS_STORAGE``, else ``sqlite:///nas.db``) for reading only."""
    return ReadOnlyStorage(url)


__all__ = [
    "CatalogStamp",
    "MAX_CONTAINS_CHARS",
    "MAX_CONTAINS_TERMS",
    "ReadOnlyStorage",
    "ScoreTable",
    "StoreMissingError",
    "StoredTrial",
    "TrialLabel",
    "TrialPage",
    "TrialQuery",
    "TrialRef",
    "make_readonly_engine",
    "open_readonly",
]
