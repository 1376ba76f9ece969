"""Trial-store benchmark: fill a study with N trials (10 curve points each) and time the dashboard's reads.

Usage::

    python benchmarks/store.py --trials 100000 --backends sqlite,postgres [--writes 200]

Prints one row per backend: insert throughput through the ask/report/tell
API (the path a search takes, one transaction per call) and through
``Study.add_trials`` (bulk import, used here to reach N quickly), then the
median time of the three reads the dashboard needs, each goal < 50 ms:

* top-10 trials by an objective (``trials_page(order_by=..., limit=10)``),
* one page of 100 trials from the middle of the study (``trials_page``),
* one trial's curves (``metrics``).

Then the writes of a running search while a reader holds a snapshot (an open
read transaction, as the dashboard's page queries do): the time of each
ask + report + tell with and without such a reader, median and slowest. On
SQLite without WAL a writer would wait out the busy timeout (30 s) and fail;
``--writes`` sets how many trials each run writes (0: skip).

PostgreSQL runs in a temporary schema of ``--postgres-url`` (default
``$NAS_TEST_POSTGRES_URL``); SQLite in a temporary file. Nothing is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
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
from nas.store.testing import ChainSpace, postgres_test_url, temporary_schema

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


class _Retries(logging.Handler):
    """Counts the store's retries of a transaction (each one is logged by nas.store.engine)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "transient conflict" in record.getMessage():
            self.count += 1


def timed_writes(study: nas.Study, until: Callable[[int], bool]) -> dict[str, object]:
    """Ask, report twice and tell trials until ``until(told)``; each one's seconds, errors and store retries.

    A retry is what a lock or a serialization conflict turns into inside the
    store (:mod:`nas.store.engine` logs each one), so a writer that met a lock
    shows it here even when the retry then succeeded.
    """

    engine_log = logging.getLogger("nas.store.engine")
    engine_log.setLevel(logging.DEBUG)
    handler = _Retries()
    engine_log.addHandler(handler)
    seconds: list[float] = []
    errors: list[str] = []
    try:
        while not until(len(seconds)):
            start = time.perf_counter()
            try:
                trial = study.ask()
                study.report(trial, 0, {"loss": 1.0})
                study.report(trial, 1, {"loss": 0.5})
                study.tell(trial, [float(len(seconds) % 97), float(len(seconds) % 13)])
            except Exception as exc:  # counted: a benchmark reports failures instead of stopping
                errors.append(repr(exc))
            seconds.append(time.perf_counter() - start)
    finally:
        engine_log.removeHandler(handler)
    return {"seconds": seconds, "errors": errors[:5], "n_errors": len(errors), "retries": handler.count}


def writer_process(url: str, seconds: float) -> subprocess.Popen[str]:
    """A search's writes in another process for ``seconds``: prints ``ready``, then the JSON of
    :func:`timed_writes` (study ``live`` of :class:`~nas.store.testing.ChainSpace`, no torch)."""
    code = (
        "import json, sys, time; sys.path.insert(0, sys.argv[3]); import store, nas;"
        "from nas.store.testing import ChainSpace;"
        "study = nas.load_study('live', sys.argv[1], space=ChainSpace()); print('ready', flush=True);"
        "end = time.monotonic() + float(sys.argv[2]);"
        "print(json.dumps(store.timed_writes(study, lambda n: time.monotonic() > end)))"
    )
    here = str(Path(__file__).resolve().parent)
    process = subprocess.Popen(
        [sys.executable, "-c", code, url, str(seconds), here], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def writer_result(process: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        raise SystemExit(f"the writer process failed (exit {process.returncode})")
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def write_latency_row(label: str, result: dict[str, object], extra: str = "") -> list[str]:
    """A table row: writes, median / 99th percentile / slowest ms of one ask+report+tell, errors, retries."""
    seconds = sorted(result["seconds"])  # type: ignore[arg-type]
    p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))] if seconds else float("nan")
    return [
        label,
        f"{len(seconds):,}",
        f"{statistics.median(seconds) * 1000:.1f}" if seconds else "–",
        f"{p99 * 1000:.1f}",
        f"{max(seconds, default=float('nan')) * 1000:.1f}",
        str(result["n_errors"]),
        str(result["retries"]),
        extra,
    ]


WRITE_COLUMNS = (
    "writes",
    "trials",
    "median (ms)",
    "p99 (ms)",
    "slowest (ms)",
    "errors",
    "retries",
)


@contextlib.contextmanager
def read_snapshot(backend: str, url: str) -> Iterator[Callable[[], int]]:
    """Another connection inside one open read transaction; yields a count of its trials (its snapshot)."""
    if backend == "sqlite":  # sqlite3 itself: SQLAlchemy's pysqlite would defer the BEGIN
        import sqlite3

        reader = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        reader.execute("BEGIN")
        try:
            yield lambda: int(reader.execute("SELECT count(*) FROM trials").fetchone()[0])
        finally:
            reader.execute("COMMIT")
            reader.close()
        return
    from sqlalchemy import create_engine, text

    from nas.store.url import parse_storage_url

    engine = create_engine(parse_storage_url(url), isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            yield lambda: int(connection.execute(text("SELECT count(*) FROM trials")).scalar_one())
            connection.rollback()
    finally:
        engine.dispose()


def writes_under_snapshot(backend: str, args: argparse.Namespace) -> list[list[str]]:
    """Rows: ``--writes`` trials written alone, then while another connection holds a read snapshot."""
    rows = []
    with store_url(backend, args.postgres_url) as url:
        study = nas.create_study("live", url, space=ChainSpace(), objectives={"acc": "max", "lat": "min"})
        alone = timed_writes(study, lambda n: n >= args.writes)
        rows.append(write_latency_row(f"{backend}: alone", alone))
        with read_snapshot(backend, url) as count:
            before = count()
            held = timed_writes(study, lambda n: n >= args.writes)
            still = count()
        study.close()
        stable = "snapshot stable" if still == before else f"snapshot moved {before} -> {still}"
        rows.append(write_latency_row(f"{backend}: reader holds a snapshot", held, stable))
    return rows


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
    parser.add_argument(
        "--writes", type=int, default=200, help="trials per run of the write-latency table (0: skip it)"
    )
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
    if args.writes > 0:
        writes = Table(
            title=f"one ask + 2 reports + tell while a reader holds a read snapshot ({args.writes} trials)"
        )
        for column in (*WRITE_COLUMNS, "reader"):
            writes.add_column(column, justify="right")
        for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
            for row in writes_under_snapshot(backend, args):
                writes.add_row(*row)
        console.print(writes)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"machine: {os.cpu_count()} CPUs, load average {load}; {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
