"""Passwords in storage URLs: never stored in a study's config, never printed in a pasteable hint.

A search config's ``storage:`` may hold ``postgresql+psycopg://u:secret@host/db``;
the config is stored with the study and shown to every reader of the store
(dashboard, exports), so the store's write path masks every URL password.
The commands ``nas search`` suggests afterwards leave the password out (a
masked ``***`` would not connect when pasted): libpq then reads it from
``~/.pgpass``, which is checked here against the local PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.cli.search import next_steps
from nas.store.engine import make_engine
from nas.store.schema import studies
from nas.store.testing import temporary_schema
from nas.store.url import has_password, mask_secrets, parse_storage_url, without_password

SECRET = "s3cr3t-pw"
PG_WITH_PASSWORD = f"postgresql+psycopg://alice:{SECRET}@db.example:5432/nas"


def test_password_urls_are_found_and_masked() -> None:
    assert has_password(PG_WITH_PASSWORD)
    assert has_password(f"https://bob:{SECRET}@data.example/cifar.tgz")
    assert has_password(f"see s3://k:{SECRET}@bucket/x for the data")  # not one URL: found anyway
    for plain in ("sqlite:///nas.db", "postgresql+psycopg://alice@db/nas", "mail a@b.org", "x: y", ""):
        assert not has_password(plain), plain
    masked = mask_secrets(
        {
            "storage": PG_WITH_PASSWORD,
            "dataset": {"mirrors": ["https://m.example/a", f"https://bob:{SECRET}@data.example/b"]},
            "seed": 3,
            "note": "keep me: a@b",
        }
    )
    assert SECRET not in json.dumps(masked)
    assert masked["storage"] == "postgresql+psycopg://alice:***@db.example:5432/nas"
    assert masked["dataset"]["mirrors"] == ["https://m.example/a", "https://bob:***@data.example/b"]
    assert (masked["seed"], masked["note"]) == (3, "keep me: a@b")


def test_config_row_never_holds_a_password(storage_url: str) -> None:  # noqa: F811
    config = {"name": "s", "storage": PG_WITH_PASSWORD, "extra": [f"https://bob:{SECRET}@h/x"]}
    study = nas.create_study("s", storage_url, space="nb201", config=config)
    assert study.config["storage"] == "postgresql+psycopg://alice:***@db.example:5432/nas"
    assert nas.load_study("s", storage_url).config["extra"] == ["https://bob:***@h/x"]
    # The raw column, as any reader of the database sees it.
    engine = make_engine(parse_storage_url(storage_url))
    try:
        with engine.connect() as connection:
            (raw,) = connection.execute(studies.select().with_only_columns(studies.c.config)).one()
    finally:
        engine.dispose()
    assert SECRET not in raw and "alice:***@" in raw


def test_search_hints_leave_the_password_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    lines = next_steps("cifar", PG_WITH_PASSWORD)
    shown = "\n".join(lines)
    assert SECRET not in shown and "***" not in shown
    assert "nas dashboard --storage postgresql+psycopg://alice@db.example:5432/nas" in lines
    assert "~/.pgpass" in lines[-1] and "NAS_STORAGE" in lines[-1]
    # The password came from $NAS_STORAGE: the pasted commands need no --storage at all.
    monkeypatch.setenv("NAS_STORAGE", PG_WITH_PASSWORD)
    lines = next_steps("cifar", PG_WITH_PASSWORD)
    assert "nas dashboard" in lines and SECRET not in "\n".join(lines) and "$NAS_STORAGE" in lines[-1]
    # No password: the URL as it is, quoted for the shell when it must be, no note.
    assert next_steps("my study", "sqlite:///runs/nas.db") == [
        "nas trials 'my study' --storage sqlite:///runs/nas.db",
        "nas dashboard --storage sqlite:///runs/nas.db",
        "nas export 'my study' --best --format all --out 'exports/my study' --storage sqlite:///runs/nas.db",
    ]


def test_a_url_without_password_passes_none_to_the_driver() -> None:
    """No password key reaches psycopg (not even an empty one), so libpq falls back to ~/.pgpass."""
    url = parse_storage_url(without_password(PG_WITH_PASSWORD))
    assert url.password is None and url.username == "alice"
    engine = make_engine(url)
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    assert "password" not in kwargs and kwargs["user"] == "alice"


@pytest.fixture
def role_with_password(postgres_url: str) -> Iterator[tuple[str, str]]:  # noqa: F811
    """A login role with a password on the local server, dropped afterwards."""
    role, password = f"nas_pw_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    try:
        yield role, password
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_the_printed_url_connects_with_the_password_from_pgpass(
    postgres_url: str,  # noqa: F811
    role_with_password: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The URL of the hint connects, and libpq took the password from the password file.

    The local test server trusts 127.0.0.1, so it does not check the password;
    what is checked is that the connection libpq opened carries the password
    it read from ``$PGPASSFILE`` (libpq's ``PQpass``), i.e. the fallback the
    hint promises works with the URL exactly as printed.
    """
    role, password = role_with_password
    server = parse_storage_url(postgres_url)
    full = server.set(username=role, password=password).render_as_string(hide_password=False)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    (printed,) = [line for line in next_steps("s", full) if line.startswith("nas dashboard")]
    assert password not in printed
    url = printed.split("--storage ", 1)[1]
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{server.host}:{server.port or 5432}:{server.database}:{role}:{password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    engine = make_engine(parse_storage_url(url))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar_one() == role
            assert connection.connection.dbapi_connection.info.password == password
    finally:
        engine.dispose()


@pytest.mark.ray
@pytest.mark.slow
def test_nas_search_with_a_password_in_the_yaml(
    postgres_url: str,  # noqa: F811
    role_with_password: tuple[str, str],
    tmp_path: Path,
) -> None:
    """End to end: the YAML's ``storage:`` holds a password; nothing stores or prints it, the hint works."""
    role, password = role_with_password
    plugins = Path(__file__).parent / "plugins"
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_STORAGE", "PGPASSWORD", "PGPASSFILE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    with temporary_schema(postgres_url) as schema_url:
        parsed = parse_storage_url(schema_url)
        schema = parsed.query["options"].split("=", 1)[1]
        admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO {role}'))
        admin.dispose()
        url = parsed.set(username=role, password=password).render_as_string(hide_password=False)
        config = {
            "name": "pw",
            "plugins": ["nas_test_plugins"],
            "space": {"name": "nb201", "channels": 4, "cells": 1},
            "strategy": {"name": "random"},
            "evaluator": {"name": "curve"},
            "budget": {"trials": 2, "concurrent": 1},
            "storage": url,
        }
        path = tmp_path / "pw.yaml"
        path.write_text(yaml.safe_dump(config))
        search = [sys.executable, "-m", "nas.cli", "search", str(path), "--quiet"]
        done = subprocess.run(search, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert password not in done.stdout + done.stderr and "***" not in done.stdout
        assert "~/.pgpass" in done.stdout

        stored = nas.load_study("pw", storage=url).config
        assert password not in json.dumps(stored) and f"{role}:***@" in stored["storage"]

        # Paste the suggested command: the password comes from the password file.
        (line,) = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("nas trials")]
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"*:*:*:{role}:{password}\n")
        pgpass.chmod(0o600)
        pasted = [sys.executable, "-m", "nas.cli", *shlex.split(line)[1:]]
        listed = subprocess.run(
            pasted, env={**env, "PGPASSFILE": str(pgpass)}, capture_output=True, text=True, timeout=120
        )
        assert listed.returncode == 0, listed.stderr[-3000:]
        assert "COMPLETE" in listed.stdout.upper()
