"""Every registered strategy on every registered space, without Ray: the ask/tell half of the matrix.

``tests/test_search_matrix.py`` runs each strategy through ``nas search`` on
one space (a covering set: a real search costs about 12 s of Tune start-up).
What a strategy does on a space -- proposing valid, distinct architectures
of that space, telling results back and leaving its initial random phase for
its own method -- needs no Ray, so it is checked here on every pair, with the
plan the driver would build (options checked, predictors injected) and a
synthetic objective: a fixed pseudo-random value per canonical architecture.
"""

from __future__ import annotations

import zlib

import pytest
from small_spaces import FAST_STRATEGY_OPTIONS, searches
from test_search_matrix import STRATEGY_OPTIONS, _config

from nas.core import SPACES, STRATEGIES, ConfigError
from nas.core.evaluator import EvalResult
from nas.core.strategy import INITIAL_PHASE
from nas.runner import build_plan
from nas.strategies import run_loop, strategy_options

PAIRS = [
    (space, strategy)
    for space in SPACES.names()
    for strategy in STRATEGIES.names()
    if searches(strategy, space)
]
#: Strategies that need a capability the space lacks: refused when the plan is built, naming it.
REFUSED = [
    (space, strategy)
    for space in SPACES.names()
    for strategy in STRATEGIES.names()
    if not searches(strategy, space)
]


@pytest.mark.parametrize(("space", "strategy"), PAIRS)
def test_strategy_leaves_its_initial_phase_on_every_space(space: str, strategy: str) -> None:
    accepted = set(strategy_options(strategy))
    options = {k: v for k, v in STRATEGY_OPTIONS.items() if k in accepted}
    options.update(FAST_STRATEGY_OPTIONS.get(strategy, {}))
    plan = build_plan(_config(space, {"name": strategy, **options}, STRATEGIES.get(strategy)))
    search, domain = plan.strategy, plan.space
    phases: list[str | None] = []

    def evaluate(arch):  # noqa: ANN001, ANN202
        phases.append(search.last_phase)
        key = domain.canonical_key(domain.validate(arch))
        return EvalResult(values={"val_accuracy": (zlib.crc32(key.encode()) % 1000) / 10})

    queries = search.initial_size + 5
    trials = run_loop(search, evaluate, queries)

    assert len(trials) == queries
    keys = [domain.canonical_key(domain.validate(t.arch)) for t in trials]
    assert len(set(keys)) == queries  # no architecture proposed twice
    initial = search.initial_size
    assert phases[:initial] == [INITIAL_PHASE] * initial
    # Past the initial phase every proposal is the strategy's own (some mix in a random share, as
    # BOHB's random fraction does, under another phase name), and its own method proposes some.
    assert INITIAL_PHASE not in phases[initial:], phases
    assert type(search).phase_name in phases[initial:], f"{strategy} on {space} never used its method"


@pytest.mark.parametrize(("space", "strategy"), REFUSED)
def test_a_strategy_refuses_a_space_without_the_capability_it_needs(space: str, strategy: str) -> None:
    with pytest.raises(ConfigError, match=f"space {space!r}"):
        build_plan(_config(space, {"name": strategy}, STRATEGIES.get(strategy)))
