"""Which trial to export: ``--trial N`` or ``--best [--objective NAME]``, and whether it can be.

With several objectives there is no single best trial, only a Pareto set;
rather than pick one silently, ``--best`` without ``--objective`` stops and
lists the set with each trial's values so the user chooses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nas.core.errors import ArchitectureError, ConfigError, UnknownNameError
from nas.core.trial import Trial, TrialState
from nas.store.study import Study


class AmbiguousBestError(ConfigError):
    """``--best`` on a multi-objective study without ``--objective``: the Pareto set is attached."""

    def __init__(self, message: str, pareto: Sequence[Trial]) -> None:
        super().__init__(message)
        self.pareto = tuple(pareto)


def select_trial(study: Study, *, trial: int | None, best: bool, objective: str | None) -> Trial:
    """The trial to export, checked to be COMPLETE with a valid architecture of the study's space."""
    if trial is not None and best:
        raise ConfigError("choose either a trial number (--trial N) or --best, not both")
    if trial is None and not best:
        raise ConfigError("say which trial to export: --trial N, or --best [--objective NAME]")
    if objective is not None and not best:
        raise ConfigError(f"--objective {objective!r} only applies together with --best")
    if trial is not None:
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
            raise ConfigError(f"trial number {trial!r} is not allowed; expected an integer >= 0")
        chosen = study.trial(trial)
    else:
        chosen = best_trial(study, objective)
    check_exportable(study, chosen)
    return chosen


def best_trial(study: Study, objective: str | None) -> Trial:
    """The best COMPLETE trial by ``objective`` (required when the study has several)."""
    objectives = study.objectives
    if objective is not None:
        if objective not in objectives:
            raise UnknownNameError(f"objective of study {study.name!r}", objective, objectives)
        page = study.trials_page(limit=1, order_by=objective)
        if not page:
            raise ConfigError(f"study {study.name!r} has no COMPLETE trial with a value for {objective!r}")
        return page[0]
    if len(objectives) == 1:
        return study.best_trial
    pareto = study.best_trials
    if not pareto:
        raise ConfigError(f"study {study.name!r} has no COMPLETE trial yet")
    directions = ", ".join(f"{name} {d.value}" for name, d in objectives.items())
    listing = "; ".join(
        f"trial {t.number} (" + ", ".join(f"{n} {_fmt(t.value(n))}" for n in objectives) + ")" for t in pareto
    )
    raise AmbiguousBestError(
        f"study {study.name!r} has {len(objectives)} objectives ({directions}), so there is no single best "
        f"trial; its Pareto set is: {listing}. Choose one with --trial N, or rank by one objective with "
        f"--best --objective NAME (allowed: {', '.join(objectives)})",
        pareto,
    )


def check_exportable(study: Study, trial: Trial) -> None:
    """Refuse trials that did not finish well or whose architecture the space does not accept."""
    where = f"trial {trial.number} of study {study.name!r}"
    if trial.state is not TrialState.COMPLETE:
        detail = ""
        if trial.error:
            lines = [line for line in trial.error.strip().splitlines() if line.strip()]
            detail = f" (error: {lines[-1].strip()})" if lines else ""
        raise ConfigError(
            f"{where} is {trial.state.value}{detail}; only COMPLETE trials can be exported. "
            "Pick another with --trial N or --best"
        )
    if getattr(trial, "arch", None) is None:
        raise ConfigError(f"{where} has no architecture to export")
    try:
        study.space.validate(trial.arch)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{where} has an architecture its space refuses: {exc}") from exc


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


__all__ = ["AmbiguousBestError", "best_trial", "check_exportable", "select_trial"]
