"""``nas search``: a strategy driving real trials on Ray Tune, every result in the store.

The driver is the only writer of the trial store. A :class:`StrategySearcher`
plugs the ask/tell strategy into Tune as a ``Searcher``: ``suggest`` asks the
strategy (or hands out a re-queued trial), ``on_trial_result`` stores the
learning curve, ``on_trial_complete`` tells the store and the strategy.
Architectures already evaluated at the same budget (same canonical key, any
study of the space) are not trained again: their stored result is reused.

Resume is replay: running the same command again reopens the study, marks
trials of a dead driver FAIL and re-queues them (the copies carry
``retry_of`` in their system attributes), warm-starts the strategy from the finished trials and runs
only what the budget still allows, so a study ends with exactly
``budget.trials`` finished trials that are not superseded by a retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config import SearchConfig, TrainEvaluatorConfig, load_config
from nas.core import Architecture, Direction, SearchSpace, Strategy, Trial, TrialState
from nas.core.errors import NASError, require
from nas.runner import trainable as T
from nas.runner.cluster import connect
from nas.runner.progress import SearchProgress

logger = logging.getLogger(__name__)

#: The driver refreshes the heartbeat of its running trials this often (seconds) ...
HEARTBEAT_S = 5.0
#: ... and a new driver treats trials whose heartbeat is older than this as orphaned.
STALE_AFTER_S = 3 * HEARTBEAT_S
#: How often a worker whose process died is restarted before its trial is FAIL.
MAX_RETRIES = 2
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class SearchOutcome:
    """What a finished ``nas search`` run reports back."""

    study: str
    storage: str
    finished: int
    counts: dict[str, int]
    best: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    #: Wall time of the Tune run alone (after Ray was up), for overhead measurements.
    fit_seconds: float = 0.0
    artifacts_dir: str = ""


def artifacts_root(storage_url: str) -> Path:
    """Where trial artifacts go: ``$NAS_ARTIFACTS``, else beside a SQLite file, else ``./nas_artifacts``."""
    if os.environ.get("NAS_ARTIFACTS"):
        return Path(os.environ["NAS_ARTIFACTS"]).expanduser().resolve()
    prefix = "sqlite:///"
    if storage_url.startswith(prefix) and storage_url[len(prefix) :] not in ("", ":memory:"):
        db = Path(storage_url[len(prefix) :]).expanduser().resolve()
        return db.with_name(f"{db.stem}_artifacts")
    return Path("nas_artifacts").resolve()


def effective_finished(trials: list[Trial]) -> list[Trial]:
    """Finished trials that no later retry supersedes (a re-queued copy names its original)."""
    superseded = {
        t.system_attrs.get("retry_of") for t in trials if t.system_attrs.get("retry_of") is not None
    }
    return [t for t in trials if t.state in _FINISHED and t.number not in superseded]


class _Heartbeat(threading.Thread):
    """Keeps the heartbeat of the driver's running trials fresh (workers never write)."""

    def __init__(self, study: Any, running: dict[str, Trial]) -> None:
        super().__init__(name="nas-heartbeat", daemon=True)
        self.study, self.running, self.stop_event = study, running, threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(HEARTBEAT_S):
            for trial in list(self.running.values()):
                try:
                    self.study.heartbeat(trial)
                except NASError as exc:  # a transient store error must not kill the search
                    logger.warning("heartbeat of trial %d failed: %s", trial.number, exc)


def _searcher_base() -> type:
    from ray.tune.search import Searcher

    return Searcher


def make_searcher(*args: Any, **kwargs: Any) -> Any:
    """Build the Tune searcher class lazily (Ray is imported only by the runner)."""
    Searcher = _searcher_base()

    class StrategySearcher(Searcher):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            study: Any,
            strategy: Strategy,
            config: SearchConfig,
            progress: SearchProgress,
            artifacts: Path,
            finished: int,
        ) -> None:
            super().__init__()  # metric and mode come from the TuneConfig
            self.study, self.strategy, self.config = study, strategy, config
            self.progress, self.artifacts = progress, artifacts
            self.finished = finished
            self.running: dict[str, Trial] = {}
            self.budget = self.budget_value(config)
            self._workers: dict[str, list[tuple[str, int]]] = {}

        @staticmethod
        def budget_value(config: SearchConfig) -> float | None:
            evaluator = config.evaluator
            return float(evaluator.epochs) if isinstance(evaluator, TrainEvaluatorConfig) else None

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

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            while True:
                if self.finished + len(self.running) >= self.config.budget.trials:
                    return Searcher.FINISHED
                trial = self._next_trial()
                if trial is None:
                    return None
                if trial.state.finished:  # reused from the store
                    continue
                self.running[trial_id] = trial
                self.progress.started_trial()
                return {
                    "arch": trial.arch.to_dict(),
                    "seed": trial.seed,
                    "budget": trial.budget,
                    "number": trial.number,
                }

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            trial = self.running.get(trial_id)
            if trial is None or result.get(T.FINAL):
                return
            worker = (result.get(T.NODE), result.get(T.PID))
            if worker[0] and self._workers.get(trial_id, [None])[-1] != worker:
                # A new worker process for this trial: its first one, or a retry after a crash.
                self._workers.setdefault(trial_id, []).append(worker)
                self.study.set_system_attr(trial, "workers", [list(w) for w in self._workers[trial_id]])
                self.study.heartbeat(trial, node=worker[0])
            self.study.report(trial, int(result[T.STEP]), json.loads(result.get(T.METRICS, "{}")))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            trial = self.running.pop(trial_id, None)
            self._workers.pop(trial_id, None)
            if trial is None:
                return
            told = self._finish(trial, result, error)
            self.finished += 1
            self.strategy.tell(told)
            self.progress.finished_trial(told)

        # -- helpers ---------------------------------------------------------------------------------
        def _next_trial(self) -> Trial | None:
            """A re-queued trial, a reused result (already finished) or a new RUNNING trial."""
            if self.study.trials(states=TrialState.WAITING):
                return self.study.ask()
            arch = self.strategy.ask()
            if arch is None:
                return None
            previous = self.study.lookup(arch, self.budget)
            trial = self.study.ask(arch, seed=self.config.seed, budget=self.budget)
            if previous is None:
                return trial
            told = self.study.tell(
                trial,
                values={name: previous.value(name) for name in self.config.objectives},
                user_attrs={"metrics": dict(previous.user_attrs.get("metrics", {}))},
                system_attrs={"reused_from": {"study": previous.study, "trial": previous.number}},
            )
            self.finished += 1
            self.strategy.tell(told)
            self.progress.finished_trial(told, was_running=False, reused=True)
            return told

        def _finish(self, trial: Trial, result: dict | None, error: bool) -> Trial:
            node = (result or {}).get(T.NODE)
            attrs: dict[str, Any] = {"node": node} if node else {}
            if error or not result:
                message = (
                    f"Ray reported an error for this trial after {MAX_RETRIES} retries "
                    "(the worker process died or its actor failed); see the Ray logs"
                )
                return self.study.tell(trial, state=TrialState.FAIL, error=message, user_attrs=attrs)
            if not result.get(T.FINAL):
                # Stopped by the scheduler: Tune hands the deciding result only to
                # on_trial_complete, so the curve's last point is stored here.
                if T.STEP in result:
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
            missing = [n for n in self.config.objectives if not math.isfinite(values.get(n, math.nan))]
            if missing:
                message = (
                    f"the evaluator produced no finite value for objective(s) {missing}; "
                    f"it reported {sorted(values)}"
                )
                return self.study.tell(trial, state=TrialState.FAIL, error=message, user_attrs=attrs)
            objective_values = {name: float(values[name]) for name in self.config.objectives}
            return self.study.tell(trial, values=objective_values, user_attrs=attrs)

        def _save_artifact(self, trial: Trial, kind: str, payload: bytes) -> None:
            folder = self.artifacts / self.study.name / f"trial-{trial.number:06d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}.pt"
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(payload)
            os.replace(temporary, path)  # never a half-written artifact
            self.study.add_artifact(trial, kind, path.as_uri(), hashlib.sha256(payload).hexdigest())

    return StrategySearcher(*args, **kwargs)


def _measure(space: SearchSpace, input_shape: tuple[int, int, int], num_classes: int) -> Any:
    """The strategies' cheap cost model: params and FLOPs before training (for constraints)."""

    def measure(arch: Architecture) -> dict[str, float]:
        stats = space.stats(arch, input_shape=input_shape, num_classes=num_classes)  # type: ignore[attr-defined]
        return {"params": float(stats.params), "flops": float(stats.flops)}

    return measure


def _wait_for_orphans(study: Any) -> None:
    """Re-queue trials of a dead driver; wait (bounded) for a recent one's heartbeat to go stale."""
    deadline = time.monotonic() + STALE_AFTER_S + HEARTBEAT_S
    while True:
        failed = study.fail_stale_trials(STALE_AFTER_S, requeue=True)
        if failed:
            logger.warning("re-queued %d interrupted trial(s) of an earlier run", len(failed))
        if not study.trials(states=TrialState.RUNNING) or time.monotonic() > deadline:
            return
        time.sleep(1.0)


def run_search(
    config: SearchConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    storage: str | None = None,
    name: str | None = None,
    address: str | None = None,
    resume: bool = False,
    show_progress: bool = True,
) -> SearchOutcome:
    """Run (or resume) a search: the Python form of ``nas search CONFIG``."""
    import nas
    from nas.data import load_dataset
    from nas.store import ENV_VAR, resolve_storage_url
    from nas.strategies import create_strategy

    require("ray", "ray")
    from ray import tune

    config = load_config(config)
    if name:
        config = config.model_copy(update={"name": name})
    from nas.core.oneshot import ONESHOT

    if config.strategy.name in ONESHOT:  # weight-sharing methods own their training loop
        from nas.runner.oneshot import run_oneshot_search

        return run_oneshot_search(
            config, storage=storage, address=address, resume=resume, show_progress=show_progress
        )
    # --storage, then $NAS_STORAGE, then the config's own storage field, then the default.
    url = resolve_storage_url(storage or os.environ.get(ENV_VAR) or config.storage)
    space = config.space.create()
    started = time.monotonic()

    if resume:
        nas.load_study(config.name, storage=url)  # a clear error if there is nothing to resume
    study = nas.create_study(
        config.name,
        storage=url,
        space=space,
        objectives=dict(config.objectives),
        config=config.model_dump(mode="json"),
        load_if_exists=True,
    )
    _wait_for_orphans(study)

    is_train = isinstance(config.evaluator, TrainEvaluatorConfig)
    dataset = load_dataset(config.dataset, seed=config.data_seed) if is_train else None
    shape = dataset.input_shape if dataset is not None else (3, 32, 32)
    classes = dataset.num_classes if dataset is not None else 10

    strategy = create_strategy(
        config.strategy.name,
        space,
        objectives=dict(config.objectives),
        seed=config.seed,
        constraints=dict(config.constraints) or None,
        measure=_measure(space, shape, classes) if config.constraints else None,
        **config.strategy.options,
    )
    done = effective_finished(study.trials())
    strategy.warm_start(done)
    remaining = config.budget.trials - len(done)
    primary, direction = next(iter(config.directions.items()))
    artifacts = artifacts_root(url)

    fit_seconds = 0.0
    with SearchProgress(
        config.name, config.budget.trials, 0, primary, direction, enabled=show_progress
    ) as progress:
        progress.seed(done)
        if remaining > 0:
            _quiet_ray()
            connect(address)
            searcher = make_searcher(study, strategy, config, progress, artifacts, len(done))
            heartbeat = _Heartbeat(study, searcher.running)
            heartbeat.start()
            fit_started = time.monotonic()
            try:
                _fit(tune, config, searcher, dataset, remaining, primary, direction)
            finally:
                fit_seconds = time.monotonic() - fit_started
                heartbeat.stop_event.set()
    counts = {state.value: n for state, n in study.count_trials().items()}
    finished = effective_finished(study.trials())
    try:
        best = study.best_trials
    except NASError:
        best = []
    return SearchOutcome(
        study=config.name,
        storage=url,
        finished=len(finished),
        counts=counts,
        best=best,
        seconds=time.monotonic() - started,
        fit_seconds=fit_seconds,
        artifacts_dir=str(artifacts),
    )


def _trial_name(trial: Any) -> str:
    return f"trial-{trial.config.get('number', trial.trial_id)}"


def _quiet_ray() -> None:
    """Ray Tune's own INFO/WARNING chatter (missing result files, token notices) is not for our users."""
    if not logger.isEnabledFor(logging.DEBUG):
        for name in ("ray", "ray.tune", "ray.train", "ray._private"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _fit(
    tune: Any,
    config: SearchConfig,
    searcher: Any,
    dataset: Any,
    remaining: int,
    primary: str,
    direction: Direction,
) -> None:
    evaluator = config.evaluator
    job = T.TrialJob(
        space_name=config.space.name,
        space_options=config.space.options,
        evaluator_name=evaluator.name,
        evaluator_options=evaluator.options,
        data_seed=config.data_seed,
        num_threads=max(1, int(config.resources.cpu)),
        plugins=tuple(config.plugins),
    )
    resources = {"cpu": config.resources.cpu, "gpu": config.resources.gpu}
    trainable = tune.with_resources(tune.with_parameters(T.run_trial, job=job, dataset=dataset), resources)
    scheduler = None
    if config.scheduler is not None and config.scheduler.name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        max_t = evaluator.epochs if isinstance(evaluator, TrainEvaluatorConfig) else 1
        scheduler = ASHAScheduler(
            metric=primary,
            mode=direction.value,
            time_attr=T.STEP,
            max_t=max_t,
            grace_period=config.scheduler.grace_epochs,
            reduction_factor=config.scheduler.reduction_factor,
        )
    tuner = tune.Tuner(
        trainable,
        # No metric here: Tune would then demand it in every result, and a failed
        # trial's report has none. ASHA gets the metric itself and skips such results.
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=remaining,
            max_concurrent_trials=config.budget.concurrent,
            time_budget_s=config.budget.time_s,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"nas-{config.name}",
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
            log_to_file=True,
        ),
    )
    tuner.fit()
