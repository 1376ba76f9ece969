"""Strategy contract tests, run over every registered strategy on the NAS-Bench-201 table.

Registering a strategy is enough to have it checked: deterministic by seed,
asynchronous asks, warm start equal to replay, no duplicate (canonical)
architectures, constraints honoured, test results never read. Base-class
rules are also checked on a 9-architecture toy space where exhaustion and
duplicates are easy to see.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor
from small_spaces import FAST_STRATEGY_OPTIONS, searches

from nas.core import (
    STRATEGIES,
    Architecture,
    ArchitectureError,
    ConfigError,
    NASError,
    Predictor,
    SearchSpace,
    Trial,
    TrialState,
    UnknownNameError,
)
from nas.core.evaluator import EvalResult
from nas.core.pareto import crowding_distance, hypervolume, non_dominated_ranks, to_minimisation
from nas.core.strategy import INITIAL_PHASE, Constraint, parse_constraint, parse_constraints
from nas.strategies import create_strategy, run_loop, strategy_options
from search_spaces import get_space

# -- helpers -----------------------------------------------------------------------------------


class ForestEnsemble(Predictor):
    """A real (small) predictor for the tests: extra trees on the space's encoding, spread over trees."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)

    def _x(self, archs: Sequence[Architecture]) -> np.ndarray:
        encode = self.space.path_encode if self.space.has_path_encoding else self.space.encode
        return np.stack([encode(a) for a in archs])

    def fit(self, archs: Sequence[Architecture], targets: Sequence[float]) -> ForestEnsemble:
        self.model = ExtraTreesRegressor(n_estimators=16, random_state=self.seed).fit(self._x(archs), targets)
        return self

    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        x = self._x(archs)
        per_tree = np.stack([tree.predict(x) for tree in self.model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)


class NaNPredictor(ForestEnsemble):
    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        mean, std = super().predict_dist(archs)
        mean[0] = math.nan
        return mean, std


#: Options each strategy needs in the tests (small, so the contract runs in seconds).
TEST_OPTIONS: dict[str, dict[str, Any]] = {
    "predictor": {"predictor": ForestEnsemble, "n_initial": 5, "n_candidates": 20},
    "evolution": {"population_size": 8, "tournament_size": 3},
    "nsga2": {"population_size": 8},
    "bowl": {"n_initial": 5, "n_candidates": 20},
    "fbnetv3": {
        "n_initial": 5,
        "n_candidates": 10,
        "recipes_per_arch": 2,
        **FAST_STRATEGY_OPTIONS["fbnetv3"],
    },
}


#: Every registered strategy that searches nb201: the built-ins and the test-only plugin in tests/plugins
#: (``morphism`` needs a space with morphisms: its contract runs in tests/test_morphism.py).
ALL = [name for name in STRATEGIES.names() if searches(name, "nb201")]


def make(name: str, space: SearchSpace, **options: Any):  # noqa: ANN201
    return create_strategy(name, space, **{**TEST_OPTIONS.get(name, {}), **options})


class ToySpace(SearchSpace):
    """Two decisions of three values; (a, b) and (b, a) are functionally identical."""

    name = "toy"

    def choices(self) -> dict[str, Sequence[int]]:
        return {"a": (0, 1, 2), "b": (0, 1, 2)}

    def canonical_key(self, arch: Architecture) -> str:
        self.validate(arch)
        return f"toy:{sorted((arch['a'], arch['b']))}"

    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        return nx.DiGraph()

    def parse(self, text: str) -> Architecture:
        a, b = text.split(",")
        return self.make({"a": int(a), "b": int(b)})

    def format(self, arch: Architecture) -> str:
        return f"{arch['a']},{arch['b']}"

    def build(self, arch: Architecture, num_classes: int = 10, input_shape: Any = (3, 32, 32)) -> Any:
        raise NotImplementedError("the toy space has no model")


def toy_value(arch: Architecture) -> EvalResult:
    return EvalResult(values={"val_accuracy": float(arch["a"] + 2 * arch["b"])})


@pytest.fixture(scope="module")
def nb201(data_dir):  # noqa: ANN001, ANN201
    from nas.evaluators.tabular import Nb201TableEvaluator

    space = get_space("nb201")
    return space, Nb201TableEvaluator(space, device="pixel3")


def complete(number: int, arch: Architecture, values: Mapping[str, float], **attrs: Any) -> Trial:
    return Trial(number, arch, TrialState.COMPLETE, values=dict(values), **attrs)


# -- contract over every registered strategy ---------------------------------------------------


def test_the_test_plugin_is_held_to_the_contract() -> None:
    """tests/plugins/strategy_plugin.py is among the cases below (a plugin that drops out fails)."""
    assert "plugin_mutation" in ALL
    assert {"cmab", "evolution", "local", "manas", "nsga2", "predictor", "random", "reinforce"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_search_other_seed_other_search(name: str, nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    first = [t.arch for t in run_loop(make(name, space, seed=3), evaluator, 25)]
    again = [t.arch for t in run_loop(make(name, space, seed=3), evaluator, 25)]
    other = [t.arch for t in run_loop(make(name, space, seed=4), evaluator, 25)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", ALL)
def test_concurrent_asks_are_served_and_never_duplicate_a_canonical_cell(name: str, nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    strategy = make(name, space, seed=1)
    pending = [strategy.ask() for _ in range(4)]
    assert all(a is not None for a in pending)
    assert len({space.canonical_key(a) for a in pending}) == 4
    assert strategy.num_pending == 4
    for number, arch in reversed(list(enumerate(pending))):  # told out of order
        strategy.tell(complete(number, arch, evaluator.evaluate(arch).values))
    assert strategy.num_pending == 0
    trials = run_loop(strategy, evaluator, 40, concurrency=4, completion="random", seed=2)
    keys = [space.canonical_key(t.arch) for t in trials] + [space.canonical_key(a) for a in pending]
    assert len(keys) == 44
    assert len(set(keys)) == 44


@pytest.mark.parametrize("name", ALL)
def test_warm_start_continues_exactly_like_the_uninterrupted_search(name: str, nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    live = make(name, space, seed=5)
    history = run_loop(live, evaluator, 24)
    resumed = make(name, space, seed=5)
    resumed.warm_start(history)
    for number in range(24, 30):
        a, b = live.ask(), resumed.ask()
        assert a == b
        trial = complete(number, a, evaluator.evaluate(a).values)
        live.tell(trial)
        resumed.tell(trial)


@pytest.mark.parametrize("name", ALL)
def test_each_ask_records_its_phase_initial_then_the_strategys_own(name: str, nb201) -> None:  # noqa: ANN001
    """``last_phase``: ``initial`` for the first ``initial_size`` asks (one at a time), never after."""
    space, evaluator = nb201
    strategy = make(name, space, seed=6)
    assert strategy.last_phase is None
    phases = []
    for number in range(strategy.initial_size + 3):
        arch = strategy.ask()
        phases.append(strategy.last_phase)
        strategy.tell(complete(number, arch, evaluator.evaluate(arch).values))
    initial = strategy.initial_size
    assert phases[:initial] == [INITIAL_PHASE] * initial
    assert INITIAL_PHASE not in phases[initial:]
    assert type(strategy).phase_name in phases[initial:]


@pytest.mark.parametrize("name", ALL)
def test_constraints_reject_candidates_before_they_are_proposed(name: str, nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    latency = evaluator.latency_table

    def measure(arch: Architecture) -> dict[str, float]:
        return {"latency_ms": float(latency.column("pixel3")[latency.row(arch)])}

    strategy = make(name, space, seed=0, constraints={"latency_ms": "<= 10"}, measure=measure)
    trials = run_loop(strategy, evaluator, 30)
    assert len(trials) == 30
    assert all(t.values["latency_ms"] <= 10 for t in trials)


class _Untouchable(Mapping[str, Any]):
    """user_attrs that fail the test if a strategy reads them (they hold test accuracy)."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError(f"strategy read user_attrs[{key!r}] (test results)")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("strategy iterated user_attrs (test results)")

    def __len__(self) -> int:
        raise AssertionError("strategy inspected user_attrs (test results)")


@pytest.mark.parametrize("name", ALL)
def test_strategies_never_read_reported_test_results(name: str, nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    strategy = make(name, space, seed=0)
    for number in range(25):
        arch = strategy.ask()
        values = evaluator.evaluate(arch).values
        strategy.tell(complete(number, arch, values, user_attrs=_Untouchable()))
    with pytest.raises(AssertionError):  # the guard itself works
        dict(_Untouchable())


@pytest.mark.parametrize("name", ALL)
def test_failed_and_nan_trials_are_not_learned_from_nor_proposed_again(name: str, nb201, caplog) -> None:  # noqa: ANN001
    space, evaluator = nb201
    strategy = make(name, space, seed=2)
    failed, nan = strategy.ask(), strategy.ask()
    strategy.tell(Trial(0, failed, TrialState.FAIL, error="boom"))
    with caplog.at_level(logging.WARNING):
        strategy.tell(complete(1, nan, {"val_accuracy": math.nan, "latency_ms": 1.0}))
    assert "not finite" in caplog.text
    assert strategy.observations == []
    later = [t.arch for t in run_loop(strategy, evaluator, 20)]
    bad = {space.canonical_key(failed), space.canonical_key(nan)}
    assert not bad & {space.canonical_key(a) for a in later}


# -- the base class on a toy space -------------------------------------------------------------


def test_exhausted_space_gives_none_and_the_loop_stops() -> None:
    space = ToySpace()
    strategy = create_strategy("random", space, seed=0)
    trials = run_loop(strategy, toy_value, 20)
    assert len(trials) == 6  # six functional classes among nine architectures
    assert len({space.canonical_key(t.arch) for t in trials}) == 6
    assert strategy.ask() is None


def test_exact_duplicate_key_keeps_functional_twins_apart() -> None:
    strategy = create_strategy("random", ToySpace(), seed=0, duplicate_key="exact")
    assert len(run_loop(strategy, toy_value, 20)) == 9


def test_allow_duplicates_lets_repeats_through() -> None:
    strategy = create_strategy("random", ToySpace(), seed=0, allow_duplicates=True)
    trials = run_loop(strategy, toy_value, 30)
    assert len(trials) == 30
    assert len({t.arch for t in trials}) < 30


def test_tell_rejects_unfinished_and_foreign_trials() -> None:
    space = ToySpace()
    strategy = create_strategy("random", space)
    arch = space.make({"a": 0, "b": 1})
    with pytest.raises(ConfigError, match="RUNNING"):
        strategy.tell(Trial(0, arch, TrialState.RUNNING))
    with pytest.raises(ArchitectureError, match="space 'other'"):
        strategy.tell(Trial(0, Architecture("other", {"a": 0}), TrialState.FAIL))


def test_unknown_names_and_options_are_config_errors() -> None:
    space = ToySpace()
    with pytest.raises(UnknownNameError, match="evolution"):
        create_strategy("evolutoin", space)
    with pytest.raises(ConfigError, match="population_size"):
        create_strategy("evolution", space, populaton_size=3)
    with pytest.raises(ConfigError, match="tournament_size=9"):
        create_strategy("evolution", space, population_size=4, tournament_size=9)
    with pytest.raises(ConfigError, match="acquisition"):
        create_strategy("predictor", space, predictor=ForestEnsemble, acquisition="poi")
    with pytest.raises(ConfigError, match="predictor=42"):
        create_strategy("predictor", space, predictor=42)
    with pytest.raises(ConfigError, match="seed"):
        create_strategy("random", space, seed=-1)
    assert "constraints" in strategy_options("local")


# -- constraints ---------------------------------------------------------------------------------


def test_constraint_expressions_parse_into_frozen_limits() -> None:
    assert parse_constraint("params", "<= 2e6") == Constraint("params", "<=", 2e6)
    assert parse_constraint("latency_ms", 20) == Constraint("latency_ms", "<=", 20.0)
    assert parse_constraints(["accuracy > 0.5", "latency_ms<20"]) == (
        Constraint("accuracy", ">", 0.5),
        Constraint("latency_ms", "<", 20.0),
    )
    limit = parse_constraint("latency_ms", "< 20")
    assert limit.satisfied(19.9) and not limit.satisfied(20.0) and not limit.satisfied(math.nan)
    for bad in ("=< 20", "<= twenty", "<= inf", "20 >=", ""):
        with pytest.raises(ConfigError, match="expected"):
            parse_constraint("latency_ms", bad)
    with pytest.raises(ConfigError, match="metric <op> number"):
        parse_constraints(["latency_ms"])


def test_constraints_need_a_cost_model_that_measures_their_metric() -> None:
    space = ToySpace()
    with pytest.raises(ConfigError, match="measure="):
        create_strategy("random", space, constraints={"params": "<= 3"})
    strategy = create_strategy(
        "random", space, constraints={"params": "<= 3"}, measure=lambda a: {"flops": 1.0}
    )
    with pytest.raises(ConfigError, match="measures only \\['flops'\\]"):
        strategy.ask()


def test_infeasible_everything_gives_none() -> None:
    space = ToySpace()
    strategy = create_strategy(
        "random", space, constraints=["a_plus_b <= -1"], measure=lambda a: {"a_plus_b": 1.0}
    )
    assert strategy.ask() is None


# -- individual strategies -----------------------------------------------------------------------


def test_local_search_climbs_to_the_optimum() -> None:
    trials = run_loop(create_strategy("local", ToySpace(), seed=0, duplicate_key="exact"), toy_value, 9)
    assert max(t.values["val_accuracy"] for t in trials) == 6.0  # a=2, b=2


def test_local_search_explores_neighbours_and_restarts_at_a_local_optimum() -> None:
    space = ToySpace()
    strategy = create_strategy("local", space, seed=0, duplicate_key="exact")
    top = space.make({"a": 2, "b": 2})
    strategy.tell(complete(0, top, toy_value(top).values))
    assert strategy.current is not None and strategy.current.arch == top
    proposals = []
    for number in range(1, 5):
        arch = strategy.ask()
        assert arch in space.neighbours(top)
        proposals.append(arch)
        strategy.tell(complete(number, arch, toy_value(arch).values))
    assert set(proposals) == set(space.neighbours(top))
    assert strategy.current is None  # every neighbour is worse: restart
    start = strategy.ask()
    strategy.tell(complete(5, start, toy_value(start).values))
    assert strategy.current is not None and strategy.current.arch == start


def test_evolution_children_are_single_edits_of_the_population(nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    strategy = make("evolution", space, seed=0)
    run_loop(strategy, evaluator, 20)
    population = {o.arch for o in strategy.observations[-8:]}
    for _ in range(10):
        child = strategy.ask()
        assert any(child in space.neighbours(member) for member in population)
        strategy.tell(complete(99, child, evaluator.evaluate(child).values))
        population = {o.arch for o in strategy.observations[-8:]}


def test_predictor_prior_replaces_the_random_warm_up(nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    rng = np.random.default_rng(0)
    prior = [
        (a, evaluator.evaluate(a).values["val_accuracy"]) for a in (space.sample(rng) for _ in range(12))
    ]
    strategy = create_strategy(
        "predictor", space, predictor=ForestEnsemble, prior=prior, n_initial=10, random_fraction=0.0
    )
    top = sorted(prior, key=lambda p: -p[1])[:5]
    first = strategy.ask()
    # Without a prior the first ask is random; with one it is at most two edits from a top prior cell.
    assert any(_edits(first, arch) <= 2 for arch, _ in top)
    scored = create_strategy(
        "predictor", space, predictor=ForestEnsemble, prior=[(a, -v) for a, v in prior], prior_units="score"
    )
    _, targets = scored.training_set()
    assert np.argsort(targets).tolist() == np.argsort([-v for _, v in prior]).tolist()
    assert abs(targets.mean()) < 1e-9  # normal scores of ranks are centred


def _edits(a: Architecture, b: Architecture) -> int:
    return sum(a[name] != b[name] for name in a)


def test_predictor_with_constant_targets_falls_back_to_random() -> None:
    space = ToySpace()
    strategy = create_strategy("predictor", space, predictor=ForestEnsemble, n_initial=2, seed=0)
    trials = run_loop(strategy, lambda a: EvalResult(values={"val_accuracy": 1.0}), 6)
    assert len(trials) == 6


def test_predictor_returning_nan_is_an_error(nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    strategy = create_strategy("predictor", space, predictor=NaNPredictor, n_initial=3, seed=0)
    for number in range(3):
        arch = strategy.ask()
        strategy.tell(complete(number, arch, evaluator.evaluate(arch).values))
    with pytest.raises(NASError, match="NaN"):
        strategy.ask()


@pytest.mark.slow
def test_predictor_strategy_beats_random_on_nb201(nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    best = {}
    for name in ("random", "predictor"):
        runs = [run_loop(make(name, space, seed=s), evaluator, 40) for s in range(3)]
        best[name] = np.mean([max(t.values["val_accuracy"] for t in run) for run in runs])
    assert best["predictor"] > best["random"]


def test_nsga2_population_keeps_the_front_first(nb201) -> None:  # noqa: ANN001
    space, evaluator = nb201
    strategy = make("nsga2", space, objectives={"val_accuracy": "max", "latency_ms": "min"}, seed=0)
    run_loop(strategy, evaluator, 30)
    population, ranks, _ = strategy.population()
    assert len(population) == 8 and list(ranks) == sorted(ranks)
    all_ranks = non_dominated_ranks(strategy.minimisation_matrix())
    front = {o.arch for o, r in zip(strategy.observations, all_ranks, strict=True) if r == 0}
    if len(front) <= len(population):
        assert front <= {o.arch for o in population}
    else:
        assert set(ranks.tolist()) == {0}


# -- Pareto arithmetic ---------------------------------------------------------------------------


def test_ranks_crowding_and_2d_hypervolume() -> None:
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [2.5, 2.5], [3.0, 3.0]])
    assert non_dominated_ranks(points).tolist() == [0, 0, 0, 1, 2]
    assert crowding_distance(points[:3]).tolist() == [math.inf, 2.0, math.inf]
    # Three unit steps under the reference (4, 4): 3 + 2 + 1 squares.
    assert hypervolume(points, [4.0, 4.0]) == 6.0
    assert hypervolume(points, [0.0, 0.0]) == 0.0


def test_3d_hypervolume_matches_counting_unit_cubes() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, size=(12, 3)).astype(float)
    ref = np.array([6.0, 6.0, 6.0])
    cells = np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    covered = np.zeros(len(cells), dtype=bool)
    for p in points:
        covered |= np.all(cells >= p, axis=1)
    assert hypervolume(points, ref) == covered.sum()


def test_to_minimisation_and_bad_points() -> None:
    assert to_minimisation([[80.0, 5.0]], ["max", "min"]).tolist() == [[-80.0, 5.0]]
    with pytest.raises(ConfigError, match="NaN"):
        non_dominated_ranks([[1.0, math.nan]])
    with pytest.raises(ConfigError, match="'max' or 'min'"):
        to_minimisation([[1.0]], ["up"])


# -- the loop ------------------------------------------------------------------------------------


def test_loop_turns_evaluator_errors_into_failed_trials() -> None:
    space = ToySpace()

    def flaky(arch: Architecture) -> EvalResult:
        if arch["a"] == 0:
            raise RuntimeError("out of memory")
        return toy_value(arch)

    trials = run_loop(create_strategy("random", space, seed=0), flaky, 6)
    failed = [t for t in trials if t.state is TrialState.FAIL]
    assert failed and all("out of memory" in t.error for t in failed)
    assert len(trials) == 6


def test_predictor_can_score_the_whole_space_of_small_spaces_only() -> None:
    space = ToySpace()
    strategy = create_strategy(
        "predictor", space, predictor=ForestEnsemble, n_initial=2, candidate_pool="all"
    )
    trials = run_loop(strategy, toy_value, 10)
    assert len({space.canonical_key(t.arch) for t in trials}) == len(trials) == 6

    class Wide(ToySpace):
        def choices(self) -> dict[str, Sequence[int]]:
            return {name: tuple(range(10)) for name in "abcdef"}

    with pytest.raises(ConfigError, match="candidate_pool='local'"):
        create_strategy("predictor", Wide(), predictor=ForestEnsemble, candidate_pool="all")
