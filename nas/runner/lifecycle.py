"""A study's life cycle as its driver sees it: running, then finished or interrupted.

The driver marks its study ``running`` and keeps its heartbeat fresh (the
renewal of its lease, :class:`~nas.runner.lease.DriverLease`) while it works, ``finished`` when
the phase met its budget, and ``interrupted`` after Ctrl+C (SIGINT) or
SIGTERM. A stop is clean: Ray Tune stops the running trials (the same way
its own Ctrl+C handler does), trials that finished meanwhile keep their
results, and every trial still RUNNING is marked FAIL and re-queued exactly
as a rerun re-queues the trials of a dead driver, so running the same
command again resumes the study. A driver that dies without a word
(SIGKILL) stops beating, and its study reads as ``stale``
(:mod:`nas.store.liveness`) until a rerun resumes it.

A second Ctrl+C does not wait for the trials: it raises
:class:`KeyboardInterrupt` at once (the study is still marked interrupted).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from nas.core.errors import NASError
from nas.store.errors import DatabaseUnavailableError
from nas.store.records import StudyStatus

logger = logging.getLogger(__name__)

#: The signals that interrupt a search cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "Ctrl+C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class SearchInterrupted(NASError):
    """The search stopped on a signal; the study is ``interrupted`` and resumes with the same command."""

    def __init__(self, study: str, signum: int, finished: int, total: int | None) -> None:
        self.study, self.signum = study, signum
        of = f" of {total}" if total is not None else ""
        super().__init__(
            f"study {study!r} interrupted by {_NAMES.get(signum, f'signal {signum}')} with {finished}{of} "
            "trials finished and none left running; run the same command again to resume it"
        )

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by a signal: 128 + its number (130 for SIGINT)."""
        return 128 + self.signum


class StopRequest:
    """Set by the first SIGINT/SIGTERM; every part of the search asks it before starting more work."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.event.is_set()

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    @contextlib.contextmanager
    def catching(self) -> Iterator[StopRequest]:
        """Turn SIGINT and SIGTERM into a clean stop while the search runs (main thread only).

        Ray Tune's own SIGINT handler is switched off (it would end the Tune run
        silently, as if the budget were met); ours asks Tune to stop the same way,
        through the SIGUSR1 handler Tune installs for that purpose.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

        def handler(signum: int, frame: Any) -> None:
            if self.is_set():  # the second one: no more waiting
                for number, old in previous.items():
                    signal.signal(number, old)
                raise KeyboardInterrupt
            self.request(signum)
            logger.warning("stopping the search: ending running trials (press Ctrl+C again to quit now)")
            tune_stop = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
            if callable(tune_stop):  # inside a Tune run: stop it as Tune's own Ctrl+C would
                tune_stop(signum, frame)

        with scoped_env("TUNE_DISABLE_SIGINT_HANDLER", "1"):
            for signum in STOP_SIGNALS:
                signal.signal(signum, handler)
            try:
                yield self
            finally:
                for signum, old in previous.items():
                    signal.signal(signum, old)


@contextlib.contextmanager
def scoped_env(name: str, value: str) -> Iterator[None]:
    """``$name`` set to ``value`` inside the block, as it was (or unset) after: Ray Tune reads
    its switches from the environment, and a search must not leave them set for the caller."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def tune_stopper(stop: StopRequest) -> Any:
    """A Tune ``Stopper`` that ends the whole run once a stop was requested (the handler's backstop)."""
    from ray.tune.stopper import Stopper

    class StopOnRequest(Stopper):  # type: ignore[misc, valid-type]
        def __init__(self, stop: StopRequest) -> None:
            self.stop = stop

        # Tune pickles its run config into the experiment state; the request (a lock) stays here.
        def __getstate__(self) -> dict[str, Any]:
            return {}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.stop = StopRequest()

        def __call__(self, trial_id: str, result: dict) -> bool:
            return self.stop.is_set()

        def stop_all(self) -> bool:
            return self.stop.is_set()

    return StopOnRequest(stop)


def settle(study: Any, stop: StopRequest, error: BaseException | None) -> None:
    """The study's status after its driver's run: finished, interrupted, or failed (on an error).

    Unless the run ended normally, every trial still RUNNING is marked FAIL and
    re-queued first, so that nothing is left RUNNING and a rerun runs it again.
    After the database stayed unreachable nothing is written (it would only
    wait for the database again).
    """
    if error is None and not stop.is_set():
        study.finish(StudyStatus.FINISHED)
        return
    if isinstance(error, DatabaseUnavailableError):
        # Nothing can be recorded: the study reads as stale, and a rerun re-queues its running trials.
        return
    interrupted = stop.is_set() or isinstance(error, KeyboardInterrupt)
    reason = (
        "interrupted: the search was stopped (Ctrl+C or SIGTERM) while this trial ran; re-queued"
        if interrupted
        else f"the driver stopped on an error while this trial ran ({type(error).__name__}); re-queued"
    )
    try:
        study.fail_stale_trials(0, requeue=True, reason=reason)
        study.finish(StudyStatus.INTERRUPTED if interrupted else StudyStatus.FAILED)
    except NASError as exc:  # the store itself may be what failed: the study then reads as stale
        logger.error("could not record how study %r ended: %s", study.name, exc)


__all__ = ["STOP_SIGNALS", "SearchInterrupted", "StopRequest", "settle", "tune_stopper"]
