"""Export's final retraining on several Ray Train workers (``nas export --retrain N --workers W``).

``nas.export`` imports no Ray (the layers contract), so it takes this as a
:class:`nas.export.weights.WorkerTraining` from its caller (``nas export``
passes one). The training is a multi-worker trial's without Tune: the same
:func:`nas.runner.data_parallel.train_worker` on every rank runs the train
evaluator through :func:`nas.runner.trainable.evaluate_trial`, and rank 0's
reports come back through :func:`nas.runner.data_parallel.run_workers`:
its epochs feed export's progress bar, its final report carries the weights
(every rank ends with the same, DDP) and values.

Ray is joined (``address``, ``$RAY_ADDRESS``) or started on this machine as
``nas search`` does (:func:`nas.runner.cluster.connect`), and a worker count
the cluster cannot place is refused there, before any training, naming what
it can place. A local Ray started here is shut down afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import NASError, require
from nas.core.evaluator import EvalResult
from nas.core.space import SearchSpace
from nas.data import Dataset
from nas.runner import cluster
from nas.runner import trainable as T
from nas.runner.data_parallel import Scaling, run_workers, train_worker
from nas.settings.train import TrainSettings

#: The evaluator every rank runs (export retrains with the study's train evaluator settings).
EVALUATOR = "train"


@dataclass(frozen=True)
class RayRetraining:
    """Retrains on Ray Train workers of the cluster at ``address`` (``None``: ``$RAY_ADDRESS`` or a local Ray)."""

    address: str | None = None

    def __call__(
        self,
        space: SearchSpace,
        arch: Architecture,
        dataset: Dataset,
        settings: TrainSettings,
        *,
        seed: int,
        data_seed: int,
        workers: Any,
        workdir: Path,
        report: Callable[[int, Mapping[str, float]], None],
    ) -> EvalResult:
        """Train ``arch`` on ``workers.count`` workers (``workers.cpu``, ``workers.gpu`` each); rank 0's result."""
        ray = require("ray", "ray")
        scaling = Scaling(int(workers.count), float(workers.cpu), float(workers.gpu))
        started = not ray.is_initialized()  # type: ignore[attr-defined]
        try:
            cluster.connect(self.address, trial=scaling.per_worker(), workers=scaling.workers)
            cluster.quiet_ray()
            job = T.TrialJob(
                T.WorkerSetup(space.name, space.options, data_seed, max(1, int(scaling.cpu))),
                EVALUATOR,
                settings.model_dump(mode="json"),
            )
            loop = {"config": {"arch": arch.to_dict(), "seed": seed}, "job": job, "dataset": dataset}
            final = _train(loop, scaling, report)
        finally:
            if started:
                cluster.shutdown()
        return _result(final, workdir)


def _train(
    loop: dict[str, Any], scaling: Scaling, report: Callable[[int, Mapping[str, float]], None]
) -> Mapping[str, Any]:
    """Rank 0's final report, its epochs handed to ``report`` on the way."""
    final: dict[str, Any] = {}

    def forward(result: dict[str, Any], _checkpoint: str | None) -> None:
        if result.get(T.FINAL):
            final.update(result)
        else:
            report(int(result[T.STEP]), json.loads(result[T.METRICS]))

    failure = run_workers(train_worker, loop, scaling, forward)
    if failure is not None:  # the evaluator's error on a rank, or a lost worker: no weights
        raise NASError(f"retraining on {scaling.workers} Ray Train workers failed: {failure}") from failure
    if not final:
        raise NASError(f"retraining on {scaling.workers} Ray Train workers ended without rank 0's result")
    return final


def _result(final: Mapping[str, Any], workdir: Path) -> EvalResult:
    """Rank 0's final report as the evaluator's result, its artifacts written under ``workdir``."""
    artifacts = {}
    for kind, data in final.get(T.ARTIFACTS, []):
        path = workdir / f"rank0-{kind}.pt"
        path.write_bytes(data)
        artifacts[kind] = str(path)
    return EvalResult(
        values=json.loads(final.get(T.VALUES, "{}")),
        user_attrs=json.loads(final.get(T.ATTRS, "{}")),
        artifacts=artifacts,
    )


__all__ = ["RayRetraining"]
