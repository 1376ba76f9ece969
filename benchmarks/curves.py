"""Learning-curve extrapolation: our LC-PFN against a pow3 fit and the last value.

From the first 10%, 20% and 40% of each curve, each method gives a
distribution of the curve's final value; the table reports its mean
log-likelihood (higher is better) and the mean absolute error of its
median. Methods:

* ``lcpfn``: the shipped curve model (``nas.curves``);
* ``pow3``: a least-squares fit of ``c - a * x**-alpha`` (exact in ``c, a``
  on a grid of 400 values of ``alpha``) with Gaussian residuals of the
  fit's residual standard deviation (at least ``--min-std``);
* ``last``: a Gaussian around the last observed value with the same
  residual standard deviation.

The curves are sampled from the prior with a held-out seed (the model is
trained with seed 0), or read from a CSV with ``--curves PATH``: columns
``curve,epoch,value`` (one row per epoch, epochs 1..L, values in [0, 1],
L <= 100) or the curve set's ``index,epoch,val_accuracy`` (percent), and an
optional ``split`` column filtered with ``--split``.
The last row times one forward pass for 32 curves of 20 observed epochs.

    python benchmarks/curves.py                             # 1000 prior curves, seed 20261203
    python benchmarks/curves.py --families all              # off-prior: all eleven families
    python benchmarks/curves.py --curves benchmarks/data/nb201_curves.csv --split test
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.core.errors import ConfigError  # noqa: E402
from nas.curves.predict import CurvePredictor  # noqa: E402
from nas.curves.prior import ALL_FAMILIES, LCPFN_FAMILIES, MAX_EPOCHS, sample_curves  # noqa: E402

ALPHAS = np.logspace(-3, 1.5, 400)


def read_curves(path: Path, split: str | None) -> list[np.ndarray]:
    """Curves from a ``curve,epoch,value[,split]`` CSV, each ordered by epoch (1..L without gaps).

    The curve set of ``benchmarks/curve_set.py`` (``index,epoch,val_accuracy[,split]``,
    accuracies in percent) is read as it is: ``index`` names the curve and the
    accuracy is divided by 100, so the one file feeds both replay benchmarks.
    """
    rows: dict[str, dict[int, float]] = defaultdict(dict)
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        columns = set(reader.fieldnames or ())
        if {"index", "epoch", "val_accuracy"} <= columns:
            name_column, value_column, scale = "index", "val_accuracy", 0.01
        else:
            name_column, value_column, scale = "curve", "value", 1.0
            missing = {"curve", "epoch", "value"} - columns
            if missing:
                raise ConfigError(
                    f"{path}: columns {sorted(missing)} are missing; expected curve,epoch,value[,split]"
                    " or index,epoch,val_accuracy[,split] (the curve set of benchmarks/curve_set.py)"
                )
        for row in reader:
            if split is not None and row.get("split") != split:
                continue
            rows[row[name_column]][int(row["epoch"])] = float(row[value_column]) * scale
    curves = []
    for name, points in sorted(rows.items()):
        if sorted(points) != list(range(1, len(points) + 1)) or not 2 <= len(points) <= MAX_EPOCHS:
            raise ConfigError(
                f"{path}: curve {name!r} must have epochs 1..L without gaps, 2 <= L <= {MAX_EPOCHS}"
            )
        curves.append(np.array([points[e] for e in range(1, len(points) + 1)]))
    if not curves:
        raise ConfigError(f"{path}: no curves (split={split!r})")
    return curves


def pow3_fit(observed: np.ndarray, horizon: int, min_std: float) -> tuple[float, float]:
    """(prediction at ``horizon``, residual std) of the least-squares pow3 fit.

    For a fixed ``alpha`` the model ``c - a * x**-alpha`` is linear in
    ``(c, a)``: solved exactly (pseudo-inverse) for every ``alpha`` of the
    grid at once, and the ``alpha`` with the smallest residual wins.
    """
    x = np.arange(1, len(observed) + 1, dtype=np.float64)
    powers = x[None, :] ** -ALPHAS[:, None]  # (alphas, k)
    design = np.stack([np.ones_like(powers), -powers], axis=-1)  # (alphas, k, 2)
    coef = np.linalg.pinv(design) @ observed  # (alphas, 2)
    rss = np.sum((np.einsum("akp,ap->ak", design, coef) - observed) ** 2, axis=1)
    best = int(np.argmin(rss))
    prediction = float(coef[best, 0] - coef[best, 1] * horizon ** -ALPHAS[best])
    std = max(float(np.sqrt(rss[best] / max(len(observed) - 3, 1))), min_std)
    return prediction, std


def gaussian_log_pdf(y: float, mean: float, std: float) -> float:
    return float(-0.5 * np.log(2 * np.pi * std**2) - 0.5 * ((y - mean) / std) ** 2)


def evaluate(
    curves: list[np.ndarray], cuts: list[float], model: CurvePredictor, min_std: float
) -> list[tuple]:
    rows = []
    for cut in cuts:
        prefixes = [c[: max(1, int(round(cut * len(c))))] for c in curves]
        finals = np.array([c[-1] for c in curves])
        horizons = [len(c) for c in curves]
        ll = model.log_likelihood(prefixes, horizons, finals)
        median = model.predict(prefixes, horizons, levels=(0.5,)).median
        rows.append((cut, "lcpfn", float(ll.mean()), float(np.abs(median - finals).mean())))
        fits = [pow3_fit(p, h, min_std) for p, h in zip(prefixes, horizons, strict=True)]
        pow3_ll = [gaussian_log_pdf(y, m, s) for y, (m, s) in zip(finals, fits, strict=True)]
        pow3_err = [abs(y - m) for y, (m, _) in zip(finals, fits, strict=True)]
        rows.append((cut, "pow3", float(np.mean(pow3_ll)), float(np.mean(pow3_err))))
        last_ll = [gaussian_log_pdf(y, p[-1], s) for y, p, (_, s) in zip(finals, prefixes, fits, strict=True)]
        last_err = [abs(y - p[-1]) for y, p in zip(finals, prefixes, strict=True)]
        rows.append((cut, "last", float(np.mean(last_ll)), float(np.mean(last_err))))
    return rows


def time_inference(model: CurvePredictor, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds of one batched prediction for 32 curves of 20 observed epochs.

    On a shared machine the wall time includes waiting for a core; the
    process CPU time is the work itself.
    """
    _, curves = sample_curves(7, 32)
    prefixes = [c[:20] for c in curves]
    model.prob_above(prefixes, MAX_EPOCHS, 0.5)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        model.prob_above(prefixes, MAX_EPOCHS, 0.5)
        wall.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.process_time() - started_cpu))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--curves", type=Path, help="CSV of real curves (curve,epoch,value[,split])")
    parser.add_argument("--split", help="only rows whose split column has this value")
    parser.add_argument("--n", type=int, default=1000, help="prior curves when --curves is not given")
    parser.add_argument("--seed", type=int, default=20261203, help="seed of the prior curves (held out)")
    parser.add_argument(
        "--families",
        choices=["lcpfn", "all"],
        default="lcpfn",
        help="prior curves from LC-PFN's three families (the training prior) or all eleven (off-prior)",
    )
    parser.add_argument("--cuts", default="0.1,0.2,0.4")
    parser.add_argument("--min-std", type=float, default=0.005, help="floor of the baselines' std")
    parser.add_argument("--weights", type=Path, help="weights file (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50, help="timed repeats of the 32-curve prediction")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = CurvePredictor.load(args.weights)
    if args.curves:
        curves, source = read_curves(args.curves, args.split), f"{args.curves} (split={args.split})"
    else:
        families = LCPFN_FAMILIES if args.families == "lcpfn" else ALL_FAMILIES
        _, noisy = sample_curves(args.seed, args.n, families)
        curves = list(noisy)
        source = f"{args.n} prior curves ({args.families} families) of {MAX_EPOCHS} epochs, seed {args.seed}"
    cuts = [float(c) for c in args.cuts.split(",")]
    rows = evaluate(curves, cuts, model, args.min_std)
    print(
        f"# {date.today()}  {platform.node()}  {platform.processor() or platform.machine()}  threads={args.threads}"
    )
    print(f"# curves: {source}")
    print(f"{'observed':>8}  {'method':<6}  {'log-lik':>8}  {'MAE median':>10}")
    for cut, method, ll, mae in rows:
        print(f"{cut:>8.0%}  {method:<6}  {ll:>8.3f}  {mae:>10.4f}")
    wall, cpu = time_inference(model, args.repeats)
    print(
        f"inference, 32 curves x 20 epochs: {wall:.1f} ms wall, {cpu:.1f} ms CPU (medians of {args.repeats})"
    )


if __name__ == "__main__":
    main()
