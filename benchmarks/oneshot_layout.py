"""NCHW vs NHWC (``channels_last``) supernet steps, per space and method, alternated in one process.

How the default of the one-shot ``channels_last`` option was chosen. Both
layouts train the same supernet (same seed, same batch) side by side, one
step each in turn, so a loaded machine slows both alike; the table reports
the median CPU time of a step (all threads) and its wall time, after one
warm-up step each. Peak memory and the comparison with the plain path are
``benchmarks/oneshot_memory.py``'s (one variant per process).

    python benchmarks/oneshot_layout.py                       # darts, pc_darts, nb201, fbnet, hybrid
    python benchmarks/oneshot_layout.py --runs darts:darts --steps 5 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.oneshot_memory import first_step, random_images  # noqa: E402
from nas.oneshot import create_method  # noqa: E402
from search_spaces import get_space  # noqa: E402

#: Space -> its (reduced) options for this comparison.
SPACES: dict[str, dict[str, Any]] = {
    "darts": {"channels": 16, "cells": 3},
    "nb201": {"channels": 16, "cells": 1},
    "fbnet": {"width_mult": 0.5},
    "hybrid": {"blocks": 3, "downsamples": 1, "base_width": 16},
}
#: Method -> its extra options.
METHODS: dict[str, dict[str, Any]] = {"darts": {}, "pc_darts": {"partial_channels": 4}, "spos": {}}
DEFAULT_RUNS = "darts:darts,darts:pc_darts,nb201:darts,fbnet:spos,hybrid:spos"


def time_layouts(space: str, method: str, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Layout -> (median CPU seconds, median wall seconds) of a training step."""
    batch = args.batch_size
    data = random_images(batch)
    runs = {}
    for layout, on in (("nchw", False), ("channels_last", True)):
        options = {"batch_size": batch, "check_memory": False, "checkpoint": False, "channels_last": on}
        searcher = create_method(
            method, get_space(space, **SPACES[space]), data, {**options, **METHODS[method]}
        )
        step = first_step(searcher)
        searcher.train_step(*step)  # warm-up
        runs[layout] = (searcher, step, [], [])
    for _ in range(args.steps):
        for searcher, step, cpu, wall in runs.values():
            started_cpu, started = time.process_time(), time.perf_counter()
            searcher.train_step(*step)
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started)
    return {k: (statistics.median(c), statistics.median(w)) for k, (_, _, c, w) in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated space:method pairs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per layout (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"batch {args.batch_size}, input 3x32x32, {args.threads} thread(s), CPU; layouts alternated per step"
    )
    header = f"{'space:method':16} {'nchw_cpu_s':>10} {'nhwc_cpu_s':>10} {'cpu_ratio':>9} {'wall_ratio':>10}"
    print(header)
    print("-" * len(header))
    for run in args.runs.split(","):
        space, method = run.split(":")
        times = time_layouts(space, method, args)
        (nchw_cpu, nchw_wall), (nhwc_cpu, nhwc_wall) = times["nchw"], times["channels_last"]
        print(
            f"{run:16} {nchw_cpu:>10.3f} {nhwc_cpu:>10.3f} {nhwc_cpu / nchw_cpu:>9.2f} "
            f"{nhwc_wall / nchw_wall:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
