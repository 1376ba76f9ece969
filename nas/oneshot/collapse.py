"""Detecting skip-connection collapse, the failure mode of differentiable search.

As the supernet trains, parameter-free ``skip_connect`` edges win the
softmax because they help the *supernet* optimise, not because the cell they
produce is good: plain DARTS on NAS-Bench-201 ends at the all-skip cell
(54.30% test accuracy in the benchmark paper). DARTS+ stops the search when
the derived normal cell holds two or more skip connections.

The detector looks at two signals:

* the share of ``skip_connect`` among the live ops (not ``none``) of the
  derived normal cell (NAS-Bench-201 has one cell; DARTS' normal cell has 8
  ops). It is collapse when the share reaches ``threshold``: by default half
  the edges on ``nb201`` and two of eight ops on ``darts`` (DARTS+' rule),
  provided skip's mean weight has risen above uniform (at near-uniform alpha,
  early in a search, the derived cell is noise and a skip-heavy draw is not
  collapse);
* the trend of the mean softmaxed skip weight over the normal edges in the
  last epochs: rising while skip already leads on a threshold's share of the
  edges is collapse in the making.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.space import SearchSpace

SKIP = "skip_connect"
#: Default collapse thresholds (share of skip among the derived normal cell's live ops).
DEFAULT_THRESHOLD: dict[str, float] = {"nb201": 0.5, "darts": 0.25}
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


def normal_cell_ops(space: SearchSpace, arch: Architecture) -> list[str]:
    """The ops of ``arch``'s normal cell (NAS-Bench-201's only cell)."""
    space.validate(arch)
    if space.name == "nb201":
        return [str(value) for _, value in arch.decisions]
    if space.name == "darts":
        return [str(value) for name, value in arch.decisions if name.startswith("normal.") and ".op" in name]
    raise ConfigError(f"space {space.name!r} has no normal cell; allowed: {', '.join(DEFAULT_THRESHOLD)}")


def _normal_edges(space: SearchSpace, alphas: Alphas) -> list[Mapping[str, float]]:
    if space.name == "darts":
        return [ops for edge, ops in alphas.items() if edge.startswith("normal.")]
    return list(alphas.values())


def detect_collapse(
    space: SearchSpace,
    arch: Architecture,
    alpha_history: Sequence[Alphas] = (),
    threshold: float | None = None,
) -> CollapseReport | None:
    """The collapse verdict for a derived ``arch`` and the softmaxed alpha of each epoch so far.

    Returns None for spaces without cells (``fbnet``, ``hybrid``), where the
    notion does not apply.
    """
    if space.name not in DEFAULT_THRESHOLD:
        return None
    limit = DEFAULT_THRESHOLD[space.name] if threshold is None else float(threshold)
    ops = normal_cell_ops(space, arch)
    live = [op for op in ops if op != "none"]
    skips = sum(op == SKIP for op in live)
    share = skips / len(live) if live else 0.0
    skip_alpha = trend = leading = None
    series = []
    uniform = 0.0
    for alphas in alpha_history:
        edges = _normal_edges(space, alphas)
        if edges:
            series.append(float(np.mean([edge.get(SKIP, 0.0) for edge in edges])))
            uniform = 1.0 / len(edges[0])
    if series:
        skip_alpha = series[-1]
        edges = _normal_edges(space, alpha_history[-1])
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
        collapsed=collapsed,
        skip_share=share,
        threshold=limit,
        skip_ops=skips,
        live_ops=len(live),
        skip_alpha=skip_alpha,
        skip_alpha_trend=trend,
        skip_leading_share=leading,
        message=message,
    )


__all__ = ["DEFAULT_THRESHOLD", "CollapseReport", "detect_collapse", "normal_cell_ops"]
