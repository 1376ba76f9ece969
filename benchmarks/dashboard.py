"""Dashboard benchmark: time to first render of the Trials and Trial-detail pages at 100,000 trials.

Usage::

    python benchmarks/dashboard.py --trials 100000 [--store /tmp/dash.db] [--browser]

Fills a SQLite store with N trials of a two-objective nb201 study (10 curve
points each, through the store's bulk path, as ``benchmarks/store.py``
does), then prints:

* the dashboard's SQL reads one by one (median of ``--repeats`` runs);
* the server-side render time of each page with Streamlit's ``AppTest``:
  *cold* (a fresh process: imports, engine, space plugin, empty caches),
  *first view* (server already running, empty data caches: what a user
  opening the page sees) and *cached* (a rerender within the cache TTL);
* with ``--browser``: wall time in headless Chromium from navigation until
  the page's main element (trials table with plots / architecture graph) is
  drawn, against a real ``nas dashboard`` server;
* the writes of a running search (another process asking, reporting and
  telling trials as fast as it can, on a fresh SQLite study) for
  ``--writer-seconds`` alone, then as long again while this process runs
  every read the dashboard makes in a loop: median, 99th percentile and
  slowest ask + report + tell, and the store's retries (a lock met). The
  reads must never make a write wait.

The goal is < 2 s for the first view of each page. ``--store`` keeps the
filled store (and reuses it when it already exists).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import (  # noqa: E402  (benchmarks/store.py: the bulk fill, the timed writer)
    OBJECTIVES,
    WRITE_COLUMNS,
    bulk_fill,
    write_latency_row,
    writer_process,
    writer_result,
)

import nas  # noqa: E402
from nas.store.url import ENV_VAR  # noqa: E402

GOAL_S = 2.0
APP = str(REPO / "dashboard" / "app.py")


def fill(url: str, trials: int, points: int, seed: int, console: Console) -> None:
    study = nas.create_study(
        "bench", url, space="nb201", objectives=OBJECTIVES, config={"strategy": {"name": "random"}}
    )
    console.log(f"filling {trials:,} trials x {points} curve points ...")
    start = time.perf_counter()
    bulk_fill(study, trials, points, np.random.default_rng(seed))
    study.finish()
    study.close()
    console.log(f"filled in {time.perf_counter() - start:.0f} s")


def median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def query_times(url: str, repeats: int) -> list[tuple[str, float]]:
    from nas.store.readonly import TrialQuery, open_readonly

    store = open_readonly(url)
    sid = store.get_study("bench").study_id
    total = store.count_trials(sid)[nas.TrialState.COMPLETE]
    middle = total // 2
    table = store.score_table(sid, list(OBJECTIVES))
    reads: list[tuple[str, Callable[[], object]]] = [
        ("change token", lambda: store.study_token(sid)),
        ("study list with counts and best values", store.summarize_studies),
        ("page of 50, latest first", lambda: store.query_trials(sid, TrialQuery(), limit=50)),
        (
            "page of 50 from the middle",
            lambda: store.query_trials(sid, TrialQuery(), offset=middle, limit=50),
        ),
        (
            "page of 50 by val_accuracy",
            lambda: store.query_trials(sid, TrialQuery(order_by="val_accuracy"), limit=50),
        ),
        (
            "page of 50: op contains + range + count",
            lambda: store.query_trials(
                sid,
                TrialQuery(
                    contains=("nor_conv_3x3",), ranges={"val_accuracy": (70.0, None)}, order_by="latency_ms"
                ),
                limit=50,
            ),
        ),
        ("objective bounds", lambda: store.objective_bounds(sid)),
        ("score table, 2 objectives (index-only)", lambda: store.score_table(sid, list(OBJECTIVES))),
        (
            "score table tail (incremental refresh)",
            lambda: store.score_table(sid, list(OBJECTIVES), after=total - 100),
        ),
        ("Pareto mask of the score table", lambda: table.pareto_mask()),
        ("every 25th trial number (progress dots)", lambda: store.sampled_trials(sid, max(1, total // 4000))),
        (
            "labels of 2,000 Pareto-plot trials",
            lambda: store.labels(sid, table.ids[:: max(1, total // 2000)]),
        ),
        ("one trial", lambda: store.get_trial(sid, middle)),
        ("one trial's curves", lambda: store.metrics(sid, middle)),
    ]
    result = [(name, median_s(fn, repeats)) for name, fn in reads]
    store.close()
    return result


def apptest_times(url: str, number: int) -> list[tuple[str, float, float, float]]:
    """(page, cold, first view, cached) seconds of server-side rendering with AppTest, in a fresh process."""
    code = f"""
import os, sys, time, json, logging
logging.disable(logging.WARNING)
os.environ[{ENV_VAR!r}] = {url!r}
sys.path.insert(0, {str(REPO)!r})
import streamlit as st
from streamlit.testing.v1 import AppTest
pages = [("trials", {{"page": "trials", "study": "bench"}}), ("trial detail", {{"page": "trial", "study": "bench", "trial": "{number}"}})]
out = []
def run(params):
    at = AppTest.from_file({APP!r}, default_timeout=120)
    at.query_params.update(params)
    start = time.perf_counter(); at.run(); elapsed = time.perf_counter() - start
    if at.exception or at.error:
        raise SystemExit(f"page failed: {{at.exception}} {{[e.value for e in at.error]}}")
    return elapsed
for name, params in pages:
    cold = run(params) if not out else None
    # A new user's first view on a running server: code, engine and space loaded, no cached data.
    from dashboard import queries
    st.cache_data.clear()
    queries.score_tracker.clear()
    first = run(params)
    cached = run(params)
    out.append([name, cold, first, cached])
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"AppTest run failed:\n{done.stderr[-3000:]}")
    import json

    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return [(r[0], r[1] if r[1] is not None else float("nan"), r[2], r[3]) for r in rows]


def browser_times(url: str, number: int, repeats: int = 3) -> list[tuple[str, float, float]]:
    """(page, s to its heading, s to its main element drawn) in headless Chromium against ``nas dashboard``.

    The server is warmed up first (its first session imports the space
    plugins); each measurement opens a fresh tab (a new session). The
    Studies page of a small store is the baseline: the cost of Streamlit's
    own front end on this machine.
    """
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from nas.cli import main; main()",
            "dashboard",
            "--storage",
            url,
            "--port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    pages = [
        ("studies (baseline)", "", "[data-testid='stDataFrame'] canvas"),
        (
            "trials",
            "page=trials&study=bench",
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
        ),
        ("trial detail", f"page=trial&study=bench&trial={number}", "[data-testid='stGraphVizChart'] svg"),
    ]
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("the dashboard did not start") from None
                time.sleep(0.3)
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in pages}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            warm = browser.new_page()
            for _, query, selector in pages:
                warm.goto(f"{base}/?{query}")
                warm.wait_for_selector(selector, timeout=120_000)
            warm.close()
            for _ in range(repeats):
                for name, query, selector in pages:
                    fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
                    start = time.perf_counter()
                    fresh.goto(f"{base}/?{query}")
                    fresh.wait_for_selector("h1", timeout=120_000)
                    heading = time.perf_counter() - start
                    fresh.wait_for_selector(selector, timeout=120_000)
                    timings[name].append((heading, time.perf_counter() - start))
                    fresh.close()
            browser.close()
        return [
            (name, statistics.median(h for h, _ in runs), statistics.median(d for _, d in runs))
            for name, runs in timings.items()
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)


def poll_dashboard_reads(store: object, sid: int, table: object) -> object:
    """Every read the dashboard makes of a live study, once (the score table is extended, as the app does)."""
    from nas.store.readonly import TrialQuery

    store.study_token(sid)  # type: ignore[attr-defined]
    store.count_trials(sid)  # type: ignore[attr-defined]
    store.summarize_studies()  # type: ignore[attr-defined]
    page = store.query_trials(sid, TrialQuery(), limit=50)  # type: ignore[attr-defined]
    query = TrialQuery(order_by="acc", contains=('"a"',), ranges={"lat": (0.0, 6.0)})
    store.query_trials(sid, query)  # type: ignore[attr-defined]
    store.objective_bounds(sid)  # type: ignore[attr-defined]
    table = table.extend(store.score_table(sid, ["acc", "lat"], after=table.settled))  # type: ignore[attr-defined]
    table.pareto_mask()  # type: ignore[attr-defined]
    store.labels(sid, table.ids[-20:])  # type: ignore[attr-defined]
    if page.trials:
        store.metrics(sid, page.trials[0].number)  # type: ignore[attr-defined]
        store.get_trial(sid, page.trials[-1].number)  # type: ignore[attr-defined]
    return table


def writes_while_polled(directory: Path, seconds: float) -> list[list[str]]:
    """Rows: a search's writes for ``seconds`` alone, then for ``seconds`` while the dashboard's reads loop."""
    from nas.store.readonly import open_readonly
    from nas.store.testing import ChainSpace

    url = f"sqlite:///{directory / 'live.db'}"
    study = nas.create_study("live", url, space=ChainSpace(), objectives={"acc": "max", "lat": "min"})
    study.tell(study.ask(), [0.0, 0.0])
    study.close()
    rows = [write_latency_row("search alone", writer_result(writer_process(url, seconds)))]
    store = open_readonly(url)
    sid = store.get_study("live").study_id
    table = store.score_table(sid, ["acc", "lat"])
    writer = writer_process(url, seconds)
    polls, errors = 0, []
    while writer.poll() is None:
        try:
            table = poll_dashboard_reads(store, sid, table)
            polls += 1
        except Exception as exc:  # counted, so the writer is always waited for
            errors.append(repr(exc))
    store.close()
    polled = write_latency_row("search + dashboard polling", writer_result(writer))
    polled[-1] = f"{polls:,} polls, {len(errors)} read errors"
    return [*rows, polled]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=10, help="curve points per trial")
    parser.add_argument("--store", type=Path, default=None, help="SQLite file to keep (reused if it exists)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per SQL read (median reported)")
    parser.add_argument("--browser", action="store_true", help="also time pages in headless Chromium")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--writer-seconds", type=float, default=8.0, help="seconds per write-latency run (0: skip it)"
    )
    parser.add_argument(
        "--only-writes", action="store_true", help="only the write-latency table (no 100,000-trial fill)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=max(Console().width, 120))
    with tempfile.TemporaryDirectory(prefix="nas-dash-bench-") as tmp:
        if args.writer_seconds > 0:
            writes = Table(
                title=f"a search's ask + 2 reports + tell on SQLite, {args.writer_seconds:g} s per run"
            )
            for column in (*WRITE_COLUMNS, "dashboard"):
                writes.add_column(column, justify="right")
            for row in writes_while_polled(Path(tmp), args.writer_seconds):
                writes.add_row(*row)
            console.print(writes)
        if args.only_writes:
            print_machine(console)
            return
        path = args.store.resolve() if args.store else Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            fill(url, args.trials, args.points, args.seed, console)
        else:
            console.log(f"reusing {path}")
        number = nas.load_study("bench", url).count_trials()[nas.TrialState.COMPLETE] // 2

        reads = Table(title=f"dashboard SQL reads at {args.trials:,} trials (median of {args.repeats})")
        reads.add_column("read")
        reads.add_column("ms", justify="right")
        for name, seconds in query_times(url, args.repeats):
            reads.add_row(name, f"{seconds * 1000:.1f}")
        console.print(reads)

        pages = Table(
            title=f"server-side render (AppTest) at {args.trials:,} trials; goal: first view < {GOAL_S:g} s"
        )
        for column in ("page", "cold process (s)", "first view (s)", "cached (s)", "goal"):
            pages.add_column(column, justify="right")
        for name, cold, first, cached in apptest_times(url, number):
            cold_text = "–" if cold != cold else f"{cold:.2f}"
            pages.add_row(
                name, cold_text, f"{first:.2f}", f"{cached:.2f}", "met" if first < GOAL_S else "MISSED"
            )
        console.print(pages)

        if args.browser:
            shown = Table(title="headless Chromium, fresh tab on a warm server (median of 3)")
            for column in ("page", "heading shown (s)", "main element drawn (s)"):
                shown.add_column(column, justify="right")
            for name, heading, drawn in browser_times(url, number):
                shown.add_row(name, f"{heading:.2f}", f"{drawn:.2f}")
            console.print(shown)
    print_machine(console)


def print_machine(console: Console) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"machine: {os.cpu_count()} CPUs, load average {load}; {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
