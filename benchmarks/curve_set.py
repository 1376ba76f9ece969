"""Generate the real curve set the scheduler and extrapolation benchmarks replay.

Uniformly sampled NAS-Bench-201 cells (the ``random`` strategy: no choice by
us) trained with the ``train`` evaluator on the shared CIFAR-10 subset at a
reduced width, every epoch's validation accuracy stored, through ``nas
search`` itself: the study is resumable (run the same command again after an
interruption; finished trials are kept). Then the curves are exported from
the store to a CSV with a fixed, seeded held-out half:

    index,arch,epoch,val_accuracy,split     (index: the cell's NAS-Bench-201 index)

and a sidecar ``.json`` recording the command, config, date and split seed.
No scheduler runs, so every curve is complete.

    python benchmarks/curve_set.py                          # 100 cells x 30 epochs (hours on a CPU)
    python benchmarks/curve_set.py --cells 2 --epochs 2 --output /tmp/curves.csv   # a smoke test
    python benchmarks/curve_set.py --export-only             # re-export the stored study
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas  # noqa: E402
from nas.core import TrialState  # noqa: E402
from nas.core.errors import ConfigError  # noqa: E402
from nas.data.tables import Table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
LATENCY_CSV = Path(os.environ.get("NAS_DATA_DIR", "/work/shared/data")) / "nb201" / "nb201_latency_ms.csv"


def search_config(args: argparse.Namespace) -> dict:
    """The ``nas search`` config of the curve set (the study name encodes its size)."""
    return {
        "name": f"nb201-curves-{args.cells}x{args.epochs}" + (f"-limit{args.limit}" if args.limit else ""),
        "space": {"name": "nb201", "channels": args.channels, "cells": args.stack},
        "dataset": {"name": "cifar10", "val_fraction": 0.1, **({"limit": args.limit} if args.limit else {})},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "epochs": args.epochs, "batch_size": 128, "lr": 0.1},
        "objectives": {"val_accuracy": "max"},
        "budget": {"trials": args.cells, "concurrent": args.concurrent},
        "seed": args.seed,
    }


def export(storage: str, study_name: str, output: Path, split_seed: int) -> int:
    """Write the study's complete curves to ``output``; returns how many curves."""
    study = nas.load_study(study_name, storage=storage)
    space = study.space
    latency = Table.load(LATENCY_CSV, space)
    rows: list[tuple[int, str, list[tuple[int, float]]]] = []
    for trial in study.trials(states=TrialState.COMPLETE):
        curve = study.metrics(trial, ["val_accuracy"]).get("val_accuracy", [])
        rows.append((latency.row(trial.arch), space.format(trial.arch), curve))
    if not rows:
        raise ConfigError(f"study {study_name!r} in {storage} has no COMPLETE trial to export")
    indices = sorted({index for index, _, _ in rows})
    order = np.random.default_rng(split_seed).permutation(indices)
    tune = set(order[: len(order) // 2].tolist())
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["index", "arch", "epoch", "val_accuracy", "split"])
        for index, text, curve in sorted(rows):
            for epoch, value in curve:
                writer.writerow(
                    [index, text, int(epoch), f"{value:.4f}", "tune" if index in tune else "test"]
                )
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=100, help="how many random nb201 cells")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--channels", type=int, default=8, help="reduced width (NAS-Bench-201: 16)")
    parser.add_argument("--stack", type=int, default=1, help="cells per stage (NAS-Bench-201: 5)")
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on at most this many subset images (stratified; a CPU budget)",
    )
    parser.add_argument("--split-seed", type=int, default=17)
    parser.add_argument("--storage", default=f"sqlite:///{DATA / 'nb201_curves.db'}")
    parser.add_argument("--output", type=Path, default=DATA / "nb201_curves.csv")
    parser.add_argument("--export-only", action="store_true")
    args = parser.parse_args()

    config = search_config(args)
    if not args.export_only:
        path = args.output.with_suffix(".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        command = [sys.executable, "-m", "nas.cli", "search", str(path), "--storage", args.storage, "--quiet"]
        print("running:", shlex.join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    count = export(args.storage, config["name"], args.output, args.split_seed)
    sidecar = {
        "command": shlex.join(["python", "benchmarks/curve_set.py", *sys.argv[1:]]),
        "date": str(date.today()),
        "config": config,
        "curves": count,
        "split_seed": args.split_seed,
        "split": "seeded permutation of the sorted nb201 indices; first half 'tune', the rest 'test' (held out)",
    }
    args.output.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {count} curves to {args.output} (+ {args.output.with_suffix('.json').name})")


if __name__ == "__main__":
    main()
