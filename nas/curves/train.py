"""Train the curve PFN on freshly sampled prior curves: ``python -m nas.curves.train``.

A PFN never sees real data: every step draws new curves from the prior
(:mod:`nas.curves.prior`), hides all epochs after a random cut and learns
to predict the hidden values, so minimising the loss approximates the
Bayesian posterior predictive under that prior (Müller et al. 2022;
Adriaensen et al. 2023). Nothing overfits because no curve is seen twice.

The run is seeded (numpy generator for the curves and cuts, torch seed for
the initialisation) and single-threaded by default, so the same command
on the same machine writes the same file. It writes the weights (a dict of
tensors and plain values, loadable with ``torch.load(weights_only=True)``)
atomically, plus ``<file>.sha256``; the shipped file's checksum is
:data:`nas.curves.weights.WEIGHTS_SHA256`, which must be updated by hand
when the shipped file is regenerated (the command prints the line).

    python -m nas.curves.train                       # the shipped model (2000 steps: about 2 min on one core)
    python -m nas.curves.train --steps 200 --output /tmp/lcpfn.pt   # a quick smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from nas.core.errors import ConfigError
from nas.core.files import atomic_write
from nas.curves.bar import BarDistribution, borders_from_values
from nas.curves.model import CurvePFN
from nas.curves.prior import ALL_FAMILIES, LCPFN_FAMILIES, CurvePrior
from nas.curves.weights import DEFAULT_WEIGHTS, FORMAT

#: Fixed cuts (fractions of the curve observed) at which training progress is reported.
PROGRESS_CUTS = (0.1, 0.2, 0.4)


def _lr(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over the first 5% of the steps, then cosine decay to zero."""
    warm = max(1, steps // 20)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def _query_indices(rng: np.random.Generator, k: int, length: int, queries: int) -> torch.Tensor:
    """Indices of the hidden epochs a step learns from: the last one always, others at random.

    Predicting every hidden epoch would double the tokens of a step; a few
    random ones give the same expected loss, and the last epoch, which the
    stoppers ask about, is always among them.
    """
    others = rng.choice(np.arange(k, length - 1), size=min(queries - 1, length - 1 - k), replace=False)
    return torch.as_tensor(np.sort(np.append(others, length - 1)))


def final_value_nll(model: CurvePFN, bar: BarDistribution, curves: np.ndarray, cut: float) -> float:
    """Mean negative log-likelihood of the last epoch's value given the first ``cut`` of each curve."""
    values = torch.as_tensor(curves, dtype=torch.float32)
    n, length = values.shape
    k = max(1, int(round(cut * length)))
    epochs = torch.arange(1, k + 1, dtype=torch.float32).expand(n, k)
    query = torch.full((n, 1), float(length))
    with torch.no_grad():
        logits = model(epochs, values[:, :k], query)
    return float(-bar.log_density(logits[:, 0], values[:, -1]).mean())


def train(
    *,
    seed: int = 0,
    steps: int = 2000,
    batch: int = 32,
    width: int = 64,
    depth: int = 4,
    heads: int = 4,
    buckets: int = 200,
    queries: int = 16,
    border_curves: int = 20_000,
    lr: float = 1e-3,
    families: tuple[str, ...] = LCPFN_FAMILIES,
    log_every: int = 250,
) -> dict[str, object]:
    """Train a model; returns the state to save (see :mod:`nas.curves.weights` for the format).

    The bucket borders follow the values of ``border_curves`` prior curves
    (finer where values are dense); ``queries`` hidden epochs are predicted per step.
    """
    if steps < 1 or batch < 1:
        raise ConfigError(f"steps={steps!r} and batch={batch!r} are not allowed; both must be >= 1")
    prior = CurvePrior(families=families, normalise=len(families) > len(LCPFN_FAMILIES))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    _, sample = prior.sample(rng, border_curves)
    borders = borders_from_values(torch.as_tensor(sample), buckets)
    bar = BarDistribution(borders)
    model = CurvePFN(buckets, width=width, depth=depth, heads=heads)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    _, progress_curves = prior.sample(np.random.default_rng(seed + 1_000_003), 512)
    length = prior.length
    all_epochs = torch.arange(1, length + 1, dtype=torch.float32)
    started = time.perf_counter()
    running = 0.0
    for step in range(steps):
        _, curves = prior.sample(rng, batch)
        values = torch.as_tensor(curves, dtype=torch.float32)
        k = int(rng.integers(1, length))  # observe epochs 1..k, predict later ones
        hidden = _query_indices(rng, k, length, queries)
        logits = model(
            all_epochs[:k].expand(batch, k), values[:, :k], all_epochs[hidden].expand(batch, len(hidden))
        )
        loss = -bar.log_density(logits, values[:, hidden]).mean()
        for group in optimiser.param_groups:
            group["lr"] = _lr(step, steps, lr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        running += float(loss.detach())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            model.eval()
            nll = [final_value_nll(model, bar, progress_curves, cut) for cut in PROGRESS_CUTS]
            model.train()
            print(
                f"step {step + 1:>6}/{steps}  loss {running / log_every:8.4f}  final-value NLL at "
                + "  ".join(f"{c:.0%}: {v:7.3f}" for c, v in zip(PROGRESS_CUTS, nll, strict=True))
                + f"  {time.perf_counter() - started:6.0f} s",
                flush=True,
            )
            running = 0.0
    return {
        "format": FORMAT,
        "config": dict(model.config),
        "borders": borders,
        "state": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
        "trained": {
            "seed": seed,
            "steps": steps,
            "batch": batch,
            "queries": queries,
            "lr": lr,
            "families": list(families),
        },
    }


def save(state: dict[str, object], path: Path) -> str:
    """Write ``state`` atomically to ``path`` and its checksum to ``path.sha256``; returns the checksum."""
    atomic_write(path, lambda stream: torch.save(state, stream))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    atomic_write(
        path.with_name(path.name + ".sha256"),
        lambda stream: stream.write(f"{digest}  {path.name}\n".encode()),
    )
    return digest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--buckets", type=int, default=200)
    parser.add_argument("--queries", type=int, default=16, help="hidden epochs predicted per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--families", choices=["lcpfn", "all"], default="all")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1: reproducible)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    state = train(
        seed=args.seed,
        steps=args.steps,
        batch=args.batch,
        width=args.width,
        depth=args.depth,
        heads=args.heads,
        buckets=args.buckets,
        queries=args.queries,
        lr=args.lr,
        families=LCPFN_FAMILIES if args.families == "lcpfn" else ALL_FAMILIES,
    )
    digest = save(state, args.output)
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.2f} MB), sha256 {digest}")
    if args.output.resolve() == DEFAULT_WEIGHTS.resolve():
        print(f'now set WEIGHTS_SHA256 = "{digest}" in nas/curves/weights.py')


if __name__ == "__main__":
    main()
