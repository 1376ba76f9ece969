"""Cached reads of the trial store: what every page asks for, with short time-to-live.

Every function takes the storage URL (not a connection), so Streamlit can key
its caches on plain values. Rules that keep a 100,000-trial study responsive
while a search writes to it:

* one read-only storage per URL (``st.cache_resource``), see
  :mod:`nas.store.readonly`;
* a cheap change token per study (status, trial counter, counts per state),
  re-read at most every :data:`TOKEN_TTL_S` seconds; heavier results are
  cached *by token*, so an idle study is never re-queried and a busy one at
  most once per token change;
* the incumbent curve is read incrementally (:class:`ProgressTracker`): only
  trials above the settled prefix are read again;
* plots get thinned clouds (every k-th trial, at most :data:`MAX_POINTS`)
  plus the exact incumbent steps and Pareto front, all computed in SQL.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from nas.core.architecture import Architecture
from nas.core.errors import NASError, UnknownNameError
from nas.core.space import SPACES, SearchSpace
from nas.core.trial import Trial, TrialState
from nas.store.readonly import (
    ObjectivePoint,
    Progress,
    ReadOnlyStorage,
    TrialPage,
    TrialQuery,
    merge_progress,
    open_readonly,
)
from nas.store.records import Artifact, StudyInfo, StudySummary

#: Seconds a change token (and the study list) may be stale.
TOKEN_TTL_S = 2.0
SUMMARY_TTL_S = 3.0
#: Seconds results keyed by a token stay cached (bounds memory; the token bounds staleness).
KEYED_TTL_S = 120.0
#: Most points sent to a scatter plot.
MAX_POINTS = 4_000


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


@st.cache_data(ttl=TOKEN_TTL_S, max_entries=256, show_spinner=False)
def metrics(url: str, study_id: int, number: int) -> dict[str, list[tuple[int, float]]]:
    return storage(url).metrics(study_id, number)


@st.cache_data(ttl=SUMMARY_TTL_S, max_entries=64, show_spinner=False)
def artifacts(url: str, study_id: int, number: int) -> list[Artifact]:
    return storage(url).artifacts(study_id, number)


@dataclass(frozen=True)
class ParetoData:
    """A thinned cloud of COMPLETE trials in objective space, with the exact non-dominated set."""

    points: list[ObjectivePoint]
    front: frozenset[int]
    total: int
    stride: int


@st.cache_data(ttl=KEYED_TTL_S, max_entries=32, show_spinner=False)
def pareto(url: str, study_id: int, objectives: tuple[str, ...], complete: int, token_key: str) -> ParetoData:
    store = storage(url)
    front = store.pareto_numbers(study_id)
    stride = thinning_stride(complete)
    points = store.objective_points(study_id, objectives, stride=stride, numbers=front)
    return ParetoData(points, frozenset(front), complete, stride)


def thinning_stride(count: int, limit: int = MAX_POINTS) -> int:
    """Every how many trials one is plotted so that about ``limit`` points remain."""
    return max(1, math.ceil(count / limit))


# -- incremental progress ------------------------------------------------------------------
class ProgressTracker:
    """The incumbent curve of one objective, kept up to date by reading only new trials.

    The first read covers the whole study (in SQL); later reads start after
    the *settled* number (below which every trial has finished, so nothing
    can change) and are merged. The cloud's stride is fixed per full read;
    once the study outgrows it (twice :data:`MAX_POINTS` points) the next
    update re-reads everything with a larger stride.
    """

    def __init__(self, url: str, study_id: int, objective: str) -> None:
        self._key = (url, study_id, objective)
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._token: object = None

    def update(self, current_token: object, complete: int) -> Progress:
        url, study_id, objective = self._key
        with self._lock:
            if self._progress is not None and current_token == self._token:
                return self._progress
            store = storage(url)
            known = self._progress
            if known is None or thinning_stride(complete) > 2 * known.stride:
                fresh = store.progress(study_id, objective, stride=thinning_stride(complete))
            else:
                tail = store.progress(
                    study_id, objective, after=known.settled, stride=known.stride, counted=known.settled_count
                )
                fresh = merge_progress(known, tail)
            self._progress, self._token = fresh, current_token
            return fresh


@st.cache_resource(show_spinner=False, max_entries=64)
def progress_tracker(url: str, study_id: int, objective: str) -> ProgressTracker:
    return ProgressTracker(url, study_id, objective)


def progress(url: str, study_id: int, objective: str, current_token: object, complete: int) -> Progress:
    """The incumbent-vs-trials data of ``objective`` (incrementally maintained per server process)."""
    return progress_tracker(url, study_id, objective).update(current_token, complete)


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
