"""Contract of the trial store and Study API, run on every backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import itertools
import math
from datetime import timezone

import numpy as np
import pytest
from store_fixtures import nb201, postgres_url, storage_url  # noqa: F401

import nas
from nas.core import Architecture, ArchitectureError, ConfigError, Trial, TrialState
from nas.store import (
    DuplicateStudyError,
    RDBStorage,
    StudyNotFoundError,
    StudyStatus,
    TrialFinishedError,
    TrialNotFoundError,
)

TWO = {"val_accuracy": "max", "latency_ms": "min"}


def make(url: str, name: str = "s", objectives: dict[str, str] | None = None, **kwargs: object) -> nas.Study:
    return nas.create_study(name, url, space="nb201", objectives=objectives or TWO, **kwargs)


def arch(nb201, **ops: str) -> Architecture:  # noqa: F811
    decisions = {edge: "none" for edge in nb201.choices()}
    decisions.update({k.replace("_", "<-"): v for k, v in ops.items()})
    return nb201.make(decisions)


# -- studies ---------------------------------------------------------------------------------
def test_create_load_and_list(storage_url: str) -> None:  # noqa: F811
    created = make(storage_url, config={"strategy": "random", "budget": 12})
    loaded = nas.load_study("s", storage_url)
    assert loaded.study_id == created.study_id
    assert list(loaded.objectives) == ["val_accuracy", "latency_ms"]
    assert loaded.objectives["latency_ms"].value == "min"
    assert loaded.config == {"strategy": "random", "budget": 12}
    assert loaded.space_name == "nb201" and loaded.status is StudyStatus.RUNNING
    make(storage_url, "other", {"val_accuracy": "max"})
    summaries = nas.list_studies(storage_url)
    assert [s.info.name for s in summaries] == ["s", "other"]
    assert summaries[0].n_trials == 0 and summaries[0].best == {"val_accuracy": None, "latency_ms": None}


def test_duplicate_name_and_load_if_exists(storage_url: str) -> None:  # noqa: F811
    first = make(storage_url)
    with pytest.raises(DuplicateStudyError, match="load_if_exists") as caught:
        make(storage_url)
    assert isinstance(caught.value, ValueError)
    again = make(storage_url, load_if_exists=True)
    assert again.study_id == first.study_id
    with pytest.raises(ConfigError, match="exists with space"):
        make(storage_url, objectives={"val_accuracy": "min"}, load_if_exists=True)
    assert len(nas.list_studies(storage_url)) == 1


def test_missing_study_names_close_matches(storage_url: str) -> None:  # noqa: F811
    make(storage_url, "cifar-random")
    with pytest.raises(StudyNotFoundError, match="cifar-random") as caught:
        nas.load_study("cifar-randon", storage_url)
    assert isinstance(caught.value, ValueError) and "Did you mean" in str(caught.value)


def test_bad_study_arguments(storage_url: str) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="direction"):
        make(storage_url, objectives={"val_accuracy": "up"})
    with pytest.raises(ConfigError, match="study name"):
        make(storage_url, "")
    with pytest.raises(ConfigError, match="JSON"):
        make(storage_url, config={"lr": float("nan")})
    with pytest.raises(ConfigError, match="unknown search space"):
        nas.create_study("x", storage_url, space="nb202")
    assert nas.list_studies(storage_url) == []


def test_finish_and_reopen(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    study.finish()
    assert study.status is StudyStatus.FINISHED
    assert nas.list_studies(storage_url)[0].info.finished_at is not None
    study.ask()
    assert study.status is StudyStatus.RUNNING
    with pytest.raises(ConfigError, match="status"):
        study.finish("done")


# -- ask / tell ------------------------------------------------------------------------------
def test_ask_samples_valid_architectures_with_consecutive_numbers(storage_url: str, nb201) -> None:  # noqa: F811
    study = make(storage_url)
    asked = [study.ask(seed=3, budget=12) for _ in range(5)]
    assert [t.number for t in asked] == list(range(5))
    for trial in asked:
        assert trial.state is TrialState.RUNNING and nb201.is_valid(trial.arch)
        assert trial.seed == 3 and trial.budget == 12.0 and trial.node and trial.study == "s"
        assert trial.started_at is not None and trial.started_at.tzinfo is timezone.utc
    assert len({t.arch for t in asked}) > 1


def test_sampling_is_reproducible_per_study_and_number(storage_url: str, tmp_path) -> None:  # noqa: F811
    make(storage_url, "a")
    a = [nas.load_study("a", storage_url).ask().arch for _ in range(4)]
    elsewhere = make(f"sqlite:///{tmp_path / 'other.db'}", "a")
    assert [elsewhere.ask().arch for _ in range(4)] == a
    b = make(storage_url, "b")
    assert [b.ask().arch for _ in range(4)] != a
    c = nas.create_study("c", storage_url, space="nb201", seed=1)
    d = nas.create_study("c", f"sqlite:///{tmp_path / 'third.db'}", space="nb201", seed=2)
    assert [c.ask().arch for _ in range(4)] != [d.ask().arch for _ in range(4)]


def test_ask_with_architecture_validates_it(storage_url: str, nb201) -> None:  # noqa: F811
    study = make(storage_url)
    cell = arch(nb201, **{"1_0": "nor_conv_3x3", "3_1": "skip_connect"})
    trial = study.ask(cell, seed=7)
    assert trial.arch == cell and trial.seed == 7
    with pytest.raises(ArchitectureError):
        study.ask(Architecture("nb201", (("1<-0", "conv9x9"),)))
    with pytest.raises(ArchitectureError):
        study.ask(Architecture("darts", (("x", 1),)))
    with pytest.raises(ConfigError, match="seed"):
        study.ask(cell, seed=-1)
    with pytest.raises(ConfigError, match="budget"):
        study.ask(cell, budget=float("inf"))
    assert study.count_trials()[TrialState.RUNNING] == 1


def test_tell_accepts_mapping_sequence_and_scalar(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    a, b = study.ask(), study.ask()
    told = study.tell(a, {"latency_ms": 3, "val_accuracy": 91.5})
    assert told.state is TrialState.COMPLETE and list(told.values.items()) == [
        ("val_accuracy", 91.5),
        ("latency_ms", 3.0),
    ]
    assert told.finished_at >= told.started_at
    assert study.tell(b.number, [80, np.float32(2.5)]).values == {"val_accuracy": 80.0, "latency_ms": 2.5}
    single = make(storage_url, "single", {"val_accuracy": "max"})
    assert single.tell(single.ask(), 0.5).values == {"val_accuracy": 0.5}
    assert study.trial(0).values == {"val_accuracy": 91.5, "latency_ms": 3.0}


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([1.0], "1 values"),
        ([1.0, 2.0, 3.0], "3 values"),
        ({"val_accuracy": 1.0}, "missing \\['latency_ms'\\]"),
        ({"val_accuracy": 1.0, "latency_ms": 2.0, "loss": 3.0}, "unexpected \\['loss'\\]"),
        ([float("nan"), 1.0], "finite"),
        ([1.0, float("inf")], "finite"),
        ([True, 1.0], "finite number"),
        (1.0, "one value"),
        ("91", "not allowed"),
    ],
)
def test_bad_values_leave_the_trial_untouched(storage_url: str, values: object, match: str) -> None:  # noqa: F811
    study = make(storage_url)
    trial = study.ask()
    with pytest.raises(ConfigError, match=match):
        study.tell(trial, values)
    again = study.trial(trial.number)
    assert again.state is TrialState.RUNNING and again.values is None and again.finished_at is None
    assert study.trials_page(order_by="val_accuracy") == []


def test_finished_trials_are_immutable(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    trial = study.ask()
    study.tell(trial, [1.0, 2.0])
    for action in (
        lambda: study.tell(trial, [3.0, 4.0]),
        lambda: study.tell(trial, state="FAIL", error="late"),
        lambda: study.report(trial, 9, {"loss": 0.1}),
        lambda: study.set_user_attr(trial, "k", 1),
        lambda: study.set_system_attr(trial, "k", 1),
    ):
        with pytest.raises(TrialFinishedError, match="immutable") as caught:
            action()
        assert isinstance(caught.value, ValueError)
    assert study.heartbeat(trial) is False
    assert study.trial(trial.number).values == {"val_accuracy": 1.0, "latency_ms": 2.0}
    assert study.metrics(trial) == {}


def test_fail_stores_traceback_and_pruned_has_no_values(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    a, b, c = study.ask(), study.ask(), study.ask()
    try:
        raise RuntimeError("CUDA out of memory")
    except RuntimeError as exc:
        failed = study.tell(a, error=exc)
    assert failed.state is TrialState.FAIL and failed.values is None
    assert "Traceback" in failed.error and "CUDA out of memory" in failed.error
    assert study.tell(b, state=TrialState.PRUNED).state is TrialState.PRUNED
    with pytest.raises(ConfigError, match="no objective values"):
        study.tell(c, [1.0, 2.0], state="FAIL")
    with pytest.raises(ConfigError, match="needs values"):
        study.tell(c)
    with pytest.raises(ConfigError, match="allowed: COMPLETE, PRUNED, FAIL"):
        study.tell(c, state="RUNNING")
    with pytest.raises(TrialNotFoundError):
        study.tell(99, [1.0, 2.0])
    other = make(storage_url, "other")
    with pytest.raises(ConfigError, match="belongs to study 's'"):
        other.tell(c, [1.0, 2.0])


def test_user_attrs_merge(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    trial = study.ask()
    study.set_user_attr(trial, "params", 1234)
    study.set_user_attr(trial, "note", {"a": [1, 2]})
    done = study.tell(trial, [1.0, 2.0], user_attrs={"test_accuracy": 90.1, "params": 99})
    assert done.user_attrs == {"params": 99, "note": {"a": [1, 2]}, "test_accuracy": 90.1}
    assert study.trial(trial.number).user_attrs == done.user_attrs
    with pytest.raises(ConfigError, match="JSON"):
        study.set_user_attr(study.ask(), "bad", object())


def test_system_attrs_are_kept_apart_from_user_attrs(storage_url: str, nb201) -> None:  # noqa: F811
    study = make(storage_url)
    trial = study.ask()
    study.set_user_attr(trial, "workers", "mine")
    study.set_system_attr(trial, "workers", [["node-1", 7]])
    done = study.tell(trial, [1.0, 2.0], user_attrs={"kind": "user's"}, system_attrs={"reused_from": 3})
    assert done.user_attrs == {"workers": "mine", "kind": "user's"}
    assert done.system_attrs == {"workers": [["node-1", 7]], "reused_from": 3}
    assert study.trial(trial.number) == done
    queued = study.enqueue(arch(nb201, **{"1_0": "nor_conv_3x3"}), system_attrs={"derived_from": 0})
    assert (queued.user_attrs, queued.system_attrs) == ({}, {"derived_from": 0})
    assert study.ask().system_attrs == {"derived_from": 0}
    copy = Trial(number=0, arch=done.arch, state=TrialState.PRUNED, system_attrs={"kind": "supernet"})
    (added,) = study.add_trials([copy])
    assert study.trial(added.number).system_attrs == {"kind": "supernet"} and added.user_attrs == {}
    assert nas.store.trial_to_dict(added)["system_attrs"] == {"kind": "supernet"}
    with pytest.raises(ConfigError, match="system attribute"):
        study.set_system_attr(study.ask(), "bad", object())


# -- curves and artifacts ------------------------------------------------------------------------
def test_report_and_read_curves(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    trial = study.ask()
    for step in (2, 0, 1):
        study.report(trial, step, {"val_accuracy": 10.0 * step, "loss": 1.0 / (step + 1)})
    study.report(trial, 1, {"val_accuracy": 15.0, "alpha/edge0": float("nan")})
    curves = study.metrics(trial)
    assert curves["val_accuracy"] == [(0, 0.0), (1, 15.0), (2, 20.0)]
    assert [s for s, _ in curves["loss"]] == [0, 1, 2]
    assert len(curves["alpha/edge0"]) == 1 and math.isnan(curves["alpha/edge0"][0][1])
    assert set(study.metrics(trial, names=["loss"])) == {"loss"}
    with pytest.raises(ConfigError, match="step"):
        study.report(trial, -1, {"loss": 1.0})
    with pytest.raises(ConfigError, match="expected a number"):
        study.report(trial, 3, {"loss": "low"})
    assert study.metrics(trial)["loss"][-1] == (2, pytest.approx(1 / 3))


def test_artifacts(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    trial = study.ask()
    study.tell(trial, [1.0, 2.0])
    digest = "ab" * 32
    study.add_artifact(trial, "weights", "file:///runs/0/model.pt", digest.upper())
    study.add_artifact(trial, "onnx", "s3://bucket/model.onnx")
    found = study.artifacts(trial)
    assert [(a.kind, a.uri, a.sha256) for a in found] == [
        ("weights", "file:///runs/0/model.pt", digest),
        ("onnx", "s3://bucket/model.onnx", None),
    ]
    with pytest.raises(ConfigError, match="sha256"):
        study.add_artifact(trial, "weights", "x", "123")
    assert len(study.artifacts(trial)) == 2


# -- reading ---------------------------------------------------------------------------------------
def _fill(study: nas.Study, values: list[tuple[float, float]]) -> list[Trial]:
    result = []
    for value in values:
        result.append(study.tell(study.ask(), list(value)))
    return result


def test_trials_filters_by_state_and_after(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    _fill(study, [(1, 1), (2, 2)])
    failed = study.tell(study.ask(), error="x")
    running = study.ask()
    assert [t.number for t in study.trials()] == [0, 1, 2, 3]
    assert [t.number for t in study.trials(states="COMPLETE")] == [0, 1]
    assert [t.number for t in study.trials(states=[TrialState.FAIL, "RUNNING"])] == [
        failed.number,
        running.number,
    ]
    assert [t.number for t in study.trials(after=1)] == [2, 3]
    assert study.trials(after=3) == []
    assert study.trials()[1].values == {"val_accuracy": 2.0, "latency_ms": 2.0}
    assert study.count_trials() == {
        TrialState.WAITING: 0,
        TrialState.RUNNING: 1,
        TrialState.COMPLETE: 2,
        TrialState.PRUNED: 0,
        TrialState.FAIL: 1,
    }
    with pytest.raises(ConfigError, match="trial states"):
        study.trials(states="DONE")


def test_trials_page_orders_by_number_and_objective(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    rng = np.random.default_rng(0)
    values = [(float(rng.integers(0, 5)), float(rng.integers(0, 5))) for _ in range(23)]
    _fill(study, values)
    study.ask()
    pages = [study.trials_page(offset=o, limit=10) for o in (0, 10, 20)]
    assert [t.number for page in pages for t in page] == list(range(24))
    assert [t.number for t in study.trials_page(limit=3, descending=True)] == [23, 22, 21]
    assert [t.number for t in study.trials_page(offset=2, limit=3, descending=True)] == [21, 20, 19]
    assert study.trials_page(offset=24) == [] and study.trials_page(offset=24, descending=True) == []
    assert [t.number for t in study.trials_page(offset=1, limit=2, states="COMPLETE", descending=True)] == [
        21,
        20,
    ]
    by_acc = study.trials_page(limit=100, order_by="val_accuracy")
    expected = sorted(range(23), key=lambda i: (-values[i][0], i))
    assert [t.number for t in by_acc] == expected
    by_latency = study.trials_page(offset=5, limit=5, order_by="latency_ms")
    assert [t.number for t in by_latency] == sorted(range(23), key=lambda i: (values[i][1], i))[5:10]
    worst = study.trials_page(limit=1, order_by="val_accuracy", descending=False)[0]
    assert worst.values["val_accuracy"] == min(v for v, _ in values)
    assert study.trials_page(order_by="val_accuracy", states="RUNNING") == []
    assert study.best_trial.number == expected[0]
    with pytest.raises(ConfigError, match="allowed: 'number', 'val_accuracy', 'latency_ms'"):
        study.trials_page(order_by="loss")
    with pytest.raises(ConfigError, match="limit"):
        study.trials_page(limit=0)


def test_best_trials_single_objective_returns_all_ties(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url, objectives={"latency_ms": "min"})
    for value in (3.0, 1.0, 2.0, 1.0):
        study.tell(study.ask(), value)
    assert [t.number for t in study.best_trials] == [1, 3]
    empty = make(storage_url, "empty")
    assert empty.best_trials == []
    with pytest.raises(ConfigError, match="no COMPLETE trial"):
        _ = empty.best_trial


def test_best_trials_multi_objective_is_the_pareto_set(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    rng = np.random.default_rng(1)
    values = [(float(rng.integers(0, 8)), float(rng.integers(0, 8))) for _ in range(40)]
    _fill(study, values)
    study.tell(study.ask(), error="crashed")
    # Brute force: (accuracy max, latency min).
    front = {
        i
        for i, (acc, lat) in enumerate(values)
        if not any(a >= acc and lt <= lat and (a > acc or lt < lat) for a, lt in values)
    }
    assert {t.number for t in study.best_trials} == front


def test_lookup_finds_canonical_equal_results_across_studies(storage_url: str, nb201) -> None:  # noqa: F811
    dead = arch(nb201)  # every edge "none": the output is always zero
    also_dead = arch(nb201, **{"1_0": "nor_conv_3x3"})  # node 1 feeds nothing: same function
    assert dead != also_dead and nb201.canonical_key(dead) == nb201.canonical_key(also_dead)
    first = make(storage_url, "first")
    trial = first.ask(dead, budget=12)
    assert first.lookup(dead, budget=12) is None  # RUNNING results do not count
    first.tell(trial, [10.0, 1.0])
    second = make(storage_url, "second")
    found = second.lookup(also_dead, budget=12)
    assert found is not None and found.study == "first" and found.number == trial.number
    assert found.arch == dead and found.values == {"val_accuracy": 10.0, "latency_ms": 1.0}
    assert second.lookup(also_dead, budget=200) is None
    assert second.lookup(also_dead) is None
    assert second.lookup(arch(nb201, **{"3_0": "skip_connect"}), budget=12) is None
    # A study whose objectives the earlier result does not cover finds nothing ...
    third = make(storage_url, "third", {"val_accuracy": "max", "params": "min"})
    assert third.lookup(dead, budget=12) is None
    # ... and the trial keeps its exact decisions though it shares the architecture row.
    own = second.tell(second.ask(also_dead, budget=12), [11.0, 1.0])
    assert second.trial(own.number).arch == also_dead
    assert second.lookup(dead, budget=12).study == "second"  # own study first


def test_enqueue_is_served_before_sampling(storage_url: str, nb201) -> None:  # noqa: F811
    study = make(storage_url)
    cell = arch(nb201, **{"3_0": "nor_conv_3x3"})
    queued = study.enqueue(cell, seed=5, budget=50, user_attrs={"why": "warm start"})
    assert queued.state is TrialState.WAITING and queued.started_at is None
    explicit = study.ask(arch(nb201, **{"3_0": "skip_connect"}))
    assert explicit.number == 1
    with pytest.raises(ConfigError, match="ask\\(\\) starts it first"):
        study.tell(queued, [1.0, 1.0])
    started = study.ask(seed=0, budget=1)
    assert (started.number, started.arch, started.seed, started.budget) == (0, cell, 5, 50.0)
    assert started.state is TrialState.RUNNING and started.user_attrs == {"why": "warm start"}
    assert study.ask().number == 2


def test_stale_trials_fail_and_are_requeued(storage_url: str) -> None:  # noqa: F811
    study = make(storage_url)
    alive, dead = study.ask(seed=1, budget=4), study.ask(seed=2, budget=8)
    assert study.fail_stale_trials(grace_s=3600) == []
    study.tell(alive, [1.0, 1.0])
    failed = study.fail_stale_trials(grace_s=0)
    assert [t.number for t in failed] == [dead.number]
    assert study.trial(dead.number).state is TrialState.FAIL
    assert "stopped sending heartbeats" in study.trial(dead.number).error
    copy = study.trials(states="WAITING")
    assert len(copy) == 1 and (copy[0].arch, copy[0].seed, copy[0].budget) == (dead.arch, 2, 8.0)
    assert copy[0].user_attrs == {} and copy[0].system_attrs == {"retry_of": dead.number}
    rerun = study.ask()
    assert rerun.number == copy[0].number and rerun.state is TrialState.RUNNING
    assert study.heartbeat(rerun) is True
    assert study.fail_stale_trials(grace_s=0, requeue=False)[0].number == rerun.number
    assert study.trials(states="WAITING") == []
    with pytest.raises(ConfigError, match="grace_s"):
        study.fail_stale_trials(grace_s=-1)


def test_add_trials_imports_atomically(storage_url: str, nb201) -> None:  # noqa: F811
    source = make(storage_url, "source")
    _fill(source, [(1.0, 5.0), (2.0, 4.0)])
    source.tell(source.ask(), error="boom")
    target = make(storage_url, "target")
    target.ask()
    curves = [{"val_accuracy": [(0, 0.5), (1, 1.0)]}, {}, {}]
    imported = target.add_trials(source.trials(), curves)
    assert [t.number for t in imported] == [1, 2, 3]
    assert [t.state for t in target.trials(after=0)] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
    ]
    assert target.metrics(1) == {"val_accuracy": [(0, 0.5), (1, 1.0)]}
    assert target.trial(3).error == "boom"
    bad = Trial(number=0, arch=nb201.sample(0), state=TrialState.COMPLETE, values={"val_accuracy": 1.0})
    with pytest.raises(ConfigError, match="missing"):
        target.add_trials([*source.trials(), bad])
    with pytest.raises(ConfigError, match="metric sets"):
        target.add_trials(source.trials(), [{}])
    assert len(target.trials()) == 4


def test_trial_numbers_unique_under_threads(storage_url: str) -> None:  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    study = make(storage_url)
    study.space  # noqa: B018 - build the space once, outside the threads

    def work(worker: int) -> list[int]:
        numbers = []
        for i in range(10):
            trial = study.ask()
            study.tell(trial, [float(i), float(worker)])
            numbers.append(trial.number)
        return numbers

    with ThreadPoolExecutor(4) as pool:
        numbers = list(itertools.chain.from_iterable(pool.map(work, range(4))))
    assert sorted(numbers) == list(range(40))
    assert study.count_trials()[TrialState.COMPLETE] == 40


def test_storage_object_can_be_shared(storage_url: str) -> None:  # noqa: F811
    store = RDBStorage(storage_url)
    study = nas.create_study("a", store, space="nb201")
    study.tell(study.ask(), 1.0)
    assert nas.load_study("a", store).study_id == study.study_id
    store.delete_study("a")
    with pytest.raises(StudyNotFoundError):
        nas.load_study("a", store)
    assert nas.list_studies(store) == []
    store.close()
