"""Trial-store benchmark: fill a study with N trials (10 curve points each) and time the dashboard's reads.

Usage::

    python benchmarks/store.py --trials 100000 --backends sqlite,postgres

Prints one row per backend: insert throughput through the ask/report/tell
API (the path a search takes, one transaction per call) and through
``Study.add_trials`` (bulk import, used here to reach N quickly), then the
median time of the three reads the dashboard needs, each goal < 50 ms:

* top-10 trials by an objective (``trials_page(order_by=..., limit=10)``),
* one page of 100 trials from the middle of the study (``trials_page``),
* one trial's curves (``metrics``).

PostgreSQL runs in a temporary schema of ``--postgres-url`` (default
``$NAS_TEST_POSTGRES_URL``); SQLite in a temporary file. Nothing is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import nas
from nas.core import Trial, TrialState
from nas.store.testing import postgres_test_url, temporary_schema

GOAL_MS = 50.0
OBJECTIVES = {"val_accuracy": "max", "latency_ms": "min"}


@dataclass
class Result:
    backend: str
    trials: int
    api_per_s: float
    bulk_per_s: float
    top10_ms: float
    page_ms: float
    curves_ms: float


@contextlib.contextmanager
def store_url(backend: str, postgres_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="nas-bench-") as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
    elif backend == "postgres":
        if not postgres_url:
            raise SystemExit("postgres needs --postgres-url or $NAS_TEST_POSTGRES_URL")
        with temporary_schema(postgres_url) as url:
            yield url
    else:
        raise SystemExit(f"unknown backend {backend!r}; allowed: sqlite, postgres")


def median_ms(fn: Callable[[int], object], repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def api_fill(study: nas.Study, count: int, points: int, rng: np.random.Generator) -> float:
    """Trials per second through ask / report x points / tell."""
    start = time.perf_counter()
    for _ in range(count):
        trial = study.ask(budget=12)
        for step in range(points):
            study.report(trial, step, {"val_accuracy": float(rng.uniform(10, 90))})
        study.tell(trial, [float(rng.normal(70, 8)), float(rng.gamma(2.0, 3.0))])
    return count / (time.perf_counter() - start)


def bulk_fill(
    study: nas.Study, count: int, points: int, rng: np.random.Generator, chunk: int = 5000
) -> float:
    """Trials per second through add_trials (each with ``points`` curve points)."""
    space = study.space
    now = datetime.now(timezone.utc)
    elapsed = 0.0
    done = 0
    while done < count:
        n = min(chunk, count - done)
        trials = [
            Trial(
                number=0,
                arch=space.sample(rng),
                state=TrialState.COMPLETE,
                values={"val_accuracy": float(rng.normal(70, 8)), "latency_ms": float(rng.gamma(2.0, 3.0))},
                seed=int(rng.integers(0, 3)),
                budget=12.0,
                started_at=now,
                finished_at=now,
            )
            for _ in range(n)
        ]
        curves = [
            {"val_accuracy": [(step, float(v)) for step, v in enumerate(rng.uniform(10, 90, points))]}
            for _ in range(n)
        ]
        start = time.perf_counter()
        study.add_trials(trials, curves)
        elapsed += time.perf_counter() - start
        done += n
    return count / elapsed if elapsed else float("nan")


def run(backend: str, args: argparse.Namespace, console: Console) -> Result:
    rng = np.random.default_rng(args.seed)
    with store_url(backend, args.postgres_url) as url:
        study = nas.create_study("bench", url, space="nb201", objectives=OBJECTIVES)
        api_n = min(args.api_trials, args.trials)
        console.log(f"{backend}: {api_n} trials through ask/report/tell ...")
        api = api_fill(study, api_n, args.points, rng)
        console.log(f"{backend}: {args.trials - api_n} trials through add_trials ...")
        bulk = bulk_fill(study, args.trials - api_n, args.points, rng)
        total = study.count_trials()[TrialState.COMPLETE]
        numbers = rng.integers(0, total, size=args.repeats)
        middle = max(0, total // 2)
        top10 = median_ms(lambda i: study.trials_page(limit=10, order_by="val_accuracy"), args.repeats)
        page = median_ms(lambda i: study.trials_page(offset=middle + i, limit=100), args.repeats)
        curves = median_ms(lambda i: study.metrics(int(numbers[i])), args.repeats)
        # Sanity: the reads return what they should.
        assert len(study.trials_page(limit=10, order_by="val_accuracy")) == 10
        assert len(study.metrics(int(numbers[0]))["val_accuracy"]) == args.points
        study.close()
    return Result(backend, total, api, bulk, top10, page, curves)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=10, help="curve points per trial")
    parser.add_argument(
        "--api-trials", type=int, default=1000, help="trials inserted through ask/report/tell"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=postgres_test_url())
    parser.add_argument("--repeats", type=int, default=15, help="runs per read (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=max(Console().width, 132))
    results = [run(b.strip(), args, console) for b in args.backends.split(",") if b.strip()]

    table = Table(
        title=f"trial store at {args.trials:,} trials x {args.points} curve points (goal: reads < {GOAL_MS:g} ms)"
    )
    for column in (
        "backend",
        "trials",
        "ask/report/tell (trials/s)",
        "add_trials (trials/s)",
        "top-10 (ms)",
        "page of 100 (ms)",
        "one trial's curves (ms)",
        "goal",
    ):
        table.add_column(column, justify="right")
    for r in results:
        met = all(t < GOAL_MS for t in (r.top10_ms, r.page_ms, r.curves_ms))
        table.add_row(
            r.backend,
            f"{r.trials:,}",
            f"{r.api_per_s:,.0f}",
            f"{r.bulk_per_s:,.0f}",
            f"{r.top10_ms:.1f}",
            f"{r.page_ms:.1f}",
            f"{r.curves_ms:.2f}",
            "met" if met else "MISSED",
        )
    console.print(table)
    console.print(f"machine: {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
