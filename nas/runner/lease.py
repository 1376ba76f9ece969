"""The driver's hold on its study, and its heartbeat: take the lease at open, renew it, give it up at exit.

The lease itself is a store record (:mod:`nas.store.lease`); this is the
driver's side of it: a daemon thread renews it every
:func:`~nas.store.liveness.heartbeat_s` seconds (``$NAS_HEARTBEAT_S``,
default 5) and, in the same beat, refreshes the heartbeat of the trials the
driver runs (workers never write). That renewal is the driver's only
heartbeat: a crashed driver's study reads as ``stale`` and its lease may be
taken over after :func:`~nas.store.liveness.stale_after_s`, so a rerun
resumes it. If the lease is lost anyway (the driver stalled for longer than
that and another took over), :attr:`DriverLease.lost` is set and the
searcher stops proposing trials.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from nas.core import Trial
from nas.core.errors import NASError
from nas.store.liveness import heartbeat_s, stale_after_s

logger = logging.getLogger(__name__)


class DriverLease(threading.Thread):
    """Holds the study's driver lease from construction until :meth:`release`, beating for it and its trials.

    ``stale_s``: how old another holder's heartbeat must be to take its lease
    over; ``every_s``: the interval of the heartbeat (both default to
    ``$NAS_HEARTBEAT_S`` as read now, see :mod:`nas.store.liveness`).
    """

    def __init__(self, study: Any, *, stale_s: float | None = None, every_s: float | None = None) -> None:
        super().__init__(name="nas-driver-heartbeat", daemon=True)
        self.study = study
        self.every_s = heartbeat_s() if every_s is None else every_s
        stale = stale_after_s() if stale_s is None else stale_s
        self.lease = study.acquire_lease(stale)  # StudyBusyError names the live driver
        self.lost = False
        self.running: dict[str, Trial] = {}
        self._stop_event = threading.Event()
        self.start()

    def track(self, running: dict[str, Trial]) -> None:
        """Beat for these trials from now on (a live mapping the searcher keeps up to date)."""
        self.running = running

    def run(self) -> None:
        while not self._stop_event.wait(self.every_s):
            try:
                if not self.study.renew_lease(self.lease):
                    self.lost = True
                    logger.error(
                        "study %r was taken over by another driver; this one stops proposing trials",
                        self.study.name,
                    )
                    return
            except NASError as exc:  # a transient store error must not kill the search
                logger.warning("renewing the driver lease of study %r failed: %s", self.study.name, exc)
            for trial in list(self.running.values()):
                try:
                    self.study.heartbeat(trial)
                except NASError as exc:
                    logger.warning("heartbeat of trial %d failed: %s", trial.number, exc)

    def release(self, *, write: bool = True) -> None:
        """Stop the heartbeat and delete the lease (unless another driver holds it now).

        ``write=False`` (the database is unreachable) leaves the lease to go
        stale: a rerun on this host takes it over at once, since this process is gone.
        """
        self._stop_event.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=10.0)
        if write and not self.lost:
            try:
                self.study.release_lease(self.lease)
            except NASError as exc:  # it goes stale on its own
                logger.warning("releasing the driver lease of study %r failed: %s", self.study.name, exc)


__all__ = ["DriverLease"]
