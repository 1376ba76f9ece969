"""The learning mechanisms of the policy strategies: reinforce (NAS-RL), cmab (CMAB-NAS), manas (MANAS).

The registry-wide contract (seeds, dedup, constraints, warm start) is in
tests/test_strategies.py; here each strategy's defining mechanism is checked
on a small space where the rewarded choice is known: the LSTM's backward pass
against finite differences, REINFORCE raising the probability of a rewarded
choice while its baseline tracks the reward average, CMAB's Thompson
posterior concentrating on the rewarded arm, MANAS's agents moving their
weights toward it, and all three keeping to a space's validity rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pytest

from nas.core import Architecture, ConfigError, SearchSpace, Trial, TrialState
from nas.core.errors import ArchitectureError
from nas.strategies import create_strategy
from nas.strategies.controller import Adam, LSTMController
from nas.strategies.decisions import quantile, standardised

POLICY_STRATEGIES = ("reinforce", "cmab", "manas")


class GridSpace(SearchSpace):
    """Three decisions (3 x 3 x 2 values, one of them strings); every combination is distinct."""

    name = "grid"

    def choices(self) -> Mapping[str, Sequence[Any]]:
        return {"a": (0, 1, 2), "b": (0, 1, 2), "c": ("x", "y")}

    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        return nx.DiGraph()

    def parse(self, text: str) -> Architecture:
        a, b, c = text.split(",")
        return self.make({"a": int(a), "b": int(b), "c": c})

    def format(self, arch: Architecture) -> str:
        return f"{arch['a']},{arch['b']},{arch['c']}"

    def build(self, arch: Architecture, num_classes: int = 10, input_shape: Any = (3, 32, 32)) -> Any:
        raise NotImplementedError("the grid space has no model")


class DistinctGridSpace(GridSpace):
    """The grid with a rule across decisions: ``a`` and ``b`` must differ (like distinct cell inputs)."""

    def check(self, decisions: Mapping[str, Any]) -> None:
        if decisions["a"] == decisions["b"]:
            raise ArchitectureError(f"a and b must differ, both are {decisions['a']}")


def reward_a2(arch: Architecture) -> float:
    """1 when decision ``a`` takes its last choice, else 0: the one rewarded arm."""
    return 1.0 if arch["a"] == 2 else 0.0


def tell_value(strategy: Any, number: int, arch: Architecture, value: float) -> None:
    strategy.tell(Trial(number, arch, TrialState.COMPLETE, values={"val_accuracy": value}))


def play(strategy: Any, rounds: int, reward: Any = reward_a2) -> list[Architecture]:
    asked = []
    for number in range(rounds):
        arch = strategy.ask()
        asked.append(arch)
        tell_value(strategy, number, arch, reward(arch))
    return asked


# -- the controller's math ---------------------------------------------------------------------


def test_lstm_backpropagation_matches_finite_differences() -> None:
    controller = LSTMController([5, 3, 4, 2], hidden=6, rng=np.random.default_rng(0), init_scale=0.5)
    actions, advantage, entropy_weight = [2, 1, 3, 0], 1.3, 0.2
    grads = controller.gradient(actions, advantage, entropy_weight)
    worst = 0.0
    for name, value in controller.params.items():
        for index in np.ndindex(value.shape):
            kept = value[index]
            value[index] = kept + 1e-6
            up = controller.objective(actions, advantage, entropy_weight)
            value[index] = kept - 1e-6
            down = controller.objective(actions, advantage, entropy_weight)
            value[index] = kept
            worst = max(worst, abs((up - down) / 2e-6 - grads[name][index]))
    assert worst < 1e-6
    assert max(np.abs(g).max() for g in grads.values()) > 1e-3  # the check compared real gradients


def test_later_decisions_are_conditioned_on_earlier_choices() -> None:
    controller = LSTMController([3, 4], hidden=5, rng=np.random.default_rng(1), init_scale=0.5)
    first = controller.probabilities([0, 0])
    second = controller.probabilities([2, 0])
    np.testing.assert_allclose(first[0], second[0])  # same start
    assert not np.allclose(first[1], second[1])  # the second decision saw another first choice


def test_adam_ascends_a_concave_objective() -> None:
    params = {"x": np.array([3.0, -2.0])}
    optimiser = Adam(params, learning_rate=0.1)
    for _ in range(300):
        optimiser.ascend({"x": -2.0 * params["x"]})  # gradient of -|x|^2
    assert np.abs(params["x"]).max() < 0.05


# -- reinforce --------------------------------------------------------------------------------


def test_reinforce_raises_the_probability_of_the_rewarded_choice() -> None:
    space = GridSpace()
    strategy = create_strategy("reinforce", space, seed=0, allow_duplicates=True, learning_rate=0.05)
    probe = space.make({"a": 2, "b": 0, "c": "x"})
    before = strategy.choice_probabilities(probe)[0][2]
    asked = play(strategy, 60)
    after = strategy.choice_probabilities(probe)[0][2]
    assert before == pytest.approx(1 / 3, abs=0.05)  # the initial policy is nearly uniform
    assert after > 0.8
    assert sum(reward_a2(a) for a in asked[-20:]) >= 15  # and the policy now plays it


def test_reinforce_baseline_is_the_moving_average_of_the_rewards() -> None:
    space = GridSpace()
    strategy = create_strategy("reinforce", space, seed=0, allow_duplicates=True, baseline_decay=0.8)
    rewards = [1.0, 3.0] * 30
    expected = None
    for number, value in enumerate(rewards):
        tell_value(strategy, number, strategy.ask(), value)
        expected = value if expected is None else 0.8 * expected + 0.2 * value
        assert strategy.baseline == pytest.approx(expected)
    assert strategy.baseline == pytest.approx(2.0, abs=0.2)


def test_reinforce_does_not_move_without_a_signal() -> None:
    """Equal rewards give zero advantage: the controller's weights stay as initialised."""
    strategy = create_strategy("reinforce", GridSpace(), seed=0, allow_duplicates=True)
    start = {k: v.copy() for k, v in strategy.controller.params.items()}
    play(strategy, 10, reward=lambda arch: 5.0)
    assert all(np.array_equal(start[k], v) for k, v in strategy.controller.params.items())


# -- cmab ---------------------------------------------------------------------------------------


def test_cmab_thompson_posterior_concentrates_on_the_rewarded_arm() -> None:
    space = GridSpace()
    strategy = create_strategy("cmab", space, seed=0, allow_duplicates=True, explore=1.0)
    rng = np.random.default_rng(0)
    for number in range(60):
        arch = space.sample(rng)
        tell_value(strategy, number, arch, reward_a2(arch))
    mean, std = strategy.local_posteriors()[0]
    assert int(np.argmax(mean)) == 2
    assert mean[2] > 0.5 > 0.0 > max(mean[0], mean[1])
    assert std.max() < 0.25  # about 20 results per arm: 1/sqrt(21)
    played = [strategy.ask()["a"] for _ in range(40)]  # explore = local Thompson arms
    assert played.count(2) >= 36


def test_cmab_exploitation_plays_a_neighbour_of_a_global_arm() -> None:
    space = GridSpace()
    strategy = create_strategy("cmab", space, seed=3, explore=0.0, global_std=0.0)
    best = space.make({"a": 2, "b": 1, "c": "y"})
    worse = space.make({"a": 0, "b": 0, "c": "x"})
    tell_value(strategy, 0, worse, 0.0)
    tell_value(strategy, 1, best, 1.0)
    children = [strategy.ask() for _ in range(4)]
    assert all(child in space.neighbours(best) for child in children)
    assert len(set(children)) == 4


# -- manas --------------------------------------------------------------------------------------


def test_manas_agents_move_their_weights_toward_the_rewarded_choice() -> None:
    space = GridSpace()
    strategy = create_strategy("manas", space, seed=0, allow_duplicates=True, gamma=0.1, eta_scale=5.0)
    before = strategy.policies()
    np.testing.assert_allclose(before[0], 1 / 3)
    play(strategy, 150)
    after = strategy.policies()
    assert after[0][2] > 0.6  # agent "a" learned its rewarded choice
    assert after[0].min() >= 0.1 / 3 - 1e-12  # EXP3 keeps exploring every choice
    assert abs(after[2][0] - after[2][1]) < after[0][2] - 1 / 3  # "c" has no signal: it moves less


def test_rewards_are_scale_free() -> None:
    np.testing.assert_allclose(standardised([1.0, 2.0, 3.0]), standardised([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(standardised([4.0, 4.0]), [0.0, 0.0])
    assert quantile(3.0, [1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.625)
    assert quantile(100.0, [1.0, 2.0]) == 1.0


# -- all three ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICY_STRATEGIES)
def test_proposals_keep_to_the_space_rules_and_find_the_optimum(name: str) -> None:
    space = DistinctGridSpace()
    strategy = create_strategy(name, space, seed=0, max_attempts=10)  # fewer redraws once exhausted
    asked = play(strategy, 12, reward=lambda arch: 2.0 * arch["a"] + arch["b"])  # 12 valid archs
    assert all(space.is_valid(a) for a in asked)
    assert len(set(asked)) == 12
    assert strategy.ask() is None  # exhausted
    assert strategy.best().arch["a"] == 2 and strategy.best().arch["b"] == 1


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [
        ("reinforce", "learning_rate", -0.1),
        ("reinforce", "baseline_decay", 1.5),
        ("reinforce", "hidden_size", 0),
        ("cmab", "explore", 2.0),
        ("cmab", "global_std", -1.0),
        ("manas", "gamma", 1.5),
        ("manas", "eta_scale", -1.0),
    ],
)
def test_bad_options_name_the_value_and_the_allowed_range(name: str, option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"{option}={value}.*expected"):
        create_strategy(name, GridSpace(), **{option: value})


@pytest.mark.parametrize("name", POLICY_STRATEGIES)
def test_minimised_objectives_are_learned_the_other_way(name: str) -> None:
    """With ``min`` the rewarded arm is the one with the *lowest* value."""
    space = GridSpace()
    strategy = create_strategy(name, space, seed=0, allow_duplicates=True, objectives={"val_accuracy": "min"})
    asked = play(strategy, 120, reward=lambda arch: 1.0 - reward_a2(arch))
    assert sum(reward_a2(a) for a in asked[-40:]) >= 20  # random play: 13.3 ± 3
