"""The architecture catalogue: the stored architectures of a space and the trials that use them.

What architecture retrieval (``nas similar``, :mod:`nas.retrieval`) reads.
Retrieval ranks *architectures*, not trials: the ``architectures`` table
holds each canonical architecture once per space (NAS-Bench-201 has at most
15,625 of them however many trials a store holds), so an index over its rows
is built once and extended as rows are added, and the trials of the best few
rows are then fetched through the ``(architecture_id, state)`` index.

Architecture rows are never updated and only ever appended (ids grow), so
:meth:`Catalog.stamp` (row count, largest id and that row's key and time) is
enough to tell whether an index built earlier still describes the store, and
:meth:`Catalog.architectures` with ``after`` reads only what is new. The store
stays ignorant of graphs and features: it hands out ids and genotype JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from nas.core.trial import Trial
from nas.store.database import CHUNK, Database
from nas.store.rows import aware
from nas.store.schema import architectures, studies, trials


@dataclass(frozen=True)
class CatalogStamp:
    """What identifies the architecture rows of a space: count, last id, and that row's key and time."""

    count: int
    last_id: int
    last_key: str
    last_created: str


@dataclass(frozen=True)
class TrialRef:
    """Where a trial is: its study, architecture row, id and number."""

    study_id: int
    architecture_id: int
    trial_id: int
    number: int


@dataclass(frozen=True)
class StoredTrial:
    """A trial with the study it belongs to and the id of its architecture row."""

    study: str
    architecture_id: int
    trial: Trial


class Catalog:
    """Reads of the architecture catalogue on one :class:`Database` (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def stamp(self, space: str, at: int | None = None) -> CatalogStamp:
        """The :class:`CatalogStamp` of the rows of ``space`` (those with an id up to ``at``, if given)."""
        conditions = [architectures.c.space == space]
        if at is not None:
            conditions.append(architectures.c.id <= at)

        def load(connection: Connection) -> CatalogStamp:
            count, last = connection.execute(
                select(func.count(), func.max(architectures.c.id)).where(*conditions)
            ).one()
            if last is None:
                return CatalogStamp(0, 0, "", "")
            key, created = connection.execute(
                select(architectures.c.canonical_key, architectures.c.created_at).where(
                    architectures.c.id == last
                )
            ).one()
            return CatalogStamp(int(count), int(last), str(key), str(aware(created)))

        return self._db.read(load, f"reading the architecture catalogue of space {space!r}")

    def architectures(self, space: str, after: int = 0, upto: int | None = None) -> list[tuple[int, str]]:
        """``(id, genotype JSON)`` of the rows of ``space`` with ``after < id <= upto``, by id."""
        conditions = [architectures.c.space == space, architectures.c.id > after]
        if upto is not None:
            conditions.append(architectures.c.id <= upto)
        query = select(architectures.c.id, architectures.c.genotype).where(*conditions)
        return self._db.read(
            lambda c: [(int(i), str(g)) for i, g in c.execute(query.order_by(architectures.c.id))],
            f"reading the architectures of space {space!r}",
        )

    def studies_of_space(self, space: str) -> list[int]:
        """Ids of the studies searching ``space``, oldest first."""
        query = select(studies.c.id).where(studies.c.space == space).order_by(studies.c.id)
        return self._db.read(lambda c: list(c.execute(query).scalars()), f"listing studies of {space!r}")

    def used_architectures(self, study_ids: Sequence[int]) -> list[int]:
        """Ids of the architecture rows that trials of these studies use (each once, ascending)."""
        wanted = [int(i) for i in study_ids]

        def load(connection: Connection) -> list[int]:
            found: set[int] = set()
            for study_id in wanted:  # one (study_id, ...) index range each
                query = select(trials.c.architecture_id).where(trials.c.study_id == study_id).distinct()
                found.update(int(i) for i in connection.execute(query).scalars())
            return sorted(found)

        return self._db.read(load, "listing the architectures studies use")

    def trial_refs(self, architecture_ids: Sequence[int], study_ids: Sequence[int]) -> list[TrialRef]:
        """Every trial of ``study_ids`` whose architecture row is one of ``architecture_ids``, as references.

        References only (no values, no JSON): one architecture may have
        thousands of trials (every NAS-Bench-201 cell whose output is cut off
        is one canonical architecture), of which a caller loads the few it keeps.
        """
        wanted = [int(i) for i in architecture_ids]
        allowed = [int(i) for i in study_ids]

        def load(connection: Connection) -> list[TrialRef]:
            found: list[TrialRef] = []
            for start in range(0, len(wanted), CHUNK):
                query = select(
                    trials.c.study_id, trials.c.architecture_id, trials.c.id, trials.c.number
                ).where(
                    self._db.id_in(trials.c.architecture_id, wanted[start : start + CHUNK]),
                    trials.c.study_id.in_(allowed),
                )
                found += [
                    TrialRef(int(s), int(a), int(t), int(n)) for s, a, t, n in connection.execute(query)
                ]
            return found

        return self._db.read(load, "finding the trials of architectures")

    def stored_trials(self, refs: Sequence[TrialRef]) -> list[StoredTrial]:
        """The trials of ``refs`` with their study names, in the order of ``refs`` (vanished ones left out)."""

        def load(connection: Connection) -> list[StoredTrial]:
            loaded: dict[int, StoredTrial] = {}
            for study_id in sorted({r.study_id for r in refs}):
                info = self._db.info_for(connection, study_id)
                these = [r for r in refs if r.study_id == study_id]
                for trial in self._db.trials_by_ids(connection, info, [r.trial_id for r in these]):
                    ref = next(r for r in these if r.trial_id == trial.trial_id)
                    loaded[ref.trial_id] = StoredTrial(info.name, ref.architecture_id, trial)
            return [loaded[r.trial_id] for r in refs if r.trial_id in loaded]

        return self._db.read(load, "loading trials by reference")
