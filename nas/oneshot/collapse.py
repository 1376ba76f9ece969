"""Detecting skip-connection collapse, the failure mode of differentiable search.

As the supernet trains, parameter-free ``skip_connect`` edges win the
softmax because they help the *supernet* optimise, not because the cell they
produce is good: plain DARTS on NAS-Bench-201 ends at the all-skip cell
(54.30% test accuracy in the benchmark paper). DARTS+ stops the search when
the derived normal cell holds two or more skip connections.

The detector looks at two signals:

* the share of ``skip_connect`` among the live ops (not ``none``) of the
  derived normal cell (NAS-Bench-201 has one cell; DARTS' normal cell has 8
  ops). It is collapse when the share reaches ``threshold``: by default the
  space's own (its one-shot view's ``collapse_threshold``: half the edges on
  NAS-Bench-201, two of eight ops on DARTS, DARTS+' rule),
  provided skip's mean weight has risen above uniform (at near-uniform alpha,
  early in a search, the derived cell is noise and a skip-heavy draw is not
  collapse);
* the trend of the mean softmaxed skip weight over the normal edges in the
  last epochs: rising while skip already leads on a threshold's share of the
  edges is collapse in the making.

Which ops form the normal cell and which alpha edges belong to it is the
space's knowledge: its one-shot view (:class:`nas.core.oneshot.OneShotView`)
supplies ``cell_ops`` and ``normal_edges``; this module is generic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.oneshot import OneShotView, oneshot_view
from nas.core.space import SearchSpace

SKIP = "skip_connect"
#: Epochs over which the trend of the skip weight is fitted.
TREND_WINDOW = 3
#: With an alpha history, skip's mean weight must exceed uniform (1 / ops) by this factor before a
#: skip-heavy derived cell or a rising skip trend counts: at near-uniform alpha both are noise.
ABOVE_UNIFORM = 1.1

Alphas = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class CollapseReport:
    """What the detector saw; ``collapsed`` is the verdict and ``message`` says why."""

    collapsed: bool
    skip_share: float
    threshold: float
    skip_ops: int
    live_ops: int
    skip_alpha: float | None = None
    skip_alpha_trend: float | None = None
    skip_leading_share: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collapse_view(space: SearchSpace) -> OneShotView | None:
    """The one-shot view of ``space`` if it has the collapse signals, else None."""
    view = oneshot_view(space)
    if view is None or view.cell_ops is None or view.normal_edges is None or view.collapse_threshold is None:
        return None
    return view


def normal_cell_ops(space: SearchSpace, arch: Architecture) -> list[str]:
    """The ops of ``arch``'s normal cell (NAS-Bench-201's only cell)."""
    space.validate(arch)
    view = collapse_view(space)
    if view is None:
        raise ConfigError(
            f"space {space.name!r} has no normal cell; its one-shot view has no collapse signals"
        )
    return view.cell_ops(arch)  # type: ignore[misc]


def detect_collapse(
    space: SearchSpace,
    arch: Architecture,
    alpha_history: Sequence[Alphas] = (),
    threshold: float | None = None,
) -> CollapseReport | None:
    """The collapse verdict for a derived ``arch`` and the softmaxed alpha of each epoch so far.

    Returns None for spaces without cells (single-path views), where the
    notion does not apply.
    """
    view = collapse_view(space)
    if view is None:
        return None
    normal_edges = view.normal_edges
    limit = view.collapse_threshold if threshold is None else float(threshold)
    ops = normal_cell_ops(space, arch)
    live = [op for op in ops if op != "none"]
    skips = sum(op == SKIP for op in live)
    share = skips / len(live) if live else 0.0
    skip_alpha = trend = leading = None
    series = []
    uniform = 0.0
    for alphas in alpha_history:
        edges = normal_edges(alphas)  # type: ignore[misc]
        if edges:
            series.append(float(np.mean([edge.get(SKIP, 0.0) for edge in edges])))
            uniform = 1.0 / len(edges[0])
    if series:
        skip_alpha = series[-1]
        edges = normal_edges(alpha_history[-1])  # type: ignore[misc]
        leading = float(np.mean([max(edge, key=edge.__getitem__) == SKIP for edge in edges]))
    if len(series) >= 2:
        recent = series[-TREND_WINDOW:]
        trend = float(np.polyfit(np.arange(len(recent)), recent, 1)[0])
    # Near uniform, which op "leads" an edge and which way skip's weight drifts are noise
    # (alpha that never trained, e.g. warm-up for every epoch), so both rules need skip above it.
    above_uniform = skip_alpha is None or skip_alpha > ABOVE_UNIFORM * uniform
    by_share = share >= limit and above_uniform
    by_trend = trend is not None and trend > 0 and leading is not None and leading >= limit and above_uniform
    collapsed = by_share or by_trend
    parts = [f"{skips} of {len(live)} live op(s) of the derived normal cell are {SKIP} (share {share:.2f})"]
    if skip_alpha is not None:
        parts.append(f"mean skip weight {skip_alpha:.3f}")
    if trend is not None:
        parts.append(f"trend {trend:+.4f}/epoch")
    if leading is not None:
        parts.append(f"skip leads on {leading:.0%} of the normal edges")
    verdict = "skip-connection collapse" if collapsed else "no collapse"
    message = f"{verdict} (threshold {limit:.2f}): " + "; ".join(parts)
    return CollapseReport(
        collapsed,
        share,
        float(limit),
        skips,
        len(live),
        skip_alpha,
        trend,
        leading,
        message,  # type: ignore[arg-type]
    )


__all__ = ["CollapseReport", "collapse_view", "detect_collapse", "normal_cell_ops"]
