"""Search-space audit: which ops a search chose, against how the trials holding them performed.

After "Poisoning the search space in neural architecture search" (Wu et al.,
2022): adding ineffective operations to a space can wreck a search, because a
search is drawn to some ops for reasons other than the results they give.
Two failures are common enough to be worth a flag:

* **attracts-hurts**: the search chose the op more often than a uniform
  draw would (its *lift*, the share of decisions that chose it over the
  share a uniform draw gives, is at least ``attract_ratio``), yet the
  finished trials holding it did worse on the primary objective than those
  without it (by more than ``hurt_margin``, with at least ``min_trials`` on
  each side). A strategy that keeps proposing an op that keeps losing is
  being led, and its budget goes to the poison.
* **shortcut**: a parameter-free op (the space's
  :meth:`~nas.core.SearchSpace.parameter_free_ops`: skip, pooling, ``none``,
  plugin ops registered as weightless) to which a supernet gave a large
  weight (mean final softmaxed alpha at least ``shortcut_ratio`` times
  uniform). This is DARTS' skip-connection failure: weightless ops ease the
  supernet's training early, when convolutions are still untrained, so alpha
  rewards them for that and not for what they are worth in a network.

What counts as the search's choices: in a black-box study, every trial's
architecture; in a one-shot study, the derived architectures (the supernet
trials, ``system_attrs.kind == "supernet"``) and their alpha curves
(``alpha/<edge>/<op>``: the first and last epoch's mean weight of each op).
How an op performed: the COMPLETE trials' primary objective, decision by
decision, where the op was taken against where another op was (a trial
counts once per decision, so an op nearly every trial holds somewhere is
still compared), and Spearman's rho between how often
the op occurs in an architecture and the objective (both oriented so that
positive means the op goes with better results).

The report is computed from the read-only store (it can watch a running
search) and builds the study's space from the registry. It never imports the
``plugins`` a stored config names (a store's contents are not code to run):
a space with plugin ops (``extra_ops``) needs its plugin imported by the
caller (``nas audit-space --plugin MODULE``). ``nas audit-space STUDY`` prints it; the dashboard shows it on the
study page. To act on it, search again with the flagged ops excluded
(``exclude_ops`` on ``nb201``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nas.core.errors import ConfigError, NASError
from nas.core.space import SearchSpace, create_space
from nas.core.trial import Direction, Trial, TrialState
from nas.store.records import StudyInfo

#: Flag names (the table and the JSON use them).
ATTRACTS_HURTS = "attracts-hurts"
SHORTCUT = "shortcut"
FLAG_HELP = {
    ATTRACTS_HURTS: "the search chose it more than a uniform draw, but trials with it did worse",
    SHORTCUT: "parameter-free op a supernet over-weights (the skip-connection failure)",
}


@dataclass(frozen=True)
class AuditThresholds:
    """When an op is flagged (see the module docstring); every field is configurable.

    Defaults: an op chosen 1.5 times as often as uniform attracts the search;
    it hurts when the trials with it are worse on average than those without
    it (``hurt_margin`` 0, in the objective's units) with 3 trials on each side;
    a parameter-free op whose mean final alpha is 1.3 times uniform (0.26
    instead of 0.2 with five ops) is a favoured shortcut.
    """

    attract_ratio: float = 1.5
    hurt_margin: float = 0.0
    min_trials: int = 3
    shortcut_ratio: float = 1.3

    def __post_init__(self) -> None:
        for name in ("attract_ratio", "shortcut_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 1.0:
                raise ConfigError(f"audit {name}={value!r} is not allowed; expected a number > 1")
        if not isinstance(self.hurt_margin, int | float) or not (
            math.isfinite(self.hurt_margin) and self.hurt_margin >= 0
        ):
            raise ConfigError(
                f"audit hurt_margin={self.hurt_margin!r} is not allowed; expected a number >= 0"
            )
        if isinstance(self.min_trials, bool) or not isinstance(self.min_trials, int) or self.min_trials < 1:
            raise ConfigError(
                f"audit min_trials={self.min_trials!r} is not allowed; expected an integer >= 1"
            )


@dataclass(frozen=True)
class OpAudit:
    """One op of the space: how the search treated it and how trials with it did."""

    op: str
    parameter_free: bool
    #: Decisions (of the search's architectures) that could take the op, and how many did.
    decisions: int
    chosen: int
    share: float | None
    #: The share a uniform draw gives (mean of 1/choices over those decisions).
    uniform: float
    lift: float | None
    #: One-shot only: the mean softmaxed alpha over edges and supernets at the first and last epoch.
    alpha_first: float | None
    alpha_last: float | None
    alpha_lift: float | None
    #: COMPLETE trials holding the op on some decision, and with some decision that could but does not.
    trials_with: int
    trials_without: int
    #: Mean primary objective over the decisions that took the op / that could have but did not
    #: (a trial counts once per such decision).
    mean_with: float | None
    mean_without: float | None
    #: ``mean_with - mean_without``, sign flipped for a minimised objective: > 0 means the op helps.
    effect: float | None
    #: Spearman's rho of the op's count in an architecture against the (oriented) objective.
    rank_correlation: float | None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpaceAudit:
    """The audit of one study: one row per op of its space, and the thresholds used."""

    study: str
    space: str
    objective: str
    direction: Direction
    oneshot: bool
    #: Architectures the search chose (derived ones in a one-shot study) and COMPLETE trials judged.
    searched: int
    judged: int
    thresholds: AuditThresholds
    ops: tuple[OpAudit, ...] = field(default_factory=tuple)

    @property
    def flagged(self) -> list[str]:
        """The flagged ops, in the space's order (what ``exclude_ops`` would take out)."""
        return [row.op for row in self.ops if row.flags]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["direction"] = self.direction.value
        data["flagged"] = self.flagged
        return data


def space_ops(space: SearchSpace) -> list[str]:
    """The op names of a space: every string choice of its decisions, in first-seen order.

    Decisions with non-op values (input indices, widths) contribute ints and
    are left out, so a DARTS cell's ``input`` decisions do not count as ops.
    """
    seen: dict[str, None] = {}
    for values in space.choices().values():
        for value in values:
            if isinstance(value, str):
                seen.setdefault(value, None)
    return list(seen)


def audit_trials(
    study: str,
    space: SearchSpace,
    objectives: Mapping[str, Direction],
    trials: Sequence[Trial],
    alpha_curves: Sequence[Mapping[str, Sequence[tuple[int, float]]]] = (),
    thresholds: AuditThresholds | None = None,
) -> SpaceAudit:
    """The audit of ``trials`` of ``space`` (see the module docstring); pure, no store.

    ``alpha_curves`` are the supernet trials' ``alpha/<edge>/<op>`` curves.
    """
    thresholds = thresholds or AuditThresholds()
    objective, direction = next(iter(objectives.items()))
    sign = 1.0 if Direction(direction) is Direction.MAX else -1.0
    supernets = [
        t for t in trials if t.system_attrs.get("kind") == "supernet" and t.state is TrialState.PRUNED
    ]
    oneshot = bool(supernets)
    if oneshot:
        searched = supernets
    else:
        searched = [t for t in trials if t.state is not TrialState.WAITING]
    judged = [
        t
        for t in trials
        if t.state is TrialState.COMPLETE
        and t.values
        and isinstance(t.values.get(objective), int | float)
        and math.isfinite(t.values[objective])
    ]
    choices = space.choices()
    parameter_free = {str(op) for op in space.parameter_free_ops()}
    alphas = _alpha_shares(alpha_curves)
    searched_decisions = [t.arch.as_dict() for t in searched]
    judged_decisions = [t.arch.as_dict() for t in judged]
    scores = np.array([sign * float(t.values[objective]) for t in judged])  # type: ignore[index]
    rows = []
    for op in space_ops(space):
        eligible = [name for name, values in choices.items() if op in values]
        uniform = float(np.mean([1.0 / len(choices[name]) for name in eligible]))
        decisions = len(eligible) * len(searched)
        chosen = sum(1 for d in searched_decisions for name in eligible if d[name] == op)
        share = chosen / decisions if decisions else None
        first, last = alphas.get(op, (None, None))
        counts = np.array([sum(1 for name in eligible if d[name] == op) for d in judged_decisions])
        others = len(eligible) - counts
        # Decision by decision: the trial's score counts once for each decision that took the op
        # (with) and once for each that could have but did not (without), so a common op, which
        # nearly every trial holds somewhere, is still compared.
        with_sum, without_sum = float(counts.sum()), float(others.sum())
        mean_with = float((counts * scores).sum() / with_sum) if with_sum else None
        mean_without = float((others * scores).sum() / without_sum) if without_sum else None
        effect = None if mean_with is None or mean_without is None else mean_with - mean_without
        row = OpAudit(
            op=op,
            parameter_free=op in parameter_free,
            decisions=decisions,
            chosen=chosen,
            share=share,
            uniform=uniform,
            lift=None if share is None else share / uniform,
            alpha_first=first,
            alpha_last=last,
            alpha_lift=None if last is None else last / uniform,
            trials_with=int((counts > 0).sum()),
            trials_without=int((others > 0).sum()),
            mean_with=None if mean_with is None else sign * mean_with,
            mean_without=None if mean_without is None else sign * mean_without,
            effect=effect,
            rank_correlation=_spearman(counts, scores),
        )
        rows.append(_flag(row, thresholds))
    return SpaceAudit(
        study=study,
        space=space.name,
        objective=objective,
        direction=Direction(direction),
        oneshot=oneshot,
        searched=len(searched),
        judged=len(judged),
        thresholds=thresholds,
        ops=tuple(rows),
    )


def _flag(row: OpAudit, thresholds: AuditThresholds) -> OpAudit:
    flags = []
    lifts = [lift for lift in (row.lift, row.alpha_lift) if lift is not None]
    attracts = any(lift >= thresholds.attract_ratio for lift in lifts)
    enough = min(row.trials_with, row.trials_without) >= thresholds.min_trials
    if attracts and enough and row.effect is not None and row.effect < -thresholds.hurt_margin:
        flags.append(ATTRACTS_HURTS)
    if row.parameter_free and row.alpha_lift is not None and row.alpha_lift >= thresholds.shortcut_ratio:
        flags.append(SHORTCUT)
    return OpAudit(**{**asdict(row), "flags": tuple(flags)})


def _alpha_shares(
    curves: Iterable[Mapping[str, Sequence[tuple[int, float]]]],
) -> dict[str, tuple[float, float]]:
    """Op -> (mean first-epoch alpha, mean last-epoch alpha) over every edge of every supernet."""
    first: dict[str, list[float]] = defaultdict(list)
    last: dict[str, list[float]] = defaultdict(list)
    for metrics in curves:
        for name, points in metrics.items():
            if not name.startswith("alpha/") or not points:
                continue
            op = name.rsplit("/", 1)[1]
            ordered = sorted(points)
            first[op].append(float(ordered[0][1]))
            last[op].append(float(ordered[-1][1]))
    return {op: (float(np.mean(first[op])), float(np.mean(last[op]))) for op in last}


def _spearman(counts: np.ndarray, scores: np.ndarray) -> float | None:
    """Spearman's rho, or None when either side is constant (rho is undefined)."""
    if len(counts) < 3 or np.ptp(counts) == 0 or np.ptp(scores) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(counts, scores).statistic)


def study_space(info: StudyInfo) -> SearchSpace:
    """The study's space from the registry; never imports the modules its stored config names.

    A stored config was written by whoever ran the search, so reading a store
    must not run its ``plugins`` (export keeps the same rule): a space whose
    plugin ops are not registered here is refused with what to do instead.
    """
    try:
        return create_space(info.space, **dict(info.space_options))
    except NASError as exc:
        plugins = list((info.config or {}).get("plugins") or [])
        hint = (
            f"; its search imported the plugin module(s) {plugins}: import the one that registers the "
            "missing op or space yourself (`nas audit-space --plugin MODULE`), the audit does not run "
            "code named in a stored config"
            if plugins
            else ""
        )
        raise ConfigError(f"study {info.name!r}: its space cannot be built here: {exc}{hint}") from exc


def audit_study(store: Any, study: str, thresholds: AuditThresholds | None = None) -> SpaceAudit:
    """The audit of ``study`` in ``store`` (a read-only or read-write store: only reads are used)."""
    info = store.get_study(study)
    space = study_space(info)
    trials = store.trials(info.study_id)
    curves = [
        {
            name: points
            for name, points in store.metrics(info.study_id, t.number).items()
            if name.startswith("alpha/")
        }
        for t in trials
        if t.system_attrs.get("kind") == "supernet" and t.state is TrialState.PRUNED
    ]
    return audit_trials(info.name, space, info.objectives, trials, curves, thresholds)


__all__ = [
    "ATTRACTS_HURTS",
    "FLAG_HELP",
    "SHORTCUT",
    "AuditThresholds",
    "OpAudit",
    "SpaceAudit",
    "audit_study",
    "audit_trials",
    "space_ops",
    "study_space",
]
