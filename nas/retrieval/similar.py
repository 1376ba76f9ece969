"""Architecture retrieval: the stored trials whose architectures are closest to a given trial's.

After the Neural Architecture Retrieval paper (Chen et al. 2023): a graph
embedding of every stored architecture and a nearest-neighbour query. The
embedding is the WL sub-tree count vector and the similarity the normalised
WL kernel (see :mod:`nas.retrieval.index` for why that is cosine), so it
needs no training and no torch, and agrees with what ``bowl`` learns on.

Why an index cached in a file, not a table. Features depend on the space
plugin (``to_graph``), which the store must not know, and a new table would
have to be filled by every writer (the search driver) and could not be
filled by the read-only dashboard. Instead the index is computed here from
the store's ``architectures`` rows (each canonical cell once per space,
whatever the number of trials) and saved under ``$NAS_CACHE_DIR`` (default
``~/.cache/nas``)/``retrieval``, in a file named for the store URL, space,
space options and WL depth. It is keyed by the store's content: the
:class:`~nas.store.catalog.CatalogStamp` of the rows it holds, checked on
every query (two index reads); new rows are appended, anything else
(another store at the same path) rebuilds it. A query then costs the stamp,
one sparse product, the set of architectures the chosen studies use, and the
trials of the best ``k`` of those.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.core import files
from nas.core.errors import ArchitectureError, ConfigError
from nas.core.space import SearchSpace, create_space
from nas.core.trial import Trial
from nas.core.wl import DEFAULT_ITERATIONS, WLFeaturizer
from nas.retrieval import index as wl_index
from nas.retrieval.index import WLIndex
from nas.store.readonly import ReadOnlyStorage
from nas.store.records import StudyInfo

#: Most neighbours one query may ask for.
MAX_K = 1000


@dataclass(frozen=True)
class Match:
    """A retrieved trial: its study, the trial (with its values) and the WL similarity to the query."""

    study: str
    trial: Trial
    similarity: float


def cache_dir() -> Path:
    """Where indexes are saved: ``$NAS_CACHE_DIR/retrieval``, else ``~/.cache/nas/retrieval``."""
    return files.cache_dir("retrieval")


class IndexCache:
    """Indexes by (store, space, options): kept in memory (warm queries) and in files (cold ones)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: dict[str, WLIndex] = {}
        self._lock = threading.Lock()

    def index(self, store: ReadOnlyStorage, info: StudyInfo, space: SearchSpace) -> WLIndex:
        """The up-to-date index of ``info.space``'s stored architectures (built or extended if needed)."""
        options = json.dumps(dict(info.space_options), sort_keys=True, default=str)
        name = json.dumps([store.url, info.space, options, DEFAULT_ITERATIONS, wl_index.FORMAT])
        key = hashlib.sha256(name.encode()).hexdigest()[:24]
        path = (self.directory or cache_dir()) / f"{key}.npz"
        with self._lock:
            current = store.catalog_stamp(info.space)
            known = self._memory.get(key)
            if known is None:
                known = wl_index.load(path)
            if known is not None and known.stamp == current:
                self._memory[key] = known
                return known
            featurize = WLFeaturizer(space, DEFAULT_ITERATIONS)
            if (
                known is not None
                and current.last_id > known.stamp.last_id
                and store.catalog_stamp(info.space, at=known.stamp.last_id) == known.stamp
            ):
                rows = store.architectures(info.space, after=known.stamp.last_id, upto=current.last_id)
                fresh = wl_index.build(rows, featurize, current, known)
            else:
                rows = store.architectures(info.space, upto=current.last_id)
                fresh = wl_index.build(rows, featurize, current)
            try:
                wl_index.save(fresh, path)
            except OSError:
                pass  # a read-only home: the index still serves this process
            self._memory[key] = fresh
            return fresh


#: The process's cache (the CLI runs one query; the dashboard many).
DEFAULT_CACHE = IndexCache()


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"k={k!r} is not allowed; expected an integer in [1, {MAX_K}]")
    return k


def find_similar(
    store: ReadOnlyStorage,
    study: str,
    number: int,
    *,
    k: int = 10,
    all_studies: bool = False,
    cache: IndexCache | None = None,
) -> list[Match]:
    """The ``k`` trials closest to trial ``number`` of ``study`` by WL similarity, the query itself first.

    Candidates are the trials of ``study`` or, with ``all_studies``, of every
    study of the same space. Most similar first; ties go to the query's own
    study, then to older studies and lower trial numbers. Raises the store's
    :class:`~nas.store.StudyNotFoundError` / :class:`~nas.store.TrialNotFoundError`,
    and :class:`ConfigError` for a bad ``k`` or a space without a graph.
    """
    k = check_k(k)
    info = store.get_study(study)
    query = store.get_trial(info.study_id, number)
    space = create_space(info.space, **dict(info.space_options))
    try:
        counts = WLFeaturizer(space, DEFAULT_ITERATIONS)(query.arch)
    except (ArchitectureError, NotImplementedError) as exc:
        raise ConfigError(
            f"study {info.name!r} searches space {info.space!r}, whose architectures have no graph to "
            f"compare (retrieval uses the WL kernel on space.to_graph): {exc}"
        ) from exc
    index = (cache or DEFAULT_CACHE).index(store, info, space)
    studies = store.studies_of_space(info.space) if all_studies else [info.study_id]
    scores = index.scores(counts)
    usable = np.isin(index.ids, np.asarray(store.used_architectures(studies), dtype=np.int64))
    positions = np.flatnonzero(usable)
    # The k best rows (ties by id): each is used by a trial, so they hold the k best trials.
    positions = positions[np.lexsort((index.ids[positions], -scores[positions]))[:k]]
    similarity = dict(zip(index.ids[positions].tolist(), scores[positions].tolist(), strict=True))
    refs = sorted(
        (r for r in store.trial_refs(list(similarity), studies) if r.trial_id != query.trial_id),
        key=lambda r: (-similarity[r.architecture_id], r.study_id != info.study_id, r.study_id, r.number),
    )
    found = store.stored_trials(refs[: k - 1])
    others = [Match(t.study, t.trial, float(similarity[t.architecture_id])) for t in found]
    return [Match(info.name, query, 1.0 if counts else 0.0), *others]


def match_to_dict(match: Match) -> dict[str, Any]:
    """A match as plain JSON-able data (what ``nas similar --json`` prints)."""
    trial = match.trial
    return {
        "study": match.study,
        "number": trial.number,
        "similarity": round(match.similarity, 6),
        "state": trial.state.value,
        "values": dict(trial.values) if trial.values else {},
        "genotype": json.loads(trial.arch.to_json()),
    }
