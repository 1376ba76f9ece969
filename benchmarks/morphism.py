"""Weight inheritance through network morphisms: does a child trained from its parent's weights
reach the from-scratch accuracy in half the epochs?

The issue's target: on the CIFAR-10 subset (``$NAS_DATA_DIR/cifar10/cifar10_10k_2k.npz``)
with real training, over 10 parent-child pairs, a child inheriting its
parent's weights (``train`` evaluator, ``inherit: parent``) reaches the
validation accuracy of the same child trained from scratch for ``E`` epochs
within ``E/2`` epochs, on the mean and on the worst pair.

Per pair (all with the ``train`` evaluator, same data, batch size, learning
rate, seed):

1. a random parent of ``--space`` is trained from scratch for ``E`` epochs;
2. one of its morphisms (:mod:`nas.core.morphism`, chosen at random) gives the child;
3. the child is trained from scratch for ``E`` epochs (accuracy ``scratch``), and
4. from the parent's weights for ``E/2`` epochs (``inherit_epochs``; accuracy ``inherited``,
   and the first of its epochs whose validation accuracy reaches ``scratch``).

Columns: the parent and its accuracy, the morphism, ``scratch`` at ``E``,
``inherited`` at ``E/2``, their gap, and the epochs the inheriting child
needed (``-``: not within ``E/2``). The summary gives the mean and the worst
gap and whether the target holds.

Examples::

    # smoke run (a minute): proves the script works, the figures mean little
    python benchmarks/morphism.py --pairs 2 --epochs 2 --limit 500 --space hybrid
    # the issue's target (hours on a 2-core CPU; for the lead)
    python benchmarks/morphism.py --pairs 10 --epochs 10 --space fbnet --width 0.5 --threads 2
    python benchmarks/morphism.py --pairs 10 --epochs 10 --space hybrid --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core.evaluator import Inheritance  # noqa: E402
from nas.core.morphism import morphisms  # noqa: E402
from nas.data import load_dataset  # noqa: E402
from nas.evaluators.train import TrainEvaluator  # noqa: E402
from search_spaces import get_space  # noqa: E402

#: Space options for this benchmark (small widths: a 2-core CPU).
SPACE_OPTIONS: dict[str, dict[str, Any]] = {
    "hybrid": {"blocks": 4, "downsamples": 2, "base_width": 16},
    "fbnet": {"width_mult": 0.25},
}


def first_reaching(curve: list[dict[str, Any]], target: float) -> int | None:
    """The first epoch whose validation accuracy is at least ``target`` (None: never)."""
    for row in curve:
        if row.get("val_accuracy", -1.0) >= target:
            return int(row["epoch"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", choices=sorted(SPACE_OPTIONS), default="hybrid")
    parser.add_argument("--width", type=float, default=None, help="fbnet width_mult (default 0.25)")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument(
        "--first-pair",
        type=int,
        default=0,
        help="train pairs from this index on (earlier pairs are drawn, not trained: the rows are "
        "deterministic by seed, so a stopped run continues with the same pairs)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="E: parent and from-scratch child epochs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    options = dict(SPACE_OPTIONS[args.space])
    if args.width is not None and args.space == "fbnet":
        options["width_mult"] = args.width
    space = get_space(args.space, **options)
    dataset = load_dataset({"name": "cifar10", "limit": args.limit, "val_fraction": 0.1}, seed=0)
    half = max(1, args.epochs // 2)
    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "inherit": "parent",
        "inherit_epochs": half,
        "latency_repeats": 1,
        "latency_warmup": 0,
    }
    workdir = Path(tempfile.mkdtemp(prefix="nas-morphism-bench-"))
    evaluator = TrainEvaluator(space, dataset, settings=settings, workdir=workdir, num_threads=args.threads)
    print(
        f"# {args.space} {options}, {len(dataset.y_train)} training images of {dataset.input_shape}, "
        f"E={args.epochs} (inheriting child: {half}), batch {args.batch_size}, lr {args.lr}, "
        f"{args.threads} thread(s)"
    )
    header = f"{'pair':>4}  {'parent':<40} {'par%':>6}  {'morphism':<34} {'scratch':>7} {'inher.':>7} {'gap':>6} {'ep':>3}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(args.seed)
    rows: list[dict[str, Any]] = []
    index = 0
    while index < args.pairs:
        parent_arch = space.sample(rng)
        options_ = morphisms(space, parent_arch)
        if not options_:
            continue
        morphism = options_[int(rng.integers(len(options_)))]
        index += 1
        if index <= args.first_pair:
            continue  # drawn as in the full run, trained by an earlier one
        pair = index - 1
        seed = args.seed + pair
        parent = evaluator.evaluate(parent_arch, seed=seed, budget=args.epochs)
        scratch = evaluator.evaluate(morphism.child, seed=seed, budget=args.epochs)
        weights = Path(parent.artifacts["weights"]).read_bytes()
        inheritance = Inheritance(parent_arch, pair, morphism.to_dict(), weights)
        inherited = evaluator.evaluate(morphism.child, seed=seed, budget=half, parent=inheritance)
        target = scratch.values["val_accuracy"]
        row = {
            "pair": pair,
            "parent": space.format(parent_arch),
            "child": space.format(morphism.child),
            "morphism": morphism.to_dict(),
            "parent_accuracy": parent.values["val_accuracy"],
            "scratch_accuracy": target,
            "inherited_accuracy": inherited.values["val_accuracy"],
            "gap": inherited.values["val_accuracy"] - target,
            "epochs_to_scratch": first_reaching(inherited.user_attrs["learning_curve"], target),
        }
        rows.append(row)
        edit = f"{morphism.kind} {morphism.decision} {row['morphism']['from']}->{row['morphism']['to']}"
        reached = "-" if row["epochs_to_scratch"] is None else str(row["epochs_to_scratch"])
        print(
            f"{row['pair']:>4}  {row['parent'][:40]:<40} {row['parent_accuracy']:>6.2f}  {edit[:34]:<34} "
            f"{target:>7.2f} {row['inherited_accuracy']:>7.2f} {row['gap']:>+6.2f} {reached:>3}",
            flush=True,
        )
    gaps = [r["gap"] for r in rows]
    mean, worst = statistics.fmean(gaps), min(gaps)
    reached = sum(r["epochs_to_scratch"] is not None for r in rows)
    print("-" * len(header))
    print(
        f"inherited at E/2={half} minus scratch at E={args.epochs}: mean {mean:+.2f} points, worst {worst:+.2f}; "
        f"{reached}/{len(rows)} children reached the scratch accuracy within {half} epochs"
    )
    print(
        f"target (mean and worst gap >= 0): mean {'MET' if mean >= 0 else 'MISSED'}, worst {'MET' if worst >= 0 else 'MISSED'}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
