"""``nas search``: one driver for every search, black-box or one-shot, every result in the store.

The driver builds the plan (the config's plugins, once), resolves the store
URL, loads the data, lets the phase check what it can, checks that a node
can place one trial's resources (:func:`~nas.runner.cluster.check_before_store`),
and only then opens (or resumes) the study and starts Ray. The phase is the only part that
differs: :class:`~nas.runner.blackbox.BlackBoxPhase` lets the strategy
propose trials, :class:`~nas.runner.oneshot.OneShotPhase` trains supernets
and queues their derived architectures. Both end with the same
:class:`SearchOutcome`.

Resume is replay: running the same command again reopens the study, marks
trials of a dead driver FAIL and re-queues them (the copies carry
``retry_of`` in their system attributes), and runs only what is left. One
driver at a time: opening a study takes its driver lease
(:mod:`nas.runner.lease`), which a second live driver is refused.

The driver also keeps the study's life cycle (:mod:`nas.runner.lifecycle`):
``running`` with a fresh heartbeat (its lease's) while it works, ``finished`` once the
phase met the budget, ``interrupted`` after Ctrl+C or SIGTERM (raising
:class:`~nas.runner.lifecycle.SearchInterrupted`), ``stale`` if it died.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nas.core import Trial
from nas.core.errors import NASError, require
from nas.runner.cluster import check_before_store, quiet_ray
from nas.runner.context import SearchRun
from nas.runner.lease import DriverLease
from nas.runner.lifecycle import SearchInterrupted, StopRequest, settle
from nas.runner.locations import storage_url
from nas.runner.plan import SearchPlan, build_plan
from nas.runner.recovery import effective_finished, wait_for_orphans
from nas.runner.summary import Improvement, improvement
from nas.settings.search import SearchConfig
from nas.store.errors import DatabaseUnavailableError
from nas.store.url import artifacts_root

#: What the user can do once a search stopped because the database stayed unreachable.
RESUME_HINT = (
    "the search stopped; once the database is reachable again, run the same command again: "
    "it resumes the study (finished trials are kept, interrupted ones run again)"
)


@dataclass
class SearchOutcome:
    """What a finished ``nas search`` run reports back."""

    study: str
    storage: str
    finished: int
    counts: dict[str, int]
    best: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    #: Wall time of the Tune runs alone (after Ray was up), for overhead measurements.
    fit_seconds: float = 0.0
    artifacts_dir: str = ""
    #: The best trial against the median and the first one, on the primary objective.
    improvement: Improvement | None = None


class Phase(Protocol):
    """The part of a search that differs between kinds of search."""

    def check(self, plan: SearchPlan, dataset: Any) -> None:
        """Refuse bad input before the study is written or Ray starts."""

    def run(self, run: SearchRun) -> float:
        """Run (or continue) the search; returns the wall time spent in Tune."""


def run_search(
    config: SearchConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    storage: str | None = None,
    name: str | None = None,
    address: str | None = None,
    resume: bool = False,
    show_progress: bool = True,
) -> SearchOutcome:
    """Run (or resume) a search: the Python form of ``nas search CONFIG``.

    Ctrl+C or SIGTERM stops it cleanly (see :mod:`nas.runner.lifecycle`) and
    raises :class:`~nas.runner.lifecycle.SearchInterrupted`. A database that
    stays unreachable for longer than ``$NAS_DB_RETRY_S`` (see
    :mod:`nas.store.outage`) raises :class:`~nas.store.DatabaseUnavailableError`
    saying how to resume.
    """
    try:
        return _run_search(config, storage, name, address, resume, show_progress)
    except DatabaseUnavailableError as exc:
        raise DatabaseUnavailableError(f"{exc}; {RESUME_HINT}") from exc


def _run_search(
    config: SearchConfig | Mapping[str, Any] | str | os.PathLike[str],
    storage: str | None,
    name: str | None,
    address: str | None,
    resume: bool,
    show_progress: bool,
) -> SearchOutcome:
    require("ray", "ray")
    started = time.monotonic()
    plan = build_plan(config, name=name)
    url = storage_url(storage, plan.config.storage)
    dataset = _load_data(plan)
    phase = _phase(plan)
    phase.check(plan, dataset)
    # A per-trial request no node can place is refused (ConfigError) before the study row is written.
    quiet_ray()
    check_before_store(address, plan.config.per_trial, plan.config.resources.workers)
    stop = StopRequest()
    with stop.catching():
        study, lease = open_study(plan, url, resume=resume)
        reachable = True
        try:
            run = SearchRun(
                plan,
                study,
                url,
                artifacts_root(url),
                dataset,
                address,
                show_progress,
                lease,
                stop,
            )
            fit_seconds = _drive(run, phase)
        except DatabaseUnavailableError:
            reachable = False
            raise
        finally:
            lease.release(write=reachable)
    result = outcome(run, time.monotonic() - started, fit_seconds)
    if stop.signum is not None:
        total = None if plan.is_oneshot else plan.config.budget.trials
        raise SearchInterrupted(plan.config.name, stop.signum, result.finished, total)
    return result


def _drive(run: SearchRun, phase: Phase) -> float:
    """Run the phase (the lease beats for the driver meanwhile); then record how the study ended."""
    error: BaseException | None = None
    try:
        return 0.0 if run.stop.is_set() else phase.run(run)
    except BaseException as exc:
        error = exc
        raise
    finally:
        if run.lease is not None:
            run.lease.track({})  # settle ends every trial still RUNNING: nothing left to beat for
        settle(run.study, run.stop, error)


def _phase(plan: SearchPlan) -> Phase:
    if plan.is_oneshot:
        from nas.runner.oneshot import OneShotPhase

        return OneShotPhase()
    from nas.runner.blackbox import BlackBoxPhase

    return BlackBoxPhase()


def _load_data(plan: SearchPlan) -> Any:
    """The search's dataset if a supernet or the evaluator trains on it (``None`` otherwise)."""
    config = plan.config
    if not plan.needs_data or config.dataset is None:
        return None
    from nas.data import load_dataset

    dataset = load_dataset(config.dataset, seed=config.data_seed)
    if config.dataset.reader == "ray":
        from nas.runner.ray_data import with_ray_reader

        dataset = with_ray_reader(dataset)
    plan.data_shape.update(dataset)
    return dataset


def open_study(plan: SearchPlan, url: str, *, resume: bool) -> tuple[Any, DriverLease]:
    """Open the plan's study (``resume``: it must exist) as its only driver; re-queue a dead driver's trials.

    An existing study must have been run under the same conditions (the
    plan's comparability: a ConfigError lists each difference), and no other
    live driver may hold it (:class:`~nas.store.StudyBusyError` names it).
    The caller releases the returned lease when the run ends.
    """
    import nas

    config = plan.config
    if resume:
        nas.load_study(config.name, storage=url)  # a clear error if there is nothing to resume
    study = nas.create_study(
        config.name,
        storage=url,
        space=plan.space,
        objectives=dict(config.objectives),
        config=config.model_dump(mode="json"),
        comparability=plan.comparability,
        comparability_defaults=plan.comparability_defaults,
        load_if_exists=True,
    )
    lease = DriverLease(study)  # the study is running again (a stale or interrupted one resumes)
    try:
        wait_for_orphans(study, grace_s=0.0)  # with the lease held, every RUNNING trial is an orphan
    except BaseException:
        lease.release()
        raise
    return study, lease


def outcome(run: SearchRun, seconds: float, fit_seconds: float) -> SearchOutcome:
    """The study's state after a run: counts, effective finished trials, the best ones."""
    study = run.study
    counts = {state.value: n for state, n in study.count_trials().items()}
    try:
        best = study.best_trials
    except NASError:
        best = []
    finished = effective_finished(study.trials())
    return SearchOutcome(
        study=run.config.name,
        storage=run.storage,
        finished=len(finished),
        counts=counts,
        best=best,
        seconds=seconds,
        fit_seconds=fit_seconds,
        artifacts_dir=str(run.artifacts),
        improvement=improvement(finished, run.config.directions),
    )


__all__ = ["Phase", "SearchOutcome", "open_study", "outcome", "run_search"]
