"""A multi-worker trial against a single-worker one: epoch time and learning curves (not a test).

Runs ``nas search`` twice (or ``--repeats`` times each, alternating) on a
local Ray with one trial: once with ``resources: {cpu: C}`` (the ordinary
Tune trial) and once with ``resources: {workers: N, cpu: C}`` (the trial's
training data-parallel on N Ray Train workers, DDP over gloo), with the same
space, dataset, seed, global batch and trial seed, so both train the same
architecture from the same initialisation on the same batches. It prints the
median epoch time (epochs after the first; the first includes start-up) of
each, their ratio (issue #20 target: <= 0.65 with 2 workers on an idle
machine), and both validation-accuracy and training-loss curves (target:
equal within noise).

    python benchmarks/data_parallel.py                                  # digits, tiny nb201, 2 epochs
    python benchmarks/data_parallel.py --dataset cifar10 --limit 4000 --channels 16 --epochs 3

The figure depends on how busy the machine is: on a shared machine the
workers compete with other work for the same cores (say so with the figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas  # noqa: E402
from nas.runner import run_search  # noqa: E402
from nas.runner.cluster import connect, shutdown  # noqa: E402


def config(args: argparse.Namespace, workers: int, name: str) -> dict[str, Any]:
    dataset: dict[str, Any] = {"name": args.dataset}
    if args.limit:
        dataset["limit"] = args.limit
    return {
        "name": name,
        "space": {"name": "nb201", "channels": args.channels, "cells": args.cells},
        "dataset": dataset,
        "strategy": {"name": "random"},
        "evaluator": {
            "name": "train",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": 0.05,
            "latency_repeats": 1,
            "latency_warmup": 0,
        },
        "budget": {"trials": 1, "concurrent": 1},
        "resources": {"cpu": args.cpu, **({"workers": workers} if workers > 1 else {})},
        "seed": args.seed,
    }


def run(args: argparse.Namespace, workers: int, name: str, url: str) -> dict[str, Any]:
    """One search of one trial; its architecture, epoch times and curves from the store."""
    run_search(config(args, workers, name), storage=url, show_progress=False)
    study = nas.load_study(name, storage=url)
    (trial,) = study.trials()
    if trial.error:
        raise SystemExit(f"{name}: the trial failed:\n{trial.error}")
    curve = trial.user_attrs["learning_curve"]  # the evaluator's per-epoch history
    return {
        "arch": trial.arch.key,
        "workers": trial.user_attrs.get("workers", 1),
        **{key: [epoch[key] for epoch in curve] for key in ("epoch_time_s", "val_accuracy", "train_loss")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpu", type=float, default=1.0, help="CPUs per worker (and of the 1-worker trial)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--limit", type=int, default=None, help="training images (stratified subset)")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--batch-size", type=int, default=64, help="the global batch (split over the workers)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, int(args.cpu))))
    connect(None, num_cpus=max(1, int(args.workers * args.cpu)))
    runs: dict[int, list[dict[str, Any]]] = {1: [], args.workers: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                for workers in (1, args.workers):  # alternating: a shared machine's drift hits both
                    # A store of its own: resources are not part of a study's comparability, so a
                    # shared store would reuse the first run's result instead of training again.
                    name = f"dp-w{workers}-r{repeat}"
                    runs[workers].append(run(args, workers, name, f"sqlite:///{Path(tmp) / name}.db"))
    finally:
        shutdown()

    archs = {r["arch"] for rs in runs.values() for r in rs}
    assert len(archs) == 1, f"the runs trained different architectures: {archs}"

    def epoch_time(results: list[dict[str, Any]]) -> float:
        times = [t for r in results for t in (r["epoch_time_s"][1:] or r["epoch_time_s"])]
        return statistics.median(times)

    single, multi = epoch_time(runs[1]), epoch_time(runs[args.workers])
    print(
        f"\ndata-parallel trial vs single-worker trial: nb201 C={args.channels} cells={args.cells} on "
        f"{args.dataset}{f' (limit {args.limit})' if args.limit else ''}, global batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.cpu:g} CPU per worker, repeats {args.repeats}, arch {archs.pop()[:12]}"
    )
    print(
        f"{'workers':>7} | {'epoch s (median)':>16} | {'ratio':>5} | "
        "val_accuracy per epoch | train_loss per epoch"
    )
    for workers, seconds in ((1, single), (args.workers, multi)):
        for result in runs[workers]:
            acc = " ".join(f"{v:5.1f}" for v in result["val_accuracy"])
            loss = " ".join(f"{v:.3f}" for v in result["train_loss"])
            print(f"{workers:>7} | {seconds:16.3f} | {seconds / single:5.2f} | {acc:>22} | {loss}")
    print(
        f"\nepoch time {args.workers} workers / 1 worker: {multi / single:.2f} "
        "(target <= 0.65 on an idle machine)"
    )


if __name__ == "__main__":
    main()
