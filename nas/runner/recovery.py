"""Surviving crashes: driver heartbeats, orphaned trials, and which finished trials count.

The driver is the only writer of the store. It refreshes the heartbeat of
its running trials; a new driver re-queues the trials of a dead one (the
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

logger = logging.getLogger(__name__)

#: The driver refreshes the heartbeat of its running trials this often (seconds) ...
HEARTBEAT_S = 5.0
#: ... and a new driver treats trials whose heartbeat is older than this as orphaned.
STALE_AFTER_S = 3 * HEARTBEAT_S
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
    """Keeps the heartbeat of the driver's running trials fresh (workers never write)."""

    def __init__(self, study: Any, running: dict[str, Trial]) -> None:
        super().__init__(name="nas-heartbeat", daemon=True)
        self.study, self.running, self.stop_event = study, running, threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(HEARTBEAT_S):
            for trial in list(self.running.values()):
                try:
                    self.study.heartbeat(trial)
                except NASError as exc:  # a transient store error must not kill the search
                    logger.warning("heartbeat of trial %d failed: %s", trial.number, exc)


def wait_for_orphans(study: Any, grace_s: float = STALE_AFTER_S) -> None:
    """Re-queue trials of a dead driver; wait (bounded) for a recent one's heartbeat to go stale.

    ``grace_s``: how old a heartbeat must be; a driver that holds the study's
    lease passes 0, since no other driver keeps a trial alive then.
    """
    deadline = time.monotonic() + grace_s + HEARTBEAT_S
    while True:
        failed = study.fail_stale_trials(grace_s, requeue=True)
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
