"""Schema migrations: upgrade from the first revision with data, refusal of old/new/foreign schemas."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.core import StorageError, TrialState
from nas.store import RDBStorage, SchemaOutOfDateError, head_revision, revisions
from nas.store.testing import downgrade, run_sql, schema_differences

GENOTYPE = '{"space":"nb201","decisions":{"1<-0":"nor_conv_3x3","2<-0":"none","2<-1":"skip_connect","3<-0":"none","3<-1":"none","3<-2":"avg_pool_3x3"}}'


def _time(url: str, text: str) -> str:
    return text if url.startswith("sqlite") else f"{text}+00"


def _fill_first_revision(url: str) -> None:
    """Rows as the code of revision 0001 wrote them (that code is gone, so plain SQL)."""
    t0, t1 = _time(url, "2024-01-01 10:00:00.000000"), _time(url, "2024-01-01 11:00:00.000000")
    study = "(SELECT id FROM studies WHERE name = 'old')"
    trial = f"(SELECT id FROM trials WHERE study_id = {study} AND number = :n)"
    run_sql(
        url,
        "INSERT INTO studies (name, space, space_options, objectives, config, status, next_trial_number, "
        "created_at) VALUES ('old', 'nb201', '{}', :objectives, :config, 'running', 2, :t0)",
        {"t0": t0, "objectives": '[["val_accuracy","max"]]', "config": '{"k":1}'},
    )
    run_sql(
        url,
        "INSERT INTO architectures (space, canonical_key, genotype, created_at) VALUES ('nb201', 'nb201:abc', :g, :t0)",
        {"g": GENOTYPE, "t0": t0},
    )
    run_sql(
        url,
        "INSERT INTO trials (study_id, number, architecture_id, genotype, seed, budget, state, user_attrs, "
        f"node, created_at, started_at, finished_at) VALUES ({study}, :n, "
        "(SELECT id FROM architectures WHERE canonical_key = 'nb201:abc'), :g, :seed, 12, :state, :attrs, "
        ":node, :t0, :t0, :t1)",
        [
            {
                "n": 0,
                "g": GENOTYPE,
                "seed": 3,
                "state": "COMPLETE",
                "attrs": '{"note":"x"}',
                "node": "n1",
                "t0": t0,
                "t1": t1,
            },
            {
                "n": 1,
                "g": GENOTYPE,
                "seed": 4,
                "state": "RUNNING",
                "attrs": "{}",
                "node": "n2",
                "t0": t0,
                "t1": None,
            },
        ],
    )
    run_sql(
        url,
        f"INSERT INTO trial_values (trial_id, objective, study_id, value, score) VALUES ({trial}, 'val_accuracy', {study}, 71.5, -71.5)",
        {"n": 0},
    )
    run_sql(
        url,
        f"INSERT INTO trial_metrics (trial_id, name, step, value) VALUES ({trial}, 'loss', :step, :value)",
        [
            {"n": 0, "step": 0, "value": 2.0},
            {"n": 0, "step": 1, "value": 1.0},
            {"n": 1, "step": 0, "value": None},
        ],
    )
    run_sql(
        url,
        f"INSERT INTO artifacts (trial_id, kind, uri, sha256, created_at) VALUES ({trial}, 'weights', 'file:///w.pt', NULL, :t1)",
        {"n": 0, "t1": t1},
    )


def test_upgrade_from_first_revision_keeps_every_row(storage_url: str) -> None:  # noqa: F811
    first = revisions()[0]
    assert first == "0001_base" and head_revision() != first
    store = RDBStorage(storage_url, check_schema=False)
    assert store.schema_revision() is None
    assert store.upgrade(first) == (None, first)
    _fill_first_revision(storage_url)

    with pytest.raises(SchemaOutOfDateError, match="run `nas db upgrade --storage '") as caught:
        RDBStorage(storage_url)
    assert first in str(caught.value) and head_revision() in str(caught.value)
    with pytest.raises(SchemaOutOfDateError):
        nas.load_study("old", storage_url)

    assert store.upgrade() == (first, head_revision())
    assert schema_differences(storage_url) == []
    study = nas.load_study("old", storage_url)
    assert study.config == {"k": 1}
    done, running = study.trials()
    assert (done.state, done.values, done.seed, done.budget) == (
        TrialState.COMPLETE,
        {"val_accuracy": 71.5},
        3,
        12.0,
    )
    assert (
        done.user_attrs == {"note": "x"}
        and done.arch.space == "nb201"
        and done.arch["1<-0"] == "nor_conv_3x3"
    )
    assert done.finished_at.isoformat() == "2024-01-01T11:00:00+00:00"
    assert study.metrics(done) == {"loss": [(0, 2.0), (1, 1.0)]}
    assert [a.uri for a in study.artifacts(done)] == ["file:///w.pt"]
    # 0002 backfilled the RUNNING trial's heartbeat from its start, so a new driver fails and re-queues it.
    assert [t.number for t in study.fail_stale_trials(grace_s=3600)] == [running.number]
    retry = study.trial(study.ask().number)
    assert retry.number == 2 and (retry.user_attrs, retry.system_attrs) == ({}, {"retry_of": 1})
    store.close()


#: The platform's bookkeeping as revision 0002 kept it: magic keys in the users' attributes.
SYSTEM_ATTRS = {
    "retry_of": 0,
    "kind": "derived",
    "method": "darts",
    "derived_from": 0,
    "reused_from": {"study": "a", "trial": 1},
    "workers": [["n1", 7]],
}


def test_upgrade_to_0003_moves_the_platform_keys_to_system_attrs_and_back(storage_url: str) -> None:  # noqa: F811
    store = RDBStorage(storage_url, check_schema=False)
    store.upgrade("0001_base")
    _fill_first_revision(storage_url)
    assert store.upgrade("0002_heartbeats") == ("0001_base", "0002_heartbeats")
    mixed = {"note": "mine", "kinds": 2, "test_accuracy": 90.5, **SYSTEM_ATTRS}
    run_sql(storage_url, "UPDATE trials SET user_attrs = :a WHERE number = 1", {"a": json.dumps(mixed)})

    assert store.upgrade("0003_system_attrs") == ("0002_heartbeats", "0003_system_attrs")
    assert store.upgrade() == ("0003_system_attrs", head_revision())
    assert schema_differences(storage_url) == []
    study = nas.load_study("old", storage_url)
    done, moved = study.trials()
    assert (done.user_attrs, done.system_attrs) == ({"note": "x"}, {})
    assert moved.user_attrs == {"note": "mine", "kinds": 2, "test_accuracy": 90.5}
    assert moved.system_attrs == SYSTEM_ATTRS
    assert done.values == {"val_accuracy": 71.5} and study.metrics(done) == {"loss": [(0, 2.0), (1, 1.0)]}
    study.close()

    downgrade(storage_url, "0002_heartbeats")
    assert store.schema_revision() == "0002_heartbeats"
    rows = dict(run_sql(storage_url, "SELECT number, user_attrs FROM trials ORDER BY number"))
    assert {n: json.loads(text) for n, text in rows.items()} == {0: {"note": "x"}, 1: mixed}
    assert run_sql(storage_url, "SELECT count(*) FROM trial_values")[0][0] == 1
    assert run_sql(storage_url, "SELECT count(*) FROM trial_metrics")[0][0] == 3
    store.close()


def test_new_database_is_created_at_head_and_matches_the_schema_module(storage_url: str) -> None:  # noqa: F811
    with ThreadPoolExecutor(4) as pool:  # several openers race to create the schema
        stores = list(pool.map(lambda _: RDBStorage(storage_url), range(4)))
    assert {s.schema_revision() for s in stores} == {head_revision()}
    assert schema_differences(storage_url) == []
    for store in stores:
        store.close()


def test_newer_schema_is_refused(storage_url: str) -> None:  # noqa: F811
    RDBStorage(storage_url).close()
    run_sql(storage_url, "UPDATE alembic_version SET version_num = '0099_future'")
    with pytest.raises(SchemaOutOfDateError, match="newer version"):
        RDBStorage(storage_url)
    with pytest.raises(SchemaOutOfDateError, match="newer version"):
        RDBStorage(storage_url, check_schema=False).upgrade()


def test_foreign_database_is_refused(storage_url: str) -> None:  # noqa: F811
    run_sql(storage_url, "CREATE TABLE payroll (id INTEGER PRIMARY KEY)")
    with pytest.raises(StorageError, match="has tables but no nas schema version"):
        nas.create_study("s", storage_url, space="nb201")


def test_unknown_revision_is_refused(storage_url: str) -> None:  # noqa: F811
    with pytest.raises(StorageError, match="unknown schema revision 'latest'"):
        RDBStorage(storage_url, check_schema=False).upgrade("latest")


def test_upgrade_to_0006_masks_the_passwords_older_versions_stored_in_configs(storage_url: str) -> None:  # noqa: F811
    store = RDBStorage(storage_url, check_schema=False)
    store.upgrade("0005_study_heartbeat")
    plain = {
        "storage": "postgresql+psycopg://nas:s3cret@db.example:5432/nas",
        "notes": ["see postgresql://bob:hunter2@h/x for the old runs", "no url here"],
        "budget": 12,
    }
    clean = {"storage": "sqlite:///nas.db", "strategy": {"name": "random", "at": "user@host"}}
    for name, config in (("old", plain), ("clean", clean)):
        run_sql(
            storage_url,
            "INSERT INTO studies (name, space, space_options, objectives, config, status, "
            "next_trial_number, created_at) VALUES (:n, 'nb201', '{}', '[[\"acc\",\"max\"]]', :c, 'finished', 0, :t0)",
            {"n": name, "c": json.dumps(config), "t0": _time(storage_url, "2024-01-01 10:00:00.000000")},
        )
    clean_text = run_sql(storage_url, "SELECT config FROM studies WHERE name = 'clean'")[0][0]

    assert store.upgrade("0006_mask_config_passwords") == (
        "0005_study_heartbeat",
        "0006_mask_config_passwords",
    )
    rows = dict(run_sql(storage_url, "SELECT name, config FROM studies"))
    assert "s3cret" not in rows["old"] and "hunter2" not in rows["old"]
    assert json.loads(rows["old"]) == {
        "storage": "postgresql+psycopg://nas:***@db.example:5432/nas",
        "notes": ["see postgresql://***@h/x for the old runs", "no url here"],
        "budget": 12,
    }
    assert rows["clean"] == clean_text  # untouched, byte for byte
    store.upgrade()
    assert nas.load_study("old", storage_url).config == json.loads(rows["old"])

    downgrade(storage_url, "0005_study_heartbeat")  # a no-op: the passwords are gone for good
    assert store.schema_revision() == "0005_study_heartbeat"
    assert dict(run_sql(storage_url, "SELECT name, config FROM studies")) == rows
    store.close()
