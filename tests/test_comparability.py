"""Comparable reuse only: a stored result stands in for a new one only under the same conditions.

The plan describes what changes a result (space options, data and split,
evaluator settings, seed, fidelity); the store reuses results only between
studies with the same description and refuses to reopen a study under other
conditions, listing each difference. No Ray: the refusal happens when the
driver opens the study, before Ray starts.
"""

from __future__ import annotations

import numpy as np
import pytest
from store_fixtures import nb201, postgres_url, storage_url  # noqa: F401

import nas
from nas.core import ConfigError
from nas.core.comparability import comparability_key, differences
from nas.runner import build_plan, run_search
from nas.runner.driver import open_study

TRAIN = {
    "name": "digits-study",
    "space": {"name": "nb201", "channels": 4, "cells": 1},
    "dataset": {"name": "digits", "limit": 200},
    "strategy": {"name": "random"},
    "evaluator": {"name": "train", "epochs": 1, "batch_size": 32},
    "budget": {"trials": 2},
}
TABLE = {
    "name": "table",
    "space": {"name": "nb201"},
    "evaluator": {"name": "nb201_table", "metric": "cifar10-val"},
    "budget": {"trials": 2},
}


def described(**changes) -> dict:
    """The comparability of TRAIN with sections updated (``dataset={"limit": 300}``...)."""
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in TRAIN.items()}
    for section, update in changes.items():
        if isinstance(update, dict):
            config[section].update(update)
        else:
            config[section] = update
    return build_plan(config).comparability


# -- what the plan describes -------------------------------------------------------------------------


def test_every_result_changing_setting_changes_the_key() -> None:
    base = comparability_key(described())
    assert comparability_key(described()) == base  # stable
    changed = {
        "space": {"channels": 8},
        "dataset": {"name": "synthetic", "limit": None},
        "evaluator": {"epochs": 2},
        "seed": 1,
    }
    for section, update in changed.items():
        assert comparability_key(described(**{section: update})) != base, section
    for update in ({"limit": 300}, {"val_fraction": 0.2}, {"seed": 7}):
        assert comparability_key(described(dataset=update)) != base, update
    # Choosing or stopping trials does not change a finished trial's result.
    same = described(strategy={"name": "evolution", "population_size": 4, "tournament_size": 2})
    assert comparability_key(same) == base
    assert comparability_key(described(budget={"trials": 9, "concurrent": 2})) == base


def test_the_description_names_each_field_and_a_lookup_table_has_no_data() -> None:
    description = described()
    assert description["space.channels"] == 4 and description["space.cells"] == 1
    assert description["dataset.name"] == "digits" and description["dataset.limit"] == 200
    assert description["dataset.seed"] == 0 and description["evaluator.epochs"] == 1
    table = build_plan(TABLE).comparability
    assert not any(k.startswith("dataset.") for k in table)
    assert table["evaluator.metric"] == "cifar10-val"
    assert differences(description, described(space={"channels": 8})) == ["space.channels: 4 -> 8"]


def test_a_dataset_path_is_identified_by_its_content_not_its_location(tmp_path) -> None:
    first, second, moved = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "sub" / "a.npz"
    moved.parent.mkdir()
    for path, seed in ((first, 0), (second, 1), (moved, 0)):
        path.write_bytes(np.random.default_rng(seed).bytes(4096))
    keys = {
        path: comparability_key(described(dataset={"name": "cifar10", "limit": None, "path": str(path)}))
        for path in (first, second, moved)
    }
    assert keys[first] == keys[moved] and keys[first] != keys[second]


# -- the store: reuse only between comparable studies ---------------------------------------------------


def _arch(space):
    return space.make({edge: "none" for edge in space.choices()})


def test_lookup_reuses_results_only_of_studies_with_the_same_comparability(storage_url, nb201) -> None:  # noqa: F811
    digits = {"dataset.name": "digits", "evaluator.epochs": 4}
    synthetic = {"dataset.name": "synthetic", "evaluator.epochs": 4}
    first = nas.create_study("digits", storage_url, space="nb201", comparability=digits)
    first.tell(first.ask(_arch(nb201), budget=4), 90.0)
    same = nas.create_study("again", storage_url, space="nb201", comparability=dict(digits))
    other = nas.create_study("synthetic", storage_url, space="nb201", comparability=synthetic)
    unkeyed = nas.create_study("api", storage_url, space="nb201")
    assert same.lookup(_arch(nb201), budget=4).study == "digits"
    assert other.lookup(_arch(nb201), budget=4) is None
    assert unkeyed.lookup(_arch(nb201), budget=4) is None  # unknown conditions are not comparable
    assert first.comparability == digits and unkeyed.comparability is None


def test_reopening_under_other_conditions_is_refused_listing_each_difference(storage_url) -> None:  # noqa: F811
    old = {"dataset.name": "digits", "dataset.limit": 200, "seed": 0}
    nas.create_study("s", storage_url, space="nb201", comparability=old)
    new = {"dataset.name": "synthetic", "dataset.limit": 200, "seed": 0, "evaluator.epochs": 2}
    with pytest.raises(ConfigError) as caught:
        nas.create_study("s", storage_url, space="nb201", comparability=new, load_if_exists=True)
    message = str(caught.value)
    assert 'dataset.name: "digits" -> "synthetic"' in message and "evaluator.epochs: (unset) -> 2" in message
    assert "dataset.limit" not in message and "--name" in message
    assert nas.create_study("s", storage_url, space="nb201", comparability=old, load_if_exists=True)


def test_reopening_with_other_space_options_is_refused(storage_url) -> None:  # noqa: F811
    nas.create_study("s", storage_url, space="nb201", space_options={"channels": 4})
    with pytest.raises(ConfigError, match="space.channels: 4 -> 8"):
        nas.create_study("s", storage_url, space="nb201", space_options={"channels": 8}, load_if_exists=True)


def test_a_study_without_a_description_takes_the_first_one_it_is_reopened_with(storage_url) -> None:  # noqa: F811
    nas.create_study("legacy", storage_url, space="nb201")
    wanted = {"dataset.name": "digits"}
    study = nas.create_study("legacy", storage_url, space="nb201", comparability=wanted, load_if_exists=True)
    assert study.comparability == wanted
    assert nas.load_study("legacy", storage_url).comparability == wanted
    with pytest.raises(ConfigError, match="dataset.name"):
        nas.create_study(
            "legacy", storage_url, space="nb201", comparability={"dataset.name": "x"}, load_if_exists=True
        )


def test_an_option_added_since_is_forgiven_only_at_its_default() -> None:
    old = {"evaluator.epochs": 1}
    defaults = {"evaluator.compile": False, "evaluator.epochs": 10}
    assert differences(old, {"evaluator.epochs": 1, "evaluator.compile": False}, defaults=defaults) == []
    assert differences(old, {"evaluator.epochs": 1, "evaluator.compile": True}, defaults=defaults) == [
        "evaluator.compile: (unset) -> true"
    ]
    # A field the old study has is always compared, even against a default (a changed default shows).
    assert differences({"evaluator.epochs": 1}, {"evaluator.epochs": 10}, defaults=defaults) == [
        "evaluator.epochs: 1 -> 10"
    ]


def test_a_study_described_before_an_option_existed_reopens_and_takes_the_new_description(tmp_path) -> None:
    """An upgrade that adds a train option (``compile``, ``channels_last``) must not strand running studies."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    plan = build_plan(TRAIN)
    older = {
        k: v
        for k, v in plan.comparability.items()
        if k not in ("evaluator.compile", "evaluator.channels_last")
    }
    assert len(older) == len(plan.comparability) - 2
    nas.create_study("digits-study", url, space=plan.space, comparability=older)
    study, lease = open_study(plan, url, resume=True)
    lease.release()
    assert nas.load_study("digits-study", url).comparability == plan.comparability
    changed = build_plan({**TRAIN, "evaluator": {**TRAIN["evaluator"], "compile": "aot_eager"}})
    nas.create_study("other", url, space=plan.space, comparability=older)
    with pytest.raises(ConfigError, match='evaluator.compile: \\(unset\\) -> "aot_eager"'):
        open_study(build_plan({**changed.config.model_dump(mode="json"), "name": "other"}), url, resume=True)


# -- the driver refuses before Ray starts ---------------------------------------------------------------


def test_nas_search_refuses_a_study_name_reused_with_other_space_options(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study, lease = open_study(build_plan(TABLE), url, resume=False)
    lease.release()
    with pytest.raises(ConfigError) as caught:
        run_search({**TABLE, "space": {"name": "nb201", "channels": 8}}, storage=url, show_progress=False)
    assert "space.channels: 16 -> 8" in str(caught.value)
    assert nas.load_study("table", storage=url).trials() == []
