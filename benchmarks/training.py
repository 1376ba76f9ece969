"""Throughput of the ``train`` evaluator against a bare PyTorch loop (not a test).

For each space and input size, one architecture (sampled with a fixed seed)
is trained twice per repeat, alternately, in the same process:

* **bare**: the loop anyone would write — shuffle, forward, cross-entropy,
  backward, clip, SGD step, and one validation pass per epoch — with the same
  optimiser settings, batch size, data and thread count;
* **evaluator**: :meth:`TrainEvaluator.measure` end to end (model build,
  seeding, the per-step cosine schedule, metrics, validation, the latency
  measurement and the weight file).

Throughput is training images per second of wall time; the ratio
evaluator / bare is the overhead our loop adds (target >= 0.95). Alternating
the two and taking the median ratio keeps a shared machine's drift out of the
figure. ``--variant`` times the evaluator with ``channels_last`` or
``compile`` on as well (its ratio against the same bare loop);
``--variant stream`` times it streaming the same images from PNG files
(written to a temporary directory, decoded by ``--loader-workers`` data
workers) against the bare loop on the decoded arrays (target >= 0.90);
``--variant shards`` streams Parquet shards written from those files
(``nas shards``) through the same data workers.

``--files N`` is the memory mode: it writes N 64x64 PNGs (10 classes) to a
temporary directory (never the repository), then loads them and trains one
epoch in a fresh process per path, in memory and streaming, and prints each
process's peak resident memory (the trial process, and the largest data
worker when streaming). Validation runs at the training batch size there, so
activations of a large evaluation batch do not hide the data's share.

    python benchmarks/training.py                                   # nb201 and fbnet, 32x32 and 64x64
    python benchmarks/training.py --spaces nb201 --sizes 32 --variant compile --variant channels_last
    python benchmarks/training.py --spaces nb201 --sizes 32,64 --variant stream
    python benchmarks/training.py --spaces nb201 --sizes 32 --variant shards
    python benchmarks/training.py --files 50000                     # the memory target (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core.evaluator import EvalRequest  # noqa: E402
from nas.data import Dataset, load_dataset  # noqa: E402
from nas.evaluators.train import TrainEvaluator  # noqa: E402
from search_spaces import get_space  # noqa: E402

#: Small widths: this is a 2-core CPU; the overhead ratio, not the absolute speed, is the figure.
SPACE_OPTIONS: dict[str, dict[str, Any]] = {
    "nb201": {"channels": 16, "cells": 1},
    "fbnet": {"width_mult": 0.25},
    "hybrid": {},
    "darts": {"channels": 8, "cells": 5},
}
RECIPE = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "grad_clip": 5.0}


def make_data(samples: int, size: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 10, samples).astype(np.int64)
    n_val = max(64, samples // 4)
    xv = rng.standard_normal((n_val, 3, size, size)).astype(np.float32)
    yv = rng.integers(0, 10, n_val).astype(np.int64)
    return Dataset("random", x, y, xv, yv, 10)


def bare_loop(model: nn.Module, data: Dataset, epochs: int, batch_size: int, seed: int) -> float:
    """Train ``model`` the plain way; return the wall seconds."""
    start = time.perf_counter()
    x_all, y_all = torch.tensor(data.x_train), torch.tensor(data.y_train)
    xv, yv = torch.tensor(data.x_val), torch.tensor(data.y_val)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=RECIPE["lr"],
        momentum=RECIPE["momentum"],
        nesterov=RECIPE["nesterov"],
        weight_decay=RECIPE["weight_decay"],
    )
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(y_all), generator=generator).split(batch_size):
            if len(index) < 2:
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x_all[index]), y_all[index])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), RECIPE["grad_clip"])
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for chunk in range(0, len(yv), 512):
                model(xv[chunk : chunk + 512]).argmax(1)
    return time.perf_counter() - start


def evaluator_run(
    space: Any, arch: Any, data: Dataset, args: argparse.Namespace, extra: dict[str, Any]
) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        evaluator = TrainEvaluator(
            space,
            data,
            settings={"epochs": args.epochs, "batch_size": args.batch_size, **RECIPE, **extra},
            num_threads=args.threads,
            workdir=workdir,
        )
        start = time.perf_counter()
        evaluator.measure(EvalRequest(arch, seed=0))
        return time.perf_counter() - start


def write_pngs(root: Path, count: int, size: int, classes: int = 10, seed: int = 0) -> Path:
    """``count`` random size x size RGB PNGs in ``classes`` class folders under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"c{i % classes}" / f"{i:06d}.png", compress_level=1)
    return root


def folder_config(root: Path, size: int, streaming: bool, workers: int) -> dict[str, Any]:
    return {
        "name": "image_folder",
        "path": str(root),
        "image_size": size,
        "streaming": streaming,
        "val_fraction": 0.2,
        **({"loader_workers": workers} if streaming else {}),
    }


#: Variants that stream the images instead of holding them in memory.
STREAM_VARIANTS = frozenset({"stream", "shards"})


def streamed_data(variant: str, root: Path, size: int, workers: int) -> Any:
    """The PNG folder ``root`` streamed as ``variant`` says (``stream`` or ``shards``)."""
    config = folder_config(root, size, True, workers)
    if variant == "stream":
        return load_dataset(config, seed=0)
    from nas.data.shards import write_parquet_shards

    shards = root.with_name(root.name + "-shards")
    write_parquet_shards({**config, "streaming": None, "loader_workers": None}, shards)
    parquet = {"name": "parquet", "path": str(shards), "val_fraction": 0.2, "loader_workers": workers}
    return load_dataset({**parquet, "streaming": True}, seed=0)


def peak_rss_child(mode: str, root: str, args: argparse.Namespace) -> None:
    """In a fresh process: load the folder (``memory`` or ``stream``), train one epoch, print peak RSS."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = load_dataset(folder_config(Path(root), 64, mode == "stream", args.loader_workers), seed=0)
    space = get_space("nb201", **SPACE_OPTIONS["nb201"])
    arch = space.sample(np.random.default_rng(1))
    with tempfile.TemporaryDirectory() as workdir:
        settings = {"epochs": 1, "batch_size": args.batch_size, "eval_batch_size": args.batch_size, **RECIPE}
        TrainEvaluator(space, data, settings=settings, num_threads=args.threads, workdir=workdir).measure(
            EvalRequest(arch, seed=0)
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rss_mb": own, "worker_rss_mb": workers, "seconds": time.perf_counter() - start}))


def memory_mode(args: argparse.Namespace) -> None:
    """Write ``--files`` PNGs, then peak RSS of one training epoch per path (each in a fresh process)."""
    with tempfile.TemporaryDirectory(prefix="nas-bench-files-") as tmp:
        start = time.perf_counter()
        root = write_pngs(Path(tmp), args.files, 64)
        print(
            f"{args.files} 64x64 PNGs written to {tmp} in {time.perf_counter() - start:.0f}s; nb201 "
            f"{SPACE_OPTIONS['nb201']}, 1 epoch, batch {args.batch_size}, {args.threads} thread(s), "
            f"{args.loader_workers} data worker(s) when streaming"
        )
        header = f"{'path':10} {'process peak RSS MB':>20} {'data worker peak MB':>20} {'seconds':>8}"
        print(header)
        print("-" * len(header))
        for mode in ("memory", "stream"):
            command = [sys.executable, __file__, "--rss-child", mode, str(root)]
            command += ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
            command += ["--loader-workers", str(args.loader_workers)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            worker = f"{row['worker_rss_mb']:.0f}" if mode == "stream" else "-"
            print(f"{mode:10} {row['rss_mb']:>20.0f} {worker:>20} {row['seconds']:>8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spaces", default="nb201,fbnet")
    parser.add_argument("--sizes", default="32,64", help="input side lengths")
    parser.add_argument("--samples", type=int, default=1024, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating bare/evaluator pairs")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        choices=["channels_last", "compile", *sorted(STREAM_VARIANTS)],
        help="also time the evaluator with this option on (stream: reading PNG files in data workers; "
        "shards: Parquet shards of them in data workers)",
    )
    parser.add_argument("--loader-workers", type=int, default=1, help="data workers when streaming")
    parser.add_argument("--files", type=int, default=0, help="memory mode: write this many 64x64 PNGs")
    parser.add_argument("--rss-child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return peak_rss_child(args.rss_child[0], args.rss_child[1], args)
    if args.files:
        return memory_mode(args)
    torch.set_num_threads(args.threads)
    variants: dict[str, dict[str, Any]] = {"default": {}}
    variants.update({name: {name: True} for name in args.variant})
    files = (
        tempfile.TemporaryDirectory(prefix="nas-bench-files-") if STREAM_VARIANTS & set(variants) else None
    )
    print(
        f"train evaluator vs bare loop: {args.samples} images x {args.epochs} epochs, batch {args.batch_size}, "
        f"{args.threads} thread(s), {args.repeats} alternating repeats, torch {torch.__version__}, CPU"
    )
    header = f"{'space':7} {'size':>5} {'variant':14} {'bare img/s':>11} {'eval img/s':>11} {'ratio':>6} {'min..max':>12}"
    print(header)
    print("-" * len(header))
    for space_name in args.spaces.split(","):
        space = get_space(space_name, **SPACE_OPTIONS.get(space_name, {}))
        arch = space.sample(np.random.default_rng(1))
        for size in (int(s) for s in args.sizes.split(",")):
            data = make_data(args.samples, size)
            for variant, extra in variants.items():
                bare_data, eval_data = data, data
                if variant in STREAM_VARIANTS:  # the same PNG files: decoded arrays (bare) against streaming
                    root = write_pngs(Path(files.name) / f"{space_name}-{size}-{variant}", args.samples, size)
                    bare_data = load_dataset(folder_config(root, size, False, 0), seed=0)
                    eval_data = streamed_data(variant, root, size, args.loader_workers)
                    extra = {}
                images = len(bare_data.y_train) * args.epochs
                bare_s, eval_s, ratios = [], [], []
                for repeat in range(args.repeats):
                    torch.manual_seed(0)
                    model = space.build(arch, num_classes=10, input_shape=(3, size, size))
                    b = bare_loop(model, bare_data, args.epochs, args.batch_size, seed=repeat)
                    e = evaluator_run(space, arch, eval_data, args, extra)
                    bare_s.append(b)
                    eval_s.append(e)
                    ratios.append(b / e)
                print(
                    f"{space_name:7} {size:>5} {variant:14} {images / statistics.median(bare_s):>11.1f} "
                    f"{images / statistics.median(eval_s):>11.1f} {statistics.median(ratios):>6.3f} "
                    f"{min(ratios):>5.2f}..{max(ratios):<5.2f}",
                    flush=True,
                )
    if files is not None:
        files.cleanup()


if __name__ == "__main__":
    main()
