"""Surviving crashes: driver heartbeats, orphaned trials, and which finished trials count.

The driver is the only writer of the store. It refreshes its study's
heartbeat (so a dead driver's study reads as ``stale``) and the heartbeat
of its running trials; a new driver re-queues the trials of a dead one (the
copies carry ``retry_of`` in their system attributes), and a study's progress counts finished trials
that no retry supersedes. Shared by every kind of search.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from nas.core import Trial, TrialState
from nas.core.errors import NASError
from nas.store.liveness import heartbeat_s, stale_after_s

logger = logging.getLogger(__name__)

#: The driver's heartbeat interval and the stale timeout as this process started (``$NAS_HEARTBEAT_S``,
#: see :mod:`nas.store.liveness`); the driver lease uses them too.
HEARTBEAT_S = heartbeat_s()
STALE_AFTER_S = stale_after_s()
#: How often a worker whose process died is restarted before its trial is FAIL.
MAX_RETRIES = 2
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def effective_finished(trials: list[Trial]) -> list[Trial]:
    """Finished trials that no later retry supersedes (a re-queued copy names its original)."""
    superseded = {
        t.system_attrs.get("retry_of") for t in trials if t.system_attrs.get("retry_of") is not None
    }
    return [t for t in trials if t.state in _FINISHED and t.number not in superseded]


class Heartbeat(threading.Thread):
    """Keeps the heartbeat of the study and of the driver's running trials fresh (workers never write).

    The driver runs one for its whole life; a phase hands it the trials it
    runs (:meth:`track`). Every :func:`~nas.store.liveness.heartbeat_s` seconds
    (``$NAS_HEARTBEAT_S``, default 5) it beats the study, then each trial.
    """

    def __init__(self, study: Any) -> None:
        super().__init__(name="nas-heartbeat", daemon=True)
        self.study, self.stop_event = study, threading.Event()
        self.running: dict[str, Trial] = {}
        self.interval = heartbeat_s()

    def track(self, running: dict[str, Trial]) -> None:
        """Beat for these trials from now on (a live mapping the searcher keeps up to date)."""
        self.running = running

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.study.beat()
            except NASError as exc:  # a transient store error must not kill the search
                logger.warning("heartbeat of study %r failed: %s", self.study.name, exc)
            for trial in list(self.running.values()):
                try:
                    self.study.heartbeat(trial)
                except NASError as exc:
                    logger.warning("heartbeat of trial %d failed: %s", trial.number, exc)


def wait_for_orphans(study: Any, grace_s: float | None = None) -> None:
    """Re-queue trials of a dead driver; wait (bounded) for a recent one's heartbeat to go stale.

    ``grace_s``: how old a heartbeat must be (default: the stale timeout); a
    driver that holds the study's lease passes 0, since no other driver keeps
    a trial alive then.
    """
    grace = stale_after_s() if grace_s is None else grace_s
    deadline = time.monotonic() + grace + heartbeat_s()
    while True:
        failed = study.fail_stale_trials(grace, requeue=True)
        if failed:
            logger.warning("re-queued %d interrupted trial(s) of an earlier run", len(failed))
        if not study.trials(states=TrialState.RUNNING) or time.monotonic() > deadline:
            return
        time.sleep(1.0)


__all__ = [
    "HEARTBEAT_S",
    "MAX_RETRIES",
    "STALE_AFTER_S",
    "Heartbeat",
    "effective_finished",
    "wait_for_orphans",
]
