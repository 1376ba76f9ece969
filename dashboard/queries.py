"""Cached reads of the trial store: what every page asks for, with short time-to-live.

Every function takes the storage URL (not a connection), so Streamlit can key
its caches on plain values. Rules that keep a 100,000-trial study responsive
while a search writes to it:

* one read-only storage per URL (``st.cache_resource``), see
  :mod:`nas.store.readonly`;
* a cheap change token per study (status, trial counter, RUNNING and WAITING counts),
  re-read at most every :data:`TOKEN_TTL_S` seconds; heavier results are
  cached *by token*, so an idle study is never re-queried and a busy one at
  most once per token change;
* the objective scores behind the progress and Pareto plots are read
  incrementally (:class:`ScoreTracker`): an index-only scan once, then only
  the trials after the settled prefix;
* plots get thinned clouds (every k-th trial, at most :data:`MAX_POINTS`)
  plus the exact incumbent steps and Pareto front.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from dashboard.charts import improvements
from nas.audit import AuditThresholds, SpaceAudit, audit_study
from nas.core.architecture import Architecture
from nas.core.errors import NASError, UnknownNameError
from nas.core.space import SPACES, SearchSpace
from nas.core.trial import Trial, TrialState
from nas.retrieval import Match, find_similar
from nas.store.readonly import ReadOnlyStorage, ScoreTable, TrialLabel, TrialPage, TrialQuery, open_readonly
from nas.store.records import EXPORT_ARTIFACT, Artifact, StudyInfo, StudySummary

#: Seconds a change token (and the study list) may be stale.
TOKEN_TTL_S = 2.0
SUMMARY_TTL_S = 3.0
#: Seconds results keyed by a token stay cached (bounds memory; the token bounds staleness).
KEYED_TTL_S = 120.0
#: Most trials drawn as dots: in the progress plot, and (with hover text) in the Pareto plot.
MAX_POINTS = 4_000
MAX_SCATTER_POINTS = 2_000


def storage(url: str) -> ReadOnlyStorage:
    """The read-only storage at ``url``; errors (missing file, old schema) propagate, uncached."""
    store = _storage(url)
    if not store.has_schema:
        store.check_schema()  # an empty store gets its schema when the first search starts
    return store


@st.cache_resource(show_spinner=False)
def _storage(url: str) -> ReadOnlyStorage:
    return open_readonly(url)


@st.cache_data(ttl=SUMMARY_TTL_S, show_spinner=False)
def summaries(url: str) -> list[StudySummary]:
    return storage(url).summarize_studies()


@st.cache_data(ttl=SUMMARY_TTL_S, show_spinner=False)
def study_names(url: str) -> list[str]:
    """Names of the stored studies, oldest first (one small query: the sidebar needs no counts)."""
    return [info.name for info in storage(url).list_studies()]


@st.cache_data(ttl=SUMMARY_TTL_S, show_spinner=False)
def study(url: str, name: str) -> StudyInfo:
    return storage(url).get_study(name)


@st.cache_data(ttl=TOKEN_TTL_S, show_spinner=False)
def token(url: str, study_id: int) -> tuple[str, int, int, int]:
    return storage(url).study_token(study_id)


@st.cache_data(ttl=KEYED_TTL_S, max_entries=64, show_spinner=False)
def counts(url: str, study_id: int, token_key: str) -> dict[TrialState, int]:
    return storage(url).count_trials(study_id)


@st.cache_data(ttl=KEYED_TTL_S, max_entries=256, show_spinner=False)
def trial_page(
    url: str, study_id: int, query: TrialQuery, offset: int, limit: int, token_key: str
) -> TrialPage:
    return storage(url).query_trials(study_id, query, offset=offset, limit=limit)


@st.cache_data(ttl=KEYED_TTL_S, max_entries=64, show_spinner=False)
def bounds(url: str, study_id: int, token_key: str) -> dict[str, tuple[float, float] | None]:
    return storage(url).objective_bounds(study_id)


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=256, show_spinner=False)
def trial(url: str, study_id: int, number: int) -> Trial:
    return storage(url).get_trial(study_id, number)


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=64, show_spinner=False)
def trials_by_numbers(url: str, study_id: int, numbers: tuple[int, ...]) -> list[Trial]:
    return storage(url).trials_by_numbers(study_id, numbers)


@st.cache_data(ttl=KEYED_TTL_S, max_entries=16, show_spinner=False)
def complete_trials(url: str, study_id: int, token_key: str) -> list[Trial]:
    """Every COMPLETE trial (a specialisation study's per-device view reads them all; such studies are small)."""
    return storage(url).trials(study_id, states=TrialState.COMPLETE)


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=64, show_spinner=False)
def exports(url: str, study_id: int, numbers: tuple[int, ...]) -> dict[int, list[Artifact]]:
    """The ``export`` records (``nas export``) of a few trials, oldest first, per trial number.

    Not keyed by the study's token: an export of a finished study changes no
    trial, so only the short time-to-live makes a new one appear.
    """
    store = storage(url)
    return {n: [a for a in store.artifacts(study_id, n) if a.kind == EXPORT_ARTIFACT] for n in numbers}


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=256, show_spinner=False)
def metrics(url: str, study_id: int, number: int) -> dict[str, list[tuple[int, float]]]:
    return storage(url).metrics(study_id, number)


def thinning_stride(count: int, limit: int = MAX_POINTS) -> int:
    """Every how many trials one is plotted so that at most about ``limit`` points remain."""
    return max(1, math.ceil(count / limit))


# -- incremental scores: progress and Pareto plots -------------------------------------------
class ScoreTracker:
    """A study's objective scores, kept current by reading only the trials after the settled prefix.

    The first read is one index-only scan per objective; later ones read the
    tail after the settled number (below it every trial has finished, so
    nothing can change) and append it (:meth:`ScoreTable.extend`). The
    thinned points are every k-th trial number (an index read); trial
    genotypes are read only for points that show them, and remembered
    (finished trials never change).
    """

    #: Labels remembered at most (drawn points are a few thousand at a time).
    MAX_LABELS = 50_000

    def __init__(self, url: str, study_id: int, objectives: tuple[str, ...]) -> None:
        self._key = (url, study_id, objectives)
        self._lock = threading.Lock()
        self._table: ScoreTable | None = None
        self._token: object = None
        self._labels: dict[int, TrialLabel] = {}
        self._front: tuple[ScoreTable, np.ndarray] | None = None
        self._sampled: tuple[object, int, list[tuple[int, int]]] | None = None

    def table(self, current_token: object) -> ScoreTable:
        url, study_id, objectives = self._key
        with self._lock:
            if self._table is not None and current_token == self._token:
                return self._table
            store = storage(url)
            known = self._table
            if known is None:
                fresh = store.score_table(study_id, objectives)
            else:
                fresh = known.extend(store.score_table(study_id, objectives, after=known.settled))
            self._table, self._token = fresh, current_token
            return fresh

    def front(self, table: ScoreTable) -> np.ndarray:
        """The Pareto mask of ``table`` (computed once per table this tracker returned)."""
        with self._lock:
            if self._front is None or self._front[0] is not table:
                self._front = (table, table.pareto_mask())
            return self._front[1]

    def sampled(self, stride: int, current_token: object) -> list[tuple[int, int]]:
        """``(number, id)`` of every ``stride``-th trial (an index read, once per token and stride)."""
        url, study_id, _ = self._key
        with self._lock:
            if self._sampled is None or self._sampled[:2] != (current_token, stride):
                self._sampled = (current_token, stride, storage(url).sampled_trials(study_id, stride))
            return self._sampled[2]

    def labels(self, ids: Iterable[int]) -> dict[int, TrialLabel]:
        url, study_id, _ = self._key
        wanted = [int(i) for i in ids]
        with self._lock:
            missing = [i for i in wanted if i not in self._labels]
            if missing:
                if len(self._labels) + len(missing) > self.MAX_LABELS:
                    self._labels.clear()
                self._labels.update(storage(url).labels(study_id, missing))
            return {i: self._labels[i] for i in wanted if i in self._labels}


@st.cache_resource(show_spinner=False, max_entries=64)
def score_tracker(url: str, study_id: int, objectives: tuple[str, ...]) -> ScoreTracker:
    return ScoreTracker(url, study_id, objectives)


@dataclass(frozen=True)
class ProgressData:
    """The incumbent-vs-trials view of one objective: thinned trials and the exact incumbent steps."""

    count: int
    stride: int
    cloud: list[tuple[int, float]]
    incumbent: list[tuple[int, float]]


def _positions(table: ScoreTable, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``table`` holding ``ids`` (ids not in the table, i.e. not COMPLETE, are dropped)."""
    if len(table) == 0 or len(ids) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    rows = np.clip(np.searchsorted(table.ids, ids), 0, len(table) - 1)
    return rows, table.ids[rows] == ids


def progress(
    url: str, info: StudyInfo, objective: str, current_token: tuple[str, int, int, int]
) -> ProgressData:
    """Every k-th trial (by number) and the incumbent steps of ``objective``, from the score table."""
    tracker = score_tracker(url, info.study_id, tuple(info.objectives))
    table = tracker.table(current_token)
    column = list(table.objectives).index(objective)
    values = table.values()[:, column]
    stride = thinning_stride(current_token[1])
    sampled = tracker.sampled(stride, current_token)
    rows, found = _positions(table, np.array([i for _, i in sampled], dtype=np.int64))
    cloud = [(n, float(values[r])) for (n, _), r, ok in zip(sampled, rows, found, strict=True) if ok]
    steps = improvements(table.scores[:, column])
    labels = tracker.labels(table.ids[steps])
    incumbent = [
        (labels[int(table.ids[i])].number, float(values[i])) for i in steps if int(table.ids[i]) in labels
    ]
    return ProgressData(len(table), stride, cloud, incumbent)


@dataclass(frozen=True)
class ParetoData:
    """A thinned cloud of COMPLETE trials in the plane of two objectives, with the exact front."""

    points: list[tuple[int, str, float, float, bool]]  # number, genotype, x, y, non-dominated
    front: int
    total: int
    stride: int


def pareto(url: str, info: StudyInfo, x: str, y: str, current_token: tuple[str, int, int, int]) -> ParetoData:
    """The non-dominated set on all objectives, and every k-th other trial, for a scatter plot."""
    tracker = score_tracker(url, info.study_id, tuple(info.objectives))
    table = tracker.table(current_token)
    mask = tracker.front(table)
    names = list(table.objectives)
    values = table.values()[:, [names.index(x), names.index(y)]]
    stride = thinning_stride(current_token[1], MAX_SCATTER_POINTS)
    sampled = tracker.sampled(stride, current_token)
    rows, found = _positions(table, np.array([i for _, i in sampled], dtype=np.int64))
    picked = np.union1d(np.flatnonzero(mask), rows[found])
    labels = tracker.labels(table.ids[picked])
    points = []
    for i in picked:
        label = labels.get(int(table.ids[i]))
        if label is not None:
            points.append(
                (label.number, label.genotype, float(values[i, 0]), float(values[i, 1]), bool(mask[i]))
            )
    return ParetoData(points, int(mask.sum()), len(table), stride)


# -- spaces -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceStatus:
    """The study's space, or why it cannot be built here (shown instead of the drawing)."""

    space: SearchSpace | None
    problem: str | None


@st.cache_resource(show_spinner=False, max_entries=32)
def space_for(name: str, options_json: str) -> SpaceStatus:
    """Build the space plugin of a study once per server; a missing plugin is a note, not an error."""
    options: Mapping[str, Any] = json.loads(options_json)
    try:
        cls = SPACES.get(name)
    except UnknownNameError:
        return SpaceStatus(
            None,
            f"the search-space plugin {name!r} is not installed where the dashboard runs, so the "
            "architecture is shown as its raw genotype. Install the plugin (and import it, e.g. via "
            "the search config's `plugins`) to see it drawn.",
        )
    except ImportError as exc:
        return SpaceStatus(None, f"the search-space plugins could not be imported here: {exc}")
    try:
        return SpaceStatus(cls(**options), None)
    except (NASError, TypeError, ValueError) as exc:
        return SpaceStatus(None, f"space {name!r} cannot be built with options {dict(options)}: {exc}")


def space_of(info: StudyInfo) -> SpaceStatus:
    return space_for(info.space, json.dumps(dict(info.space_options), sort_keys=True))


def arch_text(space: SearchSpace | None, arch: Architecture) -> str:
    """The space's string form of ``arch``, else its decisions as ``name=value`` pairs."""
    if space is not None:
        try:
            return space.format(arch)
        except NASError:
            pass
    return " ".join(f"{k}={v}" for k, v in arch.decisions)


def token_key(current: object) -> str:
    """A short string form of a change token, for cache keys."""
    return json.dumps(current, default=str)


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=64, show_spinner=False)
def similar(url: str, study: str, number: int, k: int, all_studies: bool) -> list[Match]:
    """The trials closest to one by the WL kernel (:mod:`nas.retrieval`); the index stays in memory."""
    return find_similar(storage(url), study, number, k=k, all_studies=all_studies)


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=64, show_spinner=False)
def space_audit(url: str, study: str, token_key: str, thresholds: AuditThresholds) -> SpaceAudit:
    """The study's space audit (:mod:`nas.audit`); ``token_key`` re-runs it when trials change."""
    return audit_study(storage(url), study, thresholds)
