"""``nas db``, ``nas studies`` and ``nas trials`` on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.cli import main
from nas.store import RDBStorage, head_revision


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def filled(storage_url: str) -> str:  # noqa: F811
    study = nas.create_study(
        "search", storage_url, space="nb201", objectives={"val_accuracy": "max", "latency_ms": "min"}
    )
    for acc, lat in [(70.0, 3.0), (90.0, 5.0), (80.0, 1.0)]:
        study.tell(study.ask(), [acc, lat])
    study.tell(study.ask(), error="boom")
    study.ask()
    nas.create_study("empty", storage_url, space="nb201")
    return storage_url


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, out = run("db", "upgrade", "--storage", url)
    assert code == 0 and f"upgraded from (empty) to {head_revision()}" in out
    code, out = run("db", "upgrade", "--storage", url)
    assert code == 0 and "already at" in out
    code, out = run("db", "current", "--storage", url)
    assert code == 0 and "up to date" in out


def test_old_schema_message_names_the_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    RDBStorage(url, check_schema=False).upgrade("0001_base")
    code, out = run("studies", "--storage", url)
    assert code == 2 and f"nas db upgrade --storage '{url}'" in out
    assert run("db", "upgrade", "--storage", url)[0] == 0
    assert run("studies", "--storage", url)[0] == 0


def test_studies_json_and_table(filled: str) -> None:
    code, out = run("studies", "--storage", filled, "--json")
    assert code == 0
    listed = {s["name"]: s for s in json.loads(out)}
    assert set(listed) == {"search", "empty"}
    search = listed["search"]
    assert search["n_trials"] == 5 and search["trials_by_state"]["COMPLETE"] == 3
    assert search["trials_by_state"]["FAIL"] == 1 and search["trials_by_state"]["RUNNING"] == 1
    assert search["best"] == {"val_accuracy": 90.0, "latency_ms": 1.0}
    assert search["objectives"] == {"val_accuracy": "max", "latency_ms": "min"}
    assert listed["empty"]["best"] == {"val_accuracy": None}
    code, out = run("studies", "--storage", filled)
    assert code == 0 and "search" in out and "empty" in out


def test_trials_json_filters_and_sort(filled: str) -> None:
    code, out = run("trials", "search", "--storage", filled, "--json")
    assert code == 0
    assert [t["number"] for t in json.loads(out)] == [0, 1, 2, 3, 4]
    code, out = run("trials", "search", "--storage", filled, "--json", "--state", "complete", "--limit", "2")
    assert [t["number"] for t in json.loads(out)] == [1, 2]  # the latest two COMPLETE trials
    code, out = run("trials", "search", "--storage", filled, "--json", "--sort", "latency_ms")
    rows = json.loads(out)
    assert [r["values"]["latency_ms"] for r in rows] == [1.0, 3.0, 5.0]
    assert rows[0]["arch"]["space"] == "nb201" and rows[0]["state"] == "COMPLETE"
    code, out = run("trials", "search", "--storage", filled)
    assert code == 0 and "FAIL" in out
    code, out = run("trials", "search", "--storage", filled, "--sort", "loss")
    assert code == 2 and "allowed: 'number'" in out


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    nas.create_study("search", url, space="nb201")
    code, out = run("trials", "serch", "--storage", url)
    assert code == 2 and "Did you mean 'search'" in out and "Traceback" not in out
    code, out = run("studies", "--storage", "postgresql+psycopg://u:hunter2@127.0.0.1:1/db")
    assert code == 2 and "hunter2" not in out and "u:***@" in out
    monkeypatch.setenv("NAS_STORAGE", url)
    code, out = run("studies", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "search"
