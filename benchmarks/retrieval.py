"""Architecture retrieval at 100,000 trials: the top-10 ``nas similar`` query, built, cold and warm.

Fills a temporary store with ``--trials`` COMPLETE trials of random
NAS-Bench-201 cells (bulk import through ``Study.add_trials``, i.e.
``nas/store/bulk.py``) with random values, then times
:func:`nas.retrieval.find_similar` for ``--k`` neighbours:

* **build**: no index anywhere yet; the query computes the WL features of
  every stored architecture row (15,625 cells at most) and saves the index;
* **cold**: a new reader and an empty in-memory cache (a fresh ``nas similar``
  process): the index is read back from its file;
* **warm**: the same cache again, e.g. the dashboard's next trial page
  (median over ``--repeats`` random query trials); also with ``--all-studies``.

Goal: cold and warm under 1 s. The store is SQLite in a temporary file, or a
temporary PostgreSQL schema of ``--postgres-url``; nothing is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import nas
from nas.core import Trial, TrialState
from nas.retrieval import IndexCache, find_similar
from nas.store import open_readonly
from nas.store.testing import postgres_test_url, temporary_schema

GOAL_S = 1.0


@contextlib.contextmanager
def temporary_store(backend: str, postgres_url: str | None) -> Iterator[str]:
    if backend == "postgres":
        if not postgres_url:
            raise SystemExit("postgres needs --postgres-url or $NAS_TEST_POSTGRES_URL")
        with temporary_schema(postgres_url) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="nas-retrieval-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


def fill(url: str, count: int, seed: int, chunk: int = 10_000) -> float:
    """``count`` COMPLETE nb201 trials through add_trials; returns the seconds it took."""
    rng = np.random.default_rng(seed)
    study = nas.create_study("bench", url, space="nb201", objectives={"val_accuracy": "max"})
    now = datetime.now(timezone.utc)
    start = time.perf_counter()
    for done in range(0, count, chunk):
        study.add_trials(
            [
                Trial(
                    number=0,
                    arch=study.space.sample(rng),
                    state=TrialState.COMPLETE,
                    values={"val_accuracy": float(rng.normal(70, 8))},
                    started_at=now,
                    finished_at=now,
                )
                for _ in range(min(chunk, count - done))
            ]
        )
    study.close()
    return time.perf_counter() - start


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def run(backend: str, args: argparse.Namespace, console: Console) -> list[list[str]]:
    rows = []
    with temporary_store(backend, args.postgres_url) as url, tempfile.TemporaryDirectory() as cache_dir:
        console.log(f"{backend}: filling {args.trials:,} trials ...")
        filled = fill(url, args.trials, args.seed)
        numbers = np.random.default_rng(args.seed + 1).integers(0, args.trials, size=args.repeats)
        with open_readonly(url) as reader:
            distinct = reader.catalog_stamp("nb201").count
            cache = IndexCache(Path(cache_dir))
            build = timed(lambda: find_similar(reader, "bench", 0, k=args.k, cache=cache))
        with open_readonly(url) as reader:  # a fresh process: new connections, empty memory
            cold = timed(
                lambda: find_similar(reader, "bench", 1, k=args.k, cache=IndexCache(Path(cache_dir)))
            )
            warm = [
                timed(lambda n=int(n): find_similar(reader, "bench", n, k=args.k, cache=cache))
                for n in numbers
            ]
            everywhere = [
                timed(
                    lambda n=int(n): find_similar(reader, "bench", n, k=args.k, all_studies=True, cache=cache)
                )
                for n in numbers
            ]
            found = find_similar(reader, "bench", int(numbers[0]), k=args.k, cache=cache)
            assert found[0].trial.number == int(numbers[0]) and len(found) == args.k
        for name, seconds in (
            ("build (features of every stored cell)", build),
            ("cold (index read from its file)", cold),
            ("warm, median", statistics.median(warm)),
            ("warm, slowest", max(warm)),
            ("warm --all-studies, median", statistics.median(everywhere)),
        ):
            goal = "-" if name.startswith("build") else ("yes" if seconds < GOAL_S else "NO")
            rows.append([backend, f"{args.trials:,}", f"{distinct:,}", name, f"{seconds * 1000:,.1f}", goal])
        console.log(f"{backend}: filled in {filled:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20, help="warm queries (median and slowest reported)")
    parser.add_argument("--backends", default="sqlite", help="sqlite, postgres or both (comma-separated)")
    parser.add_argument("--postgres-url", default=postgres_test_url())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=max(Console().width, 120))
    rows = [row for b in args.backends.split(",") if b.strip() for row in run(b.strip(), args, console)]
    table = Table(title=f"nas similar, top-{args.k} (goal: < {GOAL_S:g} s) on {platform.machine()}")
    for column in ("backend", "trials", "distinct cells", "query", "time (ms)", "goal"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
