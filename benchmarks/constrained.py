"""Budgeted differentiable search: does the derived architecture meet its latency or parameter target?

The issue's target: for ``dnas`` and ``rc_darts`` the derived architecture's
latency (or parameter count) is within 10% of the target in at least 3 of 3
seeds, and its accuracy after retraining is reported beside an unconstrained
search of the same compute (the same method with a budget every architecture
meets).

* ``--space fbnet``: latency on ``--device`` (a column of HELP's FBNet table,
  through the device's per-block lookup table, which on ``pixel3``,
  ``raspi4``, ``eyeriss``, ``fpga`` is the measurement itself);
* ``--space darts``: parameters of the derived cell's network.

The target is ``--target`` in ms or parameters, or by default halfway
between the smallest achievable resource and the expectation under uniform
alpha (``--target-share 0.5``). Data: the CIFAR-10 subset
(``$NAS_DATA_DIR/cifar10/cifar10_10k_2k.npz``).

Examples::

    # smoke run (minutes): proves the script works, the figures mean little
    python benchmarks/constrained.py --space fbnet --epochs 1 --limit 400 --width 0.25 --seeds 0
    # the issue's target (hours on a 2-core CPU; for the lead)
    python benchmarks/constrained.py --space fbnet --device pixel3 --epochs 20 --width 0.5 \\
        --seeds 0 1 2 --retrain-epochs 10
    python benchmarks/constrained.py --space darts --epochs 20 --seeds 0 1 2 --retrain-epochs 10

Prints one row per (method, seed) and the share of seeds within 10% per method.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elastic import standalone  # noqa: E402  (benchmarks/elastic.py: retraining as in the ranking benchmark)
from oneshot import parse_sets, time_guard  # noqa: E402  (benchmarks/oneshot.py)

from nas.data import load_dataset  # noqa: E402
from nas.oneshot import create_method, run_oneshot  # noqa: E402
from nas.oneshot.resource import ResourceConstrainedMethod  # noqa: E402
from search_spaces import get_space  # noqa: E402

#: A budget no architecture exceeds: the unconstrained baseline.
UNCONSTRAINED = 1e12


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", choices=("fbnet", "darts"), default="fbnet")
    parser.add_argument("--methods", default="dnas,rc_darts", help="comma-separated budgeted methods")
    parser.add_argument("--device", default="pixel3", help="fbnet: latency device of the budget")
    parser.add_argument("--target", type=float, default=None, help="ms (fbnet) or parameters (darts)")
    parser.add_argument(
        "--target-share",
        type=float,
        default=0.5,
        help="without --target: smallest + share * (uniform - smallest)",
    )
    parser.add_argument("--width", type=float, default=0.25, help="fbnet width_mult")
    parser.add_argument("--channels", type=int, default=8, help="darts supernet and retraining width")
    parser.add_argument("--cells", type=int, default=5, help="darts supernet and retraining depth")
    parser.add_argument("--epochs", type=int, default=10, help="search epochs")
    parser.add_argument(
        "--retrain-epochs", type=int, default=0, help="retrain each derived architecture (0: skip)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all 10,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-baseline", action="store_true", help="skip the unconstrained search")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=float("inf"), help="seconds per search")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one-shot option")
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    if args.space == "fbnet":
        space = get_space("fbnet", width_mult=args.width)
        budget_key, unit = "target_latency_ms", "ms"
        fixed: dict[str, Any] = {"latency_device": args.device}
    else:
        space = get_space("darts", channels=args.channels, cells=args.cells)
        budget_key, unit = "target_params", "params"
        fixed = {}
    dataset = load_dataset({"name": "cifar10", "limit": args.limit, "val_fraction": 0.1}, seed=0)
    options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "check_memory": False,
        **fixed,
        **parse_sets(args.set),
    }
    methods = args.methods.split(",")
    probe = create_method(methods[0], space, dataset, {**options, budget_key: UNCONSTRAINED})
    assert isinstance(probe, ResourceConstrainedMethod)
    smallest, uniform = probe.resource.minimum(), float(probe.expected_resource().detach())
    target = args.target if args.target is not None else smallest + args.target_share * (uniform - smallest)
    print(
        f"{args.space} ({probe.resource.label}): smallest {smallest:.4g}, uniform alpha {uniform:.4g}, "
        f"target {target:.4g} {unit}; {len(dataset.y_train)} training images, {args.epochs} search epochs, "
        f"retrain {args.retrain_epochs} epochs"
    )
    del probe
    header = (
        f"{'method':9} {'budget':>8} {'seed':>4} {'time_s':>6} {'expected':>9} {'derived':>9} "
        f"{'ratio':>6} {'in10%':>5} {'sn_val':>6} {'retrain':>7}  arch"
    )
    print(header)
    print("-" * len(header))
    rows = []
    budgets = [("target", target)] + ([] if args.no_baseline else [("none", UNCONSTRAINED)])
    for name in methods:
        for label, value in budgets:
            for seed in args.seeds:
                started = time.perf_counter()
                method = create_method(name, space, dataset, {**options, budget_key: value}, seed=seed)
                assert isinstance(method, ResourceConstrainedMethod)
                result = run_oneshot(method, callback=time_guard(args.time_limit, started))
                seconds = time.perf_counter() - started
                derived = method.resource.of(method.supernet.choices(result.arch))
                expected = float(method.expected_resource().detach())
                ratio = derived / target
                within = abs(ratio - 1.0) <= 0.10
                retrained = (
                    standalone(method, dataset, result.arch, args.retrain_epochs, seed)
                    if args.retrain_epochs
                    else float("nan")
                )
                supernet_val = result.history[-1]["val_accuracy"] if result.history else float("nan")
                print(
                    f"{name:9} {label:>8} {seed:>4} {seconds:>6.0f} {expected:>9.4g} {derived:>9.4g} "
                    f"{ratio:>6.2f} {'yes' if within else 'no':>5} {supernet_val:>6.1f} {retrained:>7.1f}  "
                    f"{result.arch_string}",
                    flush=True,
                )
                rows.append(
                    {
                        "method": name,
                        "budget": label,
                        "seed": seed,
                        "target": target,
                        "expected": expected,
                        "derived": derived,
                        "within_10_percent": within,
                        "supernet_val": supernet_val,
                        "retrained_accuracy": retrained,
                        "seconds": seconds,
                        "arch": result.arch_string,
                    }
                )
    print("\nderived within 10% of the target (budgeted runs)")
    for name in methods:
        mine = [r for r in rows if r["method"] == name and r["budget"] == "target"]
        print(f"{name:9} {sum(r['within_10_percent'] for r in mine)}/{len(mine)}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
