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

    def trials_of_architectures(
        self, architecture_ids: Sequence[int], study_ids: Sequence[int]
    ) -> list[StoredTrial]:
        """Every trial of ``study_ids`` whose architecture row is one of ``architecture_ids``."""
        wanted = [int(i) for i in architecture_ids]
        allowed = [int(i) for i in study_ids]

        def load(connection: Connection) -> list[StoredTrial]:
            found: list[tuple[int, int, int]] = []
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                found += [
                    (int(s), int(a), int(t))
                    for s, a, t in connection.execute(
                        select(trials.c.study_id, trials.c.architecture_id, trials.c.id).where(
                            self._db.id_in(trials.c.architecture_id, chunk),
                            trials.c.study_id.in_(allowed),
                        )
                    )
                ]
            result = []
            for study_id in sorted({s for s, _, _ in found}):
                info = self._db.info_for(connection, study_id)
                these = [(a, t) for s, a, t in found if s == study_id]
                loaded = self._db.trials_by_ids(connection, info, [t for _, t in these])
                result += [
                    StoredTrial(info.name, arch, trial)
                    for (arch, _), trial in zip(these, loaded, strict=True)
                ]
            return result

        return self._db.read(load, "loading the trials of architectures")
