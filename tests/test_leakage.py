"""Leakage guards: test data never reaches a search, a strategy, a predictor or a stored trial.

The guard test runs every registered strategy (built-ins and the tests/plugins
one), plus the predictor in the configuration behind our 95% figure (zero-cost
features, ``candidate_pool: all``), on the real NAS-Bench-201 table wrapped so
that reading a test column raises while the search runs. The other tests pin
each way a test column used to get in: ``--metric`` of the predictor and
proxy benchmarks (CLI and scripts), a config objective, ``rank_metric``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from small_spaces import FAST_STRATEGY_OPTIONS, searches

import nas.bench
from nas.cli import main
from nas.core import EVALUATORS, STRATEGIES, ConfigError
from nas.core.evaluator import EvalRequest, EvalResult
from nas.core.leakage import REPORT_COLUMNS, check_report_column, is_test_column, refuse_test_column
from nas.data.paths import NB201_TABLE, ZERO_COST_NB201, data_path
from nas.data.tables import Table
from nas.evaluators.tabular import Nb201TableEvaluator
from nas.settings import load_config
from nas.strategies import create_strategy
from search_spaces import get_space

REPO = Path(__file__).resolve().parents[1]
QUERIES = 12


@pytest.fixture(scope="module")
def space(data_dir: Path):  # noqa: ANN201
    """The nb201 space; through ``data_dir``, a skip with a reason when the benchmark data is absent."""
    return get_space("nb201")


# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "test"),
    [
        ("cifar10-test", True),
        ("imagenet-test", True),
        ("test_acc", True),
        ("test_accuracy", True),
        ("testAcc", True),
        ("valTest", True),
        ("cifar10test", True),
        ("TEST-ACC", True),
        ("cifar10-val", False),
        ("val_accuracy", False),
        ("latest", False),
        ("contest_score", False),
        ("latency_ms", False),
    ],
)
def test_a_test_column_is_known_by_its_name(name: str, test: bool) -> None:
    assert is_test_column(name) is test


def test_refusal_names_the_column_and_what_is_allowed() -> None:
    assert refuse_test_column("cifar10-val", "--metric") == "cifar10-val"
    with pytest.raises(ConfigError) as error:
        refuse_test_column("cifar10-test", "--metric", ["cifar10-test", "cifar10-val"])
    message = str(error.value)
    assert "'cifar10-test'" in message and "--metric" in message and "allowed: ['cifar10-val']" in message
    assert "\n" not in message  # the CLI prints it as one line


def test_the_report_allow_list_names_only_test_columns_of_the_table(space) -> None:  # noqa: ANN001
    table = Table.load(data_path(NB201_TABLE), space)
    assert REPORT_COLUMNS == {c for c in table.columns if is_test_column(c)}
    for column in REPORT_COLUMNS:
        assert check_report_column(column, "rank_metric") == column
    assert check_report_column("cifar10-val", "rank_metric") == "cifar10-val"
    with pytest.raises(ConfigError, match="'test_acc' is a test column outside the report allow-list"):
        check_report_column("test_acc", "rank_metric")


# -- every strategy, against a table whose test columns raise during the search --------------------


class GuardedTable(Table):
    """The real nb201 table whose test columns raise while ``armed`` (the search phase).

    Reads are recorded as well as refused because the search loop turns an
    evaluator exception into a FAIL trial and carries on.
    """

    def __init__(self, real: Table) -> None:
        super().__init__(real.path, real.space, real.archs, {c: real.column(c) for c in real.columns})
        self.armed = False
        self.violations: list[str] = []

    def column(self, name: str) -> np.ndarray:
        if self.armed and is_test_column(name):
            self.violations.append(name)
            raise AssertionError(f"test column {name!r} read during the search")
        return super().column(name)


@pytest.fixture()
def guarded(space) -> GuardedTable:  # noqa: ANN001
    return GuardedTable(Table.load(data_path(NB201_TABLE), space))


@pytest.fixture(scope="module")
def zero_cost_features(space, data_dir: Path) -> dict:  # noqa: ANN001
    """Zero-cost features of every cell as the 95% configuration uses them (path + one-hot + proxies).

    The proxy scores are NASLib's stored jacob_cov and synflow of the ~725
    NAS-Bench-Suite-Zero cells; the other cells are unscored, as in an
    interrupted proxy cache, and :func:`as_features` places them below every
    scored cell. Scoring all 15,625 cells here would take hours.
    """
    from predictors.proxy_table import as_features
    from predictors.suite_zero import NASLIB_NAMES, read_zero_cost_nb201

    proxies = ["jacob_cov", "synflow"]
    sample = read_zero_cost_nb201(data_path(ZERO_COST_NB201), space)
    scored = {
        arch: [sample.scores[NASLIB_NAMES.get(p, p)][at] for p in proxies]
        for at, arch in enumerate(sample.archs)
    }
    archs = Table.load(data_path(NB201_TABLE), space).archs
    scores = np.array([scored.get(arch, [math.nan, math.nan]) for arch in archs], dtype=float)
    features = dict(zip(archs, as_features(scores, proxies), strict=True))
    return {"extra_features": features, "encoding": "both", "target_transform": "rank"}


#: Every registered strategy that searches nb201 (the table guarded here) with cheap options, plus the
#: predictor as our 95% figure runs it. ``morphism`` needs morphisms, which nb201 has not.
NB201_STRATEGIES = {name for name in STRATEGIES.names() if searches(name, "nb201")}
CASES = {name: (name, FAST_STRATEGY_OPTIONS.get(name, {})) for name in sorted(NB201_STRATEGIES)}
CASES["predictor"] = ("predictor", {"n_initial": 5, "n_candidates": 10})
CASES["predictor-zc-all"] = ("predictor", {"n_initial": 5, "candidate_pool": "all"})


def test_the_cases_cover_every_registered_strategy_and_the_plugin() -> None:
    assert {strategy for strategy, _ in CASES.values()} == NB201_STRATEGIES
    assert len(NB201_STRATEGIES) >= len(STRATEGIES.names()) - 1  # only morphism is left out today
    assert "plugin_mutation" in CASES  # tests/plugins/strategy_plugin.py


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_strategy_reads_test_data_during_the_search(
    case: str,
    guarded: GuardedTable,
    space,  # noqa: ANN001
    zero_cost_features: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, options = CASES[case]
    predictor_options = zero_cost_features if case == "predictor-zc-all" else None
    strategy_options = dict(options)
    if predictor_options is not None:
        strategy_options["predictor_options"] = predictor_options

    # 1. The bench's search phase with the evaluator exactly as a search config builds it
    #    (`evaluator: {name: nb201_table}`, every option at its default).
    evaluator = EVALUATORS.get("nb201_table")(space, table=guarded)
    strategy = create_strategy(name, space, seed=0, **strategy_options)
    guarded.armed = True
    try:
        trials = nas.bench.search(strategy, evaluator, QUERIES)
    finally:
        guarded.armed = False
    assert guarded.violations == []
    assert [t.state.value for t in trials] == ["COMPLETE"] * QUERIES, [t.error for t in trials]
    for trial in trials:
        stored = [*trial.values, *trial.user_attrs]
        assert not [k for k in stored if is_test_column(k)], f"trial {trial.number} carries {stored}"
        assert set(trial.values) == {"val_accuracy"} and not trial.user_attrs

    # 2. `nas bench nb201` end to end: the search is guarded, the test number comes afterwards.
    real_search = nas.bench.search

    def armed_search(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        guarded.armed = True
        try:
            return real_search(*args, **kwargs)
        finally:
            guarded.armed = False

    monkeypatch.setattr(nas.bench, "search", armed_search)
    result = nas.bench.run_nb201(
        name,
        QUERIES,
        [0],
        table=guarded,
        strategy_options=options,
        predictor_options=predictor_options,
        checkpoints=[QUERIES],
    )
    assert guarded.violations == []
    assert [t.state.value for t in result.runs[0].trials] == ["COMPLETE"] * QUERIES
    assert [t.arch for t in result.runs[0].trials] == [t.arch for t in trials]  # the same search
    incumbent = result.runs[0].incumbents[0]
    assert result.test_metric == "cifar10-test"
    assert incumbent.test == guarded.value(space.parse(incumbent.arch), "cifar10-test")  # reported after


def test_the_guard_catches_an_evaluator_that_reads_test_data(guarded: GuardedTable, space) -> None:  # noqa: ANN001
    """The guard can fail: an evaluator that returns a test number is caught on every trial."""

    class Leaky(Nb201TableEvaluator):
        def measure(self, request: EvalRequest) -> EvalResult:
            result = super().measure(request)
            assert self.table is not None
            result.user_attrs["test_accuracy"] = self.table.value(request.arch, "cifar10-test")
            return result

    guarded.armed = True
    trials = nas.bench.search(create_strategy("random", space), Leaky(space, table=guarded), 3)
    guarded.armed = False
    assert guarded.violations == ["cifar10-test"] * 3
    assert all("read during the search" in t.error for t in trials)


# -- each way a test column used to get in ----------------------------------------------------------


@pytest.mark.parametrize("command", ["nb201", "predictors", "proxies"])
def test_cli_metric_refuses_a_test_column(command: str, data_dir: Path) -> None:
    out = CliRunner().invoke(main, ["bench", command, "--metric", "cifar10-test"])
    assert out.exit_code == 2, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "test column 'cifar10-test'" in lines[0], out.output


@pytest.mark.parametrize(
    "script", ["predictor_ranking.py", "proxies.py", "strategies.py", "multiobjective.py"]
)
def test_benchmark_scripts_refuse_a_test_metric(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--metric", "cifar10-test"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 2, done.stderr
    assert "--metric may not use test column 'cifar10-test'" in done.stderr


@pytest.mark.parametrize("objective", ["cifar10-test", "test_accuracy"])
def test_a_config_objective_on_test_data_is_refused_at_load(objective: str) -> None:
    config = {
        "name": "s",
        "space": {"name": "nb201"},
        "evaluator": {"name": "nb201_table"},
        "strategy": {"name": "random"},
        "objectives": {objective: "max"},
    }
    with pytest.raises(ConfigError, match=f"objective may not use test column '{objective}'"):
        load_config(config)
    with pytest.raises(ConfigError, match="test column"):
        create_strategy("random", get_space("nb201"), objectives={objective: "max"})
    with pytest.raises(ConfigError, match=f"constraint may not use test column '{objective}'"):
        load_config({**config, "objectives": {"val_accuracy": "max"}, "constraints": {objective: ">= 80"}})


def test_an_evaluator_objective_or_column_on_test_data_is_refused(space) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="may not use test column 'cifar10-test'.*allowed: .*'cifar10-val'"):
        Nb201TableEvaluator(space, metric="cifar10-test")
    with pytest.raises(ConfigError, match="objective may not use test column 'test_accuracy'"):
        Nb201TableEvaluator(space, objective="test_accuracy")


def test_rank_metric_is_a_report_a_test_column_only_from_the_allow_list() -> None:
    from nas.oneshot.settings import parse_settings

    assert parse_settings("spos", {"rank_correlation": 5}).rank_metric == "cifar10-val"
    assert parse_settings("spos", {"rank_metric": "cifar10-test"}).rank_metric == "cifar10-test"
    with pytest.raises(
        ConfigError, match="rank_metric 'test_acc' is a test column outside the report allow-list"
    ):
        parse_settings("spos", {"rank_metric": "test_acc"})
