"""FBNet's additive latency lookup tables, fitted on a file of measured device latencies.

A table of per-architecture latencies (one column per device) is explained
as ``constant + one entry per (decision, value)``: the least-squares fit on
the space's one-hot encoding, as :class:`predictors.latency.LatencyLUT`
(``loss="squared"``) fits it. Specialisation (:mod:`nas.specialize`) and the
budgeted one-shot methods (:mod:`nas.oneshot.resource`) both read device
latencies through this one fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.core.space import SearchSpace
from nas.data.tables import Table

#: Columns of a latency table that are not devices.
NOT_DEVICES = frozenset({"index", "arch"})


@dataclass(frozen=True)
class AdditiveFit:
    """One device's fitted table: ``constant`` plus ``costs[(decision, value)]`` (ms)."""

    device: str
    constant: float
    costs: dict[tuple[str, Any], float]


def devices(table: Table) -> list[str]:
    """The device columns of a latency table."""
    return [c for c in table.columns if c not in NOT_DEVICES]


def fit_additive(
    space: SearchSpace, table: Table, names: Iterable[str] | None = None
) -> dict[str, AdditiveFit]:
    """The additive table of each device in ``names`` (every device column when None).

    Minimum-norm least squares, ``pinv(X'X) X'y``: the one-hot blocks are
    collinear with the constant, so each decision's entries are defined up to
    a shift (sums over one value per decision are unique). Solved through the
    small normal matrix: an SVD of the tall design crawls on a busy CPU. Rows
    a device has no figure for (NaN) are left out of that device's fit.
    """
    keys = [(name, value) for name, values in space.choices().items() for value in values]
    column = {key: i for i, key in enumerate(keys)}
    x = np.zeros((len(table.archs), len(keys) + 1))
    x[:, -1] = 1.0
    for row, arch in enumerate(table.archs):  # the one-hot encoding, without re-validating every row
        x[row, [column[(name, arch[name])] for name in space.choices()]] = 1.0
    fits = {}
    for device in devices(table) if names is None else names:
        y = np.asarray(table.column(device), dtype=np.float64)
        keep = np.isfinite(y)
        design = x[keep]
        coef = np.linalg.pinv(design.T @ design, hermitian=True) @ (design.T @ y[keep])
        fits[device] = AdditiveFit(
            device, float(coef[-1]), dict(zip(keys, map(float, coef[:-1]), strict=True))
        )
    return fits


__all__ = ["NOT_DEVICES", "AdditiveFit", "devices", "fit_additive"]
