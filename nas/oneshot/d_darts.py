"""D-DARTS (Heuillet et al. 2022): one alpha per cell instead of one per cell type.

DARTS shares one alpha matrix among all cells of a type, so a cell near the
input and one near the output must agree on their ops, and the shared
gradient averages what each position wants. D-DARTS distributes the search:
every cell of the supernet gets its own ``(edges, ops)`` alpha, trained by the
same validation loss but free to move on its own (the mixed op of cell ``i``
runs with ``softmax(alpha_i)``; :attr:`~nas.supernet.base.CellSupernet.cell_groups`
orders the cells, :class:`~nas.supernet.base.CellPath` carries one matrix per
cell).

**Derivation aggregates.** D-DARTS derives a different cell at every position,
but our genotypes cannot hold that: ``nb201``'s is one cell repeated in every
stage, ``darts``' one normal and one reduction cell. The cell type's genotype
is therefore read off the *mean* of its cells' ``softmax(alpha_i)``: each
cell votes with its whole distribution (not just its argmax), so an op that
several positions like wins over one a single position insists on. That
mean is also what the alpha curves, the collapse detector and the read-out see
(``expected_weights``); what each cell chose on its own (its strongest op per
edge) and how often the cells agree with the derived cell are reported with
the result (``selection_report``, stored as ``user_attrs.selection``).
Perturbation selection (``selection``) is refused: removing an op from a
cell type would mean removing it from cells that weigh it differently.

Hooks: ``alpha_shapes`` (a matrix per cell, keys ``<type>_<cell number>``),
``mixed_path`` (the per-cell weights), ``op_weights`` / ``expected_weights``
(the mean per type), ``selection_report``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.supernet.base import CellPath


def cell_key(group: str, number: int) -> str:
    """The alpha name of search cell ``number`` (0-based, in forward order) of type ``group``."""
    return f"{group}_{number}"


@ONESHOT.register("d_darts")
class DDartsMethod(DifferentiableMethod):
    """DARTS with a separate alpha for every cell; the cell type's genotype from the mean over its cells."""

    name = "d_darts"

    def alpha_shapes(self) -> dict[str, tuple[int, int]]:
        shapes = {g.name: g.shape for g in self.supernet.groups}
        return {cell_key(group, i): shapes[group] for i, group in enumerate(self.supernet.cell_groups)}

    def cell_weights(self) -> list[torch.Tensor]:
        """``softmax(alpha_i)`` of every search cell, in the supernet's order."""
        return [
            torch.softmax(self.alpha[cell_key(group, i)], dim=-1)
            for i, group in enumerate(self.supernet.cell_groups)
        ]

    def aggregate(self, cells: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per cell type, the mean of its cells' op weights."""
        groups = self.supernet.cell_groups
        return {
            g.name: torch.stack([w for w, group in zip(cells, groups, strict=True) if group == g.name]).mean(
                0
            )
            for g in self.supernet.groups
        }

    def op_weights(self) -> dict[str, torch.Tensor]:
        return self.aggregate(self.cell_weights())

    def mixed_path(self, detach: bool = False, expected: bool = False) -> CellPath:
        """Every op on every edge, each cell weighted by its own ``softmax(alpha_i)``."""
        cells = self.cell_weights()
        if detach:
            cells = [w.detach() for w in cells]
        return CellPath(weights=self.aggregate(cells), cell_weights=cells)

    def selection_report(self) -> dict[str, Any]:
        """Each cell's own strongest op per edge, and the share of (cell, edge) pairs agreeing with the read-out."""
        groups = {g.name: g for g in self.supernet.groups}
        with torch.no_grad():
            cells = [w.cpu().numpy() for w in self.cell_weights()]
            derived = {name: w.cpu().numpy().argmax(-1) for name, w in self.expected_weights().items()}
        own: dict[str, dict[str, str]] = {}
        agree = []
        for i, (weights, group) in enumerate(zip(cells, self.supernet.cell_groups, strict=True)):
            best = weights.argmax(-1)
            own[cell_key(group, i)] = {
                edge: groups[group].ops[int(op)] for edge, op in zip(groups[group].edges, best, strict=True)
            }
            agree.extend((best == derived[group]).tolist())
        return {
            "method": "per-cell alpha, mean per cell type",
            "cells": own,
            "agreement": float(np.mean(agree)),
        }


__all__ = ["DDartsMethod", "cell_key"]
