"""Zero-cost proxies on the NAS-Bench-Suite-Zero sample of NAS-Bench-201 (CIFAR-10).

For the ~725 cells NASLib scored, computes our proxies (network initialised
with ``--seed``, one CIFAR-10 mini-batch of ``--batch-size`` drawn with the
same seed) and prints, per proxy: Spearman rho of our score with the
200-epoch validation accuracy, the same for NASLib's stored score, and the
Spearman agreement between the two. Then rank votes: of our scores, and of
NASLib's (including proxies we do not implement, marked as such).

Targets (issue 4): our ``synflow`` agrees with NASLib's at rho >= 0.95 and
correlates with accuracy at rho >= 0.70; a combined proxy beats every single
proxy.

A full run scores 725 networks with every registered proxy (9, gradsign among them): tens of minutes on two cores.
``--cache FILE`` (outside the repository) makes it resumable and reruns free.

    python benchmarks/proxies.py --cache /tmp/nas-proxies.npz
    python benchmarks/proxies.py --proxies synflow --limit 200
    python benchmarks/proxies.py --channels 8 --cells 1 --cache /tmp/nas-proxies-c8n1.npz  # reduced network
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

from nas.core.errors import ConfigError  # noqa: E402
from nas.core.leakage import refuse_test_column  # noqa: E402
from nas.data.paths import NB201_TABLE, ZERO_COST_NB201, data_path  # noqa: E402
from predictors.combine import DEFAULT_VOTE  # noqa: E402
from predictors.evaluation import proxy_study  # noqa: E402
from predictors.proxy_table import proxy_table  # noqa: E402
from predictors.suite_zero import NASLIB_NAMES, read_zero_cost_nb201  # noqa: E402
from predictors.zero_cost import dataset_batch, list_proxies  # noqa: E402
from search_spaces import get_space  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--proxies", default=",".join(list_proxies()))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N cells")
    parser.add_argument("--metric", default="val_accuracy", help="val_accuracy or an nb201 table column")
    parser.add_argument("--cache", default=None, help="resumable .npz of our scores (outside the repo)")
    parser.add_argument("--channels", type=int, default=16, help="scored network's C (benchmark: 16)")
    parser.add_argument("--cells", type=int, default=5, help="scored network's N (benchmark: 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        refuse_test_column(args.metric, "--metric")  # test data is reported, never searched or trained on
    except ConfigError as exc:
        parser.error(str(exc))

    space = get_space("nb201")
    sample = read_zero_cost_nb201(data_path(ZERO_COST_NB201), space)
    count = len(sample.archs) if args.limit is None else min(args.limit, len(sample.archs))
    archs = list(sample.archs[:count])
    if args.metric == "val_accuracy":
        target = sample.val_accuracy[:count]
    else:
        from nas.data.tables import Table

        table = Table.load(data_path(NB201_TABLE), space)
        target = np.asarray([table.value(a, args.metric) for a in archs])

    x, y, _ = dataset_batch("cifar10", args.batch_size, seed=args.seed)

    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            print(f"#   scored {done}/{total} cells ({time.perf_counter() - started:.0f} s)", flush=True)

    scored = get_space("nb201", channels=args.channels, cells=args.cells)
    table_scores = proxy_table(
        scored, archs, proxies, x, y, seed=args.seed, fallback=-np.inf, cache=args.cache, progress=progress
    )
    ours = {name: table_scores[:, at] for at, name in enumerate(proxies)}
    naslib_all = {name: values[:count] for name, values in sample.scores.items()}
    naslib = {p: naslib_all[NASLIB_NAMES.get(p, p)] for p in proxies if NASLIB_NAMES.get(p, p) in naslib_all}

    vote = [p for p in DEFAULT_VOTE if p in ours]
    votes = {f"vote({','.join(vote)})": vote} if len(vote) > 1 else {}
    if len(proxies) > 1:
        votes[f"vote(all {len(proxies)})"] = proxies
    rows_ours = proxy_study(ours, target, reference=naslib, votes=votes)
    rows_naslib = {
        r.proxy: r for r in proxy_study(naslib, target, votes=votes if set(vote) <= set(naslib) else None)
    }

    print(
        f"# {count} NAS-Bench-201 cells (NAS-Bench-Suite-Zero, cifar10) vs {args.metric}; "
        f"network C={args.channels} N={args.cells}, batch {args.batch_size}, seed {args.seed}; "
        f"scoring took {time.perf_counter() - started:.0f} s"
    )
    header = f"{'proxy':34s}{'ours rho':>10s}{'ours tau':>10s}{'NASLib rho':>12s}{'ours~NASLib':>13s}"
    print(header)
    print("-" * len(header))
    best_single = max(r.spearman for r in rows_ours if r.proxy in ours)
    for row in rows_ours:
        theirs = rows_naslib.get(row.proxy)
        theirs_text = f"{theirs.spearman:12.3f}" if theirs else f"{'-':>12s}"
        agreement = f"{row.agreement:13.3f}" if row.agreement is not None else f"{'-':>13s}"
        print(f"{row.proxy:34s}{row.spearman:10.3f}{row.kendall_tau:10.3f}{theirs_text}{agreement}")
    print(f"# best single proxy of ours: rho {best_single:.3f}")

    # NASLib's stored scores, including proxies we do not implement (grasp, epe_nas, l2_norm, plain).
    extra_vote = ["synflow", "jacov", "nwot"]
    rows_stored = proxy_study(naslib_all, target, votes={"vote(synflow,jacov,nwot)": extra_vote})
    print("\n# NASLib's stored scores (all 12 proxies; not recomputed here)")
    for row in sorted(rows_stored, key=lambda r: -r.spearman):
        print(f"{row.proxy:34s}{row.spearman:10.3f}{row.kendall_tau:10.3f}")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
