"""Surviving crashes: driver heartbeats, orphaned trials, and which finished trials count.

The driver is the only writer of the store. Its heartbeat (the renewal of
its lease, :mod:`nas.runner.lease`) keeps its study and its running trials
alive, so a dead driver's study reads as ``stale``; a new driver re-queues the trials of a dead one (the
copies carry ``retry_of`` in their system attributes), and a study's progress counts finished trials
that no retry supersedes. Shared by every kind of search.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nas.core import Trial, TrialState
from nas.store.liveness import heartbeat_s, stale_after_s

logger = logging.getLogger(__name__)

#: How often a worker whose process died is restarted before its trial is FAIL.
MAX_RETRIES = 2
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def effective_finished(trials: list[Trial]) -> list[Trial]:
    """Finished trials that no later retry supersedes (a re-queued copy names its original)."""
    superseded = {
        t.system_attrs.get("retry_of") for t in trials if t.system_attrs.get("retry_of") is not None
    }
    return [t for t in trials if t.state in _FINISHED and t.number not in superseded]


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


__all__ = ["MAX_RETRIES", "effective_finished", "wait_for_orphans"]
