"""Storage URLs and connection failures: clear platform errors, masked passwords, chained causes."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_fixtures import postgres_url  # noqa: F401

import nas
from nas.core import ConfigError, StorageError
from nas.store import RDBStorage, mask_url, parse_storage_url, resolve_storage_url
from search_spaces import get_space


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    assert resolve_storage_url() == "sqlite:///nas.db"
    monkeypatch.setenv("NAS_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url() == "sqlite:///env.db"
    assert resolve_storage_url("sqlite:///flag.db") == "sqlite:///flag.db"


def test_default_store_is_nas_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    nas.create_study("here", space="nb201")
    assert (tmp_path / "nas.db").is_file()
    monkeypatch.setenv("NAS_STORAGE", f"sqlite:///{tmp_path / 'env.db'}")
    nas.create_study("there", space="nb201")
    assert [s.info.name for s in nas.list_studies()] == ["there"]


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:hunter2@db/nas",
        "not a url",
        "",
        "postgresql+psycopg2://u:hunter2@h/db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://u:hunter2@h",
    ],
)
def test_bad_urls_are_config_errors_without_secrets(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RDBStorage(url)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "sqlite:///PATH" in message or "SQLite file" in message or "names no database" in message


def test_postgres_schemes_are_normalised_to_psycopg() -> None:
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        assert parse_storage_url(f"{scheme}://u@h/db").drivername == "postgresql+psycopg"
    assert mask_url("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"
    assert "hunter2" not in mask_url("weird://u:hunter2@h@x")


def test_unreachable_server_is_a_storage_error_with_cause() -> None:
    with pytest.raises(StorageError) as caught:
        nas.load_study("s", "postgresql+psycopg://u:hunter2@127.0.0.1:1/nas")
    message = str(caught.value)
    assert "hunter2" not in message and "u:***@127.0.0.1:1" in message and "refused" in message.lower()
    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value, ConfigError)


def test_missing_sqlite_file_or_directory(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no SQLite store"):
        nas.load_study("s", f"sqlite:///{tmp_path / 'nothing.db'}")
    with pytest.raises(StorageError, match="no SQLite store"):
        nas.list_studies(f"sqlite:///{tmp_path / 'nothing.db'}")
    assert not (tmp_path / "nothing.db").exists()
    with pytest.raises(StorageError, match="unable to open") as caught:
        nas.create_study("s", f"sqlite:///{tmp_path / 'no' / 'dir.db'}", space="nb201")
    assert caught.value.__cause__ is not None


def test_load_study_with_a_mismatched_space(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    nas.create_study("s", url, space="nb201")
    assert nas.load_study("s", url, space=get_space("nb201")).space.name == "nb201"
    with pytest.raises(ConfigError, match="searches space 'nb201'"):
        nas.load_study("s", url, space=get_space("fbnet"))


@pytest.mark.postgres
def test_wrong_database_and_role_are_storage_errors(postgres_url: str) -> None:  # noqa: F811
    base = parse_storage_url(postgres_url)
    for url in (
        base.set(database="nas_no_such_database"),
        base.set(username="nas_no_such_role", password="hunter2"),
    ):
        with pytest.raises(StorageError) as caught:
            RDBStorage(url.render_as_string(hide_password=False))
        assert "does not exist" in str(caught.value) and "hunter2" not in str(caught.value)
        assert caught.value.__cause__ is not None
