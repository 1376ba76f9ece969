"""The driver's hold on its study: take the lease at open, keep it fresh, give it up at exit.

The lease itself is a store record (:mod:`nas.store.lease`); this is the
driver's side of it: a daemon thread renews the heartbeat every
:data:`~nas.runner.recovery.HEARTBEAT_S` seconds, so a crashed driver's lease
goes stale after :data:`LEASE_STALE_S` and a rerun takes over. If the lease is
lost anyway (the driver stalled for longer than that and another took over),
:attr:`DriverLease.lost` is set and the searcher stops proposing trials.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from nas.core.errors import NASError
from nas.runner.recovery import HEARTBEAT_S, STALE_AFTER_S

logger = logging.getLogger(__name__)

#: A lease whose heartbeat is older than this (seconds) belongs to a dead driver and may be taken over.
LEASE_STALE_S = STALE_AFTER_S


class DriverLease(threading.Thread):
    """Holds the study's driver lease from construction until :meth:`release`."""

    def __init__(self, study: Any, *, stale_s: float = LEASE_STALE_S, every_s: float = HEARTBEAT_S) -> None:
        super().__init__(name="nas-driver-lease", daemon=True)
        self.study, self.every_s = study, every_s
        self.lease = study.acquire_lease(stale_s)  # StudyBusyError names the live driver
        self.lost = False
        self._stop_event = threading.Event()
        self.start()

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

    def release(self) -> None:
        """Stop the heartbeat and delete the lease (unless another driver holds it now)."""
        self._stop_event.set()
        self.join(timeout=10.0)
        if not self.lost:
            try:
                self.study.release_lease(self.lease)
            except NASError as exc:  # it goes stale on its own
                logger.warning("releasing the driver lease of study %r failed: %s", self.study.name, exc)


__all__ = ["LEASE_STALE_S", "DriverLease"]
