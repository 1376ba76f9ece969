"""Single-objective strategies on the NAS-Bench-201 table (12-epoch CIFAR-10 validation).

Runs random, local, evolution and predictor over seeds (evolution also at 2x
the queries) and prints, per strategy, the mean ± std of the incumbent's
validation and test accuracy and the share of seeds that found the table's
best cell (found from the table, not hard-coded). Also prints what sampling
theory says for random search (the expected best of n uniform draws).

    python benchmarks/strategies.py                       # 20 seeds x 100 queries
    python benchmarks/strategies.py --seeds 5 --predictor rf --predictor-option n_estimators=64
    python benchmarks/strategies.py --seeds 10 --strategies predictor --zc jacob_cov,synflow \
        --zc-cache /tmp/nas-zc-nb201.npz      # predictor with zero-cost features (scores every cell once)
    python benchmarks/strategies.py --strategies predictor --zc jacob_cov,synflow --zc-seeds 2 \
        --zc-cache /tmp/nas-zc-nb201.npz --option candidate_pool=all   # the recommended zero-cost setting

``--zc`` gives the predictor the zero-cost proxies of every cell as extra
features (path + one-hot encodings, rank-transformed targets), scored as in
``benchmarks/predictor_ranking.py``: a reduced network (C=8, N=1), one
CIFAR-10 batch of 32, ``--zc-seeds`` initialisations; the same cache file
serves both scripts.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table as RichTable

from nas.bench import BenchResult, run_nb201
from nas.core.errors import ConfigError
from nas.core.leakage import refuse_test_column
from nas.data.paths import NB201_TABLE, data_path
from nas.data.tables import Table
from nas.strategies import strategy_options as strategy_options_of
from nas.strategies.predictor import DEFAULT_PREDICTOR
from search_spaces import get_space


def expected_best_of(values: np.ndarray, n: int) -> float:
    """E[max of n uniform draws with replacement] from ``values`` (exact order statistics)."""
    ordered = np.sort(values)
    k = np.arange(1, len(ordered) + 1) / len(ordered)
    weights = k**n - (k - 1 / len(ordered)) ** n
    return float(np.dot(ordered, weights))


def zero_cost_features(proxies: list[str], seeds: int, cache: str | None) -> dict[str, Any]:
    """Predictor options that add every cell's proxy scores as features (scored once, cached)."""
    from predictors.proxy_table import dataset_proxy_features

    archs = Table.load(data_path(NB201_TABLE), get_space("nb201")).archs
    reduced = get_space("nb201", channels=8, cells=1)
    features = dataset_proxy_features(reduced, archs, proxies, seeds=range(seeds), cache=cache)
    return {"extra_features": features, "encoding": "both", "target_transform": "rank"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed+seeds-1"
    )
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--metric", default="cifar10-val")
    parser.add_argument("--predictor", default=DEFAULT_PREDICTOR)
    parser.add_argument("--predictor-option", action="append", default=[], help="KEY=VALUE")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        help="strategy option KEY=VALUE, given to each listed strategy that accepts KEY",
    )
    parser.add_argument("--strategies", default="random,local,evolution,evolution@2x,predictor")
    parser.add_argument(
        "--zc", default="", help="zero-cost proxies as predictor features, e.g. jacob_cov,synflow"
    )
    parser.add_argument("--zc-seeds", type=int, default=1, help="proxy initialisations averaged")
    parser.add_argument("--zc-cache", default=None, help="resumable .npz of proxy scores (outside the repo)")
    args = parser.parse_args()
    try:
        refuse_test_column(args.metric, "--metric")  # test data is reported, never searched or trained on
    except ConfigError as exc:
        parser.error(str(exc))

    predictor_options = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.predictor_option)}
    strategy_options = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.option)}
    names = [spec.partition("@")[0] for spec in args.strategies.split(",")]
    accepted_somewhere = {key for name in names for key in strategy_options_of(name)}
    if unused := sorted(set(strategy_options) - accepted_somewhere):
        parser.error(f"--option {unused} is accepted by none of the strategies {names}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    console = Console()
    if args.zc:
        predictor_options.update(zero_cost_features(args.zc.split(","), args.zc_seeds, args.zc_cache))
    values = Table.load(data_path(NB201_TABLE), get_space("nb201")).column(args.metric)
    console.print(
        f"{date.today()} · {platform.machine()} · {args.seeds} seeds · search {args.metric} · "
        f"table best {values.max():.3f}; sampling theory, best of {args.queries} uniform draws: "
        f"{expected_best_of(values, args.queries):.3f}"
    )

    table = RichTable(title=f"NAS-Bench-201 {args.metric}: incumbent after the given queries")
    for column in ("strategy", "queries", "val (search)", "test (reported)", "found best", "s/seed"):
        table.add_column(column, justify="right" if column != "strategy" else "left")
    for spec in args.strategies.split(","):
        name, _, factor = spec.partition("@")
        queries = args.queries * (int(factor.rstrip("x")) if factor else 1)
        is_predictor = name == "predictor"
        accepted = set(strategy_options_of(name))
        own_options = {k: v for k, v in strategy_options.items() if k in accepted}
        start = time.perf_counter()
        result: BenchResult = run_nb201(
            name,
            queries,
            seeds,
            metric=args.metric,
            predictor=args.predictor if is_predictor else None,
            predictor_options=predictor_options if is_predictor else None,
            strategy_options=own_options or None,
            checkpoints=sorted({args.queries, queries}),
        )
        seconds = (time.perf_counter() - start) / args.seeds
        shown = ", ".join(f"{k}={v}" for k, v in own_options.items())
        label = f"{name} ({shown})" if shown else name
        if is_predictor:
            label = f"{name} ({args.predictor}{'+zc' if args.zc else ''}{', ' + shown if shown else ''})"
        for row in result.summary():
            table.add_row(
                label,
                str(row["queries"]),
                f"{row['search_mean']:.3f} ± {row['search_std']:.3f}",
                f"{row['test_mean']:.3f} ± {row['test_std']:.3f}",
                f"{100 * row['found_best']:.0f}%",
                f"{seconds:.1f}",
            )
        console.log(f"{label}: {seconds:.1f} s per seed")
    console.print(table)


if __name__ == "__main__":
    main()
