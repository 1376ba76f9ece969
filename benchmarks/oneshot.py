"""One-shot search on NAS-Bench-201 with the CIFAR-10 subset: what each method derives, and how good it is.

Each run trains a (reduced) supernet on ``$NAS_DATA_DIR/cifar10/cifar10_10k_2k.npz``,
derives a cell and looks the cell up in the NAS-Bench-201 table
(12-epoch CIFAR-10 validation accuracy, ``nb201/nb201_12epoch.csv``). The
target is a cell in the top 5% of the 15,625 (>= 81.7) for the best
differentiable method over 3 seeds, each run within 20 minutes on a 2-core
CPU; plain DARTS is known to collapse to the all-skip cell here.

Examples::

    python benchmarks/oneshot.py --methods gdas --seeds 0 --epochs 20
    python benchmarks/oneshot.py --methods darts,pc_darts,gdas --seeds 0 1 2 --epochs 10
    python benchmarks/oneshot.py --methods darts --seeds 0 --set early_stop_on_collapse=true
    python benchmarks/oneshot.py --methods darts,robust_darts --seeds 0 --epochs 12 --limit 5000 --curves
    python benchmarks/oneshot.py --methods gold_nas,sd_darts,smash --seeds 0 1 2 --epochs 12
    python benchmarks/oneshot.py --methods rarts,amended_darts,d_darts --seeds 0 1 2 --epochs 10
    python benchmarks/oneshot.py --methods all --seeds 0 --epochs 12

``--methods all`` runs every registered method that searches ``nb201``, by
name (the equal-terms comparison: same split, epochs, seeds, budget).

``--set key=value`` passes any one-shot option (YAML values). A run that
would pass ``--time-limit`` stops early (``stop_reason``) and is reported as
such. Prints one row per run and a per-method summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core.oneshot import ONESHOT, oneshot_view  # noqa: E402
from nas.data import load_dataset  # noqa: E402
from nas.oneshot import OneShotMethod, create_method, percentile, run_oneshot  # noqa: E402
from nas.oneshot.ranking import load_table  # noqa: E402
from search_spaces import get_space  # noqa: E402

METRIC = "cifar10-val"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def parse_sets(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        options[key.strip()] = yaml.safe_load(value)
    return options


CURVES_HEADER = (
    f"{'':>14}{'epoch':>5} {'skip':>5} {'collapse':>8} {'eigenvalue':>10} {'val_acc':>7} {'time_s':>6}"
)


def epoch_row(method: OneShotMethod) -> str:
    """The last epoch's skip share, collapse verdict, Hessian eigenvalue (robust_darts) and whether the run stops."""
    row = method.history[-1]
    share = f"{row['skip_share']:.2f}" if "skip_share" in row else "-"
    collapsed = "-" if "collapsed" not in row else ("yes" if row["collapsed"] else "no")
    eigen = f"{row['hessian_eigenvalue']:.4g}" if "hessian_eigenvalue" in row else "-"
    stop = "  stop" if method.stop_reason else ""
    return (
        f"{'':>14}{int(row['epoch']):>5} {share:>5} {collapsed:>8} {eigen:>10} "
        f"{row['val_accuracy']:>7.1f} {row['epoch_time_s']:>6.0f}{stop}"
    )


def epoch_callback(limit_s: float, started: float, curves: bool) -> Any:
    """Stops a run before the next epoch would pass ``limit_s``; with ``curves``, prints each epoch as it ends."""

    def callback(method: OneShotMethod, metrics: Mapping[str, float]) -> None:
        elapsed = time.perf_counter() - started
        if not method.finished and elapsed + metrics["epoch_time_s"] > limit_s:
            method.stop_reason = f"time limit {limit_s:.0f} s reached after epoch {method.epoch}"
        if curves:
            print(epoch_row(method), flush=True)

    return callback


def nb201_methods(space: Any) -> list[str]:
    """Every registered one-shot method whose kinds include ``space``'s one-shot view (``--methods all``)."""
    view = oneshot_view(space)
    return [name for name in ONESHOT.names() if view is not None and view.kind in ONESHOT.get(name).kinds]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methods", default="darts,pc_darts,gdas", help="comma-separated one-shot methods, or 'all'"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="training images used (default: all 10,000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds per run (default 20 min)")
    parser.add_argument("--rank", type=int, default=0, help="cells for the rank-correlation report (0: off)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one-shot option")
    parser.add_argument(
        "--curves",
        action="store_true",
        help="print each epoch's skip share, collapse verdict, eigenvalue as it ends",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every run's result here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    space = get_space("nb201", channels=args.channels, cells=args.cells)
    table = load_table(space)
    values = np.asarray(table.column(METRIC))
    top5 = float(np.quantile(values, 0.95))
    dataset = load_dataset({"name": "cifar10", "limit": args.limit, "val_fraction": 0.1}, seed=0)
    extra = parse_sets(args.set)
    print(
        f"nb201 supernet C={args.channels} N={args.cells}, {len(dataset.y_train)} training images "
        f"(half for weights, half for alpha), batch {args.batch_size}, {args.epochs} epochs, "
        f"{args.threads} threads, time limit {args.time_limit:.0f} s; options {extra or '{}'}"
    )
    print(
        f"table {METRIC}: best {values.max():.2f}, top-5% threshold {top5:.2f}, "
        f"all-skip cell {table.value(space.parse(ALL_SKIP), METRIC):.2f}\n"
    )
    header = f"{'method':13} {'seed':>4} {'epochs':>6} {'time_s':>7} {'sn_val':>6} {METRIC:>11} {'top%':>6} {'collapse':>8}  cell"
    print(header)
    print("-" * len(header))
    rows = []
    methods = nb201_methods(space) if args.methods == "all" else args.methods.split(",")
    for name in methods:
        for seed in args.seeds:
            options = {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "rank_correlation": args.rank,
                **extra,
            }
            started = time.perf_counter()
            method = create_method(name, space, dataset, options, seed=seed)
            if args.curves:
                print(f"{name} seed {seed}, per epoch:\n{CURVES_HEADER}", flush=True)
            result = run_oneshot(method, callback=epoch_callback(args.time_limit, started, args.curves))
            seconds = time.perf_counter() - started
            value = table.value(result.arch, METRIC)
            top = percentile(table, result.arch, METRIC)
            collapsed = bool(result.collapse and result.collapse["collapsed"])
            supernet_val = result.history[-1]["val_accuracy"] if result.history else float("nan")
            print(
                f"{name:13} {seed:>4} {result.epochs:>6} {seconds:>7.0f} {supernet_val:>6.1f} {value:>11.2f} "
                f"{top:>6.1f} {'yes' if collapsed else 'no':>8}  {result.arch_string}",
                flush=True,
            )
            if result.stop_reason:
                print(f"{'':>14}stopped: {result.stop_reason}")
            if result.rank:
                print(
                    f"{'':>14}supernet vs table over {result.rank['samples']} cells: "
                    f"Kendall tau {result.rank['kendall_tau']}, Spearman {result.rank['spearman']}"
                )
            rows.append(
                {**json.loads(result.to_json()), "table_value": value, "top_percent": top, "seconds": seconds}
            )
    print("\nper method: best and mean table value over seeds")
    for name in methods:
        mine = [r["table_value"] for r in rows if r["method"] == name]
        if mine:
            hit = max(mine) >= top5
            print(
                f"  {name:13} best {max(mine):.2f}  mean {np.mean(mine):.2f}  "
                f"{'top 5% reached' if hit else 'top 5% not reached'}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
