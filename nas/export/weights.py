"""The trained weights to export: the trial's stored ones, verified, or freshly retrained.

The runner stores every COMPLETE trial's state dict as a ``weights``
artifact with its sha256. Export reads it only if the checksum still
matches: a weight file edited or corrupted since the search is refused
rather than shipped. A trial without stored weights (a tabular or reused
result, or ``--retrain``) is trained again with the study's own train
evaluator settings and seed, on its dataset's training split, with a
progress bar of one tick per epoch, in this process or data-parallel on
several Ray Train workers (:class:`WorkerTraining`, which the runner
provides: export itself imports no Ray).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.evaluator import EvalResult
from nas.core.space import SearchSpace
from nas.core.trial import Trial
from nas.export.context import ExportData
from nas.export.errors import ChecksumError, ExportError
from nas.export.files import path_from_uri, sha256_file
from nas.settings.train import TrainSettings
from nas.store.study import Study

logger = logging.getLogger(__name__)

#: Artifact kind under which the runner stores a trial's state dict.
WEIGHTS_KIND = "weights"


@dataclass(frozen=True)
class Weights:
    """A CPU state dict and where it came from (recorded in the model card)."""

    state: Mapping[str, torch.Tensor]
    source: Mapping[str, Any] = field(default_factory=dict)


def stored_weights(study: Study, trial: Trial) -> Weights | None:
    """The trial's stored weights (the latest ``weights`` artifact), checksum-verified; ``None`` if it has none."""
    records = [a for a in study.artifacts(trial) if a.kind == WEIGHTS_KIND]
    if not records:
        return None
    record = records[-1]
    where = f"trial {trial.number} of study {study.name!r}"
    path = path_from_uri(record.uri)
    if not path.is_file():
        raise ExportError(
            f"the weights of {where} were stored at {path}, which no longer exists; "
            "pass --retrain EPOCHS to train the architecture again"
        )
    actual = sha256_file(path)
    if record.sha256 is None:
        logger.warning("the weights of %s have no recorded sha256; they cannot be verified", where)
    elif actual != record.sha256:
        raise ChecksumError(
            str(path),
            record.sha256,
            actual,
            f"the weights file {path} of {where} does not match its recorded sha256 (expected "
            f"{record.sha256[:16]}..., found {actual[:16]}...): it was modified or corrupted; "
            "pass --retrain EPOCHS to train the architecture again",
        )
    state = read_state_dict(path, what=f"the weights file of {where}")
    return Weights(state, {"kind": "stored", "uri": record.uri, "sha256": actual})


def read_state_dict(path: Any, *, what: str) -> dict[str, torch.Tensor]:
    """``torch.load(..., weights_only=True)`` with a clear error for anything but a tensor dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file (pickle, zip, runtime)
        raise ExportError(f"{what} ({path}) is not a readable PyTorch state dict: {exc}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{what} ({path}) holds {type(state).__name__}, not a state dict of tensors")
    return dict(state)


@dataclass(frozen=True)
class Workers:
    """How many data-parallel workers retrain, and each one's CPUs and GPUs (``resources`` of the study)."""

    count: int = 1
    cpu: float = 1.0
    gpu: float = 0.0


#: The train evaluator's training on several Ray Train workers, called as
#: ``on_workers(space, arch, dataset, settings, seed=, data_seed=, workers=Workers, workdir=Path,
#: report=(epoch, metrics) -> None)``. :class:`nas.runner.retraining.RayRetraining` is the one
#: (export may not import Ray, so its caller hands it in): it refuses a worker count the cluster
#: cannot place with a ConfigError before training, reports rank 0's epochs to ``report`` and
#: returns rank 0's result, its weights written under ``workdir``.
WorkerTraining = Callable[..., EvalResult]


def retrain(
    space: SearchSpace,
    arch: Architecture,
    data: ExportData,
    settings: TrainSettings,
    *,
    seed: int,
    data_seed: int,
    label: str,
    progress: bool = True,
    workers: Workers = Workers(),
    on_workers: WorkerTraining | None = None,
) -> Weights:
    """Train ``arch`` from scratch with ``settings`` on the study's dataset and return its weights.

    With ``workers.count`` > 1 the same training runs data-parallel through
    ``on_workers``; the weights are rank 0's (every rank ends with the same).
    """
    from nas.evaluators.train import TrainEvaluator

    if data.dataset is None:  # resolve_data refuses this when training is needed
        raise ExportError(f"{label}: no dataset to retrain on")
    if workers.count > 1 and on_workers is None:
        raise ConfigError(
            f"{label}: retraining on workers={workers.count} needs Ray; pass "
            "on_workers=nas.runner.retraining.RayRetraining() (what `nas export` does), or workers=1"
        )
    with tempfile.TemporaryDirectory(prefix="nas-export-train-") as workdir:
        with EpochProgress(label, settings.epochs, enabled=progress) as bar:
            if on_workers is not None and workers.count > 1:
                result = on_workers(
                    space,
                    arch,
                    data.dataset,
                    settings,
                    seed=seed,
                    data_seed=data_seed,
                    workers=workers,
                    workdir=Path(workdir),
                    report=bar.report,
                )
            else:
                evaluator = TrainEvaluator(
                    space, data.dataset, settings=settings, data_seed=data_seed, workdir=workdir
                )
                result = evaluator.evaluate(arch, seed=seed, report=bar.report)
        state = read_state_dict(result.artifacts["weights"], what="the retrained weights")
    values = {k: float(v) for k, v in result.values.items()}
    if not math.isfinite(values.get("val_accuracy", math.nan)):
        raise ExportError(
            f"{label}: retraining diverged (no finite validation accuracy after {settings.epochs} epochs); "
            "try other evaluator settings (a lower lr)"
        )
    logger.info("%s retrained: val_accuracy %.2f%%", label, values["val_accuracy"])
    return Weights(
        state,
        {
            "kind": "retrained",
            "epochs": settings.epochs,
            "seed": seed,
            # Data-parallel ranks that trained it (rank 0's weights are these).
            "workers": workers.count,
            "settings": settings.model_dump(mode="json"),
            "values": values,
            "train_time_s": result.user_attrs.get("train_time_s"),
        },
    )


def build_model(
    space: SearchSpace,
    arch: Architecture,
    num_classes: int,
    input_shape: tuple[int, int, int],
    state: Mapping[str, torch.Tensor],
) -> nn.Module:
    """The space's model for ``arch`` with ``state`` loaded strictly, in eval mode on the CPU."""
    with torch.random.fork_rng(devices=[]):  # building initialises parameters: keep global RNG untouched
        model = space.build(arch, num_classes=num_classes, input_shape=input_shape)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ExportError(
            f"the weights do not fit the {space.name} model built for input shape {input_shape} and "
            f"{num_classes} classes ({detail[:400]}); was the model trained at another input shape?"
        ) from exc
    return model.to("cpu").float().eval()


class EpochProgress:
    """A rich progress bar over training epochs, fed by the evaluator's ``report`` callback."""

    def __init__(self, label: str, epochs: int, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn(f"[bold]retraining[/bold] {label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._progress.add_task("train", total=epochs, status="")

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        status = f"val_accuracy {metrics['val_accuracy']:.1f}%" if "val_accuracy" in metrics else ""
        self._progress.update(self._task, completed=epoch, status=status)

    def __enter__(self) -> EpochProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()


__all__ = [
    "WEIGHTS_KIND",
    "EpochProgress",
    "Weights",
    "WorkerTraining",
    "Workers",
    "build_model",
    "read_state_dict",
    "retrain",
    "stored_weights",
]
