"""``nas search`` for one-shot methods: supernets as Ray Tune trials, derived cells as ordinary trials.

A config whose ``strategy`` names a one-shot method (``darts``, ``pc_darts``,
``gdas``, ``spos``) runs this phase of :func:`nas.runner.driver.run_search`
(which opens the study and reports the outcome as for any search). It has
two steps, both on Ray and both resumable:

1. **Supernets.** Every seed (``strategy.seeds``, default the config's seed)
   is one Tune trial (``concurrent`` at once, ``resources`` each). A worker
   trains with :mod:`nas.oneshot`, reports every epoch with a checkpoint (Tune
   keeps it in the experiment directory beside the store's artifacts), then
   derives the architecture and runs the guard-rail reports. A worker that
   dies is restarted from its last epoch; a driver that dies is resumed by
   running the same command: the Tune experiment is restored (or, if Tune had
   not saved its state yet, started again) and each unfinished supernet
   continues from its checkpoint, which every worker also keeps under
   ``<store>_artifacts/<study>/oneshot/`` (``user_attrs.resumed_from_epoch``
   records it). Everything that can be checked
   before training is checked on the driver first (method and space, options,
   dataset split, memory for the batch, the rank-correlation table).

2. **Derived architectures.** The driver stores each supernet as a trial and
   queues its derived architecture, which then runs through the ordinary
   trial machinery of :mod:`nas.runner.trials` -- the configured evaluator
   (retrained by ``train``, or looked up by ``nb201_table``), ASHA, artifacts,
   retries -- and becomes a COMPLETE trial with the evaluator's values and
   ``system_attrs.derived_from`` = the supernet trial's number.

**How a supernet is stored.** The supernet trial holds the derived
architecture, state PRUNED, per-epoch curves ``supernet/train_loss``,
``supernet/train_accuracy``, ``supernet/val_loss``, ``supernet/val_accuracy``
(and ``supernet/lr``, ``supernet/tau``, ``supernet/epoch_time_s``) and the
softmaxed ``alpha/<edge>/<op>``, ``system_attrs`` with ``kind: supernet`` and
the method, and ``user_attrs`` with the collapse report, the rank correlation, the memory estimate and
the final alpha. PRUNED, not COMPLETE: a supernet's accuracy with shared
weights is not a stand-alone result of that architecture, so it must not
count in ``best_trials``, Pareto fronts or result reuse (``Study.lookup``
reuses COMPLETE results by architecture); PRUNED is the store's state for a
trial that ended without objective values, and the dashboard shows its
curves like any other trial's. The trial is added when its supernet finishes
(its architecture is only known then), with the whole curve at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core import Architecture, Trial, TrialState
from nas.core.errors import ConfigError
from nas.core.files import atomic_write
from nas.core.space import SearchSpace
from nas.runner import trainable as T
from nas.runner.cluster import connect, quiet_ray
from nas.runner.context import SearchRun
from nas.runner.data_parallel import Scaling, evaluator_failed, parallel_trainable, run_workers
from nas.runner.lifecycle import StopRequest, tune_stopper
from nas.runner.plan import SearchPlan
from nas.runner.recovery import MAX_RETRIES, effective_finished
from nas.runner.trials import run_trials
from nas.settings.search import SearchConfig
from nas.store.url import artifact_dir

logger = logging.getLogger(__name__)

#: Keys of a supernet worker's reports (besides the per-epoch metrics).
RESULT = "nas_oneshot_result"
EPOCH = "nas_oneshot_epoch"
SEED = "nas_oneshot_seed"
ARCH = "nas_oneshot_arch"
#: The file holding a finished supernet's last checkpoint (its trained weights), recorded with its trial.
CHECKPOINT = "nas_oneshot_checkpoint"


@dataclass(frozen=True)
class SupernetJob:
    """What a supernet worker needs besides its seed (pickled once into Ray's object store)."""

    setup: T.WorkerSetup
    method: str
    options: Mapping[str, Any]
    #: Where each seed also keeps its latest checkpoint (``<dir>/seed-<s>``), so a run whose
    #: Tune experiment could not be restored still resumes (one machine or a shared file system).
    checkpoint_dir: str | None = None

    def seed_dir(self, seed: int) -> Path | None:
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / f"seed-{seed}"


def run_supernet(config: dict[str, Any], job: SupernetJob, dataset: Any) -> None:
    """The Tune function trainable of one supernet seed: train with checkpoints, derive, report."""
    from ray import tune

    from nas.oneshot import load_checkpoint
    from nas.training import torch_threads

    seed = int(config["seed"])
    node = f"{socket.gethostname()}/{os.getpid()}"
    method = None
    started = time.perf_counter()
    try:
        with torch_threads(job.setup.num_threads):
            method = _create_method(job, seed, dataset)
            local = job.seed_dir(seed)
            checkpoint = tune.get_checkpoint()
            if checkpoint is not None:
                with checkpoint.as_directory() as directory:
                    load_checkpoint(method, directory)
            elif local is not None:
                load_checkpoint(method, local)
            resumed = method.epoch or None

            def send(metrics: dict[str, Any], directory: str | None) -> None:
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

            method.fit(_epoch_reports(seed, node, send, local))
            final = _final_report(method, seed, node, started, resumed)
    except Exception as exc:  # becomes a FAIL supernet trial (if an architecture exists) with its traceback
        arch = None
        if method is not None:
            try:
                arch = method.derive().to_json()
            except Exception:  # noqa: BLE001  (the original error is what matters)
                arch = None
        tune.report(
            {
                T.FINAL: True,
                T.ERROR: "".join(traceback.format_exception(exc)),
                ARCH: arch or "",
                SEED: seed,
                T.NODE: node,
                EPOCH: 0 if method is None else method.epoch,
            }
        )
        return
    tune.report(final)


def run_parallel_supernet(config: dict[str, Any], job: SupernetJob, scaling: Scaling, dataset: Any) -> None:
    """The Tune function of one supernet seed on ``resources.workers`` Ray Train workers.

    The workers (:func:`supernet_worker`) train data-parallel
    (:mod:`nas.oneshot.parallel`); rank 0's per-epoch reports and checkpoints
    reach Tune here exactly as a single worker's do (the checkpoint also
    copied to the seed's directory under the artifacts), so the store, resume
    and the derived trials see no difference. A run resumes from the Tune
    checkpoint (or that copy): its bytes go to every worker with the loop.
    """
    from ray import tune

    seed = int(config["seed"])
    local = job.seed_dir(seed)
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = _checkpoint_bytes(Path(directory))
    elif local is not None:
        state = _checkpoint_bytes(local)

    def forward(metrics: dict[str, Any], directory: str | None) -> None:
        if directory is None:
            tune.report(metrics)
            return
        if local is not None:
            data = _checkpoint_file(directory).read_bytes()
            atomic_write(_checkpoint_file(local), lambda stream: stream.write(data))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    loop = {"seed": seed, "job": job, "dataset": dataset, "state": state}
    failure = run_workers(supernet_worker, loop, scaling, forward)
    if failure is None:
        return
    if not evaluator_failed(failure):
        raise failure  # a lost worker or broken collective: Tune retries the seed from its checkpoint
    tune.report(
        {T.FINAL: True, T.ERROR: str(failure), ARCH: "", SEED: seed, T.NODE: T.trial_node(), EPOCH: 0}
    )


def supernet_worker(loop: dict[str, Any]) -> None:
    """One Ray Train worker of a supernet: the same method on every rank, gradients averaged, rank 0 reports.

    Every rank calls ``ray.train.report`` as often as rank 0 (it is a
    barrier); the others report nothing. An exception propagates, so Ray
    Train tears down peers waiting in a collective (see :mod:`nas.runner.data_parallel`).
    """
    from ray import train

    from nas.oneshot import load_checkpoint
    from nas.oneshot.parallel import data_parallel
    from nas.training import torch_threads

    rank = train.get_context().get_world_rank()
    job, seed = loop["job"], int(loop["seed"])
    node = T.trial_node()
    started = time.perf_counter()

    def send(metrics: dict[str, Any], directory: str | None) -> None:
        if rank == 0 and directory is not None:
            train.report(metrics, checkpoint=train.Checkpoint.from_directory(directory))
        else:
            train.report(metrics if rank == 0 else {})

    with torch_threads(job.setup.num_threads):
        method = _create_method(job, seed, loop["dataset"])
        if loop["state"] is not None:
            with tempfile.TemporaryDirectory(prefix="nas-oneshot-resume-") as directory:
                _checkpoint_file(directory).write_bytes(loop["state"])
                load_checkpoint(method, directory)
        resumed = method.epoch or None
        with data_parallel(method):
            method.fit(_epoch_reports(seed, node, send, None, save=rank == 0))
        final = _final_report(method, seed, node, started, resumed) if rank == 0 else {}
    send(final, None)


def _create_method(job: SupernetJob, seed: int, dataset: Any) -> Any:
    from nas.oneshot import create_method

    return create_method(
        job.method, job.setup.space(), dataset, dict(job.options), seed=seed, data_seed=job.setup.data_seed
    )


def _epoch_reports(
    seed: int,
    node: str,
    send: Callable[[dict[str, Any], str | None], None],
    local: Path | None,
    *,
    save: bool = True,
) -> Callable[[Any, Mapping[str, float]], None]:
    """The epoch callback: the seed's checkpoint (also kept in ``local``), ``send`` the metrics with it."""
    from nas.oneshot import save_checkpoint

    def on_epoch(trained: Any, metrics: Mapping[str, float]) -> None:
        report = {**T.clean_metrics(metrics), EPOCH: trained.epoch, SEED: seed, T.NODE: node}
        if not save:
            send(report, None)
            return
        if local is not None:
            save_checkpoint(trained, local)
        with tempfile.TemporaryDirectory(prefix="nas-oneshot-") as directory:
            save_checkpoint(trained, directory)
            send(report, directory)

    return on_epoch


def _final_report(method: Any, seed: int, node: str, started: float, resumed: int | None) -> dict[str, Any]:
    """Derive the architecture, run the guard-rail reports: the seed's last report."""
    from nas.oneshot import finish

    result = finish(method, time.perf_counter() - started, resumed_from=resumed)
    return {T.FINAL: True, RESULT: result.to_json(), SEED: seed, T.NODE: node, EPOCH: method.epoch}


def _checkpoint_file(directory: str | Path) -> Path:
    from nas.oneshot.checkpoint import checkpoint_file

    return checkpoint_file(directory)


def _checkpoint_bytes(directory: Path) -> bytes | None:
    path = _checkpoint_file(directory)
    return path.read_bytes() if path.is_file() else None


def _experiment_name(config: SearchConfig, seeds: list[int]) -> str:
    """Deterministic per (method, options, seeds): rerunning the command restores the same experiment."""
    payload = json.dumps(
        [config.strategy.name, config.strategy.options, config.space.model_dump(mode="json"), seeds],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.blake2b(payload.encode(), digest_size=6).hexdigest()
    return f"supernets-{config.strategy.name}-{digest}"


def _seed_name(trial: Any) -> str:
    return f"seed-{trial.config.get('seed', trial.trial_id)}"


class _EpochLog:
    """A Tune callback logging each supernet epoch (picklable: Tune saves it with the experiment)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled

    def __call__(self, result: Mapping[str, Any]) -> None:
        if EPOCH in result and not result.get(T.FINAL):
            message = (
                f"supernet seed {result.get(SEED)} epoch {result[EPOCH]}/{self.total}: "
                f"train {result.get('train_accuracy', float('nan')):.1f}%, "
                f"val {result.get('val_accuracy', float('nan')):.1f}%"
            )
            logger.info(message)
            if self.enabled:
                from rich.console import Console

                Console(stderr=True).print(message)


def _callback_class() -> type:
    from ray.tune import Callback

    class EpochCallback(Callback):  # type: ignore[misc, valid-type]
        def __init__(self, log: _EpochLog) -> None:
            self.log = log

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            self.log(result)

    return EpochCallback


def _train_supernets(
    config: SearchConfig,
    seeds: list[int],
    dataset: Any,
    root: Path,
    epochs: int,
    show_progress: bool,
    stop: StopRequest,
) -> list[dict[str, Any]]:
    """Run (or restore) the Tune experiment of the supernet seeds; returns each trial's final report.

    After a stop request (Ctrl+C) only the supernets that finished are reported:
    the others resume from their checkpoints when the search is run again.
    """
    from ray import tune

    name = _experiment_name(config, seeds)
    job = SupernetJob(
        setup=T.WorkerSetup.of(config),
        method=config.strategy.name,
        options=config.strategy.options,
        checkpoint_dir=str(root / f"{name}-checkpoints"),
    )
    if config.resources.workers > 1:
        trainable = parallel_trainable(tune, config, run_parallel_supernet, job=job, dataset=dataset)
    else:
        trainable = T.ray_trainable(tune, run_supernet, config, job=job, dataset=dataset)
    path = root / name
    root.mkdir(parents=True, exist_ok=True)
    if tune.Tuner.can_restore(str(path)):
        logger.warning("resuming the supernet experiment %s from its checkpoints", path)
        tuner = tune.Tuner.restore(
            str(path), trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"seed": tune.grid_search(seeds)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=config.budget.concurrent,
                reuse_actors=False,
                trial_name_creator=_seed_name,
                trial_dirname_creator=_seed_name,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(root),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                callbacks=[_callback_class()(_EpochLog(epochs, show_progress))],
                log_to_file=True,
                stop=tune_stopper(stop),
            ),
        )
    grid = tuner.fit()
    reports = []
    for result in grid:
        metrics = dict(result.metrics or {})
        seed = result.config.get("seed") if result.config else None
        if stop.is_set() and not metrics.get(T.FINAL):
            continue
        if not metrics.get(T.FINAL):
            metrics = {
                T.FINAL: True,
                T.ERROR: f"the supernet worker of seed {seed} died {MAX_RETRIES + 1} times: {result.error}",
                SEED: seed,
            }
        local = job.seed_dir(int(seed)) if seed is not None else None
        if local is not None:
            metrics[CHECKPOINT] = str(_checkpoint_file(local))
        reports.append(metrics)
    return reports


def _store_supernet(study: Any, space: SearchSpace, report: Mapping[str, Any]) -> Trial | None:
    """Add a finished supernet as a PRUNED trial with its curves (see the module docstring)."""
    from nas.oneshot import OneShotResult

    seed = int(report.get(SEED) or 0)
    node = report.get(T.NODE)
    system = {"kind": "supernet", "method": study.config.get("strategy", {}).get("name")}
    if report.get(CHECKPOINT):  # the trained weights, which specialisation (nas.specialize) starts from
        system["checkpoint"] = report[CHECKPOINT]
    if report.get(T.ERROR):
        if not report.get(ARCH):
            logger.error("supernet seed %s failed before it had an architecture:\n%s", seed, report[T.ERROR])
            return None
        failed = Trial(
            number=0,
            arch=space.validate(Architecture.from_json(report[ARCH])),
            state=TrialState.FAIL,
            seed=seed,
            system_attrs=system,
            error=report[T.ERROR],
            node=node,
        )
        (stored,) = study.add_trials([failed])
        logger.error("supernet seed %d failed (trial %d):\n%s", seed, stored.number, report[T.ERROR])
        return None
    result = OneShotResult.from_json(report[RESULT])
    trial = Trial(
        number=0,
        arch=space.validate(result.arch),
        state=TrialState.PRUNED,
        seed=seed,
        user_attrs=result.user_attrs(),
        system_attrs=system,
        node=node,
    )
    (stored,) = study.add_trials([trial], metrics=[result.curves()])
    if result.collapse and result.collapse.get("collapsed"):
        logger.warning("supernet seed %d (trial %d): %s", seed, stored.number, result.collapse["message"])
    logger.info("supernet seed %d (trial %d) derived %s", seed, stored.number, result.arch_string)
    return stored


class OneShotPhase:
    """Supernets per seed, then their derived architectures as ordinary trials."""

    def check(self, plan: SearchPlan, dataset: Any) -> None:
        """Everything that can fail on input (data split, memory, rank table) fails before the study is written."""
        from nas.oneshot import create_method

        config = plan.config
        if getattr(dataset, "streaming", False):
            raise ConfigError(
                f"strategy: one-shot method {config.strategy.name!r} trains its supernet on in-memory arrays, "
                f"but dataset {dataset.name!r} streams ({dataset.summary()['train']} training images over the "
                "in-memory threshold, or streaming: true); set dataset.streaming: false or use limit:"
            )
        create_method(
            config.strategy.name,
            plan.space,
            dataset,
            plan.oneshot,
            seed=plan.seeds[0],
            data_seed=config.data_seed,
        )
        if config.resources.workers > 1:
            from nas.oneshot.parallel import check_batch

            check_batch(config.strategy.name, plan.oneshot.batch_size, config.resources.workers)

    def run(self, run: SearchRun) -> float:
        plan, config, study = run.plan, run.config, run.study
        method = config.strategy.name
        stored = {
            t.seed: t
            for t in study.trials()
            if t.system_attrs.get("kind") == "supernet" and t.system_attrs.get("method") == method
        }
        todo = [seed for seed in plan.seeds if seed not in stored]
        quiet_ray()
        if todo and not run.stop.is_set():
            connect(run.address, trial=run.config.per_trial, workers=config.resources.workers)
            root = artifact_dir(run.artifacts, config.name, "oneshot")
            epochs = plan.oneshot.epochs
            reports = _train_supernets(config, todo, run.dataset, root, epochs, run.show_progress, run.stop)
            for report in reports:
                trial = _store_supernet(study, plan.space, report)
                if trial is not None:
                    stored[trial.seed] = trial
        if run.stop.is_set():
            return 0.0
        self._enqueue_derived(run, stored)
        waiting = study.trials(states=TrialState.WAITING)
        done = effective_finished(study.trials())
        if not waiting:
            return 0.0
        return run_trials(run, None, done, len(done) + len(waiting), time_s=None)

    @staticmethod
    def _enqueue_derived(run: SearchRun, stored: Mapping[int, Trial]) -> None:
        """Queue each stored supernet's architecture unless a derived trial exists (any state but FAIL)."""
        study, method = run.study, run.config.strategy.name
        derived_from = {
            t.system_attrs.get("derived_from")
            for t in study.trials()
            if t.system_attrs.get("derived_from") is not None and t.state is not TrialState.FAIL
        }
        for seed in run.plan.seeds:
            supernet = stored.get(seed)
            if (
                supernet is not None
                and supernet.state is TrialState.PRUNED
                and supernet.number not in derived_from
            ):
                study.enqueue(
                    supernet.arch,
                    seed=seed,
                    budget=run.plan.fidelity,
                    system_attrs={"kind": "derived", "method": method, "derived_from": supernet.number},
                )


__all__ = [
    "CHECKPOINT",
    "OneShotPhase",
    "SupernetJob",
    "run_parallel_supernet",
    "run_supernet",
    "supernet_worker",
]
