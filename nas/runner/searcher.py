"""The Tune ``Searcher`` that lets an ask/tell strategy (or a queue of trials) drive Ray trials.

``suggest`` hands out a re-queued trial or asks the strategy, ``on_trial_result``
stores the learning curve, ``on_trial_complete`` tells the store and the
strategy. Architectures already evaluated at the same budget (same canonical
key, any comparable study: same space options, data, evaluator settings and
seed, see ``Study.lookup``) are not trained again: their stored result is
reused. Without a strategy only queued trials run (one-shot derived trials).
A strategy that can say why it proposed a trial (``Strategy.explain``) has
that stored as the trial's ``system_attrs["explanation"]``, and its proposal's
bookkeeping (``Strategy.last_attrs``, e.g. a morphism's ``parent``) as further
``system_attrs``; a child that inherits its parent's weights gets them shipped
to its worker (:mod:`nas.runner.inheritance`).
Each proposed trial records the strategy's phase that proposed it
(``system_attrs["phase"]``, see :mod:`nas.core.strategy`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from nas.core import Strategy, Trial, TrialState
from nas.core.errors import StorageError
from nas.core.files import atomic_write
from nas.runner import trainable as T
from nas.runner.checkpoints import resume_from, store_checkpoint
from nas.runner.context import SearchRun
from nas.runner.inheritance import proposal_attrs, shipped_parent
from nas.runner.progress import SearchProgress
from nas.runner.recovery import MAX_RETRIES
from nas.store.url import artifact_dir

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def remembers_store_errors(method: F) -> F:
    """Keep the first :class:`StorageError` a Tune callback raised in ``self.failure``, then re-raise it.

    Tune wraps an exception from a searcher callback in a ``TuneError`` holding
    the traceback as text; :func:`nas.runner.trials.run_trials` raises the
    stored error instead, so the user reads one line (e.g. "the database is
    unreachable") rather than Tune's traceback.
    """

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StorageError as exc:
            if self.failure is None:
                self.failure = exc
            raise

    return guarded  # type: ignore[return-value]


def make_searcher(
    run: SearchRun, strategy: Strategy | None, progress: SearchProgress, finished: int, total: int
) -> Any:
    """Build the Tune searcher lazily (Ray is imported only by the runner).

    The class closes over nothing but Ray's ``Searcher``: Tune pickles its
    experiment state, searcher class included, and the open store cannot be.
    """
    from ray.tune.search import Searcher

    class StrategySearcher(Searcher):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            run: SearchRun,
            strategy: Strategy | None,
            progress: SearchProgress,
            finished: int,
            total: int,
        ) -> None:
            super().__init__()  # metric and mode come from the TuneConfig
            self.run, self.study, self.strategy = run, run.study, strategy
            self.progress, self.finished, self.total = progress, finished, total
            self.running: dict[str, Trial] = {}
            self.budget = run.plan.fidelity
            self._workers: dict[str, list[tuple[str, int]]] = {}
            #: Tune's own trial objects (their error files hold Ray's account of a failure).
            self.tune_trials: dict[str, Any] = {}
            #: The store error that ended the run (see :func:`remembers_store_errors`).
            self.failure: StorageError | None = None
            # A pausing scheduler: its rungs are checkpointed, and the searcher (not Tune's
            # concurrency limiter, which counts paused trials) caps the trials that hold a worker.
            scheduler = run.plan.scheduler
            self.checkpoints = bool(scheduler is not None and scheduler.pauses)
            #: The epochs checkpointed (where the scheduler may pause a trial: its rungs).
            self.rungs = sorted(scheduler.checkpoint_epochs(run.plan)) if self.checkpoints else []
            self.concurrent = run.config.budget.concurrent
            #: Tune trial id -> the step it is paused after (see :meth:`watch_pauses`).
            self.paused: dict[str, int] = {}

        # The store is the search's state: Tune's own experiment snapshots (which pickle the
        # searcher) need nothing from it, and the open store and display cannot be pickled.
        def __getstate__(self) -> dict[str, Any]:
            return {}

        def save(self, checkpoint_path: str) -> None:
            return None

        def restore(self, checkpoint_path: str) -> None:
            return None

        # -- Tune's Searcher interface ------------------------------------------------------------
        def set_search_properties(
            self, metric: str | None, mode: str | None, config: dict, **spec: Any
        ) -> bool:
            return True

        @remembers_store_errors
        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            while True:
                lease = self.run.lease
                lost = lease is not None and lease.lost
                if (
                    lost
                    or self.failure is not None
                    or self.run.stop.is_set()
                    or self.finished + len(self.running) >= self.total
                ):
                    return Searcher.FINISHED
                if self.checkpoints and len(self.running) - len(self.paused) >= self.concurrent:
                    return None  # every worker slot is taken; paused trials hold none
                trial = self._next_trial()
                if trial is None:
                    return Searcher.FINISHED if self.strategy is None else None
                if trial.state.finished:  # reused from the store
                    continue
                self.running[trial_id] = trial
                self.progress.started_trial()
                config = {
                    "arch": trial.arch.to_dict(),
                    "seed": trial.seed,
                    "budget": trial.budget,
                    "number": trial.number,
                }
                if trial.system_attrs.get("recipe"):
                    config[T.RECIPE] = dict(trial.system_attrs["recipe"])
                inherit = shipped_parent(self.study, trial)
                if inherit is not None:
                    config[T.INHERIT] = inherit
                if self.checkpoints:
                    config[T.CHECKPOINTS] = self.rungs
                    if trial.system_attrs.get("retry_of") is not None:
                        config[T.RESUME] = resume_from(self.study, trial)
                        self.running[trial_id] = self.study.trial(trial.number)  # its attrs as resumed
                return config

        @remembers_store_errors
        def on_trial_result(self, trial_id: str, result: dict) -> None:
            trial = self.running.get(trial_id)
            if trial is None or result.get(T.FINAL):
                return
            worker = (result.get(T.NODE), result.get(T.PID))
            if worker[0] and self._workers.get(trial_id, [None])[-1] != worker:
                # The worker process of this attempt (a restart after a crash is a new trial).
                self._workers.setdefault(trial_id, []).append(worker)
                self.study.set_system_attr(trial, "workers", [list(w) for w in self._workers[trial_id]])
                self.study.heartbeat(trial, node=worker[0])
            if not result.get(T.REPLAY):  # a resumed copy's checkpoint epoch: the store holds it already
                self.study.report(trial, int(result[T.STEP]), json.loads(result.get(T.METRICS, "{}")))

        @remembers_store_errors
        def save_checkpoint(self, trial_id: str, checkpoint: Any) -> None:
            """Copy a trial's Tune checkpoint into the store (see :mod:`nas.runner.checkpoints`)."""
            trial = self.running.get(trial_id)
            if trial is not None and self.checkpoints:
                store_checkpoint(self.study, self.run.artifacts, trial, checkpoint)

        @remembers_store_errors
        def watch_pauses(self, tune_trials: list[Any]) -> None:
            """Record in the store when a trial is paused (``paused_at``: its last epoch) or goes on again.

            Tune tells neither searchers nor callbacks that a scheduler paused a
            trial, so its status is watched after every step of Tune's loop.
            """
            for tune_trial in tune_trials:
                trial_id = tune_trial.trial_id
                trial = self.running.get(trial_id)
                if trial is None:
                    continue
                paused = tune_trial.status == "PAUSED"
                if paused and trial_id not in self.paused:
                    step = int((tune_trial.last_result or {}).get(T.STEP, 0))
                    self.paused[trial_id] = step
                    pauses = [*trial.system_attrs.get("pauses", []), step]
                    self.running[trial_id] = trial = replace(
                        trial, system_attrs={**trial.system_attrs, "pauses": pauses}
                    )
                    self.study.set_system_attr(trial, "pauses", pauses)
                    self.study.set_system_attr(trial, "paused_at", step)
                elif not paused and trial_id in self.paused:
                    del self.paused[trial_id]
                    self.study.set_system_attr(trial, "paused_at", None)

        @remembers_store_errors
        def restart(self, trial_id: str, reason: str) -> None:
            """Tune restarts a trial whose worker died: FAIL the attempt, run the restart as a new trial.

            Trials keep no checkpoint, so the restart trains from scratch: a new
            trial (``retry_of`` names the dead attempt, as after a driver crash)
            gets a curve of its own instead of mixing into the dead attempt's.
            The attempt is told FAIL before its copy exists, so a driver dying
            in between leaves one FAIL trial, never two runs of one architecture.
            """
            trial = self.running.get(trial_id)
            if trial is None:
                return
            workers = self._workers.pop(trial_id, None)
            where = f" on {workers[-1][0]} (pid {workers[-1][1]})" if workers else ""
            self.study.tell(
                trial,
                state=TrialState.FAIL,
                error=f"Ray lost the worker running this trial{where}: its process or node died, or the "
                "trial failed outside the evaluator (Ray's account below); Ray restarted it from scratch "
                f"as a new trial (its retry_of names this one).\n{reason}".rstrip(),
            )
            # Like a re-queued copy after a driver crash: the attempt's bookkeeping (a derived
            # trial's origin, say) and retry_of, but not its worker.
            system = {k: v for k, v in trial.system_attrs.items() if k != "workers"}
            retry = self.study.ask(
                trial.arch,
                seed=trial.seed,
                budget=trial.budget,
                system_attrs={**system, "retry_of": trial.number},
            )
            self.running[trial_id] = retry
            logger.warning(
                "trial %d: Ray lost its worker%s; restarted from scratch as trial %d",
                trial.number,
                where,
                retry.number,
            )

        @remembers_store_errors
        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            trial = self.running.pop(trial_id, None)
            self._workers.pop(trial_id, None)
            paused = self.paused.pop(trial_id, None) is not None
            tune_trial = self.tune_trials.pop(trial_id, None)
            if trial is None:
                return
            if paused and result is None and not error and tune_trial is not None:
                # A scheduler stopped it while paused: Tune passes no result, the last one decided.
                result = dict(tune_trial.last_result or {}) or None
                self.study.set_system_attr(trial, "paused_at", None)
            if self.run.stop.is_set() and not (result or {}).get(T.FINAL):
                return  # stopped by Ctrl+C: the driver re-queues it (nas.runner.lifecycle.settle)
            ray_error = last_failure(tune_trial) if error and tune_trial is not None else ""
            told = self._finish(trial, result, error, ray_error)
            self.finished += 1
            if self.strategy is not None:
                self.strategy.tell(for_strategy(self.study, told, self.strategy))
            self.progress.finished_trial(told)

        # -- helpers ---------------------------------------------------------------------------------
        def _next_trial(self) -> Trial | None:
            """A re-queued trial, a reused result (already finished) or a new RUNNING trial."""
            if self.study.trials(states=TrialState.WAITING):
                return self.study.ask()
            arch = None if self.strategy is None else self.strategy.ask()
            if arch is None:
                return None
            config = self.run.config
            inherited = self.run.plan.inherited_budget
            attrs = proposal_attrs(self.study, self.strategy.last_attrs, inherited is not None)  # type: ignore[union-attr]
            # A child that inherits trains for its own budget from its parent's weights: no result
            # of another trial is the same, so none is reused.
            budget = inherited if attrs.get("inherits") else self.budget
            recipe = attrs.get("recipe")
            if recipe and "epochs" in recipe and not attrs.get("inherits"):
                budget = float(recipe["epochs"])  # the recipe's epochs are the trial's fidelity
            # A result under another training recipe is not this trial's: recipe trials reuse none.
            previous = None if attrs.get("inherits") or recipe else self.study.lookup(arch, budget)
            trial = self.study.ask(arch, seed=config.seed, budget=budget, system_attrs=attrs or None)
            explanation = self.strategy.explain()  # type: ignore[union-attr]
            if explanation:  # why the strategy chose this trial (e.g. bowl's WL features)
                self.study.set_system_attr(trial, "explanation", explanation)
            self.study.set_system_attr(trial, "phase", self.strategy.last_phase)  # type: ignore[union-attr]
            if previous is None:
                return trial
            told = self.study.tell(
                trial,
                values={name: previous.value(name) for name in config.objectives},
                user_attrs={"metrics": dict(previous.user_attrs.get("metrics", {}))},
                system_attrs={"reused_from": {"study": previous.study, "trial": previous.number}},
            )
            self.finished += 1
            self.strategy.tell(told)  # type: ignore[union-attr]  (arch came from the strategy)
            self.progress.finished_trial(told, was_running=False, reused=True)
            return told

        def _finish(self, trial: Trial, result: dict | None, error: bool, ray_error: str = "") -> Trial:
            node = (result or {}).get(T.NODE)
            attrs: dict[str, Any] = {"node": node} if node else {}
            if error or not result:
                message = (
                    f"Ray reported an error for this trial and restarts it no more (at most {MAX_RETRIES} "
                    "restarts, each a trial of its own whose retry_of names the one before): the worker "
                    "process died or its actor failed; see the Ray logs"
                )
                message = f"{message}\n{ray_error}".rstrip()
                return self.study.tell(trial, state=TrialState.FAIL, error=message, user_attrs=attrs)
            if not result.get(T.FINAL):
                # Stopped by the scheduler: Tune hands the deciding result only to
                # on_trial_complete, so the curve's last point is stored here.
                if T.STEP in result and not result.get(T.REPLAY):  # a replay: stored already
                    self.study.report(trial, int(result[T.STEP]), json.loads(result.get(T.METRICS, "{}")))
                attrs["stopped_at_step"] = result.get(T.STEP)
                return self.study.tell(trial, state=TrialState.PRUNED, user_attrs=attrs)
            if result.get(T.ERROR):
                return self.study.tell(trial, state=TrialState.FAIL, error=result[T.ERROR], user_attrs=attrs)
            values: Mapping[str, float] = json.loads(result.get(T.VALUES, "{}"))
            attrs.update(json.loads(result.get(T.ATTRS, "{}")))
            attrs["metrics"] = dict(values)
            for kind, payload in result.get(T.ARTIFACTS, []):
                self._save_artifact(trial, kind, payload)
            objectives = self.run.config.objectives
            missing = [n for n in objectives if not math.isfinite(values.get(n, math.nan))]
            if missing:
                message = (
                    f"the evaluator produced no finite value for objective(s) {missing}; "
                    f"it reported {sorted(values)}"
                )
                return self.study.tell(trial, state=TrialState.FAIL, error=message, user_attrs=attrs)
            objective_values = {name: float(values[name]) for name in objectives}
            return self.study.tell(trial, values=objective_values, user_attrs=attrs)

        def _save_artifact(self, trial: Trial, kind: str, payload: bytes) -> None:
            folder = artifact_dir(self.run.artifacts, self.study.name, f"trial-{trial.number:06d}")
            path = atomic_write(
                folder / f"{kind}.pt", lambda stream: stream.write(payload)
            )  # never half-written
            self.study.add_artifact(trial, kind, path.as_uri(), hashlib.sha256(payload).hexdigest())

    return StrategySearcher(run, strategy, progress, finished, total)


def for_strategy(study: Any, trial: Trial, strategy: Strategy) -> Trial:
    """``trial`` as ``strategy`` is told it: with its primary curve if the strategy ``uses_curves``.

    The curve is read from the store (``system_attrs["curve"]``, ``[[epoch, value], ...]``) and
    not written back: the store already holds it, and a resumed search replays it the same way.
    """
    if not strategy.uses_curves:
        return trial
    curve = study.metrics(trial, [strategy.primary]).get(strategy.primary, [])
    return dataclasses.replace(
        trial, system_attrs={**trial.system_attrs, "curve": [[int(s), float(v)] for s, v in curve]}
    )


def make_restart_callback(searcher: Any) -> Any:
    """A Tune callback that hands the searcher what Tune tells only callbacks.

    Each trial restart (its worker died; ``FailureConfig(max_failures)``) goes
    to ``searcher.restart``: without it the restart's curve would overwrite the
    dead attempt's step by step in the same stored trial. Each trial checkpoint
    goes to ``searcher.save_checkpoint``, and after each step of Tune's loop
    ``searcher.watch_pauses`` sees which trials a scheduler paused.
    """
    from ray.tune import Callback

    class RestartCallback(Callback):  # type: ignore[misc, valid-type]
        def __init__(self, searcher: Any) -> None:
            self.searcher = searcher

        def __getstate__(self) -> dict[str, Any]:  # Tune pickles its run config; the searcher cannot be
            return {}

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.searcher.tune_trials[trial.trial_id] = trial

        def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.searcher.restart(trial.trial_id, last_failure(trial))

        def on_checkpoint(
            self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
        ) -> None:
            self.searcher.save_checkpoint(trial.trial_id, checkpoint)

        def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
            if self.searcher.checkpoints:
                self.searcher.watch_pauses(trials)

    return RestartCallback(searcher)


def last_failure(trial: Any, limit: int = 2000) -> str:
    """Ray's account of a Tune trial's latest failure ("" if it has none).

    Tune appends one ``Failure # n`` block per failure to the trial's error
    file, written in the driver's staging directory before it tells anyone
    (``Trial.get_error`` reads the synced copy in storage, which may lag).
    """
    try:
        errors = Path(trial.error_file).read_text(errors="replace") if trial.error_file else ""
    except OSError:
        errors = ""
    start = errors.rfind("Failure # ")
    return errors[max(start, 0) :].strip()[:limit]


__all__ = ["for_strategy", "last_failure", "make_restart_callback", "make_searcher"]
