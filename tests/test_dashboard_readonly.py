"""The dashboard's read-only store access (nas/store/readonly.py) on SQLite and PostgreSQL.

Every aggregate query is checked against the same answer computed in Python
from the Study API, on a small study with ties, failures and running trials.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from store_fixtures import BACKENDS, postgres_url, sqlite_url, storage_url  # noqa: F401  (fixtures)

import nas
from dashboard.charts import improvements
from nas.core.trial import Direction, TrialState
from nas.store import SchemaOutOfDateError, StudyNotFoundError
from nas.store.readonly import ReadOnlyStorage, StoreMissingError, TrialQuery, open_readonly
from nas.store.testing import ChainSpace, run_sql, temporary_schema

OBJECTIVES = {"acc": "max", "lat": "min"}
Seeded = tuple[nas.Study, ReadOnlyStorage]


def seed_study(url: str, n: int = 60, seed: int = 0) -> nas.Study:
    """A study with integer-valued objectives (many ties), some FAIL, PRUNED and RUNNING trials."""
    study = nas.create_study("s", url, space=ChainSpace(), objectives=OBJECTIVES)
    rng = np.random.default_rng(seed)
    for i in range(n):
        trial = study.ask()
        if i % 11 == 4:
            study.tell(trial, state="FAIL", error=f"boom {i}")
        elif i % 13 == 6:
            study.tell(trial, state="PRUNED")
        elif i % 17 == 9:
            continue  # left RUNNING
        else:
            study.report(trial, 0, {"loss": float(rng.random())})
            study.tell(trial, [float(rng.integers(0, 8)), float(rng.integers(0, 8))])
    return study


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded study per backend, shared by the tests that only read it."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = sqlite_url(tmp_path_factory.mktemp("readonly"))
        else:
            url = stack.enter_context(temporary_schema(request.getfixturevalue("postgres_url")))
        study = seed_study(url)
        store = open_readonly(url)
        yield study, store
        store.close()
        study.close()


def test_reads_match_the_study_api(seeded: Seeded) -> None:
    study, store = seeded
    assert [s.info.name for s in store.summarize_studies()] == ["s"]
    assert store.count_trials(study.study_id) == study.count_trials()
    assert store.get_trial(study.study_id, 3) == study.trial(3)
    assert store.metrics(study.study_id, 0) == study.metrics(0)


def test_the_readonly_store_has_no_writes_and_its_connection_cannot_write(seeded: Seeded) -> None:
    study, store = seeded
    writes = ["create_study", "delete_study", "ask", "enqueue", "tell", "report", "heartbeat"]
    writes += ["set_trial_user_attr", "set_trial_system_attr", "fail_stale_trials", "add_trials", "upgrade"]
    assert [name for name in writes if hasattr(store, name)] == []
    assert all(callable(getattr(study.storage, name)) for name in writes)  # the read-write store has them
    # The connection itself cannot write either (query_only / READ ONLY transaction).
    with store.database.engine.connect() as connection, pytest.raises(Exception, match="(?i)read.?only"):
        connection.exec_driver_sql("DELETE FROM trials")
    assert study.count_trials()[TrialState.COMPLETE] > 0


def test_a_study_on_the_readonly_store_reads_and_refuses_writes(seeded: Seeded) -> None:
    study, store = seeded
    readonly = nas.load_study("s", store, space=ChainSpace())
    assert readonly.trials() == study.trials() and readonly.best_trials == study.best_trials
    with pytest.raises(nas.StorageError, match="open read-only"):
        readonly.ask()
    with pytest.raises(nas.StorageError, match="open read-only"):
        nas.create_study("new", store, space=ChainSpace())
    assert [s.info.name for s in store.summarize_studies()] == ["s"]


def _brute_page(study: nas.Study, query: TrialQuery) -> list[int]:
    """Numbers of the trials matching ``query`` in display order, computed in Python."""
    chosen = []
    for trial in study.trials():
        if query.states is not None and trial.state not in query.states:
            continue
        genotype = trial.arch.to_json().lower()
        if not all(term.lower() in genotype for term in query.contains):
            continue
        if query.ranges and not trial.values:
            continue
        if any(
            (low is not None and trial.values[name] < low) or (high is not None and trial.values[name] > high)
            for name, (low, high) in query.ranges.items()
        ):
            continue
        if query.order_by != "number" and not trial.values:
            continue
        chosen.append(trial)
    if query.order_by == "number":
        chosen.sort(key=lambda t: t.number, reverse=query.descending)
    else:
        # Ties in the value keep trial order for the "better" direction, reversed otherwise.
        maximise = study.objectives[query.order_by] is Direction.MAX
        score_first = query.descending == maximise
        sign = -1.0 if maximise else 1.0
        chosen.sort(key=lambda t: (sign * t.values[query.order_by], t.trial_id), reverse=not score_first)
    return [t.number for t in chosen]


QUERIES = [
    TrialQuery(),
    TrialQuery(descending=False),
    TrialQuery(states=(TrialState.FAIL, TrialState.RUNNING)),
    TrialQuery(order_by="acc"),
    TrialQuery(order_by="acc", descending=False),
    TrialQuery(order_by="lat"),
    TrialQuery(order_by="lat", descending=False),
    TrialQuery(contains=('"C"',)),
    TrialQuery(contains=("op0", '"a"'), ranges={"acc": (3.0, None)}, order_by="lat"),
    TrialQuery(ranges={"acc": (2.0, 5.0), "lat": (None, 4.0)}, states=(TrialState.COMPLETE,)),
    TrialQuery(states=(TrialState.PRUNED,), order_by="acc"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[10:70])
def test_query_trials_filters_sorts_pages_and_counts_like_python(seeded: Seeded, query: TrialQuery) -> None:
    study, store = seeded
    expected = _brute_page(study, query)
    got: list[int] = []
    for offset in range(0, len(expected) + 7, 7):
        page = store.query_trials(study.study_id, query, offset=offset, limit=7)
        assert page.total == len(expected)
        got += [t.number for t in page.trials]
    assert got == expected
    if got:  # pages carry full trials with their values
        first = store.query_trials(study.study_id, query, limit=1).trials[0]
        assert first == study.trial(first.number)


def test_contains_is_a_literal_substring_not_a_like_pattern(storage_url: str) -> None:  # noqa: F811
    study = nas.create_study("s", storage_url, space="nb201")
    trial = study.ask()
    study.tell(trial, 1.0)
    store = open_readonly(storage_url)
    arch_ops = set(trial.arch.as_dict().values())
    # "_" and "%" are LIKE wildcards; they must match themselves only.
    assert store.query_trials(study.study_id, TrialQuery(contains=("nor%conv",))).total == 0
    has_conv = any("nor_conv_3x3" == op for op in arch_ops)
    assert store.query_trials(study.study_id, TrialQuery(contains=("NOR_CONV_3X3",))).total == int(has_conv)
    assert store.query_trials(study.study_id, TrialQuery(contains=("norxconv",))).total == 0
    store.close()


@pytest.mark.parametrize(
    "bad, match",
    [
        (TrialQuery(order_by="nope"), "cannot order"),
        (TrialQuery(ranges={"nope": (1.0, 2.0)}), "no objective 'nope'"),
        (TrialQuery(ranges={"acc": (3.0, 2.0)}), "empty"),
        (TrialQuery(ranges={"acc": (math.nan, None)}), "finite"),
        (TrialQuery(states=("DONE",)), "not allowed"),
        (TrialQuery(contains=("x" * 500,)), "at most"),
    ],
)
def test_bad_queries_name_the_value(seeded: Seeded, bad: TrialQuery, match: str) -> None:
    study, store = seeded
    with pytest.raises(ValueError, match=match):
        store.query_trials(study.study_id, bad)


def test_objective_bounds(seeded: Seeded) -> None:
    study, store = seeded
    values = [t.values for t in study.trials(states="COMPLETE")]
    bounds = store.objective_bounds(study.study_id)
    for name in OBJECTIVES:
        assert bounds[name] == (min(v[name] for v in values), max(v[name] for v in values))


def test_trial_ids_grow_with_trial_numbers(storage_url: str) -> None:  # noqa: F811
    """Score tables order by trial id; the storage assigns ids in number order within a study."""
    study = seed_study(storage_url, n=12)
    other = nas.create_study("other", storage_url, space=ChainSpace(), objectives=OBJECTIVES)
    for i in range(3):
        other.tell(other.ask(), [1.0, 1.0])
        study.enqueue(study.trial(i).arch)
    study.add_trials(study.trials(states="COMPLETE")[:5])
    study.fail_stale_trials(0.0)
    trials = study.trials()
    assert [t.trial_id for t in trials] == sorted(t.trial_id for t in trials)


def test_score_table_holds_every_complete_trial_in_trial_order(seeded: Seeded) -> None:
    study, store = seeded
    complete = study.trials(states="COMPLETE")
    table = store.score_table(study.study_id, ["lat", "acc"])
    assert table.objectives == ("lat", "acc") and len(table) == len(complete)
    assert table.ids.tolist() == [t.trial_id for t in complete]
    assert table.values().tolist() == [[t.values["lat"], t.values["acc"]] for t in complete]
    assert table.scores[:, 1].tolist() == [-t.values["acc"] for t in complete]  # max: score = -value
    first_running = min(t.number for t in study.trials(states="RUNNING"))
    assert table.settled == first_running - 1
    assert table.settled_id == study.trial(table.settled).trial_id
    labels = store.labels(study.study_id, table.ids[:3])
    assert [(labels[t.trial_id].number, labels[t.trial_id].genotype) for t in complete[:3]] == [
        (t.number, t.arch.to_json()) for t in complete[:3]
    ]


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_improvements_are_the_incumbent_steps(seeded: Seeded, objective: str) -> None:
    study, store = seeded
    complete = study.trials(states="COMPLETE")
    table = store.score_table(study.study_id, [objective])
    sign = -1.0 if study.objectives[objective] is Direction.MAX else 1.0
    expected, best = [], math.inf
    for trial in complete:
        if sign * trial.values[objective] < best:
            best = sign * trial.values[objective]
            expected.append(trial.number)
    assert [complete[i].number for i in improvements(table.scores[:, 0])] == expected


def test_pareto_mask_of_the_table_is_the_stores_pareto_set(seeded: Seeded) -> None:
    study, store = seeded
    table = store.score_table(study.study_id, list(OBJECTIVES))
    front = sorted(int(i) for i in table.ids[table.pareto_mask()])
    assert front == sorted(t.trial_id for t in store.best_trials(study.study_id))


def test_incremental_score_table_equals_a_full_read(storage_url: str) -> None:  # noqa: F811
    study = seed_study(storage_url, n=30)
    store = open_readonly(storage_url)
    earlier = store.score_table(study.study_id, list(OBJECTIVES))
    rng = np.random.default_rng(1)
    # Finish the trials left running (they are older than the settled point) and add new ones.
    for trial in study.trials(states="RUNNING"):
        study.tell(trial, [float(rng.integers(0, 12)), 1.0])
    for _ in range(20):
        study.tell(study.ask(), [float(rng.integers(0, 12)), float(rng.integers(0, 12))])
    merged = earlier.extend(store.score_table(study.study_id, list(OBJECTIVES), after=earlier.settled))
    full = store.score_table(study.study_id, list(OBJECTIVES))
    assert merged.ids.tolist() == full.ids.tolist()
    assert merged.scores.tolist() == full.scores.tolist()
    assert (merged.settled, merged.settled_id) == (full.settled, full.settled_id)
    with pytest.raises(ValueError, match="cannot extend"):
        earlier.extend(store.score_table(study.study_id, ["acc"], after=earlier.settled))
    store.close()


def test_trials_by_numbers_keeps_order_and_skips_missing(seeded: Seeded) -> None:
    study, store = seeded
    found = store.trials_by_numbers(study.study_id, [7, 2, 999, 4])
    assert [t.number for t in found] == [7, 2, 4]
    assert found[0] == study.trial(7)


def test_study_token_changes_with_every_trial_event(storage_url: str) -> None:  # noqa: F811
    study = nas.create_study("t", storage_url, space=ChainSpace(), objectives={"acc": "max"})
    store = open_readonly(storage_url)
    seen = [store.study_token(study.study_id)]

    def changed() -> None:
        token = store.study_token(study.study_id)
        assert token not in seen
        seen.append(token)

    trial = study.ask()
    changed()
    study.report(trial, 0, {"loss": 1.0})
    assert store.study_token(study.study_id) == seen[-1]  # curves do not change the token
    study.tell(trial, 1.0)
    changed()
    queued = study.enqueue(study.trial(0).arch)
    changed()
    study.ask()  # claims the queued trial: WAITING -> RUNNING
    changed()
    study.tell(queued.number, state="FAIL", error="x")
    changed()
    study.finish()
    changed()
    assert seen[-1][0] == "finished"
    store.close()


def test_missing_sqlite_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing.db"
    with pytest.raises(StoreMissingError, match="run a search first"):
        open_readonly(f"sqlite:///{path}")
    assert not path.exists()


def test_empty_sqlite_file_is_an_empty_store_and_stays_untouched(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    store = open_readonly(f"sqlite:///{path}")
    assert not store.has_schema
    assert store.summarize_studies() == [] and store.list_studies() == []
    store.close()
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # no schema was created behind the reader's back
    nas.create_study("later", f"sqlite:///{path}", space=ChainSpace())
    assert store.check_schema() and [s.info.name for s in store.summarize_studies()] == ["later"]
    store.close()


def test_old_schema_names_the_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    nas.create_study("s", url, space=ChainSpace())
    run_sql(url, "UPDATE alembic_version SET version_num = '0001_base'")
    with pytest.raises(SchemaOutOfDateError, match="nas db upgrade"):
        ReadOnlyStorage(url)


def test_unknown_study_names_the_stored_ones(seeded: Seeded) -> None:
    _, store = seeded
    with pytest.raises(StudyNotFoundError, match="Stored studies: 's'"):
        store.get_study("nope")
