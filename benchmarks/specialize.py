"""Specialisation without retraining: one BigNAS supernet, 3 devices x 2 budgets, against stand-alone training.

The issue's target: on the CIFAR-10 subset (``$NAS_DATA_DIR/cifar10/cifar10_10k_2k.npz``),
for three devices of different kinds from the HELP latency table (by default
``pixel3``, a phone; ``gold_6226``, a server CPU; ``eyeriss``, an
accelerator) and two budgets each, the sub-network ``nas specialize`` picks
from *one* trained supernet (inherited weights, BatchNorm recalibrated,
optionally fine-tuned) reaches at least the validation accuracy of the best
of several random sub-networks within the same budget trained alone, where
the stand-alone side gets the supernet's training compute per target:

* the supernet runs ``2 + num_random`` sub-network passes per step (the
  sandwich rule) for ``epochs`` epochs over the same images, so it costs
  ``epochs x (2 + num_random)`` sub-network epochs (counting every
  sub-network's pass as one, which favours the stand-alone side: the
  supernet's students are mostly smaller than the largest);
* the stand-alone side trains ``--standalone`` random sub-networks within the
  budget (predicted by the same latency model; a uniform sample over the
  budget is repaired toward cheaper blocks as the specialisation's initial
  population is), each for that total divided by their number, on the same
  training images, and keeps the best.

Budgets are placed at ``--budget-shares`` of the way from the device's fastest
predicted sub-network to its largest one. Every specialised sub-network meets
its budget by the predictor (checked and printed). With ``--local`` two rows
for this machine are added (the ONNX Runtime table of ``nas latency profile``,
built here if missing), with the measured latency of the selected network
and its ratio to the prediction (target: within 15%).

``--predictor N`` checks only the ``local`` table, without a supernet: for
``fbnet`` (additive, per layer and block) and ``hybrid`` (per block context)
at CIFAR's 3x32x32 input it profiles this machine afresh (``nas latency
profile``'s :func:`~nas.specialize.profile.build_profile`, into a temporary
cache), then measures ``N`` random sub-networks per space as the
specialisation measures its pick (:func:`~nas.specialize.run.measure_onnx_ms`:
ONNX Runtime, batch 1, one thread, median) and prints predicted vs measured
ms and the relative error, with its median and worst per space. The
networks are drawn with a seed the profile's calibration never saw. Latency
does not depend on the weights' values, so randomly initialised networks
stand in for extracted ones (the same stand-alone modules).

Examples::

    # smoke run (minutes): proves the script works, the figures mean little
    python benchmarks/specialize.py --smoke
    # the local table's accuracy (target: within 15%); a few minutes on an idle machine
    python benchmarks/specialize.py --predictor 20
    # the issue's target (an hour or more on a 2-core CPU; for the lead)
    python benchmarks/specialize.py --epochs 10 --width 0.5 --candidates 60 --standalone 4 --local --threads 2

Prints one row per target.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import Dataset, load_dataset  # noqa: E402
from nas.oneshot import create_method, run_oneshot  # noqa: E402
from nas.settings import load_config  # noqa: E402
from nas.settings.train import TrainSettings  # noqa: E402
from nas.specialize import device_model, specialize  # noqa: E402
from nas.specialize.profile import build_profile  # noqa: E402
from nas.specialize.run import within_budget  # noqa: E402
from nas.specialize.supernet import record_supernet  # noqa: E402
from nas.store.study import create_study  # noqa: E402
from nas.store.url import artifacts_root  # noqa: E402
from nas.training import evaluate, fit, resolve_precision, seeded  # noqa: E402

KINDS = {"pixel3": "phone", "gold_6226": "server CPU", "eyeriss": "accelerator", "local": "this CPU (ORT)"}


def budgets(space: Any, model: Any, shares: list[float]) -> list[float]:
    """Budgets ``shares`` of the way from the fastest sub-network to the largest (all k5_e6)."""
    largest = model.predict(space, space.make(dict.fromkeys(space.choices(), "k5_e6")))
    fastest = model.fastest(space)[1]
    return [float(f"{fastest + s * (largest - fastest):.4g}") for s in shares]


def standalone_best(
    space: Any, dataset: Dataset, model: Any, budget: float, count: int, epochs: int, args: Any
) -> tuple[float, list[float]]:
    """Best validation accuracy of ``count`` random within-budget sub-networks trained alone ``epochs`` each."""
    rng = np.random.default_rng([args.seed, int(budget * 1000)])
    settings = TrainSettings(
        epochs=epochs, batch_size=args.batch_size, lr=args.lr, nesterov=False, amp=False, device="cpu"
    )
    device = torch.device("cpu")
    precision = resolve_precision(False, device)
    scores = []
    within = within_budget(space, model, budget)  # uniform samples, repaired toward cheaper blocks to fit
    while len(scores) < count:
        arch = within.sample(rng)
        with seeded(args.seed + len(scores), device):
            net = space.network(arch, dataset.num_classes, dataset.input_shape)
        fit(net, dataset, settings, epochs=epochs, seed=args.seed, device=device, precision=precision)
        scores.append(evaluate(net, dataset.x_val, dataset.y_val, device, precision)[1])
    return max(scores), scores


#: The spaces of ``--predictor`` (fbnet at ``--width``; hybrid as examples/oneshot_bignas_hybrid.yaml).
HYBRID = {"blocks": 4, "downsamples": 2, "base_width": 16}
CIFAR_SHAPE, CIFAR_CLASSES = (3, 32, 32), 10


def predictor_check(args: Any) -> None:
    """Predicted (this machine's fresh table) vs measured ONNX Runtime latency of random sub-networks."""
    import os

    from nas.specialize.run import measure_onnx_ms
    from search_spaces import get_space

    os.environ["NAS_CACHE_DIR"] = tempfile.mkdtemp(
        prefix="nas-bench-latency-"
    )  # a fresh table, not the cache
    spaces = [get_space("fbnet", width_mult=args.width), get_space("hybrid", **HYBRID)]
    header = f"{'space':<7} {'sub-network':<48} {'pred ms':>8} {'meas ms':>8} {'error':>7}"
    summary = []
    for space in spaces:
        started = time.perf_counter()
        model, content = build_profile(
            space, input_shape=CIFAR_SHAPE, num_classes=CIFAR_CLASSES, repeats=args.repeats, seed=args.seed
        )
        profile_s = time.perf_counter() - started
        print(
            f"# {space.name} {space.options}: {content['parts_measured']} parts profiled in {profile_s:.0f} s "
            f"(keyed by {content['keyed_by']}), constant {model.constant:.3g} ms",
            flush=True,
        )
        print(header)
        print("-" * len(header))
        rng = np.random.default_rng([args.seed, 1])  # the profile's calibration drew from seed alone
        errors = []
        for _ in range(args.predictor):
            arch = space.canonical(space.sample(rng))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                net = space.network(arch, CIFAR_CLASSES, CIFAR_SHAPE)
            predicted, measured = model.predict(space, arch), measure_onnx_ms(net, CIFAR_SHAPE)
            errors.append((predicted - measured) / measured)
            text = space.format(arch)
            text = text if len(text) <= 48 else text[:45] + "..."
            print(
                f"{space.name:<7} {text:<48} {predicted:>8.4g} {measured:>8.4g} {errors[-1]:>+7.1%}",
                flush=True,
            )
        absolute = np.abs(errors)
        summary.append(
            f"{space.name:<7} median |error| {np.median(absolute):.1%}, worst {absolute.max():.1%}, "
            f"within 15%: {int((absolute <= 0.15).sum())}/{len(errors)}"
        )
    print()
    print("\n".join(summary))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", default="pixel3,gold_6226,eyeriss")
    parser.add_argument(
        "--budget-shares", default="0.25,0.5", help="where the budgets sit, fastest=0 largest=1"
    )
    parser.add_argument(
        "--local", action="store_true", help="also specialise for this machine (ONNX Runtime)"
    )
    parser.add_argument("--width", type=float, default=0.5, help="fbnet width_mult")
    parser.add_argument("--epochs", type=int, default=10, help="supernet epochs")
    parser.add_argument("--num-random", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all 10,000)")
    parser.add_argument("--score-images", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=60, help="sub-networks scored per target")
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument(
        "--standalone", type=int, default=4, help="random sub-networks trained alone per target"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny settings that only prove the script runs")
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    parser.add_argument(
        "--predictor",
        type=int,
        default=0,
        metavar="N",
        help="only check the local latency table: N random sub-networks per space, predicted vs measured",
    )
    parser.add_argument("--repeats", type=int, default=30, help="--predictor: timed runs per profiled part")
    args = parser.parse_args()
    if args.predictor:
        torch.set_num_threads(args.threads)
        predictor_check(args)
        return
    if args.smoke:
        args.width, args.epochs, args.num_random, args.limit = 0.25, 1, 1, 600
        args.score_images, args.candidates, args.population, args.standalone = 200, 6, 3, 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    folder = Path(tempfile.mkdtemp(prefix="nas-bench-specialize-"))
    url = f"sqlite:///{folder}/nas.db"
    raw = {
        "name": "bench-bignas",
        "space": {"name": "fbnet", "width_mult": args.width},
        "dataset": {"name": "cifar10", "limit": args.limit, "val_fraction": 0.1},
        "strategy": {
            "name": "bignas",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "num_random": args.num_random,
            "score_images": args.score_images,
            "check_memory": False,
        },
        "evaluator": {"name": "train", "epochs": 1, "batch_size": args.batch_size, "lr": args.lr},
        "resources": {"cpu": args.threads},
    }
    config = load_config(raw)
    study = create_study(
        config.name,
        storage=url,
        space="fbnet",
        space_options={"width_mult": args.width},
        config=config.model_dump(mode="json"),
    )
    space = study.space
    dataset = load_dataset(config.dataset, seed=config.data_seed)
    started = time.perf_counter()
    method = create_method(
        "bignas", space, dataset, config.strategy.options, seed=args.seed, data_seed=config.data_seed
    )
    checkpoints = artifacts_root(url) / config.name / "oneshot" / "bench-checkpoints" / f"seed-{args.seed}"
    result = run_oneshot(method, checkpoint_dir=checkpoints)
    record_supernet(study, result, checkpoints)
    supernet_s = time.perf_counter() - started
    # the sandwich's sub-network epochs over the weights half, in epochs of the whole training split
    portion = len(method.data.y_weights) / len(dataset.y_train)
    compute = args.epochs * (2 + args.num_random) * portion
    per_net = max(1, int(compute / args.standalone))
    print(
        f"supernet: {args.epochs} epochs in {supernet_s:.0f} s, {compute:.1f} sub-network epochs of the training "
        f"split; stand-alone side: {args.standalone} networks x {per_net} epochs per target",
        flush=True,
    )

    devices = [d for d in args.devices.split(",") if d]
    shares = [float(s) for s in args.budget_shares.split(",")]
    if args.local:
        build_profile(space, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
        devices.append("local")
    targets = []
    for device in devices:
        model = device_model(space, device, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
        targets += [{"device": device, "max_latency_ms": b} for b in budgets(space, model, shares)]
    started = time.perf_counter()
    outcome = specialize(
        study,
        settings={
            "targets": targets,
            "candidates": args.candidates,
            "population_size": args.population,
            "finetune_epochs": args.finetune_epochs,
            "seed": args.seed,
        },
        threads=args.threads,
    )
    specialize_s = time.perf_counter() - started
    print(f"specialisation of {len(targets)} targets: {specialize_s:.0f} s", flush=True)

    header = (
        f"{'device':<10} {'kind':<15} {'budget ms':>10} {'pred ms':>9} {'meas ms':>8} {'ok':>3} "
        f"{'inherit %':>9} {'special %':>9} {'alone best %':>12} {'>= alone':>8}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for r in outcome.results:
        model = device_model(
            space, r.target.device, input_shape=dataset.input_shape, num_classes=dataset.num_classes
        )
        best, scores = standalone_best(
            space, dataset, model, r.target.max_latency_ms, args.standalone, per_net, args
        )
        meets = r.predicted_latency_ms <= r.target.max_latency_ms
        measured = "-" if r.measured_latency_ms is None else f"{r.measured_latency_ms:.3g}"
        print(
            f"{r.target.device:<10} {KINDS.get(r.target.device, '?'):<15} {r.target.max_latency_ms:>10.4g} "
            f"{r.predicted_latency_ms:>9.4g} {measured:>8} {'yes' if meets else 'NO':>3} "
            f"{r.inherited_accuracy:>9.2f} {r.val_accuracy:>9.2f} {best:>12.2f} "
            f"{'yes' if r.val_accuracy >= best else 'no':>8}",
            flush=True,
        )
        row = r.target.model_dump() | {
            "trial": r.trial.number,
            "arch": space.format(r.trial.arch),
            "predicted_ms": r.predicted_latency_ms,
            "measured_ms": r.measured_latency_ms,
            "inherited_accuracy": r.inherited_accuracy,
            "specialised_accuracy": r.val_accuracy,
            "standalone": scores,
            "standalone_epochs": per_net,
        }
        rows.append(row)
    print(f"\nstore: {url}")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
