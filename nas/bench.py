"""Measure a strategy on the NAS-Bench-201 table: many seeds in seconds.

A run has two phases that never mix. The *search* phase asks, looks up and
tells through a :class:`~nas.evaluators.tabular.Nb201TableEvaluator`, which
returns nothing but the search metric (and latency): no test column is read
and no trial carries a test number. The *report* phase then reads the test
accuracy of each seed's incumbent at each checkpoint straight from the
table: the search column's test twin, if it is on the report allow-list
(:data:`nas.core.leakage.REPORT_COLUMNS`). ``nas bench nb201`` and
``benchmarks/*.py`` are thin layers over :func:`run_nb201`.

For several objectives it also reports the hypervolume of what was found as
a fraction of the exact hypervolume of the table's true Pareto front, both
measured from the table's nadir (worst value of every objective over the
table, among the rows meeting the constraints).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, UnknownNameError
from nas.core.leakage import REPORT_COLUMNS
from nas.core.pareto import hypervolume, to_minimisation
from nas.core.strategy import Constraint, Measure, Strategy, parse_constraints
from nas.core.trial import Direction, Trial, TrialState, parse_objectives
from nas.data.tables import Table
from nas.evaluators.tabular import Nb201TableEvaluator
from nas.strategies import create_strategy
from nas.strategies import run_loop as run_search  # the in-process loop (nas.runner.run_search is Ray)
from nas.strategies.predictor import DEFAULT_PREDICTOR

logger = logging.getLogger(__name__)

DEFAULT_DEVICE = "pixel3"
#: Metrics a constraint may use (known before training).
COST_METRICS = ("latency_ms",)
_CHECKPOINTS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def default_checkpoints(queries: int) -> list[int]:
    """10, 20, 50, 100, 200, ... up to ``queries``, always ending at ``queries``."""
    return [q for q in _CHECKPOINTS if q < queries] + [queries]


@dataclass(frozen=True)
class Incumbent:
    """The best trial (by the primary objective) among the first ``queries`` told."""

    queries: int
    arch: str
    search: float
    test: float | None
    found_at: int  # 1-based position of that trial among the told ones


@dataclass
class SeedRun:
    seed: int
    trials: list[Trial]
    seconds: float
    incumbents: list[Incumbent] = field(default_factory=list)
    hypervolume_ratio: list[float] = field(default_factory=list)


@dataclass
class BenchResult:
    """Every seed's run plus the table facts needed to judge them."""

    strategy: str
    metric: str
    test_metric: str | None
    objectives: dict[str, Direction]
    constraints: tuple[Constraint, ...]
    queries: int
    checkpoints: list[int]
    best_value: float  # best search-metric value over the (feasible) table
    runs: list[SeedRun]
    options: dict[str, Any]

    def summary(self) -> list[dict[str, Any]]:
        """Per checkpoint: mean and std over seeds of incumbent search/test values, etc."""
        rows = []
        for k, q in enumerate(self.checkpoints):
            incumbents = [run.incumbents[k] for run in self.runs if len(run.incumbents) > k]
            search = np.array([i.search for i in incumbents])
            test = np.array([i.test for i in incumbents if i.test is not None])
            row: dict[str, Any] = {
                "queries": q,
                "search_mean": _mean(search),
                "search_std": _std(search),
                "test_mean": _mean(test),
                "test_std": _std(test),
                "found_best": float(np.mean(search == self.best_value)) if len(search) else math.nan,
            }
            if len(self.objectives) > 1:
                ratios = np.array([run.hypervolume_ratio[k] for run in self.runs])
                row["hypervolume_ratio_mean"] = _mean(ratios)
                row["hypervolume_ratio_std"] = _std(ratios)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "nb201",
            "strategy": self.strategy,
            "metric": self.metric,
            "test_metric": self.test_metric,
            "objectives": {k: v.value for k, v in self.objectives.items()},
            "constraints": [str(c) for c in self.constraints],
            "options": {k: _jsonable(v) for k, v in self.options.items()},
            "queries": self.queries,
            "seeds": [run.seed for run in self.runs],
            "best_value": self.best_value,
            "checkpoints": self.summary(),
            "runs": [
                {
                    "seed": run.seed,
                    "seconds": round(run.seconds, 3),
                    "trials": len(run.trials),
                    "incumbents": [vars(i) for i in run.incumbents],
                    **({"hypervolume_ratio": run.hypervolume_ratio} if len(self.objectives) > 1 else {}),
                }
                for run in self.runs
            ],
        }


def run_nb201(
    strategy: str,
    queries: int,
    seeds: Iterable[int],
    metric: str = "cifar10-val",
    table: str | Table | None = None,
    objectives: Mapping[str, str] | None = None,
    constraints: Mapping[str, str | float] | Iterable[str] | None = None,
    device: str | None = None,
    latency_table: str | Table | None = None,
    predictor: str | None = None,
    predictor_options: Mapping[str, Any] | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    concurrency: int = 1,
    checkpoints: Sequence[int] | None = None,
) -> BenchResult:
    """Search the NAS-Bench-201 table with ``strategy`` once per seed, then report.

    Objectives are named ``val_accuracy`` (the ``metric`` column) and
    ``latency_ms`` (the ``device`` column of the latency table; default
    device ``pixel3`` when latency is an objective or constrained).
    ``predictor`` names a registered predictor for the ``predictor`` strategy.
    """
    from search_spaces import get_space  # the space plugin; imported here to keep `nas` light

    space = get_space("nb201")
    parsed = parse_objectives(objectives or {"val_accuracy": "max"})
    limits = parse_constraints(constraints)
    wants_latency = "latency_ms" in parsed or any(c.metric == "latency_ms" for c in limits)
    if wants_latency and device is None:
        device = DEFAULT_DEVICE
    evaluator = Nb201TableEvaluator(
        space, table=table, metric=metric, latency_table=latency_table, device=device
    )
    for name in parsed:
        if name not in evaluator.objectives:
            raise UnknownNameError("nb201 bench objective", name, evaluator.objectives)
    for constraint in limits:
        if constraint.metric not in COST_METRICS:
            # A constraint is checked before evaluation, so it may only use cost
            # metrics: a limit on accuracy would leak the search signal for free.
            raise UnknownNameError("nb201 bench constraint metric", constraint.metric, COST_METRICS)
    checkpoints = sorted(set(checkpoints or default_checkpoints(queries)))
    if not checkpoints or checkpoints[0] < 1 or checkpoints[-1] > queries:
        raise ConfigError(f"checkpoints {checkpoints} must lie in 1..queries={queries}")

    options = dict(strategy_options or {})
    if "latency_ms" in parsed:
        # Functional twins differ in measured latency (dead ops still run), so a
        # latency objective needs exact duplicate keys to reach the true front.
        options.setdefault("duplicate_key", "exact")
    if predictor is not None or predictor_options:
        if strategy != "predictor":
            raise ConfigError(f"--predictor applies to the 'predictor' strategy, not {strategy!r}")
        options.setdefault("predictor", predictor or DEFAULT_PREDICTOR)
        if predictor_options:
            options.setdefault("predictor_options", dict(predictor_options))
    measure = _table_measure(evaluator) if limits else None
    world = _TableWorld(evaluator, parsed, limits)

    runs = []
    for seed in seeds:
        instance = create_strategy(
            strategy,
            space,
            objectives={k: v.value for k, v in parsed.items()},
            seed=seed,
            constraints=limits or None,
            measure=measure,
            **options,
        )
        start = time.perf_counter()
        trials = search(instance, evaluator, queries, concurrency=concurrency, seed=seed)
        runs.append(SeedRun(seed, trials, time.perf_counter() - start))
    test_metric = world.test_metric(metric)
    for run in runs:  # report phase: the only place a test column is read
        run.incumbents = [world.incumbent(run.trials, q, test_metric) for q in checkpoints]
        if len(parsed) > 1:
            run.hypervolume_ratio = [world.hypervolume_ratio(run.trials[:q]) for q in checkpoints]
    shown = dict(options)
    if strategy == "predictor":
        shown.setdefault("predictor", DEFAULT_PREDICTOR)
    return BenchResult(
        strategy=strategy,
        metric=metric,
        test_metric=test_metric,
        objectives=parsed,
        constraints=limits,
        queries=queries,
        checkpoints=checkpoints,
        best_value=world.best_value(),
        runs=runs,
        options={**shown, **({"device": device} if device else {}), "concurrency": concurrency},
    )


def search(
    strategy: Strategy,
    evaluator: Nb201TableEvaluator,
    queries: int,
    concurrency: int = 1,
    seed: int = 0,
) -> list[Trial]:
    """The search phase alone (what the test-column guard test runs)."""
    return run_search(
        strategy,
        evaluator,
        queries,
        concurrency=concurrency,
        completion="random" if concurrency > 1 else "fifo",
        seed=seed,
    )


def _table_measure(evaluator: Nb201TableEvaluator) -> Measure:
    """Cost metrics (latency) straight from the latency table: the cheapest cost model there is."""
    latency, device = evaluator.latency_table, evaluator.device

    def measure(arch: Architecture) -> dict[str, float]:
        if latency is None or device is None:
            return {}
        return {"latency_ms": float(latency.column(device)[latency.row(arch)])}

    return measure


class _TableWorld:
    """Facts about the whole table: best value, true front, incumbents' test numbers."""

    def __init__(
        self,
        evaluator: Nb201TableEvaluator,
        objectives: Mapping[str, Direction],
        constraints: Sequence[Constraint],
    ) -> None:
        self.evaluator = evaluator
        self.objectives = dict(objectives)
        table = evaluator.table
        if table is None:  # pragma: no cover - Nb201TableEvaluator always has a table
            raise ConfigError("the nb201 bench needs an accuracy table")
        self.table = table
        columns: dict[str, np.ndarray] = {
            name: table.column(column) for name, column in evaluator.metrics.items()
        }
        if evaluator.latency_table is not None and evaluator.device is not None:
            latency = evaluator.latency_table
            rows = np.array([latency.row(a) for a in table.archs])
            columns["latency_ms"] = latency.column(evaluator.device)[rows]
        feasible = np.ones(len(table), dtype=bool)
        for c in constraints:
            feasible &= np.array([c.satisfied(v) for v in columns[c.metric]])
        matrix = np.column_stack([columns[name] for name in self.objectives])
        keep = feasible & np.all(np.isfinite(matrix), axis=1)
        self.all_points = to_minimisation(matrix[keep], list(self.objectives.values()))
        self.reference = self.all_points.max(axis=0) if len(self.all_points) else None
        self._true_hv: float | None = None

    def best_value(self) -> float:
        primary = next(iter(self.objectives))
        column = self.all_points[:, 0]
        best = column.min() if len(column) else math.nan
        return float(-best if self.objectives[primary] is Direction.MAX else best)

    def test_metric(self, metric: str) -> str | None:
        """The search column's test twin (``cifar10-val`` -> ``cifar10-test``) if it may be reported."""
        twin = metric.replace("-val", "-test").replace("_val", "_test")
        return twin if twin in REPORT_COLUMNS and twin in self.table.columns else None

    def incumbent(self, trials: Sequence[Trial], queries: int, test_metric: str | None) -> Incumbent:
        primary, direction = next(iter(self.objectives.items()))
        best: tuple[float, int, Trial] | None = None
        for position, trial in enumerate(trials[:queries], start=1):
            value = trial.value(primary)
            if trial.state is not TrialState.COMPLETE or not math.isfinite(value):
                continue
            utility = value if direction is Direction.MAX else -value
            if best is None or utility > best[0]:
                best = (utility, position, trial)
        if best is None:
            return Incumbent(queries, "", math.nan, None, 0)
        _, position, trial = best
        # The search is over: the test number comes from the table, never from the trial.
        test = float(self.table.column(test_metric)[self.table.row(trial.arch)]) if test_metric else None
        return Incumbent(
            queries, self.evaluator.space.format(trial.arch), trial.value(primary), test, position
        )

    def hypervolume_ratio(self, trials: Sequence[Trial]) -> float:
        if self.reference is None:
            return math.nan
        if self._true_hv is None:
            self._true_hv = hypervolume(self.all_points, self.reference)
        found = [
            [t.value(name) for name in self.objectives]
            for t in trials
            if t.state is TrialState.COMPLETE and all(math.isfinite(t.value(n)) for n in self.objectives)
        ]
        if not found or not self._true_hv:
            return 0.0
        points = to_minimisation(np.array(found), list(self.objectives.values()))
        return hypervolume(points, self.reference) / self._true_hv


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def _std(values: np.ndarray) -> float:
    return float(values.std()) if len(values) else math.nan


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)
