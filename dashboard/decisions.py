"""What the scheduler did to a trial, as epochs and sentences for the trial page's curve.

Schedulers leave three traces in the store (docs/schedulers.md): most record
why they stopped a trial (``system_attrs["scheduler"]``: ``lc``'s probability
against its threshold, ``moasha``'s rung and the points ranked there,
``asha``'s and ``bohb``'s rung, value, cutoff and rank); every stop leaves the
epoch (``user_attrs["stopped_at_step"]``, all a trial stopped before those
records has); Hyperband's
pauses are ``pauses`` (every epoch a trial waited after) and ``paused_at``
(the pause still going on). Pure functions of a trial, so they are tested
without Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.errors import NASError
from nas.core.promotion import mo_order
from nas.core.trial import Trial, TrialState

#: Schedulers that stop trials only at rungs, by rank among the trials recorded there (Ray's ASHA).
RUNG_SCHEDULERS = ("asha", "bohb", "hyperband", "moasha")


@dataclass(frozen=True)
class Mark:
    """One decision at one epoch: ``kind`` is ``stopped``, ``paused`` or ``resumed``."""

    step: int
    kind: str
    reason: str


def scheduler_marks(trial: Trial, scheduler: str | None) -> list[Mark]:
    """The decisions on ``trial``, oldest first; ``scheduler`` is the study's ``scheduler.name``."""
    name = scheduler or "the scheduler"
    marks: list[Mark] = []
    pauses = trial.system_attrs.get("pauses")
    steps = [int(s) for s in pauses if isinstance(s, int | float)] if isinstance(pauses, list) else []
    paused = trial.paused_at
    stopped = _stop(trial, name) if trial.state is TrialState.PRUNED else None
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if last and step == paused:
            reason = (
                f"paused at epoch {step} by {name}: waiting at this rung until its bracket is full; "
                "the best 1/η of the rung resume from their checkpoints"
            )
            marks.append(Mark(step, "paused", reason))
        elif not (last and stopped is not None and stopped.step == step):
            reason = f"paused at epoch {step} by {name}, then promoted: resumed from its checkpoint"
            marks.append(Mark(step, "resumed", reason))
    if paused is not None and paused not in steps:
        marks.append(Mark(paused, "paused", f"paused at epoch {paused} by {name}"))
    if stopped is not None:
        marks.append(stopped)
    return marks


def _stop(trial: Trial, name: str) -> Mark | None:
    decision = trial.system_attrs.get("scheduler")
    if isinstance(decision, Mapping) and isinstance(decision.get("epoch"), int | float):
        step = int(decision["epoch"])
        if decision.get("name") == "lc":
            return Mark(step, "stopped", _lc_reason(step, decision))
        if decision.get("name") == "moasha":
            return Mark(step, "stopped", _moasha_reason(step, decision))
        if "cutoff" in decision:
            return Mark(step, "stopped", _rung_reason(step, decision))
        return Mark(step, "stopped", f"stopped at epoch {step} by {decision.get('name', name)}")
    step = trial.user_attrs.get("stopped_at_step")
    if not isinstance(step, int | float):
        return None
    if name not in RUNG_SCHEDULERS:
        return Mark(int(step), "stopped", f"stopped at epoch {int(step)} by {name}")
    return Mark(
        int(step),
        "stopped",
        f"stopped at rung epoch {int(step)} by {name}: below the cutoff of the trials recorded at "
        "this rung (only the top 1/η go on)",
    )


def _lc_reason(step: int, decision: Mapping[str, Any]) -> str:
    p, threshold, best = decision.get("p_beats_best"), decision.get("threshold"), decision.get("best")
    return (
        f"stopped at epoch {step} by lc: P(final value > best {_num(best)}) = {_num(p, '.3f')} "
        f"< threshold {_num(threshold)}"
    )


def _rung_reason(step: int, decision: Mapping[str, Any]) -> str:
    """ASHA's (and BOHB's) stop: the value below the rung's cutoff, the top 1/η of the trials there."""
    eta = decision.get("reduction_factor")
    return (
        f"stopped at rung epoch {step} by {decision.get('name', 'asha')}: value {_num(decision.get('value'))} "
        f"below the rung's cutoff {_num(decision.get('cutoff'))} (ranked {_num(decision.get('rank'), 'g')} of "
        f"{_num(decision.get('rung_size'), 'g')} trials recorded there; the top 1/{_num(eta, 'g')} go on)"
    )


def _moasha_reason(step: int, decision: Mapping[str, Any]) -> str:
    size, promoted = decision.get("rung_size"), decision.get("promoted")
    rank = ""
    point, recorded = decision.get("point"), decision.get("recorded")
    if isinstance(point, list) and isinstance(recorded, list):
        try:
            order = list(mo_order([*recorded, point], str(decision.get("tie_break", "epsnet"))))
            rank = f"ranked {order.index(len(recorded)) + 1} of {len(recorded) + 1}, "
        except (NASError, ValueError):
            rank = ""
    return (
        f"stopped at rung epoch {step} by moasha: {rank}only the top {_num(promoted)} of {_num(size)} "
        f"go on (non-dominated sorting, {decision.get('tie_break', 'epsnet')} tie-break)"
    )


def _num(value: object, spec: str = ".4g") -> str:
    return format(float(value), spec) if isinstance(value, int | float) else "?"


__all__ = ["Mark", "scheduler_marks"]
