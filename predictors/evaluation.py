"""The evaluation protocol shared by ``nas bench predictors`` and ``benchmarks/``.

A predictor is fitted on ``n`` architectures drawn at random (seeded) from a
benchmark table and judged by rank metrics on the others, for several
training sizes and seeds: the protocol of White et al. 2021. Both the command
line and the benchmark scripts call :func:`predictor_study`, so their numbers
are the same computation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.core import PREDICTORS, Architecture, ConfigError, SearchSpace
from nas.core.options import check_option_names
from predictors.combine import rank_vote
from predictors.metrics import kendall_tau, rank_metrics, spearman

log = logging.getLogger(__name__)


def split_indices(count: int, train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(count)`` into ``train`` indices and the rest."""
    if isinstance(train, bool) or not isinstance(train, int) or not 1 <= train < count:
        raise ConfigError(
            f"training size {train!r} is not allowed for {count} items; expected 1..{count - 1}"
        )
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:train]), np.sort(order[train:])


@dataclass(frozen=True)
class StudyRow:
    """One (predictor, training size, seed) result."""

    predictor: str
    train_size: int
    seed: int
    test_size: int
    spearman: float
    kendall_tau: float
    top_k: float
    seconds: float


def predictor_study(
    space: SearchSpace,
    archs: Sequence[Architecture],
    targets: Sequence[float] | np.ndarray,
    predictors: Sequence[str] | Mapping[str, tuple[str, Mapping[str, Any]]],
    train_sizes: Sequence[int] = (50, 100, 500),
    seeds: Sequence[int] = (0, 1, 2),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    test_limit: int | None = None,
    top_k: int | float = 0.01,
    progress: Callable[[StudyRow], None] | None = None,
) -> list[StudyRow]:
    """Fit each predictor on each training size and seed; score it on the held-out rest.

    ``predictors`` lists registered names, or maps a row label to
    ``(registered name, options)`` to compare variants of one predictor.
    ``options`` maps a predictor name (or label) to constructor options.
    ``test_limit`` caps the held-out set at a seeded random subset (for quick
    runs); ``None`` scores every remaining architecture. ``progress`` is
    called with each row as it completes.
    """
    y = np.asarray(targets, dtype=np.float64)
    if len(archs) != y.size:
        raise ConfigError(f"got {len(archs)} architectures but {y.size} targets")
    options = dict(options or {})
    variants: dict[str, tuple[str, dict[str, Any]]] = (
        {label: (name, dict(opts)) for label, (name, opts) in predictors.items()}
        if isinstance(predictors, Mapping)
        else {name: (name, {}) for name in predictors}
    )
    unknown = set(options) - set(variants)
    if unknown:
        raise ConfigError(
            f"options given for predictor(s) {sorted(unknown)} that are not run: {list(variants)}"
        )
    classes = {}
    for label, (name, opts) in variants.items():  # fail on typos before any work
        cls, kwargs = PREDICTORS.get(name), {**opts, **options.get(label, {})}
        # e.g. proxy features for ``gcn``, which reads graphs and takes none: an error naming the options.
        check_option_names("predictor", name, cls, kwargs, skip=("self", "space", "seed"))
        classes[label] = (cls, kwargs)
    rows: list[StudyRow] = []
    for size in train_sizes:
        for seed in seeds:
            train, test = split_indices(len(archs), size, seed)
            if test_limit is not None and test.size > test_limit:
                test = np.sort(np.random.default_rng(seed + 1).choice(test, size=test_limit, replace=False))
            train_archs = [archs[i] for i in train]
            test_archs = [archs[i] for i in test]
            for name, (cls, kwargs) in classes.items():
                start = time.perf_counter()
                model = cls(space, seed=seed, **kwargs)
                predicted = model.fit(train_archs, y[train]).predict(test_archs)
                metrics = rank_metrics(predicted, y[test], top_k)
                row = StudyRow(
                    name, size, seed, int(test.size), seconds=time.perf_counter() - start, **metrics
                )
                log.info("%s", row)
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def summarise(rows: Sequence[StudyRow]) -> list[dict[str, Any]]:
    """Mean and std over seeds per (predictor, training size), in first-seen order."""
    groups: dict[tuple[str, int], list[StudyRow]] = {}
    for row in rows:
        groups.setdefault((row.predictor, row.train_size), []).append(row)
    summary = []
    for (name, size), group in groups.items():
        entry: dict[str, Any] = {"predictor": name, "train_size": size, "seeds": len(group)}
        for metric in ("kendall_tau", "spearman", "top_k", "seconds"):
            values = np.asarray([getattr(r, metric) for r in group])
            entry[metric] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std())
        summary.append(entry)
    return summary


@dataclass(frozen=True)
class ProxyRow:
    """One proxy (or a vote) judged against a metric on a fixed set of architectures."""

    proxy: str
    spearman: float
    kendall_tau: float
    #: Spearman between our score and the reference (e.g. NASLib's) score of the same proxy.
    agreement: float | None = None


def proxy_study(
    scores: Mapping[str, np.ndarray],
    target: Sequence[float] | np.ndarray,
    reference: Mapping[str, np.ndarray] | None = None,
    votes: Mapping[str, Sequence[str]] | None = None,
) -> list[ProxyRow]:
    """Rank correlation of each proxy's scores (and of rank votes) with ``target``.

    ``reference`` holds another implementation's scores under the same names
    (agreement column); ``votes`` maps a label to the proxies it combines
    (:func:`predictors.combine.rank_vote`). Non-finite scores rank lowest.
    """
    y = np.asarray(target, dtype=np.float64)
    rows = []
    for name, values in scores.items():
        column = np.asarray(values, dtype=np.float64)
        if column.size != y.size:
            raise ConfigError(f"proxy {name!r} has {column.size} scores for {y.size} targets")
        ranked = rank_vote({name: column})  # ranks: robust to -inf/NaN from undefined proxies
        agreement = None
        if reference is not None and name in reference:
            agreement = spearman(ranked, rank_vote({name: reference[name]}))
        rows.append(ProxyRow(name, spearman(ranked, y), kendall_tau(ranked, y), agreement))
    for label, members in (votes or {}).items():
        combined = rank_vote(scores, members)
        rows.append(ProxyRow(label, spearman(combined, y), kendall_tau(combined, y)))
    return rows
