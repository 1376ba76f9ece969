"""Performance predictors on NAS-Bench-201 (12-epoch CIFAR-10 validation accuracy).

Each predictor is fitted on 50/100/500 cells drawn at random (seeded) and
judged on all the other cells: Kendall tau, Spearman rho, precision of the
predicted top 1%, mean ± std over seeds. Rows:

* ``gbt/onehot``: gradient-boosted trees on the one-hot encoding (the issue's
  reference point, Kendall tau about 0.41 at 100 cells);
* ``gbt``, ``rf``, ``mlp_ensemble``, ``gp``: on the BANANAS path encoding;
* ``gcn``: the Neural Predictor's graph convolutional network on the
  computational graph (no encoding; it takes no proxy features, so it has no
  ``+zc`` row);
* ``*+zc``: path and one-hot encodings plus zero-cost proxy features,
  learning rank-transformed accuracies (robust to the 10% of broken cells).
  The proxies (``--zc``, default ``jacob_cov,synflow``) are computed for
  every cell on a reduced network (``--zc-channels``/``--zc-cells``, default
  C=8, N=1: ~30x cheaper than the benchmark network) with one CIFAR-10 batch
  of ``--zc-batch`` images, averaged over ``--zc-seeds`` initialisations.

Target (issue 4): with 100 training cells the best predictor reaches Kendall
tau >= 0.60 on the remaining cells.

Scoring all 15,625 cells takes about 0.1 s per cell and seed on an idle core
(hours on a loaded two-core machine); pass
``--cache FILE`` (outside the repository) to make that resumable and
reruns free. ``--test-limit`` scores a random subset of the held-out cells.

    python benchmarks/predictor_ranking.py --cache /tmp/nas-zc-nb201.npz   # writes /tmp/nas-zc-nb201.seed0.npz
    python benchmarks/predictor_ranking.py --sizes 100 --test-limit 2000 --zc-seeds 3 --cache /tmp/nas-zc-nb201.npz
    python benchmarks/predictor_ranking.py --sizes 100 --seeds 5 --no-zc
    python benchmarks/predictor_ranking.py --sizes 100 --seeds 3 --test-limit 2000 --predictors gcn --no-zc
    python benchmarks/predictor_ranking.py --sizes 100 --seed-list 10,11 --test-limit 2000 --predictors wl_gp --no-zc
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core import PREDICTORS  # noqa: E402
from nas.core.errors import ConfigError  # noqa: E402
from nas.core.leakage import refuse_test_column  # noqa: E402
from nas.core.options import constructor_options  # noqa: E402
from nas.data.paths import NB201_TABLE, data_path  # noqa: E402
from nas.data.tables import Table  # noqa: E402
from predictors.evaluation import predictor_study, summarise  # noqa: E402
from predictors.metrics import kendall_tau  # noqa: E402
from predictors.proxy_table import dataset_proxy_features  # noqa: E402
from search_spaces import get_space  # noqa: E402

BASE = ("gbt", "rf", "mlp_ensemble", "gp", "gcn")


def zero_cost_features(archs, args) -> dict:
    """``{arch: feature vector}`` of the chosen proxies, scored on the reduced network."""
    proxies = [p.strip() for p in args.zc.split(",") if p.strip()]
    reduced = get_space("nb201", channels=args.zc_channels, cells=args.zc_cells)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            print(f"#   proxies: {done}/{total} cells ({time.perf_counter() - started:.0f} s)", flush=True)

    return dataset_proxy_features(
        reduced,
        archs,
        proxies,
        batch_size=args.zc_batch,
        seeds=range(args.zc_seeds),
        cache=args.cache,
        progress=progress,
    )


def _seed_list(parser: argparse.ArgumentParser, text: str) -> list[int]:
    """``"10,11"`` -> ``[10, 11]``; anything else is a usage error naming the value."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        parser.error(
            f"--seed-list {text!r} is not allowed; expected comma-separated integers >= 0, e.g. 10,11"
        )
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metric", default="cifar10-val")
    parser.add_argument("--sizes", default="50,100,500")
    parser.add_argument("--seeds", type=int, default=3, help="split seeds 0..SEEDS-1")
    parser.add_argument(
        "--seed-list",
        default=None,
        help="comma-separated split seeds instead of 0..SEEDS-1 (e.g. 10,11 to tune on splits never reported)",
    )
    parser.add_argument("--predictors", default=",".join(BASE))
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--zc", default="jacob_cov,synflow", help="proxy features ('' for none)")
    parser.add_argument("--no-zc", action="store_true")
    parser.add_argument("--zc-channels", type=int, default=8)
    parser.add_argument("--zc-cells", type=int, default=1)
    parser.add_argument("--zc-batch", type=int, default=32)
    parser.add_argument(
        "--zc-seeds",
        type=int,
        default=1,
        help="average proxies over this many inits (each scores every cell)",
    )
    parser.add_argument("--cache", default=None, help="resumable .npz of proxy scores (outside the repo)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        refuse_test_column(args.metric, "--metric")  # test data is reported, never searched or trained on
    except ConfigError as exc:
        parser.error(str(exc))

    space = get_space("nb201")
    table = Table.load(data_path(NB201_TABLE), space)
    archs, targets = list(table.archs), table.column(args.metric)
    names = [p.strip() for p in args.predictors.split(",") if p.strip()]
    variants: dict[str, tuple[str, dict]] = {"gbt/onehot": ("gbt", {"encoding": "onehot"})}
    variants.update({name: (name, {}) for name in names})
    if args.zc and not args.no_zc:
        started = time.perf_counter()
        extra = zero_cost_features(archs, args)
        print(f"# zero-cost features ready in {time.perf_counter() - started:.0f} s")
        features = np.stack([extra[a] for a in archs])
        for at, proxy in enumerate(args.zc.split(",")):
            tau = kendall_tau(features[:, at], targets)
            print(f"#   {proxy} alone (reduced network): Kendall tau {tau:.3f} on all {len(archs)} cells")
        with_zc = {"extra_features": extra, "encoding": "both", "target_transform": "rank"}
        takes_features = [n for n in names if "extra_features" in constructor_options(PREDICTORS.get(n))]
        variants.update({f"{name}+zc": (name, with_zc) for name in takes_features})

    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = list(range(args.seeds)) if args.seed_list is None else _seed_list(parser, args.seed_list)
    print(
        f"# nb201 {args.metric}: train on {sizes} random cells, test on "
        f"{'all other' if args.test_limit is None else args.test_limit} cells, seeds {seeds}"
    )

    def progress(row) -> None:
        print(
            f"#   {row.predictor:18s} n={row.train_size:<4d} seed={row.seed} tau={row.kendall_tau:.3f} "
            f"({row.seconds:.0f} s)",
            flush=True,
        )

    rows = predictor_study(
        space,
        archs,
        targets,
        variants,
        sizes,
        seeds,
        test_limit=args.test_limit,
        progress=progress,
    )
    header = (
        f"{'predictor':20s}{'train':>6s}{'Kendall tau':>16s}{'Spearman rho':>16s}{'top-1%':>14s}{'s/fit':>7s}"
    )
    print(header)
    print("-" * len(header))
    for entry in sorted(summarise(rows), key=lambda e: (e["train_size"], e["predictor"])):
        print(
            f"{entry['predictor']:20s}{entry['train_size']:6d}"
            f"{entry['kendall_tau']:10.3f} ± {entry['kendall_tau_std']:.3f}"
            f"{entry['spearman']:10.3f} ± {entry['spearman_std']:.3f}"
            f"{entry['top_k']:8.2f} ± {entry['top_k_std']:.2f}{entry['seconds']:7.1f}"
        )


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
