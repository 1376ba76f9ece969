"""DARTS vs PC-DARTS supernet in the DARTS space: step time and peak memory at batch 32, 32x32 input.

For each method: the estimated activation memory of a training step (the
guard rail's estimate), the measured peak of a real step on CPU
(:func:`nas.oneshot.memory.measure_step_memory`), and the median wall time
of a full step (architecture step + weight step) after one warm-up step.
The target: PC-DARTS with K=4 uses at most about a third of DARTS'
activation memory.

    python benchmarks/oneshot_memory.py                  # DARTS' search network: C=16, 8 cells
    python benchmarks/oneshot_memory.py --channels 8 --cells 5 --steps 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import Dataset  # noqa: E402
from nas.oneshot import create_method, estimate_memory  # noqa: E402
from nas.oneshot.memory import MIB, measure_step_memory  # noqa: E402
from search_spaces import get_space  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--partial-channels", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    batch = args.batch_size
    n = 2 * batch + 16
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)
    y = (np.arange(n) % 10).astype(np.int64)
    data = Dataset("random", x, y, x[:16].copy(), y[:16].copy(), 10)
    space = get_space("darts", channels=args.channels, cells=args.cells)
    print(
        f"darts space supernet C={args.channels}, {args.cells} cells, batch {batch}, input 3x32x32, "
        f"{args.threads} threads, CPU"
    )
    header = f"{'method':18} {'params_M':>8} {'est_act_MiB':>11} {'est_step_MiB':>12} {'peak_MiB':>9} {'step_s':>7} {'act/darts':>9}"
    print(header)
    print("-" * len(header))
    baseline = None
    for name, options in (("darts", {}), ("pc_darts", {"partial_channels": args.partial_channels})):
        method = create_method(name, space, data, {"batch_size": batch, "check_memory": False, **options})
        estimate = estimate_memory(method)
        peak = measure_step_memory(method)  # also the warm-up step
        d = method.data
        times = []
        for _ in range(args.steps):
            started = time.perf_counter()
            method.train_step(d.x_weights[:batch], d.y_weights[:batch], d.x_arch[:batch], d.y_arch[:batch])
            times.append(time.perf_counter() - started)
        params = sum(p.numel() for p in method.supernet.parameters()) / 1e6
        baseline = baseline or estimate.activations
        label = name if name == "darts" else f"{name} K={args.partial_channels}"
        print(
            f"{label:18} {params:>8.2f} {estimate.activations / MIB:>11.0f} {estimate.step / MIB:>12.0f} "
            f"{peak / MIB:>9.0f} {statistics.median(times):>7.2f} {estimate.activations / baseline:>9.2f}",
            flush=True,
        )
        del method


if __name__ == "__main__":
    main()
