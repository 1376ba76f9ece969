"""Storage URLs: resolution of the default, validation, and password masking.

One function decides which database the platform talks to
(:func:`resolve_storage_url`), so the CLI, the runner and the dashboard all
agree: an explicit URL, else ``$NAS_STORAGE``, else ``sqlite:///nas.db`` in the
working directory. URLs are validated here, before any driver sees them, so a
typo gives a message naming the allowed schemes rather than a driver
traceback, and every URL that reaches a log line or an error message is masked.
Passwords never reach a study's stored config either (:func:`mask_secrets`),
and a URL printed for the user to paste leaves the password out
(:func:`without_password`) so that libpq reads it from ``~/.pgpass``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from nas.core.errors import ConfigError

#: Environment variable naming the default storage URL.
ENV_VAR = "NAS_STORAGE"
#: The embedded default: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///nas.db"
#: Environment variable naming where trial artifacts (weights, checkpoints) are written.
ARTIFACTS_ENV_VAR = "NAS_ARTIFACTS"

#: Scheme written by the user -> SQLAlchemy driver name we use. Bare
#: ``postgresql://`` would mean psycopg2 to SQLAlchemy; we ship psycopg 3.
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
#: ``scheme://user:password@``, for text SQLAlchemy cannot parse as one URL.
_USERINFO_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:[^\s@]*@")
ALLOWED_SCHEMES = ("sqlite:///PATH", "postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DB")


def resolve_storage_url(url: str | None = None) -> str:
    """The storage URL to use: ``url`` if given, else ``$NAS_STORAGE``, else ``sqlite:///nas.db``."""
    if url is not None:
        return url
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def mask_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***`` (safe for logs and error messages)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Unparseable: drop anything between "://" and "@" that could hold a secret.
        head, sep, rest = str(url).partition("://")
        if sep and "@" in rest:
            rest = "***@" + rest.rsplit("@", 1)[1]
        return f"{head}{sep}{rest}"


def has_password(text: str) -> bool:
    """Whether ``text`` is (or, if not one parseable URL, contains) a URL carrying a password."""
    if "://" not in text or "@" not in text:
        return False
    try:
        return make_url(text).password is not None
    except (ArgumentError, ValueError):
        return _USERINFO_WITH_PASSWORD.search(text) is not None


def mask_secrets(value: Any) -> Any:
    """``value`` (JSON-like: mappings, lists, strings...) with every URL password masked by :func:`mask_url`.

    A study's config is stored and shown (dashboard, exports) to whoever can
    read the store, so the password of its ``storage:`` URL, or of any other
    URL in it, must not be kept there.
    """
    if isinstance(value, str):
        return mask_url(value) if has_password(value) else value
    if isinstance(value, Mapping):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def without_password(url: str | URL) -> str:
    """``url`` with its password left out: what to print for a user to paste.

    Unlike :func:`mask_url`'s ``***``, a URL without a password still
    connects: libpq then takes the password from ``$PGPASSWORD`` or
    ``~/.pgpass`` (SQLAlchemy passes no password to the driver at all).
    """
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError):
        return mask_url(url)
    # ``URL.set(password=None)`` would keep the password: None means "unchanged" there.
    return parsed._replace(password=None).render_as_string(hide_password=False)


def parse_storage_url(url: str) -> URL:
    """Validate ``url`` and normalise its driver; raise :class:`ConfigError` if it is not allowed."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"storage URL {url!r} is empty; allowed: {', '.join(ALLOWED_SCHEMES)}")
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"storage URL {mask_url(url)!r} is malformed; allowed: {', '.join(ALLOWED_SCHEMES)}"
        ) from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            f"storage URL {mask_url(parsed)!r} has scheme {parsed.drivername!r}; "
            f"allowed: {', '.join(ALLOWED_SCHEMES)}"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise ConfigError(
                f"storage URL {mask_url(parsed)!r} is not a SQLite file; several processes must share the "
                "store, so use a file path such as 'sqlite:///nas.db'"
            )
    elif not parsed.database:
        raise ConfigError(f"storage URL {mask_url(parsed)!r} names no database; expected .../DBNAME")
    return parsed


def with_absolute_file(parsed: URL) -> tuple[URL, Path | None]:
    """A SQLite URL with its database file made absolute, and that file (``None`` for other backends).

    Absolute, so that a store opened from another working directory (a Ray
    worker's, the dashboard's) is the same file.
    """
    if parsed.get_backend_name() != "sqlite":
        return parsed, None
    path = Path(parsed.database or "").expanduser().resolve()
    return parsed.set(database=str(path)), path


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (``None`` for other backends and in-memory SQLite)."""
    parsed = parse_storage_url(url)
    if parsed.database in (None, "", ":memory:"):
        return None
    return with_absolute_file(parsed)[1]


def artifacts_root(url: str) -> Path:
    """Where the artifacts of the store at ``url`` go: ``$NAS_ARTIFACTS``, else beside a SQLite file
    (``<db stem>_artifacts``), else ``./nas_artifacts``.

    One rule for the driver that writes artifacts and for export, which must
    never write into them.
    """
    if os.environ.get(ARTIFACTS_ENV_VAR):
        return Path(os.environ[ARTIFACTS_ENV_VAR]).expanduser().resolve()
    db = sqlite_file(url)
    if db is not None:
        return db.with_name(f"{db.stem}_artifacts")
    return Path("nas_artifacts").resolve()


def artifact_dir(root: Path, *parts: str) -> Path:
    """The folder ``root/part/...``, proven to lie inside ``root`` (resolved, symlinks followed).

    Study names become folder names; whatever a name holds, a trial's files
    never land outside the artifacts root.
    """
    base = Path(root).resolve()
    folder = base.joinpath(*parts).resolve()
    if not folder.is_relative_to(base):
        raise ConfigError(
            f"artifact folder {'/'.join(parts)!r} would lie outside the artifacts root {base}; "
            "a study name may not lead out of it"
        )
    return folder
