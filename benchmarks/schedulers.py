"""Early stopping and multi-objective scheduling, replayed offline on a stored curve set.

Each curve of the set is one trial; a replay hands the trials, in a random
order, to 2 parallel workers that train one epoch per time unit, and after
each epoch the policy decides whether the trial goes on. The decisions are
the shipped rules, not copies: ``lc`` is :class:`nas.curves.stopping.LearningCurveRule`
with the shipped LC-PFN, ``moasha`` and ``asha`` :mod:`nas.core.promotion`,
``median`` its median-stopping rule. 20 orders (``--orders``) per policy.

Policies: ``full`` (every trial trains to the end), ``asha`` (η = 3, grace 1
epoch), ``median`` (median stopping after 3 epochs), ``lc`` (threshold 0.05,
min_epochs 3) and ``moasha`` (η = 3, grace 1, accuracy and pixel3 latency,
ε-net); those are the defaults, changed with ``--eta``, ``--grace``,
``--median-grace``, ``--threshold`` and ``--min-epochs``.

Tables (mean over orders; the search's result is its best *fully trained* trial):

* **early stopping**: epochs used / full training's, the final incumbent and its
  gap to full training's (accuracy points; mean and worst order), and the regret
  (best final of the set minus the incumbent) once 10%, 20% and 33% of full
  training's epochs are spent;
* **multi-objective**: hypervolume of the fully trained trials' (accuracy,
  latency) front over full training's, and the epochs used.

Input: ``--curves`` CSV with columns ``index,epoch,val_accuracy`` (``arch`` and
``split`` optional; accuracies in percent; ``index`` is the NAS-Bench-201 index,
the row of ``$NAS_DATA_DIR/nb201/nb201_latency_ms.csv`` whose ``pixel3`` column
is the latency). Figures are taken on the held-out half (``--split test``): the
``split`` column of the CSV (written by ``benchmarks/curve_set.py``) or, when it
has none, a seeded split (``--split-seed``), which is printed. Thresholds are
tuned, if at all, with ``--split tune``.

    python benchmarks/schedulers.py --curves benchmarks/data/nb201_curves.csv
    python benchmarks/schedulers.py --synthetic 100      # develops the replay; NOT results
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import heapq
import os
import platform
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core.errors import ConfigError  # noqa: E402
from nas.core.pareto import hypervolume  # noqa: E402
from nas.core.promotion import asha_promotes, median_stops, mo_promotes, rung_milestones  # noqa: E402
from nas.curves.predict import load_predictor  # noqa: E402
from nas.curves.stopping import LearningCurveRule  # noqa: E402

BUDGET_FRACTIONS = (0.10, 0.20, 1 / 3)
LATENCY_CSV = Path(os.environ.get("NAS_DATA_DIR", "/work/shared/data")) / "nb201" / "nb201_latency_ms.csv"


@dataclass(frozen=True)
class CurveSet:
    """Curves (n, epochs) in percent, each with its nb201 index and pixel3 latency."""

    indices: np.ndarray
    curves: np.ndarray
    latency: np.ndarray

    @property
    def epochs(self) -> int:
        return self.curves.shape[1]


def read_curve_set(path: Path, split: str, split_seed: int) -> tuple[CurveSet, str]:
    """The ``split`` half of the CSV at ``path`` and a line describing how it was split."""
    rows: dict[int, dict[int, float]] = defaultdict(dict)
    splits: dict[int, str] = {}
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        missing = {"index", "epoch", "val_accuracy"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(
                f"{path}: columns {sorted(missing)} are missing; expected index,epoch,val_accuracy"
            )
        for row in reader:
            rows[int(row["index"])][int(row["epoch"])] = float(row["val_accuracy"])
            if row.get("split"):
                splits[int(row["index"])] = row["split"]
    lengths = {len(c) for c in rows.values()}
    if len(lengths) != 1 or any(sorted(c) != list(range(1, len(c) + 1)) for c in rows.values()):
        raise ConfigError(
            f"{path}: every curve needs the same epochs 1..L without gaps, got lengths {lengths}"
        )
    indices = np.array(sorted(rows))
    if splits:
        chosen = [i for i in indices if splits.get(int(i)) == split]
        how = f"split column of {path.name}"
    else:
        order = np.random.default_rng(split_seed).permutation(indices)
        half = set(order[: len(order) // 2].tolist())
        chosen = [i for i in indices if (int(i) in half) == (split == "tune")]
        how = f"seeded split (seed {split_seed}: permutation, first half 'tune', rest 'test')"
    if not chosen:
        raise ConfigError(f"{path}: no curve in split {split!r}")
    digest = hashlib.sha256(",".join(str(int(i)) for i in chosen).encode()).hexdigest()[:12]
    curves = np.array([[rows[int(i)][e] for e in range(1, len(rows[int(i)]) + 1)] for i in chosen])
    return CurveSet(np.array(chosen), curves, latencies(np.array(chosen))), (
        f"{split} half: {len(chosen)} of {len(indices)} curves, {how}, indices sha256 {digest}"
    )


def latencies(indices: np.ndarray) -> np.ndarray:
    """pixel3 latency (ms) of each nb201 index."""
    table: dict[int, float] = {}
    with LATENCY_CSV.open(newline="") as stream:
        for row in csv.DictReader(stream):
            table[int(row["index"])] = float(row["pixel3"])
    return np.array([table[int(i)] for i in indices])


def write_synthetic(path: Path, n: int, epochs: int, seed: int) -> None:
    """Made-up saturating curves for real nb201 indices (their latency is real); NOT results."""
    rng = np.random.default_rng(seed)
    indices = rng.choice(15625, size=n, replace=False)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["index", "epoch", "val_accuracy"])
        for index in indices:
            final, start = rng.uniform(30, 90), rng.uniform(10, 30)
            alpha = rng.uniform(0.3, 1.5)
            t = np.arange(1, epochs + 1)
            curve = final - (final - start) * t ** (-alpha) + rng.normal(0, 1.0, epochs)
            for epoch, value in zip(t, np.clip(curve, 0, 100), strict=True):
                writer.writerow([int(index), int(epoch), f"{value:.3f}"])


# -- the replay ---------------------------------------------------------------------------------------


@dataclass
class Replay:
    """What one policy did in one order: epochs each trial trained, in time order of completion."""

    trained: dict[int, int] = field(default_factory=dict)  # trial -> epochs trained
    finished: list[tuple[int, int]] = field(default_factory=list)  # (epochs spent so far, trial) at its end


#: ``policy(trial, curve_so_far, state) -> stop?``; ``state`` is the policy's own memory.
Policy = Callable[[int, np.ndarray, dict], bool]


def replay(data: CurveSet, order: np.ndarray, policy: Policy, workers: int = 2) -> Replay:
    """Run ``order`` on ``workers`` parallel workers, one epoch per time unit, asking ``policy``."""
    result, state = Replay(), {"finals": {}}
    queue = list(order[::-1])
    events: list[tuple[int, int, int, int]] = []  # (time, worker, trial, epoch just trained)
    for worker in range(workers):
        if queue:
            heapq.heappush(events, (1, worker, int(queue.pop()), 1))
    spent = 0
    while events:
        time, worker, trial, epoch = heapq.heappop(events)
        spent += 1
        curve = data.curves[trial, :epoch]
        done = epoch == data.epochs
        if done:
            state["finals"][trial] = float(curve[-1])
        if done or policy(trial, curve, state):
            result.trained[trial] = epoch
            result.finished.append((spent, trial))
            if queue:
                heapq.heappush(events, (time + 1, worker, int(queue.pop()), 1))
        else:
            heapq.heappush(events, (time + 1, worker, trial, epoch + 1))
    return result


def full_policy(trial: int, curve: np.ndarray, state: dict) -> bool:
    return False


def asha_policy(eta: float, grace: int, epochs: int) -> Policy:
    milestones = set(rung_milestones(grace, eta, epochs))

    def decide(trial: int, curve: np.ndarray, state: dict) -> bool:
        if len(curve) not in milestones:
            return False
        rung = state.setdefault(len(curve), [])
        go_on = asha_promotes(float(curve[-1]), rung, eta)
        rung.append(float(curve[-1]))
        return not go_on

    return decide


def median_policy(grace: int = 3) -> Policy:
    def decide(trial: int, curve: np.ndarray, state: dict) -> bool:
        means = state.setdefault(len(curve), [])
        mean = float(curve.mean())
        stop = len(curve) >= grace and median_stops(mean, means)
        means.append(mean)
        return stop

    return decide


def lc_policy(rule: LearningCurveRule, predictor: object) -> Policy:
    def decide(trial: int, curve: np.ndarray, state: dict) -> bool:
        finals = state["finals"].values()
        best = max(finals) if finals else None
        return bool(rule.stops(predictor, [curve.tolist()], best)[0])

    return decide


def moasha_policy(data: CurveSet, eta: float, grace: int, tie_break: str) -> Policy:
    milestones = set(rung_milestones(grace, eta, data.epochs))

    def decide(trial: int, curve: np.ndarray, state: dict) -> bool:
        if len(curve) not in milestones:
            return False
        rung = state.setdefault(len(curve), [])
        point = [-float(curve[-1]), float(data.latency[trial])]
        go_on = mo_promotes(point, rung, eta, tie_break)
        rung.append(point)
        return not go_on

    return decide


class CachedPredictor:
    """The shipped predictor, its logits memoised per curve prefix (orders replay the same prefixes)."""

    def __init__(self, predictor: object, rule: LearningCurveRule, data: CurveSet) -> None:
        self.predictor, self.bar = predictor, predictor.bar  # type: ignore[attr-defined]
        self.cache: dict[tuple[float, ...], torch.Tensor] = {}
        prefixes = [
            rule.scaled(c[:k]).tolist() for c in data.curves for k in range(1, data.epochs) if rule.due(k)
        ]
        for start in range(0, len(prefixes), 256):
            chunk = prefixes[start : start + 256]
            for prefix, row in zip(chunk, predictor.logits(chunk, rule.horizon), strict=True):  # type: ignore[attr-defined]
                self.cache[tuple(prefix)] = row

    def logits(self, curves: list[list[float]], horizon: int) -> torch.Tensor:
        missing = [c for c in curves if tuple(c) not in self.cache]
        if missing:
            for prefix, row in zip(missing, self.predictor.logits(missing, horizon), strict=True):  # type: ignore[attr-defined]
                self.cache[tuple(prefix)] = row
        return torch.stack([self.cache[tuple(c)] for c in curves])


# -- measures -----------------------------------------------------------------------------------------


def incumbent(data: CurveSet, run: Replay, budget: float = np.inf) -> float:
    """Best final value among trials fully trained once ``budget`` epochs were spent (NaN: none)."""
    finals = [
        data.curves[t, -1] for spent, t in run.finished if spent <= budget and run.trained[t] == data.epochs
    ]
    return float(max(finals)) if finals else float("nan")


def front_volume(data: CurveSet, trials: list[int], reference: np.ndarray) -> float:
    points = np.array([[-data.curves[t, -1], data.latency[t]] for t in trials]).reshape(-1, 2)
    return hypervolume(points, reference)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--curves", type=Path, default=Path("benchmarks/data/nb201_curves.csv"))
    parser.add_argument(
        "--synthetic", type=int, default=0, help="replay N made-up curves instead (NOT results)"
    )
    parser.add_argument("--split", choices=("test", "tune"), default="test")
    parser.add_argument("--split-seed", type=int, default=17)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--min-epochs", type=int, default=3)
    parser.add_argument("--eta", type=float, default=3.0)
    parser.add_argument("--grace", type=int, default=1, help="asha/moasha: epochs before the first rung")
    parser.add_argument("--tie-break", choices=("epsnet", "crowding"), default="epsnet", help="moasha")
    parser.add_argument(
        "--median-grace", type=int, default=3, help="median stopping: epochs before it may stop a trial"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    synthetic = args.synthetic > 0
    banner = (
        "#" * 78
        + "\n# SYNTHETIC CURVES: made-up data to develop the replay. NOT RESULTS; do not record.\n"
        + "#" * 78
    )
    if synthetic:
        print(banner)
        path = Path(tempfile.mkdtemp()) / "synthetic_curves.csv"
        write_synthetic(path, args.synthetic, 30, args.seed)
    else:
        path = args.curves
    data, how = read_curve_set(path, args.split, args.split_seed)
    rule = LearningCurveRule(
        horizon=data.epochs, threshold=args.threshold, min_epochs=args.min_epochs, bounds=(0, 100)
    )
    predictor = CachedPredictor(load_predictor(), rule, data)
    policies: dict[str, Policy] = {
        "full": full_policy,
        "asha": asha_policy(args.eta, args.grace, data.epochs),
        "median": median_policy(args.median_grace),
        "lc": lc_policy(rule, predictor),
        "moasha": moasha_policy(data, args.eta, args.grace, args.tie_break),
    }
    full_epochs = len(data.curves) * data.epochs
    best = float(data.curves[:, -1].max())
    everything = list(range(len(data.curves)))
    reference = np.array([-data.curves[:, -1].min() + 1.0, data.latency.max() * 1.05])
    full_volume = front_volume(data, everything, reference)
    rng = np.random.default_rng(args.seed)
    orders = [rng.permutation(len(data.curves)) for _ in range(args.orders)]
    table: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in policies}
    for order in orders:
        for name, policy in policies.items():
            run = replay(data, order, policy)
            stats = table[name]
            stats["epochs"].append(sum(run.trained.values()) / full_epochs)
            stats["final"].append(incumbent(data, run))
            for fraction in BUDGET_FRACTIONS:
                stats[f"regret@{fraction:.2f}"].append(best - incumbent(data, run, fraction * full_epochs))
            complete = [t for t, e in run.trained.items() if e == data.epochs]
            stats["hv"].append(front_volume(data, complete, reference) / full_volume)

    print(f"# Scheduler replay ({'SYNTHETIC' if synthetic else path}), {date.today()}, {platform.node()}")
    print(f"# {how}; {data.epochs} epochs per curve; {args.orders} orders, 2 workers, seed {args.seed}")
    print(
        f"# lc: threshold {args.threshold}, min_epochs {args.min_epochs}; asha/moasha: eta {args.eta:g}, grace {args.grace}; moasha: {args.tie_break}; median: grace {args.median_grace}"
    )
    print(f"# best final of the set: {best:.2f}; regret NaN-free means: a policy with no finished trial by")
    print("#   that budget counts the whole best value as regret")
    print()
    print("Early stopping (accuracy points; epochs as a fraction of full training's)")
    header = ["policy", "epochs", "final", "gap mean", "gap worst"] + [
        f"regret@{f:.0%}" for f in BUDGET_FRACTIONS
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    full_final = np.array(table["full"]["final"])
    for name in ("full", "asha", "median", "lc"):
        stats = table[name]
        gap = full_final - np.array(stats["final"])
        regrets = [np.nan_to_num(np.array(stats[f"regret@{f:.2f}"]), nan=best) for f in BUDGET_FRACTIONS]
        cells = [
            name,
            f"{np.mean(stats['epochs']):.3f}",
            f"{np.nanmean(stats['final']):.2f}",
            f"{np.nanmean(gap):.2f}",
            f"{np.nanmax(gap):.2f}",
        ] + [f"{r.mean():.2f}" for r in regrets]
        print("| " + " | ".join(cells) + " |")
    print()
    print(
        "Multi-objective (val_accuracy max, pixel3 latency min): hypervolume of the fully trained trials' front"
    )
    print("| policy | epochs | HV / full HV (mean) | HV / full HV (worst) |")
    print("|---|---|---|---|")
    for name in ("full", "asha", "moasha"):
        stats = table[name]
        print(
            f"| {name} | {np.mean(stats['epochs']):.3f} | {np.mean(stats['hv']):.4f} | {np.min(stats['hv']):.4f} |"
        )
    if synthetic:
        print(banner)


if __name__ == "__main__":
    main()
