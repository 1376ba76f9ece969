"""The contract every registered evaluator meets, built-in or plugin.

Parametrised over ``EVALUATORS`` (which includes the test-only plugin of
tests/plugins), so a new evaluator is held to it without editing this file.
An evaluator is checked on a small space with cheap options (``SETUPS``; one
not listed there, such as a plugin, is built with its defaults on a small
NAS-Bench-201 space):
its result is an :class:`EvalResult` of named finite floats, the same
architecture and seed give the same objective value, ``report`` (when it is
called at all) gets increasing integer steps and named floats, and an
architecture of another space is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nas.core import EVALUATORS, Architecture, EvalResult, Evaluator, NASError, SearchSpace
from search_spaces import get_space

#: Every registered evaluator: the built-ins and the test-only plugin in tests/plugins.
ALL = EVALUATORS.names()

SMALL_NB201 = {"name": "nb201", "channels": 4, "cells": 1}
SYNTHETIC = {"name": "synthetic", "num_samples": 64, "num_test": 16, "num_classes": 4, "noise": 0.8}


def _train_options(tmp_path: Path) -> dict[str, Any]:
    return {
        "dataset": SYNTHETIC,
        "workdir": tmp_path,
        "epochs": 1,
        "batch_size": 32,
        "latency_repeats": 1,
        "num_threads": 1,
    }


@dataclass(frozen=True)
class Setup:
    """How the contract builds and feeds one evaluator."""

    space: Mapping[str, Any] = field(default_factory=lambda: SMALL_NB201)
    options: Callable[[Path], dict[str, Any]] = lambda _: {}
    objective: str = "val_accuracy"  # a value the same architecture and seed must repeat
    needs_data: bool = False
    #: The architecture to evaluate (a table evaluator knows only its rows).
    arch: Callable[[Evaluator, SearchSpace], Architecture] = lambda _, space: space.sample(3)


SETUPS: dict[str, Setup] = {
    "nb201_table": Setup(space={"name": "nb201"}, needs_data=True),
    "fbnet_latency": Setup(
        space={"name": "fbnet"},
        options=lambda _: {"device": "raspi4"},
        objective="latency_ms",
        needs_data=True,
        arch=lambda evaluator, _: evaluator.latency_table.archs[3],  # type: ignore[attr-defined]
    ),
    "train": Setup(options=_train_options),
    "zero_cost": Setup(options=lambda _: {"input_shape": (3, 8, 8), "batch_size": 4}, objective="synflow"),
}


def _space(spec: Mapping[str, Any]) -> SearchSpace:
    options = dict(spec)
    return get_space(options.pop("name"), **options)


@pytest.fixture(params=ALL)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Evaluator, SearchSpace, Architecture, str]:
    name = request.param
    plan = SETUPS.get(name, Setup())
    if plan.needs_data:
        request.getfixturevalue("data_dir")
    space = _space(plan.space)
    evaluator = EVALUATORS.get(name)(space, **plan.options(tmp_path))
    return evaluator, space, plan.arch(evaluator, space), plan.objective


def test_the_test_plugin_is_held_to_the_contract() -> None:
    """tests/plugins/evaluator_plugin.py is among the cases (a plugin that drops out fails)."""
    assert "plugin_choice_index" in ALL
    assert {"nb201_table", "fbnet_latency", "train", "zero_cost"} <= set(ALL)


def test_every_registered_evaluator_is_an_evaluator() -> None:
    for name in ALL:
        assert issubclass(EVALUATORS.get(name), Evaluator), name


def test_result_is_named_finite_floats_and_the_objective_repeats(setup) -> None:  # noqa: ANN001
    evaluator, _, arch, objective = setup
    steps: list[int] = []

    def report(step: int, metrics: Mapping[str, float]) -> None:
        assert isinstance(step, int) and (not steps or step > steps[-1]), (step, steps)
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in metrics.items()), metrics
        steps.append(step)

    result = evaluator.evaluate(arch, seed=0, report=report)
    assert isinstance(result, EvalResult)
    assert result.values and objective in result.values
    for key, value in result.values.items():
        assert isinstance(key, str) and isinstance(value, float) and math.isfinite(value), (key, value)
    assert isinstance(result.user_attrs, Mapping) and isinstance(result.artifacts, Mapping)
    assert all(Path(path).exists() for path in result.artifacts.values())
    again = evaluator.evaluate(arch, seed=0)  # no reporter: optional
    assert again.values[objective] == result.values[objective]


def test_an_architecture_of_another_space_is_refused(setup) -> None:  # noqa: ANN001
    evaluator, space, arch, _ = setup
    foreign = Architecture("not_" + space.name, arch.decisions)
    with pytest.raises(NASError):
        evaluator.evaluate(foreign, seed=0)


@pytest.mark.parametrize("name", ALL)
def test_the_declared_metrics_are_what_an_evaluation_reports(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The plan refuses objectives outside ``reported_metrics``, so that list must be true."""
    plan = SETUPS.get(name, Setup())
    if plan.needs_data:
        request.getfixturevalue("data_dir")
    cls, options, space = EVALUATORS.get(name), plan.options(tmp_path), _space(plan.space)
    declared = cls.reported_metrics(options)
    assert declared is not None, f"evaluator {name!r} declares no metrics (Evaluator.reports)"
    evaluator = cls(space, **options)
    result = evaluator.evaluate(plan.arch(evaluator, space), seed=0)
    assert plan.objective in declared
    assert set(declared) <= set(result.values), (declared, sorted(result.values))
