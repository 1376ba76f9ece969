"""Latency predictors per device: additive lookup table vs robust table vs learned model.

Trains on ``--train`` architectures drawn at random (seeded) from the HELP
latency table of a space (FBNet: 5,000 architectures, NAS-Bench-201: 15,625
cells) and prints the Spearman rho on all the others, mean ± std over seeds:

* ``lut``: least-squares per-layer lookup table (FBNet-style additive model);
* ``lut_huber``: the same table fitted with a Huber loss (outlier-robust);
* ``learned``: ``latency_learned`` (Huber table + boosted trees on the residual);
* ``ceiling``: not a predictor but a diagnostic: the Huber table fitted on
  *every* architecture, test set included, scored on the same test set. What
  an architecture-additive model cannot reach even with all the data; on
  FBNet ``gold_6240`` and ``samsung_s7`` it sits below the issue's targets,
  because the residuals are measurement noise (they drift with the table's
  row order, not with any architecture feature; see docs/predictors.md).

Targets (issue 4): with 1,000 FBNet training architectures, Spearman >= 0.98
on ``gold_6240`` and >= 0.80 on ``samsung_s7``; the table is exact on
``pixel3``, ``raspi4``, ``eyeriss``, ``fpga``.

    python benchmarks/latency.py                      # FBNet, the six devices of the targets
    python benchmarks/latency.py --devices all --seeds 3
    python benchmarks/latency.py --space nb201 --train 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data.paths import FBNET_LATENCY, NB201_LATENCY, data_path  # noqa: E402
from nas.data.tables import Table  # noqa: E402
from predictors.evaluation import split_indices  # noqa: E402
from predictors.latency import LatencyLUT, LearnedLatency  # noqa: E402
from predictors.metrics import spearman  # noqa: E402
from search_spaces import get_space  # noqa: E402

TARGET_DEVICES = ("gold_6240", "samsung_s7", "pixel3", "raspi4", "eyeriss", "fpga")
TABLES = {"fbnet": FBNET_LATENCY, "nb201": NB201_LATENCY}
MODELS = {
    "lut": lambda space, seed: LatencyLUT(space, seed),
    "lut_huber": lambda space, seed: LatencyLUT(space, seed, loss="huber"),
    "learned": lambda space, seed: LearnedLatency(space, seed),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", choices=sorted(TABLES), default="fbnet")
    parser.add_argument("--devices", default=",".join(TARGET_DEVICES), help="comma list or 'all'")
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    space = get_space(args.space)
    table = Table.load(data_path(TABLES[args.space]), space)
    devices = table.columns if args.devices == "all" else [d.strip() for d in args.devices.split(",")]
    archs = table.archs
    print(
        f"# {args.space}: {len(archs)} architectures, train {args.train}, test the other "
        f"{len(archs) - args.train}, seeds 0..{args.seeds - 1}; Spearman rho mean ± std"
    )
    header = f"{'device':16s}" + "".join(f"{m:>18s}" for m in (*MODELS, "ceiling"))
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for device in devices:
        y = table.column(device)
        results: dict[str, list[float]] = {m: [] for m in (*MODELS, "ceiling")}
        everything = LatencyLUT(space, 0, loss="huber").fit(archs, y)
        for seed in range(args.seeds):
            train, test = split_indices(len(archs), args.train, seed)
            train_archs = [archs[i] for i in train]
            test_archs = [archs[i] for i in test]
            for name, make in MODELS.items():
                model = make(space, seed).fit(train_archs, y[train])
                results[name].append(spearman(model.predict(test_archs), y[test]))
            results["ceiling"].append(spearman(everything.predict(test_archs), y[test]))
        cells = "".join(f"{np.mean(v):>11.4f} ± {np.std(v):.3f}" for v in results.values())
        print(f"{device:16s}{cells}", flush=True)
    print(f"# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    with threadpool_limits(1):  # BLAS/OpenMP threads fight each other on a shared 2-core machine
        main()
