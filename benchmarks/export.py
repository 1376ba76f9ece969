"""Export benchmark: batch-1 CPU latency of each space's exported model, PyTorch eager vs ONNX Runtime.

Usage::

    python benchmarks/export.py                      # default space options at 3x32x32
    python benchmarks/export.py --quickstart         # the examples/quickstart_*.yaml settings (1x8x8 digits)
    python benchmarks/export.py --spaces nb201,hybrid --repeats 100 --samples 3

For each space, ``--samples`` architectures are drawn (seeded), built with
random weights (latency does not depend on the weight values), written as
TorchScript and ONNX with the same functions ``nas export`` uses, checked for
parity, and timed exactly as the model card times them: one thread, median
of ``--repeats`` batch-1 forwards after a warm-up. The table is printed as
Markdown so it can be pasted into docs.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import torch

import nas
from nas.export.formats import (
    load_torchscript,
    onnx_runner,
    onnx_session,
    torch_runner,
    write_onnx,
    write_torchscript,
)
from nas.export.latency import LATENCY_THREADS, cpu_name, measure_latency
from nas.export.parity import check_parity, parity_inputs
from nas.settings import load_config
from search_spaces import get_space, list_spaces
from search_spaces.base import count_flops, count_params

REPO = Path(__file__).resolve().parents[1]
#: The quickstart example of each space (options and dataset input shape: digits are 1x8x8).
QUICKSTART = {
    "nb201": "quickstart_nb201.yaml",
    "darts": "quickstart_darts.yaml",
    "fbnet": "quickstart_fbnet.yaml",
    "hybrid": "quickstart_hybrid.yaml",
}


def setting(space: str, quickstart: bool) -> tuple[dict[str, Any], tuple[int, int, int], int]:
    """Space options, input shape and classes: defaults at CIFAR size, or the quickstart example's."""
    if not quickstart:
        return {}, (3, 32, 32), 10
    config = load_config(REPO / "examples" / QUICKSTART[space])
    return dict(config.space.options), (1, 8, 8), 10


def bench_one(
    space_name: str, seed: int, quickstart: bool, repeats: int, warmup: int, folder: Path
) -> dict[str, Any]:
    options, shape, classes = setting(space_name, quickstart)
    space = get_space(space_name, **options)
    arch = space.sample(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build(arch, num_classes=classes, input_shape=shape).eval()
    example = torch.from_numpy(parity_inputs(shape, batch_sizes=(1,), seed=1)[0])
    ts_path, onnx_path = folder / f"{space_name}-{seed}.ts", folder / f"{space_name}-{seed}.onnx"
    ts_info = write_torchscript(model, example, ts_path)
    write_onnx(model, example, onnx_path, what=f"{space_name} sample {seed}")
    runners = {
        "pytorch": torch_runner(model),
        "torchscript": torch_runner(load_torchscript(ts_path)),
        "onnxruntime": onnx_runner(onnx_session(onnx_path, threads=LATENCY_THREADS)),
    }
    inputs = parity_inputs(shape)
    # Reported, not enforced: random weights give much larger logits than trained ones.
    parity = check_parity(
        runners["pytorch"], {k: v for k, v in runners.items() if k != "pytorch"}, inputs, tolerance=math.inf
    )
    scale = max(float(abs(runners["pytorch"](x)).max()) for x in inputs)
    latency = measure_latency(runners, shape, repeats=repeats, warmup=warmup)["ms"]
    return {
        "space": space_name,
        "options": options,
        "shape": shape,
        "arch": space.format(arch),
        "params": count_params(model),
        "flops": count_flops(model, shape),
        "ts_method": ts_info["method"],
        "parity": max(parity.values()),
        "logit_scale": scale,
        **{f"{engine}_ms": ms for engine, ms in latency.items()},
    }


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| space | options | input | params | MFLOPs | PyTorch eager ms | TorchScript ms | ONNX Runtime ms | eager / ORT | max abs diff (max abs logit) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        options = ", ".join(f"{k}={v}" for k, v in row["options"].items()) or "defaults"
        lines.append(
            f"| {row['space']} | {options} | {'x'.join(map(str, row['shape']))} | {row['params']:,} | "
            f"{row['flops'] / 1e6:.1f} | {row['pytorch_ms']:.3f} | {row['torchscript_ms']:.3f} "
            f"({row['ts_method']}) | {row['onnxruntime_ms']:.3f} | "
            f"{row['pytorch_ms'] / row['onnxruntime_ms']:.1f}x | {row['parity']:.1e} ({row['logit_scale']:.3g}) |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spaces", default=",".join(list_spaces()), help="comma-separated space names")
    parser.add_argument("--samples", type=int, default=1, help="architectures per space (seeds 0..N-1)")
    parser.add_argument("--repeats", type=int, default=50, help="timed batch-1 forwards per engine")
    parser.add_argument("--warmup", type=int, default=5, help="untimed forwards before timing")
    parser.add_argument("--quickstart", action="store_true", help="use the quickstart examples' settings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nas-bench-export-") as tmp:
        for space in spaces:
            for seed in range(args.samples):
                started = time.perf_counter()
                rows.append(bench_one(space, seed, args.quickstart, args.repeats, args.warmup, Path(tmp)))
                print(f"{space} sample {seed}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(
        f"nas {nas.__version__}, torch {torch.__version__}, {date.today().isoformat()}, {cpu_name()} "
        f"({platform.machine()}); {LATENCY_THREADS} thread, median of {args.repeats} batch-1 forwards "
        f"after {args.warmup} warm-up runs; random weights"
    )
    print()
    print(markdown(rows))
    print()
    for row in rows:
        print(f"- {row['space']}: `{row['arch']}`")


if __name__ == "__main__":
    main()
