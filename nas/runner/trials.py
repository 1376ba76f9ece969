"""Running ordinary trials on Ray Tune: the configured evaluator, ASHA, retries, the live display.

Both kinds of search end here: a black-box search with its strategy asking
for architectures, a one-shot search with the queue of derived
architectures (no strategy). Each trial is a :func:`nas.runner.trainable.run_trial`
worker; the :mod:`nas.runner.searcher` stores what they report.
"""

from __future__ import annotations

import time
from typing import Any

from nas.core import Strategy, Trial
from nas.runner import trainable as T
from nas.runner.cluster import connect, quiet_ray
from nas.runner.context import SearchRun
from nas.runner.data_parallel import parallel_trainable
from nas.runner.lifecycle import scoped_env, tune_stopper
from nas.runner.progress import SearchProgress
from nas.runner.recovery import MAX_RETRIES
from nas.runner.searcher import make_restart_callback, make_searcher

#: Ray Tune's switch for its check that every result names the scheduler's metric.
STRICT_METRIC_ENV = "TUNE_DISABLE_STRICT_METRIC_CHECKING"


def run_trials(
    run: SearchRun, strategy: Strategy | None, done: list[Trial], total: int, *, time_s: float | None
) -> float:
    """Run trials until ``total`` have finished (``done`` already have); returns Tune's wall time.

    ``time_s`` caps the wall-clock time of the Tune run (``None``: no cap).
    """
    from ray import tune

    primary, direction = run.primary
    remaining = total - len(done)
    with SearchProgress(run.config.name, total, 0, primary, direction, enabled=run.show_progress) as progress:
        progress.seed(done)
        if remaining <= 0 or run.stop.is_set():
            return 0.0
        quiet_ray()
        resources = run.config.resources
        connect(run.address, trial=run.config.per_trial, workers=resources.workers)
        searcher = make_searcher(run, strategy, progress, len(done), total)
        if run.lease is not None:
            run.lease.track(searcher.running)
        started = time.monotonic()
        if not run.stop.is_set():
            try:
                # A failed trial's report (trainable.failure_report) carries its traceback,
                # not the metric, and Tune refuses any result without the metric its
                # scheduler names: that ended the whole search at the first failure. Every
                # scheduler of ours (and Ray's ASHA and median stopping) skips such results.
                with scoped_env(STRICT_METRIC_ENV, "1"):
                    _tuner(tune, run, searcher, remaining, time_s).fit()
            except Exception:
                if searcher.failure is None:
                    raise
            if searcher.failure is not None:  # the store failed under Tune: that error, not Tune's wrapper
                raise searcher.failure
        return time.monotonic() - started


def _trial_name(trial: Any) -> str:
    return f"trial-{trial.config.get('number', trial.trial_id)}"


def _tuner(tune: Any, run: SearchRun, searcher: Any, remaining: int, time_s: float | None) -> Any:
    config = run.config
    job = T.TrialJob(T.WorkerSetup.of(config), config.evaluator.name, config.evaluator.options)
    if config.resources.workers > 1:
        trainable = parallel_trainable(tune, config, job=job, dataset=run.trial_dataset)
    else:
        trainable = T.ray_trainable(tune, T.run_trial, config, job=job, dataset=run.trial_dataset)
    scheduler = run.plan.scheduler.build(run) if run.plan.scheduler is not None else None
    return tune.Tuner(
        trainable,
        # No metric here: Tune would then demand it in every result, and a failed
        # trial's report has none. Schedulers get the metric themselves and skip such
        # results (Tune's check of the scheduler's metric is off during fit()).
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=remaining,
            # A pausing scheduler's paused trials hold no worker, but Tune's limiter would count
            # them: the searcher then caps the trials that hold one (StrategySearcher.suggest).
            max_concurrent_trials=None if searcher.checkpoints else config.budget.concurrent,
            time_budget_s=time_s,
            # A multi-worker trial's Tune function waits in TorchTrainer.fit(): only ending its
            # actor (which owns the Train controller and workers) stops a trial Tune stops.
            reuse_actors=config.resources.workers == 1,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"nas-{config.name}",
            verbose=0,
            stop=tune_stopper(run.stop),
            failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
            callbacks=[make_restart_callback(searcher)],
            log_to_file=True,
        ),
    )


__all__ = ["run_trials"]
