"""Storage URL helpers for the local cluster script (``deploy/local/cluster.sh``).

The script must hand database credentials to ``psql`` and to the dashboard
without putting them on a command line (every user of the machine can read
``ps``) or in a log. This module turns the owner's ``NAS_STORAGE`` URL into
the forms those tools take:

* ``pgenv``: libpq environment variables (``PGHOST``, ``PGPASSWORD``, ...) as
  ``export`` lines for ``eval`` in a subshell, so ``psql`` connects with no
  argument, and ``NAS_STORE_SCHEMA``, the schema the store lives in
  (``search_path`` of the URL's ``options``, else ``public``), which the
  read-only role must be granted;
* ``schema``: that schema alone;
* ``readonly-url``: the same database reached as the read-only role, written to
  a file created with mode 0600 (never printed).

It uses SQLAlchemy's URL parser, the one the platform itself uses, so the
script reads URLs exactly as ``nas`` does.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Sequence

from sqlalchemy.engine import URL, make_url

from nas.core.errors import ConfigError
from nas.store.url import mask_url, parse_storage_url

_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([^\s,]+)")


def postgres_url(url: str) -> URL:
    """``url`` parsed, refusing anything but PostgreSQL (a cluster cannot share a SQLite file)."""
    parsed = parse_storage_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"storage URL {mask_url(parsed)!r} is not PostgreSQL; the cluster's nodes, driver and "
            "dashboard share one database: use postgresql+psycopg://USER@HOST:5432/DB"
        )
    return parsed


def schema_of(url: str) -> str:
    """The schema of the store: the first ``search_path`` entry in the URL's ``options``, else ``public``."""
    options = postgres_url(url).query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    match = _SEARCH_PATH.search(options)
    return match.group(1).strip('"') if match else "public"


def libpq_environment(url: str) -> dict[str, str]:
    """libpq's environment variables for ``url`` (what ``psql`` reads when given no connection string)."""
    parsed = postgres_url(url)
    query = {key: value if isinstance(value, str) else value[-1] for key, value in parsed.query.items()}
    env = {
        "PGHOST": parsed.host or query.get("host", ""),
        "PGPORT": str(parsed.port or query.get("port", "")),
        "PGUSER": parsed.username or "",
        "PGPASSWORD": parsed.password or "",
        "PGDATABASE": parsed.database or "",
        "PGOPTIONS": query.get("options", ""),
        "PGCONNECT_TIMEOUT": query.get("connect_timeout", "10"),
    }
    return {key: value for key, value in env.items() if value}


def readonly_url(url: str, user: str, password: str) -> str:
    """``url`` with the read-only role's credentials instead of the owner's (same host, database, schema)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", user):
        raise ConfigError(
            f"read-only role name {user!r} is not allowed; use lower-case letters, digits and '_' "
            "(at most 63 characters, not starting with a digit)"
        )
    if not password:
        raise ConfigError("the read-only role needs a non-empty password")
    parsed = make_url(url).set(username=user, password=password)
    return parsed.render_as_string(hide_password=False)


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to a new file only its owner can read (replacing an older one)."""
    if os.path.exists(path):
        os.remove(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("pgenv", help="print libpq variables for NAS_STORAGE as export lines")
    commands.add_parser("schema", help="print the schema of NAS_STORAGE")
    readonly = commands.add_parser("readonly-url", help="write the read-only role's URL to a 0600 file")
    readonly.add_argument("--user", required=True)
    readonly.add_argument("--password-file", required=True, help="file holding the role's password")
    readonly.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    url = os.environ.get("NAS_STORAGE", "")
    try:
        if args.command == "pgenv":
            for key, value in libpq_environment(url).items():
                print(f"export {key}={shlex.quote(value)}")
            print(f"NAS_STORE_SCHEMA={shlex.quote(schema_of(url))}")
        elif args.command == "schema":
            print(schema_of(url))
        else:
            with open(args.password_file, encoding="utf-8") as handle:
                password = handle.read().strip()
            postgres_url(url)
            _write_private(args.out, readonly_url(url, args.user, password) + "\n")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
