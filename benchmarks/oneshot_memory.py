"""DARTS supernet step in the DARTS space: time and peak memory of the plain path vs activation checkpointing.

Issue #20's target: a first-order DARTS step (batch 32, C=16, 8 cells, 32x32
input, 2 threads) at most 0.5x the time of the plain path and at most half
its peak resident memory, with alpha and weights after 3 steps equal within
1e-5 (that part is ``tests/test_oneshot_checkpoint.py`` and
``tests/test_oneshot_layout.py``). Checkpointing (``checkpoint: true``;
``auto`` turns it on only when the memory guard finds a step would not fit)
cuts the memory and costs time; ``channels_last`` wins time back. The
headline figures need an otherwise idle machine.

Every variant runs in a fresh subprocess, so each peak resident size
(``ru_maxrss``: interpreter, supernet, data and the step) is its own:

* ``plain`` -- the path before issue #20: every op of every edge, no
  checkpointing, parameter-free ops per edge (``checkpoint: false`` and
  shared ops off);
* ``shared`` -- ``checkpoint: false``: zero ops skipped and pooling/identity
  computed once per cell state (exact);
* ``checkpoint`` -- ``checkpoint: true``: plus each search cell's mixed ops
  recomputed in the backward pass;
* ``channels_last`` -- ``channels_last: true`` (the default), no recomputation:
  ``shared`` with the supernet and its batches in the NHWC layout (the same
  math; faster convolution and pooling kernels);
* ``channels_last+checkpoint`` -- both;
* ``pc_darts`` -- PC-DARTS with K partial channels (shared ops, NHWC, no recomputation), for reference.

The rows before ``channels_last`` keep the NCHW layout, as before the option.

Columns: the guard rail's estimated step memory, the measured peak RSS, the
median wall time of a full step (architecture + weight step) after one
warm-up step, and both relative to ``plain``.

    python benchmarks/oneshot_memory.py                  # DARTS' search network: C=16, 8 cells
    python benchmarks/oneshot_memory.py --channels 8 --cells 5 --steps 2 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import Dataset  # noqa: E402
from nas.oneshot import create_method, estimate_memory  # noqa: E402
from nas.oneshot.memory import MIB  # noqa: E402
from nas.oneshot.method import OneShotMethod  # noqa: E402
from nas.supernet import set_checkpointing  # noqa: E402
from search_spaces import get_space  # noqa: E402

#: Variant -> (method, options, parameter-free ops shared per state).
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "plain": ("darts", {"checkpoint": False, "channels_last": False}, False),
    "shared": ("darts", {"checkpoint": False, "channels_last": False}, True),
    "checkpoint": ("darts", {"checkpoint": True, "channels_last": False}, True),
    "channels_last": ("darts", {"checkpoint": False, "channels_last": True}, True),
    "channels_last+checkpoint": ("darts", {"checkpoint": True, "channels_last": True}, True),
    "pc_darts": ("pc_darts", {"checkpoint": False, "channels_last": True}, True),
}


def random_images(batch: int) -> Dataset:
    """Random 3x32x32 images in 10 classes: two batches per split of the search data, 16 validation images."""
    n = 2 * batch + 16
    x = np.random.default_rng(0).standard_normal((n, 3, 32, 32)).astype(np.float32)
    y = (np.arange(n) % 10).astype(np.int64)
    return Dataset("random", x, y, x[:16].copy(), y[:16].copy(), 10)


def first_step(method: OneShotMethod) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first weight and architecture batches, converted as the loop converts them (device, layout)."""
    d, batch = method.data, method.settings.batch_size
    return (
        method.images(d.x_weights[:batch]),
        d.y_weights[:batch],
        method.images(d.x_arch[:batch]),
        d.y_arch[:batch],
    )


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """One variant in this (fresh) process: estimate, warm-up, timed steps, peak RSS."""
    torch.set_num_threads(args.threads)
    batch = args.batch_size
    data = random_images(batch)
    space = get_space("darts", channels=args.channels, cells=args.cells)
    name, options, share = VARIANTS[args.variant]
    if name == "pc_darts":
        options = {**options, "partial_channels": args.partial_channels}
    method = create_method(name, space, data, {"batch_size": batch, "check_memory": False, **options})
    set_checkpointing(method.supernet, bool(options.get("checkpoint", True)), share_ops=share)
    estimate = estimate_memory(method)
    step = first_step(method)
    method.train_step(*step)  # warm-up
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        method.train_step(*step)
        times.append(time.perf_counter() - started)
    return {
        "variant": args.variant,
        "params_m": sum(p.numel() for p in method.supernet.parameters()) / 1e6,
        "estimate_mib": estimate.total / MIB,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_s": statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--partial-channels", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}"
    )
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)  # one, in a subprocess
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return

    print(
        f"darts space supernet C={args.channels}, {args.cells} cells, batch {args.batch_size}, input 3x32x32, "
        f"{args.threads} threads, CPU; each variant in a fresh process"
    )
    header = (
        f"{'variant':24} {'params_M':>8} {'est_step_MiB':>12} {'peak_RSS_MiB':>12} {'step_s':>7} "
        f"{'time/plain':>10} {'RSS/plain':>9}"
    )
    print(header)
    print("-" * len(header))
    forwarded = [
        f"--{key.replace('_', '-')}={getattr(args, key)}"
        for key in ("channels", "cells", "batch_size", "partial_channels", "steps", "threads")
    ]
    baseline: dict[str, Any] | None = None
    for variant in args.variants.split(","):
        out = subprocess.run(
            [sys.executable, __file__, *forwarded, "--variant", variant],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        baseline = baseline or row
        print(
            f"{variant:24} {row['params_m']:>8.2f} {row['estimate_mib']:>12.0f} {row['peak_rss_mib']:>12.0f} "
            f"{row['step_s']:>7.2f} {row['step_s'] / baseline['step_s']:>10.2f} "
            f"{row['peak_rss_mib'] / baseline['peak_rss_mib']:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
