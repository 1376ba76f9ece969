"""A synchronous ask -> evaluate -> tell loop for tabular benchmarks and tests.

Not the Ray runner: no store, no workers. It exists so that a strategy can be
measured against a lookup table in seconds, with optional simulated
concurrency: ``concurrency=k`` keeps ``k`` asks outstanding and finishes them
first-in-first-out or in a seeded random order, as trials on a cluster finish
out of order. An evaluator exception becomes a FAIL trial carrying the
traceback and the search goes on, as in the real runner. As there, a
proposal's bookkeeping (``Strategy.last_attrs``) becomes the trial's
``system_attrs``, and a proposal's training recipe (``fbnetv3``) is handed to
an evaluator that takes recipes (``Evaluator.recipe_fields``); a lookup
evaluator or a plain function has none to take, so the trial only records it.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.evaluator import EvalResult, Evaluator
from nas.core.strategy import Strategy
from nas.core.trial import Trial, TrialState
from nas.strategies.options import int_option

logger = logging.getLogger(__name__)

Evaluate = Callable[[Architecture], EvalResult]


def run_loop(
    strategy: Strategy,
    evaluator: Evaluator | Evaluate,
    queries: int,
    concurrency: int = 1,
    completion: Literal["fifo", "random"] = "fifo",
    seed: int = 0,
) -> list[Trial]:
    """Run ``queries`` evaluations and return the finished trials in the order they were told.

    Stops early (with fewer trials) if the strategy cannot propose anything
    while nothing is pending, i.e. the admissible space is exhausted.
    """
    int_option("queries", queries, 0)
    int_option("concurrency", concurrency, 1)
    if completion not in ("fifo", "random"):
        raise ConfigError(f"completion={completion!r} is not allowed; expected 'fifo' or 'random'")
    evaluate = evaluator.evaluate if isinstance(evaluator, Evaluator) else evaluator
    takes_recipes = isinstance(evaluator, Evaluator) and bool(type(evaluator).recipe_fields)
    rng = np.random.default_rng(seed)
    pending: list[tuple[int, Architecture, dict[str, Any]]] = []
    finished: list[Trial] = []
    asked = 0
    while len(finished) < queries:
        while asked < queries and len(pending) < concurrency:
            arch = strategy.ask()
            if arch is None:
                break
            pending.append((asked, arch, dict(strategy.last_attrs)))
            asked += 1
        if not pending:
            logger.info("strategy %s has nothing left to propose after %d trials", strategy, asked)
            break
        index = 0 if completion == "fifo" else int(rng.integers(len(pending)))
        number, arch, attrs = pending.pop(index)
        recipe = attrs.get("recipe") if takes_recipes else None
        trial = _evaluate(
            number, arch, functools.partial(evaluate, recipe=recipe) if recipe else evaluate, attrs
        )
        strategy.tell(trial)
        finished.append(trial)
    return finished


def _evaluate(number: int, arch: Architecture, evaluate: Evaluate, attrs: dict[str, Any]) -> Trial:
    try:
        result = evaluate(arch)
    except Exception:  # an evaluator failure is a FAIL trial, never the end of the search
        logger.warning("trial %d failed", number, exc_info=True)
        return Trial(number, arch, TrialState.FAIL, error=traceback.format_exc(), system_attrs=attrs)
    return Trial(
        number,
        arch,
        TrialState.COMPLETE,
        values=dict(result.values),
        user_attrs=dict(result.user_attrs),
        system_attrs=attrs,
    )
