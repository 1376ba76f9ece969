"""Plain records the store hands out besides kernel :class:`~nas.core.Trial` snapshots."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nas.core.trial import Direction, Trial, TrialState


class StudyStatus(str, enum.Enum):
    """Life cycle of a study; asking for a new trial re-opens a finished one (resume).

    A driver (``nas search``) sets ``running`` when it starts, ``finished``
    when the budget is met and ``interrupted`` after Ctrl+C or SIGTERM.
    ``stale`` is never stored: it is how a ``running`` study reads once its
    driver stopped beating (:mod:`nas.store.liveness`).
    """

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    STALE = "stale"

    @property
    def live(self) -> bool:
        """Whether a driver is (as far as the store can tell) working on the study right now."""
        return self is StudyStatus.RUNNING


@dataclass(frozen=True)
class StudyInfo:
    """The stored description of a study (immutable except ``status``/``finished_at``/``heartbeat_at``).

    ``status`` is as read: ``stale`` for a running study whose driver stopped beating.
    """

    study_id: int
    name: str
    space: str
    space_options: Mapping[str, Any]
    objectives: Mapping[str, Direction]
    config: Mapping[str, Any]
    status: StudyStatus
    created_at: datetime
    finished_at: datetime | None
    #: What changes a result, field -> value (``None``: created without a description); see
    #: :mod:`nas.core.comparability`. Only studies with the same key share results.
    comparability: Mapping[str, Any] | None = None
    comparability_key: str | None = None
    #: The last heartbeat of the study's driver (``None``: no driver has beaten for it).
    heartbeat_at: datetime | None = None


@dataclass(frozen=True)
class StudySummary:
    """A study with its trial counts and best value per objective (for listings)."""

    info: StudyInfo
    counts: Mapping[TrialState, int]
    best: Mapping[str, float | None]
    updated_at: datetime | None

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


#: The artifact kind ``nas export`` records on the trial it shipped: the bundle folder's URI and the
#: sha256 of its ``card.json`` (which holds every other file's sha256), so "which trial was exported,
#: where and when" is answered from the store, with no schema change.
EXPORT_ARTIFACT = "export"


@dataclass(frozen=True)
class Artifact:
    """A file produced by a trial (weights, an ONNX export, a plot), referred to by URI."""

    trial_number: int
    kind: str
    uri: str
    sha256: str | None
    created_at: datetime


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def trial_to_dict(trial: Trial) -> dict[str, Any]:
    """A JSON-ready dict of a trial (for ``--json`` output, exports and the dashboard)."""
    return {
        "study": trial.study,
        "number": trial.number,
        "state": trial.state.value,
        "values": dict(trial.values) if trial.values is not None else None,
        "arch": trial.arch.to_dict(),
        "seed": trial.seed,
        "budget": trial.budget,
        "user_attrs": dict(trial.user_attrs),
        "system_attrs": dict(trial.system_attrs),
        "error": trial.error,
        "node": trial.node,
        "started_at": _iso(trial.started_at),
        "finished_at": _iso(trial.finished_at),
    }


def study_to_dict(summary: StudySummary) -> dict[str, Any]:
    """A JSON-ready dict of a study summary."""
    info = summary.info
    return {
        "name": info.name,
        "space": info.space,
        "space_options": dict(info.space_options),
        "objectives": {k: v.value for k, v in info.objectives.items()},
        "status": info.status.value,
        "n_trials": summary.n_trials,
        "trials_by_state": {state.value: n for state, n in summary.counts.items()},
        "best": dict(summary.best),
        "created_at": _iso(info.created_at),
        "updated_at": _iso(summary.updated_at),
        "finished_at": _iso(info.finished_at),
        "heartbeat_at": _iso(info.heartbeat_at),
    }
