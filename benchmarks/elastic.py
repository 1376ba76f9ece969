"""Ranking by an elastic supernet: Kendall tau between inherited-weight and stand-alone accuracy on fbnet.

The issue's target: on the CIFAR-10 subset (``$NAS_DATA_DIR/cifar10/cifar10_10k_2k.npz``),
over at least 30 fbnet sub-networks spread over the latency range, Kendall's
tau between

* the accuracy of each sub-network with the weights it inherits from a trained
  supernet, BatchNorm recalibrated (``method.score``: for ``bignas`` the
  extracted stand-alone network; for ``spos`` the single-path supernet's path), and
* the accuracy of the same network trained alone (same training images, same
  epochs, same batch size and learning rate, SGD with cosine decay),

both measured on the same held-out images (the search split's architecture
half, never the test split), is >= 0.7 for ``bignas``; ``spos`` (the
single-path supernet) is the baseline on the same sub-networks.

The sub-networks are rows of the HW-NAS-Bench/HELP latency table
(``fbnet/fbnet_latency_ms.csv``), taken at evenly spaced latency ranks for
``--device`` after removing functional duplicates, so they cover the range
from the fastest to the slowest.

Examples::

    # smoke run (minutes): proves the script works, the figures mean little
    python benchmarks/elastic.py --subnets 30 --limit 600 --epochs 1 --width 0.25 --score-images 200
    # the issue's target (hours on a 2-core CPU; for the lead)
    python benchmarks/elastic.py --subnets 30 --epochs 10 --width 0.5 --threads 2

Prints one row per sub-network and Kendall's tau / Spearman's rho per method.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core.architecture import Architecture  # noqa: E402
from nas.data import Dataset, load_dataset  # noqa: E402
from nas.data.paths import FBNET_LATENCY, data_path  # noqa: E402
from nas.oneshot import OneShotMethod, create_method, run_oneshot  # noqa: E402
from nas.oneshot.ranking import load_table  # noqa: E402
from nas.settings.train import TrainSettings  # noqa: E402
from nas.training import evaluate, fit, resolve_precision, seeded  # noqa: E402
from search_spaces import get_space  # noqa: E402


def spread_over_latency(space: Any, device: str, count: int) -> list[tuple[Architecture, float]]:
    """``count`` functionally distinct table architectures at evenly spaced latency ranks for ``device``."""
    table = load_table(space, data_path(FBNET_LATENCY))
    latency = np.asarray(table.column(device))
    seen: dict[str, tuple[Architecture, float]] = {}
    for row in np.argsort(latency, kind="stable"):
        seen.setdefault(space.canonical_key(table.archs[row]), (table.archs[row], float(latency[row])))
    unique = list(seen.values())
    picks = np.unique(np.linspace(0, len(unique) - 1, count).round().astype(int))
    return [unique[i] for i in picks]


def standalone(method: OneShotMethod, dataset: Dataset, arch: Architecture, epochs: int, seed: int) -> float:
    """Accuracy (%) of ``arch`` trained alone on the supernet's weight images, on its scoring images."""
    s, data = method.settings, method.data
    train = dataclasses.replace(dataset, x_train=data.x_weights.numpy(), y_train=data.y_weights.numpy())
    settings = TrainSettings(
        epochs=epochs,
        batch_size=s.batch_size,
        lr=s.lr,
        momentum=s.momentum,
        nesterov=False,
        weight_decay=s.weight_decay,
        grad_clip=s.grad_clip,
        amp=False,
    )
    device, precision = method.device, resolve_precision(False, method.device)
    with seeded(seed, device):
        model = method.space.network(arch, data.num_classes, data.input_shape)
    fit(model, train, settings, epochs=epochs, seed=seed, device=device, precision=precision)
    count = min(s.score_images, len(data.y_arch))
    images, labels = data.x_arch[:count].numpy(), data.y_arch[:count].numpy()
    return evaluate(model, images, labels, device, precision)[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="bignas,spos", help="comma-separated one-shot methods")
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument("--device", default="pixel3", help="latency column the sub-networks are spread over")
    parser.add_argument("--width", type=float, default=0.5, help="fbnet width_mult")
    parser.add_argument("--epochs", type=int, default=10, help="supernet and stand-alone epochs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all 10,000)")
    parser.add_argument("--score-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    space = get_space("fbnet", width_mult=args.width)
    spec: dict[str, Any] = {"name": "cifar10", "limit": args.limit, "val_fraction": 0.1}
    dataset = load_dataset(spec, seed=0)
    subnets = spread_over_latency(space, args.device, args.subnets)
    options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "score_images": args.score_images,
        "check_memory": False,
    }
    print(
        f"fbnet width {args.width}, {len(dataset.y_train)} training images of {dataset.input_shape} (half train "
        f"the weights, half score), {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
        f"{len(subnets)} sub-networks over {args.device} latency {subnets[0][1]:.1f}-{subnets[-1][1]:.1f} ms, "
        f"{args.threads} thread(s)"
    )
    scores: dict[str, list[float]] = {}
    methods: dict[str, OneShotMethod] = {}
    for name in args.methods.split(","):
        started = time.perf_counter()
        methods[name] = method = create_method(name, space, dataset, options, seed=args.seed)
        if name == "spos":  # the evolution is not part of this benchmark: train the supernet only
            method.fit()
        else:
            run_oneshot(method)
        trained = time.perf_counter() - started
        scores[name] = [method.score(arch) for arch, _ in subnets]
        print(
            f"{name}: supernet {trained:.0f} s, scoring {time.perf_counter() - started - trained:.0f} s, "
            f"supernet val {method.history[-1]['val_accuracy']:.1f}%",
            flush=True,
        )
    reference = next(iter(methods.values()))
    started = time.perf_counter()
    alone = [standalone(reference, dataset, arch, args.epochs, args.seed) for arch, _ in subnets]
    print(f"stand-alone training of {len(subnets)} networks: {time.perf_counter() - started:.0f} s\n")

    header = f"{'latency_ms':>10} {'alone':>6} " + " ".join(f"{n:>7}" for n in scores) + "  arch"
    print(header)
    print("-" * len(header))
    rows = []
    for i, (arch, latency) in enumerate(subnets):
        inherited = {n: s[i] for n, s in scores.items()}
        print(
            f"{latency:>10.2f} {alone[i]:>6.1f} "
            + " ".join(f"{v:>7.1f}" for v in inherited.values())
            + f"  {space.format(arch)}"
        )
        rows.append({"arch": space.format(arch), "latency_ms": latency, "standalone": alone[i], **inherited})
    print()
    for name, values in scores.items():
        tau = stats.kendalltau(values, alone).statistic
        rho = stats.spearmanr(values, alone).statistic
        print(f"{name:7} Kendall tau {tau:6.3f}  Spearman {rho:6.3f}  (target for bignas: tau >= 0.7)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
