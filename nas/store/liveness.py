"""Is a study's driver alive? The heartbeat of its lease, and the derived ``stale`` status.

A running ``nas search`` holds its study's lease (:mod:`nas.store.lease`) and
renews it every :func:`heartbeat_s` seconds for as long as it runs, including
the stretches when no trial is running (Ray starting, a one-shot supernet
phase, the strategy thinking), which is why trial heartbeats alone cannot
tell a live search from a dead one. That renewal is the driver's only
heartbeat: a study stored as ``running`` whose lease's heartbeat is older
than :func:`stale_after_s` is read as ``stale``: its driver died (SIGKILL, a
lost machine) and running the same command again resumes it. ``stale`` is
never stored: it is derived at read time, so it appears without anyone
writing it and disappears as soon as a driver takes the lease again.

A study without a lease (none taken: written through the Python API by hand;
or released: its driver exited and stored how it ended) keeps its stored
status: nothing says whether whoever drives it is alive.

``$NAS_HEARTBEAT_S`` sets the interval (default 5 s; the timeout is three
intervals), for tests and for stores on slow networks. Drivers and readers
must agree on it, so it is read from the environment of each process.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from nas.core.errors import ConfigError
from nas.store.records import StudyStatus
from nas.store.schema import utcnow

#: The environment variable that sets the driver's heartbeat interval in seconds.
ENV_VAR = "NAS_HEARTBEAT_S"
DEFAULT_HEARTBEAT_S = 5.0
#: A driver (or worker) is presumed dead after this many missed heartbeats.
MISSED_BEATS = 3


def heartbeat_s() -> float:
    """Seconds between two heartbeats of a driver (``$NAS_HEARTBEAT_S``, default 5)."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_HEARTBEAT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.1 <= value <= 3600:
        raise ConfigError(f"${ENV_VAR}={text!r} is not allowed; expected seconds between 0.1 and 3600")
    return value


def stale_after_s() -> float:
    """Seconds without a heartbeat after which a driver (or a trial's worker) counts as dead."""
    return MISSED_BEATS * heartbeat_s()


def derived_status(stored: StudyStatus, heartbeat_at: datetime | None, now: datetime) -> StudyStatus:
    """``stale`` for a running study whose driver (lease heartbeat ``heartbeat_at``) stopped beating."""
    if stored is StudyStatus.RUNNING and heartbeat_at is not None:
        if now - heartbeat_at > timedelta(seconds=stale_after_s()):
            return StudyStatus.STALE
    return stored


def status_changes(status: StudyStatus | str) -> dict[str, Any]:
    """The study-row columns that store ``status``.

    ``stale`` is refused: it is derived at read time, never stored.
    """
    allowed = [s.value for s in StudyStatus if s is not StudyStatus.STALE]
    given = getattr(status, "value", status)
    if given not in allowed:
        derived = " (it is derived: a running study whose driver stopped beating)" if given == "stale" else ""
        raise ConfigError(f"study status {given!r} is not allowed{derived}; allowed: {', '.join(allowed)}")
    return {"status": given, "finished_at": None if given == StudyStatus.RUNNING.value else utcnow()}


__all__ = ["ENV_VAR", "derived_status", "heartbeat_s", "stale_after_s", "status_changes"]
