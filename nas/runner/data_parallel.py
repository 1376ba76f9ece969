"""Multi-worker trials: one trial's training data-parallel on Ray Train, inside the Tune search.

``resources: {workers: N, cpu: C, gpu_per_worker: G}`` makes each trial a
Ray Tune function (:func:`run_parallel_trial`) that launches a
:class:`ray.train.torch.TorchTrainer` with N workers of C CPUs and G GPUs
(DDP over gloo on CPUs, NCCL on GPUs) and waits for it. This is the Ray
2.5x/2.60 way to run Train inside Tune: Train V2 (the default since 2.5x)
no longer accepts a trainer as a Tune trainable; instead the Tune function
is the Train *driver*: a Train callback forwards what rank 0 reports to
``ray.train.report`` to it, and it reports that to Tune as the trial's own
results (see :func:`run_parallel_trial` for why not Ray's ``TuneReportCallback``).
So the searcher, ASHA, the store and the artifact path see a
multi-worker trial exactly like a single-worker one: one curve (rank 0's
reports carry the metrics all-reduced over the ranks, :func:`nas.training.fit`)
and one set of weights (rank 0's final report carries them, as the single
worker's does).

Every worker runs the ordinary trial body (:func:`nas.runner.trainable.evaluate_trial`):
the evaluator builds the same model from the same seed, and ``fit`` sees the
process group Ray Train initialised. The other ranks report empty results
(``ray.train.report`` is a barrier every rank must reach as often as rank 0).

Resources. Train V2 places its workers in a placement group of its own
(N bundles, PACK: on one node when one has room, else spread), and its
controller actor takes no CPU. The Tune trial that waits for it therefore
asks for no CPU either (only :data:`TRIAL_DRIVER_MEMORY`: a Tune trial must
ask for something), so a trial takes exactly N x C CPUs and N x G GPUs,
which is what :func:`nas.runner.cluster.check_placeable` checks before the
search starts. Had the Tune trial kept its usual CPU, a 2-worker trial
could never run on a 2-CPU machine.

Failures. An exception in the evaluator on the workers fails the trial
(FAIL, with the workers' tracebacks), as in a single-worker trial. A worker
that dies (process, node) or a broken collective is Ray's or torch's error:
it is raised from the Tune function, so Tune retries the trial from scratch
(``FailureConfig`` of the search) and the searcher stores FAIL plus a retry,
as for a single-worker trial whose process died.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.runner import trainable as T
from nas.settings.search import SearchConfig

#: What the Tune trial of a multi-worker trial reserves for itself: memory, no CPU (see above).
TRIAL_DRIVER_MEMORY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Scaling:
    """A multi-worker trial's workers: how many, and each one's CPUs and GPUs."""

    workers: int
    cpu: float
    gpu: float

    @classmethod
    def of(cls, config: SearchConfig) -> Scaling:
        resources = config.resources
        return cls(resources.workers, resources.cpu, resources.gpu_each)

    def per_worker(self) -> dict[str, float]:
        return {"CPU": self.cpu, **({"GPU": self.gpu} if self.gpu > 0 else {})}


def parallel_trainable(tune: Any, config: SearchConfig, function: Any = None, **parameters: Any) -> Any:
    """``function`` (:func:`run_parallel_trial` by default) as a Tune trainable that reserves no CPU of its own.

    ``function(config, scaling=, **parameters)`` is the Tune function of a
    multi-worker trial (a supernet's is :func:`nas.runner.oneshot.run_parallel_supernet`).
    """
    function = run_parallel_trial if function is None else function
    function = tune.with_parameters(function, scaling=Scaling.of(config), **parameters)
    return tune.with_resources(function, {"cpu": 0, "gpu": 0, "memory": TRIAL_DRIVER_MEMORY})


def run_parallel_trial(
    config: dict[str, Any], job: T.TrialJob, scaling: Scaling, dataset: Any = None
) -> None:
    """The Tune function of a multi-worker trial: run its TorchTrainer, hand rank 0's reports to Tune."""
    from ray import tune

    loop = {"config": config, "job": job, "dataset": dataset}
    failure = run_workers(train_worker, loop, scaling, lambda metrics, _: tune.report(metrics))
    if failure is None:
        return
    if not evaluator_failed(failure):
        raise failure  # a lost worker or broken collective: Tune retries the trial
    tune.report(T.failure_report(str(failure), T.trial_node(), 0))


def run_workers(
    worker: Callable[[dict[str, Any]], None],
    loop: dict[str, Any],
    scaling: Scaling,
    forward: Callable[[dict[str, Any], str | None], None],
) -> BaseException | None:
    """Run ``worker(loop)`` on the trial's TorchTrainer; ``forward`` each of rank 0's reports in this thread.

    ``forward(metrics, checkpoint)`` gets the path of the checkpoint rank 0
    reported with them (Ray Train keeps it under the Tune trial's directory,
    its two latest), or None. Returns how the run failed, or None.

    ``trainer.fit()`` runs in a thread of this process; this (the Tune
    function's) thread takes rank 0's reports from a queue and forwards each,
    so it can call ``tune.report`` exactly as a single-worker trial does. Ray's
    own ``TuneReportCallback`` was tried first: it feeds Tune from the actor's
    main thread, which a trial Tune stops (ASHA) left blocked with its
    workers held. With this path a stopped trial still did not release its
    Train workers in our test, so a scheduler with ``workers`` > 1 is refused
    by the config (:class:`~nas.settings.search.SearchConfig`) until that is solved.
    """
    from ray import train, tune
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    results = Queue(actor_options={"num_cpus": 0})
    trial_dir = Path(tune.get_context().get_trial_dir() or tempfile.mkdtemp(prefix="nas-trial-"))
    trainer = TorchTrainer(
        worker,
        train_loop_config=loop,
        torch_config=TorchConfig(backend="nccl" if scaling.gpu > 0 else "gloo"),
        scaling_config=train.ScalingConfig(
            num_workers=scaling.workers, use_gpu=scaling.gpu > 0, resources_per_worker=scaling.per_worker()
        ),
        run_config=train.RunConfig(
            name="train",
            storage_path=str(trial_dir),
            callbacks=[_forward_reports(results)],
            # Retrying is the search's business (one retry = one new trial in the store), not Train's.
            failure_config=train.FailureConfig(max_failures=0),
            checkpoint_config=train.CheckpointConfig(num_to_keep=2),
        ),
    )
    failure: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # handed to the function thread below
            failure.append(exc)

    running = threading.Thread(target=fit, name="nas-train-run", daemon=True)
    running.start()
    while running.is_alive() or not results.empty():
        try:
            metrics, checkpoint = results.get(timeout=1.0)
        except Empty:
            continue
        forward(metrics, checkpoint)
    return failure[0] if failure else None


def _forward_reports(results: Any) -> Any:
    """A Ray Train callback (it runs in the Train controller) putting rank 0's reports on ``results``."""
    from ray.train import UserCallback

    class ForwardReports(UserCallback):  # type: ignore[misc]
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            if metrics and metrics[0]:
                results.put((metrics[0], None if checkpoint is None else checkpoint.path))

    return ForwardReports()


def train_worker(loop: dict[str, Any]) -> None:
    """One Ray Train worker: the ordinary trial body, reporting through ``ray.train.report``."""
    from ray import train

    rank = train.get_context().get_world_rank()

    def send(payload: dict[str, Any]) -> None:
        train.report(payload if rank == 0 else {})

    workdir = Path(tempfile.mkdtemp(prefix=f"nas-rank{rank}-"))
    try:
        T.evaluate_trial(
            loop["config"], loop["job"], loop["dataset"], workdir, send, catch=False, checkpoints=False
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def evaluator_failed(error: Exception) -> bool:
    """Whether a failed Train run is the evaluator's own exception (FAIL) rather than a lost worker (retry).

    Ray Train's :class:`~ray.train.WorkerGroupError` maps each failed rank to
    its exception: the evaluator's own on a rank where it raised, Ray's (a
    dead actor, a failed health check) where a worker was lost; a peer of a
    lost worker fails in its collective with torch's ``DistError``. Anything
    but ordinary exceptions on every failed rank is a system failure.
    """
    import torch.distributed

    failures = getattr(error, "worker_failures", None)
    if not failures:
        return False
    for failure in failures.values():
        module = type(failure).__module__ or ""
        if module.startswith("ray.") or isinstance(failure, torch.distributed.DistError):
            return False
    return True


__all__ = ["TRIAL_DRIVER_MEMORY", "Scaling", "parallel_trainable", "run_parallel_trial", "run_workers"]
