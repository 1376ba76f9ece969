"""The search config: every example loads, defaults, JSON round trip, and the error messages users see.

``load_config`` checks the schema; options only a plugin can judge are checked
by building the plan (``nas.runner.build_plan``), before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.core import ConfigError, Direction
from nas.runner import build_plan
from nas.settings import (
    PluginEvaluatorConfig,
    SearchConfig,
    TrainEvaluatorConfig,
    load_config,
)

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
MINIMAL = {"name": "t", "space": {"name": "nb201", "channels": 4, "cells": 1}}


def with_(**changes: object) -> dict[str, object]:
    return {**MINIMAL, **changes}


def error_of(source: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(source)  # type: ignore[arg-type]
    return str(info.value)


def plan_error_of(source: object) -> str:
    with pytest.raises(ConfigError) as info:
        build_plan(source)  # type: ignore[arg-type]
    return str(info.value)


# -- loading ------------------------------------------------------------------------------------


def test_examples_exist() -> None:
    names = {p.stem for p in EXAMPLES}
    expected = {"quickstart", "cifar10_nb201", "cifar10_darts", "multiobjective", "nb201_table"}
    expected |= {f"quickstart_{space}" for space in ("nb201", "darts", "fbnet", "hybrid")}
    assert expected <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_loads_and_round_trips(path: Path) -> None:
    config = load_config(path)
    assert config.name
    build_plan(config)  # the space, strategy and evaluator options are accepted
    dumped = config.model_dump(mode="json")
    assert load_config(json.loads(json.dumps(dumped))) == config


def test_quickstart_is_the_fast_digits_setting() -> None:
    config = load_config(EXAMPLES[[p.stem for p in EXAMPLES].index("quickstart")])
    assert config.dataset is not None and config.dataset.name == "digits"
    assert isinstance(config.evaluator, TrainEvaluatorConfig)
    assert config.budget.trials == 24 and config.budget.concurrent == 2


def test_defaults_fill_a_minimal_config() -> None:
    config = load_config(MINIMAL)
    assert config.dataset is not None and config.dataset.name == "digits"
    assert config.strategy.name == "random"
    assert isinstance(config.evaluator, TrainEvaluatorConfig)
    assert config.directions == {"val_accuracy": Direction.MAX}
    assert config.scheduler is None and config.storage is None
    assert config.constraint_list == ()
    assert config.data_seed == config.seed == 0


def test_plugin_evaluator_keeps_its_options_and_needs_no_dataset() -> None:
    config = load_config(
        with_(space={"name": "nb201"}, evaluator={"name": "nb201_table", "metric": "cifar10-val"})
    )
    assert isinstance(config.evaluator, PluginEvaluatorConfig)
    assert config.evaluator.options == {"metric": "cifar10-val"}
    assert config.dataset is None


def test_space_options_are_passed_through() -> None:
    config = load_config(MINIMAL)
    assert config.space.options == {"channels": 4, "cells": 1}
    assert build_plan(config).space.options == {"channels": 4, "cells": 1}


def test_objectives_constraints_and_seeds_are_parsed() -> None:
    config = load_config(
        with_(
            objectives={"val_accuracy": "MAX", "latency_ms": "min"},
            constraints={"params": "<= 2e6", "latency_ms": 5},
            dataset={"name": "digits", "seed": 7},
            seed=3,
        )
    )
    assert config.objectives == {"val_accuracy": "max", "latency_ms": "min"}
    assert list(config.directions) == ["val_accuracy", "latency_ms"]
    assert {(c.metric, c.op, c.bound) for c in config.constraint_list} == {
        ("params", "<=", 2e6),
        ("latency_ms", "<=", 5.0),
    }
    assert config.data_seed == 7 and config.seed == 3


def test_file_name_defaults_to_stem_and_relative_data_path_is_resolved(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "my-search.yaml"
    path.write_text("space: {name: nb201}\ndataset: {name: cifar10, path: data/c.npz}\n")
    config = load_config(path)
    assert config.name == "my-search"
    assert config.dataset is not None and config.dataset.path == str((folder / "data" / "c.npz").resolve())


def test_loading_a_mapping_does_not_mutate_it() -> None:
    raw = with_(dataset={"name": "cifar10", "path": "rel.npz"})
    before = json.dumps(raw, sort_keys=True)
    load_config(raw)
    assert json.dumps(raw, sort_keys=True) == before


def test_config_is_frozen() -> None:
    config = load_config(MINIMAL)
    with pytest.raises(ValueError):
        config.seed = 5  # type: ignore[misc]


def test_a_config_object_is_returned_as_is() -> None:
    config = load_config(MINIMAL)
    assert load_config(config) is config


# -- errors -----------------------------------------------------------------------------------------


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_config(with_(seed=-1))


def test_top_level_typo_is_refused_with_a_suggestion() -> None:
    message = error_of(with_(scheudler={"name": "asha"}))
    assert "scheudler: unknown field" in message
    assert "Did you mean 'scheduler'?" in message


def test_nested_errors_name_the_path_and_value_and_are_all_reported() -> None:
    message = error_of(with_(evaluator={"epochs": 0, "optimizer": "adam", "lrr": 0.1}, budget={"trials": 0}))
    assert "evaluator.epochs: Input should be greater than or equal to 1 (got 0)" in message
    assert "evaluator.optimizer: Input should be 'sgd' or 'adamw' (got 'adam')" in message
    assert "evaluator.lrr: unknown field. Did you mean 'lr'?" in message
    assert "budget.trials:" in message and "(got 0)" in message


def test_unknown_space_lists_allowed_names() -> None:
    message = error_of(with_(space={"name": "nb2001"}))
    assert "space.name: unknown search space 'nb2001'" in message
    assert "nb201" in message and "Allowed:" in message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"channels": -1}, "channels=-1"), ({"chanels": 8}, "no option(s) ['chanels']")],
)
def test_bad_space_options_fail_in_the_plan(options: dict[str, object], fragment: str) -> None:
    load_config(with_(space={"name": "nb201", **options}))  # the schema cannot judge space options
    message = plan_error_of(with_(space={"name": "nb201", **options}))
    assert "space:" in message and fragment in message


def test_unknown_strategy_and_bad_strategy_options() -> None:
    assert (
        "strategy.name: unknown strategy or one-shot method 'evolutoin'. Did you mean 'evolution'?"
        in error_of(with_(strategy={"name": "evolutoin"}))
    )
    message = plan_error_of(with_(strategy={"name": "evolution", "population_size": 2, "tournament_size": 5}))
    assert "strategy:" in message and "tournament_size=5" in message
    message = plan_error_of(with_(strategy={"name": "evolution", "population": 8}))
    assert "population" in message and "population_size" in message


def test_strategy_may_not_set_what_the_top_level_sets() -> None:
    message = error_of(with_(strategy={"name": "random", "seed": 3}))
    assert "strategy option 'seed' is set by the top-level field 'seed'" in message


def test_unknown_evaluator_and_plugin_option() -> None:
    assert "evaluator.name: unknown evaluator 'trian'" in error_of(with_(evaluator={"name": "trian"}))
    message = plan_error_of(with_(space={"name": "nb201"}, evaluator={"name": "nb201_table", "metrik": "x"}))
    assert "no option(s) ['metrik']" in message and "metric" in message


def test_bad_objectives_and_constraints() -> None:
    message = error_of(with_(objectives={"val_accuracy": "maximise"}, constraints={"params": "== 3"}))
    assert "objectives:" in message and "'maximise'" in message and "'max', 'min'" in message
    assert "constraints:" in message and "'== 3'" in message
    assert "objectives:" in error_of(with_(objectives={}))


@pytest.mark.parametrize(
    ("dataset", "fragment"),
    [
        (
            {"name": "mnist"},
            "unknown dataset 'mnist'; allowed: digits, cifar10, image_folder, npy, parquet, webdataset, synthetic",
        ),
        ({"name": "digits", "path": "x.npz"}, "dataset field 'path' is not used by dataset 'digits'"),
        ({"name": "synthetic", "image_size": 8}, "'image_size' is not used by dataset 'synthetic'"),
        ({"name": "image_folder"}, "'image_folder' needs 'path'"),
        ({"name": "digits", "val_fraction": 1.0}, "dataset.val_fraction: Input should be less than 1"),
        ({"name": "synthetic", "shape": [1, 0, 8]}, "dataset.shape.1"),
    ],
)
def test_dataset_errors(dataset: dict[str, object], fragment: str) -> None:
    assert fragment in error_of(with_(dataset=dataset))


def test_function_dataset_reference_is_accepted() -> None:
    config = load_config(with_(dataset={"name": "my_pkg.data:make", "options": {"n": 3}}))
    assert config.dataset is not None and config.dataset.kind == "package.module:function"


def test_cross_field_rules() -> None:
    assert "resources.gpu is 0" in error_of(with_(evaluator={"device": "cuda"}))
    message = error_of(with_(evaluator={"epochs": 2}, scheduler={"name": "asha", "grace_epochs": 3}))
    assert "grace_epochs=3 exceeds evaluator.epochs=2" in message
    load_config(with_(evaluator={"device": "cuda"}, resources={"gpu": 0.5}))  # fractional GPU share is fine


def test_nan_and_negative_resources_are_refused() -> None:
    assert "resources.cpu" in error_of(with_(resources={"cpu": 0}))
    assert "evaluator.lr" in error_of(with_(evaluator={"lr": float("nan")}))


def test_missing_file_bad_yaml_and_non_mapping(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert str(missing) in error_of(missing) and "does not exist" in error_of(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nspace: {name: nb201\nbudget: 3\n")
    message = error_of(bad)
    assert f"{bad}:" in message and "invalid YAML" in message
    line = int(message.split(f"{bad}:")[1].split(":")[0])
    assert line in (2, 3)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    assert "must hold a mapping" in error_of(listing)
    assert "a config must be" in error_of(42)


def test_missing_required_fields() -> None:
    message = error_of({"space": {"name": "nb201"}})
    assert "name: Field required" in message
    assert "space: Field required" in error_of({"name": "x"})


def test_study_name_pattern() -> None:
    assert "name:" in error_of(with_(name="has space"))
    assert SearchConfig.model_fields["name"].is_required()


def test_hyperband_is_refused_where_it_cannot_pause_and_promote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugins"))
    train = {"name": "train", "epochs": 4}
    build_plan(with_(evaluator=train, scheduler={"name": "hyperband", "reduction_factor": 2}))
    message = plan_error_of(with_(evaluator={"name": "train", "epochs": 2}, scheduler={"name": "hyperband"}))
    assert "'hyperband' with reduction_factor 3 needs at least 3 epochs" in message and "2.0" in message
    for factor in (1, 17, 2.5):
        message = plan_error_of(
            with_(evaluator=train, scheduler={"name": "hyperband", "reduction_factor": factor})
        )
        assert "scheduler 'hyperband'" in message and "reduction_factor" in message
    table = with_(space={"name": "nb201"}, evaluator={"name": "nb201_table", "metric": "cifar10-val"})
    assert "reports none" in plan_error_of({**table, "scheduler": {"name": "hyperband"}})
    no_checkpoints = with_(
        plugins=["nas_test_plugins"],
        evaluator={"name": "curve", "steps": 4},
        scheduler={"name": "hyperband", "reduction_factor": 2},
    )
    message = plan_error_of(no_checkpoints)
    assert "evaluator 'curve' cannot checkpoint" in message and "'asha'" in message
