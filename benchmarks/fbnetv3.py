"""FBNetV3: does searching the training recipe with the architecture beat architecture-only search?

The issue's target: on ``fbnet`` with digits or the CIFAR-10 subset, joint
architecture-recipe search (strategy ``fbnetv3``) finds a better network than
architecture-only search with the default recipe, at the same number of
trials, over 3 seeds.

Both arms are the same strategy, predictor, pre-training and candidate
generation; the baseline sets ``search_recipe: false``, so every trial trains
with the evaluator's own settings (the ``train`` defaults: lr 0.05, weight
decay 5e-4, no label smoothing, no mixup), and the joint arm searches lr,
weight decay, label smoothing and mixup (``DEFAULT_RECIPE``). Trials train for
real, in process (``run_loop`` with the ``train`` evaluator, no Ray); the
predictor is pre-trained on the FLOPs, parameters and synflow of
``--pretrain`` random networks of the dataset's input shape.

Per seed and arm: the best validation accuracy after ``--trials`` trials and
the best trial's recipe. The summary gives each arm's mean and the number of
seeds on which joint search wins.

Examples::

    # smoke run (a few minutes): proves the script works, the figures mean little
    python benchmarks/fbnetv3.py --trials 4 --seeds 1 --epochs 1 --pretrain 8 --limit 600
    # the issue's target (hours on a 2-core CPU; for the lead)
    python benchmarks/fbnetv3.py --dataset digits --trials 30 --seeds 3 --epochs 10
    python benchmarks/fbnetv3.py --dataset cifar10 --trials 30 --seeds 3 --epochs 5 --threads 2
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import load_dataset  # noqa: E402
from nas.evaluators.train import TrainEvaluator  # noqa: E402
from nas.strategies import create_strategy, run_loop  # noqa: E402
from search_spaces import get_space  # noqa: E402

ARMS = {"joint": True, "arch-only": False}


def search(
    space: Any, evaluator: TrainEvaluator, seed: int, joint: bool, args: argparse.Namespace, shape: Any
) -> tuple[float, dict[str, Any]]:
    """Best validation accuracy of one search, and the recipe of its best trial."""
    strategy = create_strategy(
        "fbnetv3",
        space,
        seed=seed,
        search_recipe=joint,
        n_initial=args.initial,
        pretrain_archs=args.pretrain,
        predictor_options={"input_shape": list(shape), "num_classes": 10},
        **args.option,
    )
    trials = run_loop(strategy, evaluator, args.trials)
    done = [t for t in trials if t.values and t.values.get("val_accuracy") == t.values.get("val_accuracy")]
    best = max(done, key=lambda t: t.values["val_accuracy"])
    return float(best.values["val_accuracy"]), dict(best.system_attrs.get("recipe", {}))


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--option {text!r}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="digits", choices=["digits", "cifar10"])
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed+seeds-1")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option for both arms (YAML value), e.g. recipe_sampling=uniform; repeatable",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--initial", type=int, default=10, help="random (arch, recipe) trials first")
    parser.add_argument("--pretrain", type=int, default=100, help="networks whose proxies pre-train")
    parser.add_argument("--width", type=float, default=0.25, help="fbnet width_mult")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.option = dict(_option(text) for text in args.option)
    logging.basicConfig(level=logging.WARNING)

    space = get_space("fbnet", width_mult=args.width)
    source: dict[str, Any] = {"name": args.dataset}
    if args.limit is not None:
        source["limit"] = args.limit
    dataset = load_dataset(source, seed=0)
    workdir = Path(tempfile.mkdtemp(prefix="nas-fbnetv3-bench-"))
    evaluator = TrainEvaluator(
        space,
        dataset,
        workdir=workdir,
        num_threads=args.threads,
        epochs=args.epochs,
        batch_size=64,
        latency_repeats=1,
        latency_warmup=0,
    )
    print(
        f"# options {args.option or 'default'}; fbnet width {args.width}, {args.dataset}: {len(dataset.y_train)} training images, "
        f"{args.trials} trials x {args.epochs} epochs, {args.initial} initial, {args.pretrain} pre-training networks"
    )
    print("| seed | arm | best val_accuracy | best trial's recipe |")
    print("|---|---|---|---|")
    results: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for arm, joint in ARMS.items():
            accuracy, recipe = search(space, evaluator, seed, joint, args, dataset.input_shape)
            results[arm].append(accuracy)
            shown = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in recipe.items()
            )
            print(f"| {seed} | {arm} | {accuracy:.2f} | {shown} |", flush=True)
    wins = sum(j > a for j, a in zip(results["joint"], results["arch-only"], strict=True))
    print()
    for arm, values in results.items():
        print(f"{arm}: mean best val_accuracy {statistics.mean(values):.2f} over {len(values)} seed(s)")
    print(f"joint search wins on {wins} of {args.seeds} seed(s); target: better mean and most seeds")


if __name__ == "__main__":
    main()
