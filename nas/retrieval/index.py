"""A WL-feature index over a space's stored architectures: cosine similarity on a sparse matrix.

The similarity is the *normalised* Weisfeiler-Lehman sub-tree kernel of
NAS-BOWL (:mod:`nas.core.wl`): ``k(G, H) = <phi(G), phi(H)> / (|phi(G)| |phi(H)|)``
on the counts of labelled sub-trees up to depth 2. That is exactly the cosine
of the two count vectors, so there is no choice to make between "cosine" and
"WL kernel": one sparse matrix-vector product scores every stored
architecture (about 20 non-zeros a row for a NAS-Bench-201 cell), and the
ranking is the one the ``bowl`` strategy's GP would call nearest. The
kernel-induced distance ``sqrt(2 - 2k)`` orders the same way, so results
report the similarity ``k`` (1 for the same sub-tree counts, 0 for nothing
shared). Rows are stored already divided by their norm; a query's norm counts
its sub-trees that no stored architecture has, which make it less similar to
all of them, as in :func:`nas.core.wl.count_matrix`.

The index is rebuilt or extended from ``(architecture id, genotype)`` rows
and saved as one ``.npz`` (:func:`save`/:func:`load`, no pickle), because
computing the features is what costs: 0.18 ms a cell, 3 s for the 15,625
NAS-Bench-201 cells, against tens of milliseconds to load them back.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError
from nas.core.wl import Feature, feature_name
from nas.store.catalog import CatalogStamp

#: Bumped whenever the features or the file layout change, so old files are rebuilt.
FORMAT = 1

Featurize = Callable[[Architecture], Counter[Feature]]


@dataclass(frozen=True)
class WLIndex:
    """Unit-norm WL count rows of architecture ids (ascending), their feature columns, and the stamp."""

    ids: np.ndarray
    matrix: sp.csr_matrix
    columns: Mapping[str, int]
    stamp: CatalogStamp

    def __len__(self) -> int:
        return int(self.ids.size)

    def scores(self, counts: Mapping[Feature, int]) -> np.ndarray:
        """The normalised WL kernel between ``counts`` and every row (0 where nothing is shared)."""
        query = np.zeros(self.matrix.shape[1])
        total = 0.0
        for feature, count in counts.items():
            total += float(count) ** 2
            column = self.columns.get(feature_name(feature))
            if column is not None:
                query[column] = count
        if total == 0.0 or not len(self):
            return np.zeros(len(self))
        # Clipped: rounding may put a cell identical in features a hair above 1.
        return np.clip(np.asarray(self.matrix @ query).ravel() / np.sqrt(total), 0.0, 1.0)


def build(
    rows: Sequence[tuple[int, str]], featurize: Featurize, stamp: CatalogStamp, base: WLIndex | None = None
) -> WLIndex:
    """The index of ``base`` (if any) extended by ``rows`` (ids above all of ``base``'s).

    A row whose genotype no longer parses or draws (a space plugin changed
    since it was stored) gets an empty row: it is kept, never found similar.
    """
    columns = dict(base.columns) if base is not None else {}
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for _, genotype in rows:
        try:
            counts = featurize(Architecture.from_json(genotype))
        except (ArchitectureError, ValueError, KeyError):
            counts = Counter()
        norm = float(np.sqrt(sum(float(c) ** 2 for c in counts.values()))) or 1.0
        for feature, count in sorted(counts.items()):
            indices.append(columns.setdefault(feature_name(feature), len(columns)))
            data.append(count / norm)
        indptr.append(len(indices))
    width = len(columns)
    new = sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
        shape=(len(rows), width),
    )
    ids = np.asarray([i for i, _ in rows], dtype=np.int64)
    if base is not None:
        old = sp.csr_matrix(
            (base.matrix.data, base.matrix.indices, base.matrix.indptr), shape=(len(base), width)
        )
        new = sp.vstack([old, new], format="csr")
        ids = np.concatenate([base.ids, ids])
    return WLIndex(ids, new, columns, stamp)


def save(index: WLIndex, path: Path) -> None:
    """Write ``index`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(index.columns, key=index.columns.__getitem__)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(handle)
    try:
        np.savez(
            temporary,
            format=np.asarray(FORMAT),
            ids=index.ids,
            data=index.matrix.data,
            indices=index.matrix.indices,
            indptr=index.matrix.indptr,
            columns=np.asarray(names, dtype=str),
            stamp=np.asarray(
                [
                    str(index.stamp.count),
                    str(index.stamp.last_id),
                    index.stamp.last_key,
                    index.stamp.last_created,
                ]
            ),
        )
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def load(path: Path) -> WLIndex | None:
    """The index saved at ``path``; ``None`` if there is none or it is unreadable or of another format."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            if int(saved["format"]) != FORMAT:
                return None
            names = [str(n) for n in saved["columns"]]
            count, last_id, key, created = (str(v) for v in saved["stamp"])
            matrix = sp.csr_matrix(
                (saved["data"], saved["indices"], saved["indptr"]), shape=(len(saved["ids"]), len(names))
            )
            return WLIndex(
                saved["ids"],
                matrix,
                {n: i for i, n in enumerate(names)},
                CatalogStamp(int(count), int(last_id), key, created),
            )
    except (OSError, ValueError, KeyError):
        return None
