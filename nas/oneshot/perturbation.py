"""Perturbation-based selection (DARTS-PT, Wang et al. 2021): keep the op the supernet needs most.

Why not the largest alpha: alpha's magnitude says how much an op eased the
supernet's optimisation, not how much the op is worth. Skip connections win
alpha because they make a deep mixture train, which is the root of DARTS'
collapse; and after a short CPU search alpha is often near uniform anyway
(docs/oneshot.md). DARTS-PT instead asks the trained supernet: for each edge
in turn, remove each candidate op from the mixed sum and measure the
supernet on held-out images; the op whose removal hurts most is kept, and
the edge is fixed to it (one-hot) before the next edge is judged, so later
decisions see the earlier ones (progressive discretisation).

DARTS-PT measures accuracy; we measure the mean cross-entropy. Removing one
of five ops from a mixture changes a reduced supernet's accuracy by fractions
of a point, at the level of the held-out sample's noise: on the same trained
supernet, accuracy on 500 vs 2,250 images picked different cells (84.67 vs
76.26 in NAS-Bench-201's 12-epoch table), while the loss, a continuous
measure of the same thing, picked the same one (84.89) on both.

DARTS-PT fine-tunes the supernet for a few epochs after each decision; we
do not (one pass measured well on NAS-Bench-201, see docs/oneshot.md, and it
keeps selection a cheap read-out of a finished supernet: ``edges x ops``
evaluations of ``score_images`` held-out images). Edges are judged in the
supernet's order (input side first), so the result is deterministic.

The selected op of each edge gets strength ``1 + rise`` (``rise``: how much
the loss grows without it) and every other op 0, and the supernet's own
:meth:`~nas.supernet.CellSupernet.derive` turns that into an
architecture: on NAS-Bench-201 the kept op of every edge, on DARTS' space also the
two incoming edges per node whose kept op matters most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.oneshot.method import batch_statistics
from nas.supernet.base import CellPath

if TYPE_CHECKING:
    from nas.oneshot.differentiable import DifferentiableMethod


@dataclass(frozen=True)
class SelectionReport:
    """What perturbation selection measured: the supernet's held-out loss with each op removed."""

    base_loss: float
    images: int
    #: ``{edge label: {op: loss without it}}`` at the moment the edge was judged.
    without: dict[str, dict[str, float]]
    #: ``{edge label: kept op}``.
    kept: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "perturbation",
            "criterion": "cross-entropy",
            "base_loss": self.base_loss,
            "images": self.images,
            "without": self.without,
            "kept": self.kept,
        }


@torch.no_grad()
def perturbation_selection(method: DifferentiableMethod) -> tuple[Architecture, SelectionReport]:
    """The architecture DARTS-PT's progressive op selection reads off ``method``'s supernet."""
    data, settings = method.data, method.settings
    count = min(settings.score_images, len(data.y_arch))
    x, y = data.x_arch[:count], data.y_arch[:count]
    path = method.eval_path()
    weights = {name: tensor.clone() for name, tensor in path.weights.items()}
    supernet = method.supernet

    def loss() -> float:
        current = CellPath(weights=weights, edge_weights=path.edge_weights)
        total = 0.0
        with batch_statistics(supernet):
            for start in range(0, count, settings.eval_batch_size):
                stop = min(start + settings.eval_batch_size, count)
                logits = supernet(method.images(x[start:stop]), current)
                target = y[start:stop].to(method.device)
                total += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        return total / count

    base = loss()
    prefix = len(supernet.groups) > 1
    strength: dict[str, np.ndarray] = {}
    without: dict[str, dict[str, float]] = {}
    kept: dict[str, str] = {}
    for group in supernet.groups:
        matrix = weights[group.name]
        strength[group.name] = np.zeros(group.shape)
        for edge, label in enumerate(group.edges):
            row = matrix[edge].clone()
            before = base if not kept else loss()  # the supernet as the earlier decisions left it
            scores = []
            for op in range(len(group.ops)):
                matrix[edge] = row
                matrix[edge, op] = 0.0
                scores.append(loss())
            chosen = int(np.argmax(scores))
            matrix[edge] = 0.0
            matrix[edge, chosen] = 1.0
            strength[group.name][edge, chosen] = max(1e-6, 1.0 + scores[chosen] - before)
            name = f"{group.name}.{label}" if prefix else label
            without[name] = {op: score for op, score in zip(group.ops, scores, strict=True)}
            kept[name] = group.ops[chosen]
    arch = supernet.derive(strength)
    return arch, SelectionReport(base_loss=base, images=count, without=without, kept=kept)


__all__ = ["SelectionReport", "perturbation_selection"]
