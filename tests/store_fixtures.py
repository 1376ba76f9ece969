"""Fixtures of the store tests: one store per test on every backend.

Imported by the ``test_store*`` modules (``from store_fixtures import ...``)
rather than living in ``conftest.py``. SQLite always runs; PostgreSQL runs
when ``NAS_TEST_POSTGRES_URL`` is set, each test in a schema of its own. When
the variable is unset the PostgreSQL cases skip with the reason, except in
CI (``CI`` set), where they fail: CI must never silently skip PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.store.testing import POSTGRES_ENV_VAR, postgres_test_url, temporary_schema

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = postgres_test_url()
    if url is None:
        message = (
            f"PostgreSQL tests need {POSTGRES_ENV_VAR}, e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test (.ci/run sets it)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}; it is unset in CI, where these tests must not skip")
        pytest.skip(message)
    return url


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'store.db'}"


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with temporary_schema(request.getfixturevalue("postgres_url")) as url:
            yield url


@pytest.fixture(scope="session")
def nb201():
    from search_spaces import get_space

    return get_space("nb201")
