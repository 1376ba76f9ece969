"""Benchmarks of ``nas search`` (not tests): the README's main command and Ray's parallel efficiency.

    python benchmarks/search.py quickstart   # wall time and accuracy of `nas search examples/quickstart.yaml`
    python benchmarks/search.py parallel     # 2 concurrent ~5 s trials on 2 cores vs the ideal

Targets: the quickstart under 3 minutes, its search visibly improving (the
best trial clearly ahead of the median and the first, no tie at the top);
parallel wall time <= 1.18 x (sum of trial times / 2).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console()


def quickstart() -> None:
    import nas

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/nas.db"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nas.cli",
                "search",
                str(REPO / "examples" / "quickstart.yaml"),
                "--storage",
                url,
                "--quiet",
            ],
            check=True,
            cwd=tmp,
        )
        wall = time.perf_counter() - started
        study = nas.load_study("quickstart", storage=url)
        trials = study.trials()
    from nas.core import Direction
    from nas.runner.summary import improvement

    found = improvement(trials, {"val_accuracy": Direction.MAX})
    assert found is not None, "the quickstart completed no trial"
    tied = sum(1 for t in trials if t.values and t.values.get("val_accuracy") == found.best)
    table = Table(title="nas search examples/quickstart.yaml (fresh store, local Ray started by the command)")
    for column in (
        "trials",
        "wall s",
        "first",
        "median",
        "best",
        "best - median",
        "trials at the best",
        "target",
    ):
        table.add_column(column)
    table.add_row(
        str(len(trials)),
        f"{wall:.0f}",
        f"{found.first:.1f}",
        f"{found.median:.1f}",
        f"{found.best:.1f}",
        f"{found.gain(found.median):+.1f}",
        str(tied),
        "< 180 s; best ahead of median; 1 at the best",
    )
    console.print(table)


def parallel(trials: int, epochs: int) -> None:
    from nas.runner import run_search

    config = {
        "name": "parallel",
        "space": {"name": "nb201", "channels": 8, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "epochs": epochs, "batch_size": 64, "latency_repeats": 5},
        "budget": {"trials": trials, "concurrent": 2},
        "resources": {"cpu": 1},
    }
    with tempfile.TemporaryDirectory() as tmp:
        import nas

        url = f"sqlite:///{tmp}/nas.db"
        outcome = run_search(config, storage=url, show_progress=False)
        finished = nas.load_study("parallel", storage=url).trials()
    train = [t.user_attrs["trial_seconds"] for t in finished]
    total = sum(train)
    ideal = total / 2
    overhead = (2 * outcome.fit_seconds - total) / len(train)
    table = Table(title=f"{len(train)} trials, 2 concurrent, 1 CPU each, 2-core machine")
    for column in (
        "mean trial s",
        "sum trial s",
        "ideal wall s",
        "wall s (Tune run)",
        "ratio",
        "overhead/trial s",
        "target",
    ):
        table.add_column(column)
    table.add_row(
        f"{total / len(train):.1f}",
        f"{total:.1f}",
        f"{ideal:.1f}",
        f"{outcome.fit_seconds:.1f}",
        f"{outcome.fit_seconds / ideal:.3f}",
        f"{overhead:.2f}",
        "ratio <= 1.18",
    )
    console.print(table)
    console.print(
        f"Ray start-up and study setup before the Tune run: {outcome.seconds - outcome.fit_seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["quickstart", "parallel", "all"])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (about 5 s on one core)")
    args = parser.parse_args()
    if args.what in ("quickstart", "all"):
        quickstart()
    if args.what in ("parallel", "all"):
        parallel(args.trials, args.epochs)


if __name__ == "__main__":
    main()
