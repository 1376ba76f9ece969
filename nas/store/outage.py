"""The database going away: which errors mean "unreachable", and how long to keep trying.

A PostgreSQL server restarted by its operator, a failover or a network blip
must not end a search that has trained for hours. While the server cannot be
reached (connection refused, the connection closed under a statement, an
administrator shutdown, a server still starting up), every transaction of the
store is retried with exponential backoff (:data:`FIRST_DELAY_S` doubling up to
:data:`MAX_DELAY_S`) for a window of :data:`DEFAULT_RETRY_S` seconds, or
``$NAS_DB_RETRY_S``. Each retry is logged at WARNING with the URL's password
masked.

Only a database that *went away* is waited for: until an engine has reached
its server once, a refused connection is reported at once (a wrong host or
port is a mistake to fix, not an outage to sit out).

The window belongs to the *outage*, not to one transaction: the threads of a
driver (the search loop and the lease renewal) all give up
at the same moment, and once the window is spent a transaction that meets the
outage again fails at once instead of waiting another window (the driver's
clean-up then does not hold the user for minutes). The first success ends the
outage. Giving up raises :class:`DatabaseUnavailableError`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from nas.core.errors import ConfigError
from nas.store.errors import DatabaseUnavailableError
from nas.store.url import mask_url

log = logging.getLogger(__name__)

#: Environment variable: seconds to keep retrying while the database is unreachable.
ENV_VAR = "NAS_DB_RETRY_S"
DEFAULT_RETRY_S = 60.0
#: Backoff between retries while the database is unreachable (seconds; doubled each time, capped).
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 4.0

# PostgreSQL SQLSTATEs of a server going away: admin/crash shutdown, cannot connect now (starting up).
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})


def retry_window_s() -> float:
    """``$NAS_DB_RETRY_S`` (default 60): how long an outage is retried before the store gives up."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_RETRY_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 86_400:
        raise ConfigError(f"${ENV_VAR}={text!r} is not allowed; expected seconds between 0 and 86400")
    return value


def is_connection_loss(exc: DBAPIError, backend: str) -> bool:
    """Whether ``exc`` means the server is unreachable (rather than a conflict or a bad statement)."""
    if backend != "postgresql":
        return False  # a SQLite file does not go away; its busy errors are conflicts
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:
        # psycopg reports a refused or timed-out connect without a SQLSTATE.
        return isinstance(exc, OperationalError)
    return sqlstate.startswith("08") or sqlstate in _GONE_STATES


@dataclass
class Outage:
    """One engine's current outage: when it began (shared by every thread using the engine)."""

    url: str
    since: float | None = None
    retries: int = 0
    #: Whether the engine ever reached its server (before that, nothing is retried).
    reached: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def failed(self, what: str, cause: str, attempt_delay: float) -> float:
        """Record a failed attempt; return how long to sleep before the next, or raise when the window is spent."""
        window = retry_window_s()
        with self._lock:
            now = time.monotonic()
            if self.since is None:
                self.since = now
            self.retries += 1
            elapsed = now - self.since
            left = window - elapsed
        if left <= 0:
            raise DatabaseUnavailableError(
                f"the database {self.url} has been unreachable for {elapsed:.0f} s ({self.retries} attempts "
                f"with backoff, ${ENV_VAR}={window:g}); {what} failed: {cause}"
            )
        delay = min(attempt_delay, left)
        log.warning(
            "database %s unreachable (%s); %s: retry in %.1f s (giving up %.0f s after the outage began)",
            self.url,
            cause,
            what,
            delay,
            window,
        )
        return delay

    def ended(self) -> None:
        """A transaction succeeded: the outage (if any) is over."""
        self.reached = True
        if self.since is None:
            return
        with self._lock:
            since, self.since, retries, self.retries = self.since, None, self.retries, 0
        if since is not None:
            log.warning(
                "database %s reachable again after %.1f s (%d retries)",
                self.url,
                time.monotonic() - since,
                retries,
            )


_OUTAGES: weakref.WeakKeyDictionary[Engine, Outage] = weakref.WeakKeyDictionary()
_OUTAGES_LOCK = threading.Lock()


def outage_of(engine: Engine) -> Outage:
    """The outage record of ``engine`` (one per engine, created on first use)."""
    found = _OUTAGES.get(engine)
    if found is None:
        with _OUTAGES_LOCK:
            found = _OUTAGES.get(engine)
            if found is None:
                found = _OUTAGES[engine] = Outage(mask_url(engine.url))
    return found


def next_delay(delay: float) -> float:
    """The backoff after ``delay``: doubled, capped at :data:`MAX_DELAY_S`."""
    return min(delay * 2, MAX_DELAY_S)


__all__ = [
    "DEFAULT_RETRY_S",
    "ENV_VAR",
    "Outage",
    "is_connection_loss",
    "next_delay",
    "outage_of",
    "retry_window_s",
]
