"""Accuracy vs device latency on NAS-Bench-201: nsga2 against random search.

For each strategy and seed, the hypervolume of what was found (12-epoch
CIFAR-10 validation accuracy, maximised; latency on ``--device``, minimised)
is divided by the hypervolume of the table's exact Pareto front, both from
the table's nadir point (lowest accuracy, highest latency over all 15,625
cells). Prints mean ± std, the worst seed and the share of seeds at >= 99%.

Both strategies use ``duplicate_key="exact"`` (``run_nb201``'s default with a
latency objective): NAS-Bench-201 cells that compute the same function still
differ in measured latency (dead ops run), so the cheaper twin must stay
reachable.

    python benchmarks/multiobjective.py                     # pixel3, 20 seeds, 200 queries
    python benchmarks/multiobjective.py --device gold_6240 --seeds 5
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from nas.bench import run_nb201
from nas.core.errors import ConfigError
from nas.core.leakage import refuse_test_column


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--metric", default="cifar10-val")
    parser.add_argument("--strategies", default="nsga2,random")
    args = parser.parse_args()
    try:
        refuse_test_column(args.metric, "--metric")  # test data is reported, never searched or trained on
    except ConfigError as exc:
        parser.error(str(exc))

    console = Console()
    console.print(
        f"{date.today()} · {platform.machine()} · {args.seeds} seeds · {args.metric} vs {args.device}"
    )
    checkpoints = sorted({q for q in (50, 100, 200) if q < args.queries} | {args.queries})
    table = RichTable(title=f"hypervolume found / hypervolume of the true front ({args.device})")
    for column in ("strategy", "queries", "mean ± std", "worst seed", "seeds >= 99%", "s/seed"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for name in args.strategies.split(","):
        start = time.perf_counter()
        result = run_nb201(
            name,
            args.queries,
            range(args.seeds),
            metric=args.metric,
            objectives={"val_accuracy": "max", "latency_ms": "min"},
            device=args.device,
            checkpoints=checkpoints,
        )
        seconds = (time.perf_counter() - start) / args.seeds
        for k, q in enumerate(checkpoints):
            ratios = np.array([run.hypervolume_ratio[k] for run in result.runs])
            table.add_row(
                name,
                str(q),
                f"{100 * ratios.mean():.2f} ± {100 * ratios.std():.2f} %",
                f"{100 * ratios.min():.2f} %",
                f"{100 * np.mean(ratios >= 0.99):.0f}%",
                f"{seconds:.2f}",
            )
        console.log(f"{name}: {seconds:.2f} s per seed")
    console.print(table)


if __name__ == "__main__":
    main()
