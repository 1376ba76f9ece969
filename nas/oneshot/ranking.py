"""How well does the supernet rank architectures? Rank correlation against a tabular benchmark.

Weight-sharing rankings are often poor: a sub-network's accuracy with
inherited weights can order cells quite differently from training each cell
alone. Where the stand-alone results are known (NAS-Bench-201's table), the
report samples cells, scores each with the trained supernet
(:meth:`~nas.oneshot.method.OneShotMethod.score`: inherited weights,
BatchNorm recalibrated) and gives Kendall's tau and Spearman's rho against
the table's validation accuracy, so a user sees how far to trust the search.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.leakage import check_report_column
from nas.core.oneshot import KINDS, oneshot_view, spaces_with
from nas.core.space import SearchSpace
from nas.data.paths import data_path
from nas.oneshot.method import OneShotMethod


def table_of(space: SearchSpace) -> str | None:
    """The data file of stand-alone results that ``space``'s one-shot view ranks against, if any."""
    view = oneshot_view(space)
    return None if view is None else view.table


def tabular_spaces() -> list[str]:
    """Registered spaces with a table of stand-alone results (for messages)."""
    from nas.core.space import SPACES

    return [n for n in spaces_with(KINDS) if table_of(SPACES.get(n)) is not None]  # type: ignore[arg-type]


@dataclass(frozen=True)
class RankReport:
    """Kendall's tau and Spearman's rho between supernet scores and table values over ``samples`` cells."""

    kendall_tau: float
    spearman: float
    samples: int
    metric: str
    table: str
    pairs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("kendall_tau", "spearman"):
            if not math.isfinite(data[key]):
                data[key] = None  # JSON has no NaN
        return data


def load_table(space: SearchSpace, path: str | os.PathLike[str] | None = None) -> Any:
    """The tabular benchmark of ``space`` (default: the table its one-shot view names)."""
    from nas.data.tables import Table

    if path is None:
        table = table_of(space)
        if table is None:
            raise ConfigError(
                f"no tabular benchmark for space {space.name!r} to rank against; "
                f"rank_correlation works on {', '.join(tabular_spaces())}"
            )
        path = data_path(table)
    return Table.load(path, space)


def percentile(table: Any, arch: Architecture, metric: str) -> float:
    """Share (%) of the table's architectures at least as good as ``arch`` on ``metric`` (top x%)."""
    values = np.asarray(table.column(metric), dtype=float)
    value = table.value(arch, metric)
    return 100.0 * float(np.mean(values[np.isfinite(values)] >= value))


def rank_correlation(
    method: OneShotMethod,
    samples: int,
    table_path: str | os.PathLike[str] | None = None,
    metric: str = "cifar10-val",
) -> RankReport:
    """Score ``samples`` distinct random cells with the supernet and correlate with the table."""
    from scipy import stats

    if samples < 3:
        raise ConfigError(f"rank_correlation={samples} is too few cells to rank; use at least 3")
    check_report_column(metric, "rank_metric")  # a report after the search: test columns from the allow-list
    table = load_table(method.space, table_path)
    table.column(metric)  # an unknown column fails before any scoring
    rng = np.random.default_rng(np.random.SeedSequence([method.seed, 0xC0DE]))
    chosen: dict[str, Architecture] = {}
    for _ in range(100 * samples):
        arch = method.space.sample(rng)
        chosen.setdefault(method.space.canonical_key(arch), arch)
        if len(chosen) == samples:
            break
    archs = list(chosen.values())
    scores = [method.score(arch) for arch in archs]
    truth = [table.value(arch, metric) for arch in archs]
    tau = float(stats.kendalltau(scores, truth).statistic)
    rho = float(stats.spearmanr(scores, truth).statistic)
    pairs = [
        {"arch": method.space.format(a), "supernet_accuracy": s, metric: t}
        for a, s, t in zip(archs, scores, truth, strict=True)
    ]
    return RankReport(
        kendall_tau=tau, spearman=rho, samples=len(archs), metric=metric, table=str(table.path), pairs=pairs
    )


__all__ = ["RankReport", "load_table", "percentile", "rank_correlation", "table_of", "tabular_spaces"]
