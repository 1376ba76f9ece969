"""A specialisation study (``nas specialize``) seen per device: candidates, budgets, Pareto fronts, picks.

Pure functions over stored trials (no Streamlit), so the dashboard's chart
and its tests share them. A specialisation study holds, per target (a device
and a latency budget), every scored sub-network (``kind: candidate``) and the
one selected for it (``kind: specialized``, the one ``nas export`` ships), and
whether it was exported (an ``export`` artifact, recorded by ``nas export``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.core.pareto import pareto_mask
from nas.core.trial import Trial, TrialState
from nas.store.records import Artifact

#: ``system_attrs.kind`` of the two kinds of trial a specialisation stores (as :mod:`nas.specialize.run`).
CANDIDATE, SPECIALIZED = "candidate", "specialized"


@dataclass(frozen=True)
class DeviceView:
    """One device's points (dicts for the chart), its budgets and the selected trial per budget."""

    device: str
    points: list[dict[str, Any]]
    budgets: list[float]
    selected: dict[float, int]


def is_specialization(config: Mapping[str, Any] | None) -> bool:
    """Whether a study's stored config is that of a specialisation study (it has a ``specialize`` section)."""
    return bool(config) and isinstance(config.get("specialize"), Mapping)  # type: ignore[union-attr]


def device_views(trials: Iterable[Trial]) -> list[DeviceView]:
    """Per device (in order of first appearance): candidates with their Pareto flag, budgets and picks.

    The Pareto front is over the device's candidates of *all* its budgets
    (higher accuracy, lower predicted latency): a tighter budget's front is
    its part left of the budget line.
    """
    by_device: dict[str, list[Trial]] = {}
    for trial in trials:
        attrs = trial.system_attrs
        if trial.state is not TrialState.COMPLETE or attrs.get("kind") not in (CANDIDATE, SPECIALIZED):
            continue
        if "device" not in attrs or not trial.values:
            continue
        by_device.setdefault(str(attrs["device"]), []).append(trial)
    views = []
    for device, found in by_device.items():
        candidates = [t for t in found if t.system_attrs["kind"] == CANDIDATE]
        budgets = sorted({float(t.system_attrs["max_latency_ms"]) for t in found})
        selected = {
            float(t.system_attrs["max_latency_ms"]): t.number
            for t in found
            if t.system_attrs["kind"] == SPECIALIZED
        }
        picked_candidates = {
            t.system_attrs.get("candidate") for t in found if t.system_attrs["kind"] == SPECIALIZED
        }
        values = np.array([[t.value("latency_ms"), t.value("val_accuracy")] for t in candidates], dtype=float)
        front = pareto_mask(values, ["min", "max"]) if len(candidates) else np.zeros(0, dtype=bool)
        points = [
            {
                "trial": t.number,
                "latency_ms": t.value("latency_ms"),
                "accuracy": t.value("val_accuracy"),
                "budget": float(t.system_attrs["max_latency_ms"]),
                "pareto": bool(on_front),
                "picked": t.number in picked_candidates,
            }
            for t, on_front in zip(candidates, front, strict=True)
        ]
        views.append(DeviceView(device, points, budgets, selected))
    return views


def target_rows(view: DeviceView, exports: Mapping[int, Sequence[Artifact]]) -> list[dict[str, Any]]:
    """Per budget of a device: the selected trial and whether (when, where) ``nas export`` shipped it.

    ``exports`` maps a trial number to its ``export`` records, oldest first;
    the latest is shown, as the bundle most likely deployed.
    """
    rows = []
    for budget in view.budgets:
        number = view.selected.get(budget)
        records = list(exports.get(number, ())) if number is not None else []
        last = records[-1] if records else None
        rows.append(
            {
                "target": f"{view.device} <= {budget:g} ms",
                "selected trial": number,
                "exported": bool(records),
                "exports": len(records),
                "last exported (UTC)": last.created_at.strftime("%Y-%m-%d %H:%M") if last else None,
                "bundle": _local_path(last.uri) if last else None,
            }
        )
    return rows


def _local_path(uri: str) -> str:
    """A ``file://`` URI as the path it names (what a user pastes into a shell); other URIs as given."""
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return uri


def budget_rows(view: DeviceView) -> Sequence[dict[str, Any]]:
    """The budget lines of a device's chart, each with the trial selected for it (``None`` if not yet)."""
    return [{"budget": b, "selected": view.selected.get(b)} for b in view.budgets]


__all__ = [
    "CANDIDATE",
    "SPECIALIZED",
    "DeviceView",
    "budget_rows",
    "device_views",
    "is_specialization",
    "target_rows",
]
