"""The ``train`` evaluator: build the architecture, train it, measure it, keep its weights.

One call of :meth:`TrainEvaluator.evaluate` is one trial. It trains on the
training split and validates on the validation split only (the test split is
for export and final evaluation, never for search), streams a learning curve
through ``report`` (which the runner forwards to Ray Tune and the store, and
through which ASHA may stop the trial), and returns every metric a search may
optimise or constrain on: validation and training accuracy/loss, parameter
count, FLOPs and measured CPU latency. The trained weights are saved as the
``weights`` artifact so export needs no retraining. Asked to, it hands the
training loop's state to the runner after every epoch and continues from such
a state (:class:`nas.training.LoopState`): how a paused trial resumes.
With ``inherit: parent`` a child proposed as a morphism of a parent trial
(``EvalRequest.parent``) starts from the parent's weights mapped through the
morphism (:mod:`nas.evaluators.inherit`) and trains ``inherit_epochs`` only.

The dataset is given as a :class:`~nas.data.Dataset` or, better for Ray, as
a dataset config that each worker loads once (cheap to pickle).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import ValidationError

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.evaluator import EVALUATORS, EvalContext, EvalRequest, EvalResult, Evaluator
from nas.core.morphism import morphism_view
from nas.core.seeds import check_seed
from nas.core.space import SearchSpace
from nas.data import Dataset, load_dataset
from nas.data.streaming import StreamingDataset
from nas.evaluators.inherit import inherit
from nas.settings.dataset import DatasetConfig
from nas.settings.errors import format_validation_error
from nas.settings.train import TrainSettings
from nas.training import (
    Shard,
    fit,
    measure_latency_ms,
    resolve_device,
    resolve_precision,
    save_state_dict,
    seeded,
    torch_threads,
)

logger = logging.getLogger(__name__)

#: A loaded dataset: arrays in memory, or references streamed by data workers.
LoadedDataset = Dataset | StreamingDataset
DatasetSource = LoadedDataset | DatasetConfig | Mapping[str, Any] | str | Callable[[], Dataset]

#: Every key of ``EvalResult.values``; objectives and constraints may name any of them.
METRICS: tuple[str, ...] = (
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "params",
    "flops",
    "latency_ms",
)

#: The settings a trial's training recipe may set (a recipe-searching strategy's decisions): the
#: optimisation hyper-parameters FBNetV3 searches. Not the device, precision or measurement options,
#: which do not make a network better or worse.
RECIPE_FIELDS: tuple[str, ...] = (
    "lr",
    "weight_decay",
    "epochs",
    "label_smoothing",
    "mixup",
    "batch_size",
    "momentum",
    "optimizer",
    "augment",
)


@EVALUATORS.register("train")
class TrainEvaluator(Evaluator):
    """Train each architecture from scratch with :func:`nas.training.fit`.

    ``settings`` (a :class:`~nas.settings.train.TrainSettings` or mapping) and keyword
    ``options`` (same names: ``epochs``, ``batch_size``, ``lr``,
    ``optimizer``, ...) are merged and validated together. ``data_seed``
    splits validation off the training set (the same for every trial of a
    study; a trial's own ``seed`` only drives initialisation and shuffling).
    ``num_threads`` is the per-trial CPU share; ``workdir`` receives the
    weight files (default: a fresh temporary directory).
    """

    needs_data: ClassVar[bool] = True
    produces_weights: ClassVar[bool] = True
    uses_devices: ClassVar[bool] = True
    data_parallel: ClassVar[bool] = True
    settings_model: ClassVar[type | None] = TrainSettings
    fidelity: ClassVar[str | None] = "epochs"
    reports: ClassVar[tuple[str, ...] | None] = METRICS
    epoch_metrics: ClassVar[tuple[str, ...] | None] = (
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
    )
    checkpoints: ClassVar[bool] = True
    inherits: ClassVar[bool] = True
    recipe_fields: ClassVar[tuple[str, ...]] = RECIPE_FIELDS

    @classmethod
    def inherited_budget(cls, options: Mapping[str, Any]) -> float | None:
        settings = TrainSettings.model_validate(dict(options))
        return float(settings.child_epochs) if settings.inherit == "parent" else None

    @classmethod
    def check_space(cls, space: SearchSpace, options: Mapping[str, Any]) -> None:
        """``inherit: parent`` needs a space with morphisms (the error names those that have them)."""
        if options.get("inherit") == "parent":
            morphism_view(space)

    @classmethod
    def create(cls, space: SearchSpace, options: Mapping[str, Any], context: EvalContext) -> TrainEvaluator:
        """A trial's evaluator: the search's dataset and split seed, the trial's workdir and CPU share."""
        return cls(
            space,
            context.dataset,
            settings=dict(options),
            data_seed=context.data_seed,
            workdir=context.workdir,
            num_threads=context.num_threads,
        )

    def __init__(
        self,
        space: SearchSpace,
        dataset: DatasetSource = "digits",
        *,
        settings: TrainSettings | Mapping[str, Any] | None = None,
        data_seed: int = 0,
        workdir: str | os.PathLike[str] | None = None,
        num_threads: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space)
        if not callable(getattr(space, "build", None)):
            raise ConfigError(f"the train evaluator needs a space that builds models; {space!r} does not")
        merged = settings.model_dump() if isinstance(settings, TrainSettings) else dict(settings or {})
        merged.update(options)
        try:
            self.settings = TrainSettings.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(
                "invalid train evaluator options:\n" + format_validation_error(exc, TrainSettings)
            ) from exc
        if not (isinstance(dataset, LoadedDataset | DatasetConfig | Mapping | str) or callable(dataset)):
            raise ConfigError(
                f"dataset {dataset!r} is not allowed; expected a Dataset, a dataset config (mapping or name) "
                "or a callable returning a Dataset"
            )
        self._dataset_source = dataset
        self._dataset = dataset if isinstance(dataset, LoadedDataset) else None
        self.data_seed = check_seed(data_seed)
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ConfigError(f"num_threads={num_threads!r} is not allowed; expected an integer >= 1 or None")
        self.num_threads = num_threads
        self._workdir = None if workdir is None else Path(workdir)
        self.check_space(space, {"inherit": self.settings.inherit})

    # -- lazily resolved state (kept out of pickles sent to Ray workers) -------------------
    @property
    def dataset(self) -> LoadedDataset:
        """The dataset, loaded on first use and then kept for every later trial of this process."""
        if self._dataset is None:
            source = self._dataset_source
            if callable(source) and not isinstance(source, DatasetConfig | Mapping | str):
                loaded = source()
                if not isinstance(loaded, LoadedDataset):
                    raise ConfigError(
                        f"dataset callable {source!r} returned {type(loaded).__name__}, not a Dataset"
                    )
            else:
                loaded = load_dataset(source, seed=self.data_seed)  # type: ignore[arg-type]
            self._dataset = loaded
        return self._dataset

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="nas-train-"))
            logger.info("train evaluator: no workdir given; weights go to %s", self._workdir)
        return self._workdir

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not isinstance(self._dataset_source, LoadedDataset):
            state["_dataset"] = None  # each worker loads its own copy from the config
        return state

    # -- the trial ------------------------------------------------------------------------------
    def measure(self, request: EvalRequest) -> EvalResult:
        """Train the architecture for ``budget`` epochs (default ``settings.epochs``) and measure it."""
        arch, report = request.arch, request.report
        self.space.validate(arch)
        seed = check_seed(request.seed)
        settings = self.recipe_settings(request.recipe)
        parent = request.parent if settings.inherit == "parent" else None
        default = settings.epochs if parent is None else settings.child_epochs
        epochs = default if request.budget is None else budget_epochs(request.budget)
        dataset = self.dataset
        device = resolve_device(settings.device)
        precision = resolve_precision(settings.amp, device)
        with torch_threads(self.num_threads) as threads:
            params, flops = self._size(arch, dataset)
            with seeded(seed, device):
                model = self.space.build(
                    arch, num_classes=dataset.num_classes, input_shape=dataset.input_shape
                )
                if parent is not None and request.resume is None:  # a resumed run has its own weights
                    inherit(self.space, arch, model, parent, dataset, seed)
                outcome = fit(
                    model,
                    dataset,
                    settings,
                    epochs=epochs,
                    seed=seed,
                    device=device,
                    precision=precision,
                    report=report,
                    resume=request.resume,
                    checkpoint=request.checkpoint,
                )
            latency = measure_latency_ms(
                model, dataset.input_shape, settings.latency_repeats, settings.latency_warmup
            )
        weights = save_state_dict(model, self.workdir / f"weights-{arch.key}-seed{seed}-e{epochs}.pt")
        last = outcome.last
        nan = math.nan
        values = {
            "val_accuracy": nan if outcome.diverged else last.get("val_accuracy", nan),
            "val_loss": nan if outcome.diverged else last.get("val_loss", nan),
            "train_accuracy": last.get("train_accuracy", nan),
            "train_loss": last.get("train_loss", nan),
            "params": float(params),
            "flops": float(flops),
            "latency_ms": latency,
        }
        user_attrs = {
            "epochs": epochs,
            "epochs_completed": len(outcome.history),
            "resumed_after_epoch": outcome.resumed_after,
            "diverged": outcome.diverged,
            "train_time_s": outcome.seconds,
            "device": str(device),
            "precision": precision.label,
            "num_threads": threads,
            # Data-parallel ranks that trained it (resources.workers; 1 without torch.distributed).
            "workers": Shard.current().world,
            "dataset": dataset.summary(),
            "preprocessing": dataset.preprocessing,
            "learning_curve": outcome.history,
        }
        if request.recipe:
            user_attrs["recipe"] = {name: getattr(settings, name) for name in request.recipe}
        if parent is not None:
            user_attrs["inherited_from"] = {"trial": parent.trial, "morphism": dict(parent.morphism)}
        logger.info(
            "trained %s: val_accuracy %.2f%% in %.1fs (%d epochs)",
            arch.key[:12],
            values["val_accuracy"],
            outcome.seconds,
            len(outcome.history),
        )
        return EvalResult(values=values, user_attrs=user_attrs, artifacts={"weights": str(weights)})

    def recipe_settings(self, recipe: Mapping[str, Any] | None) -> TrainSettings:
        """The settings of a trial with this training ``recipe`` (the evaluator's own without one).

        A recipe names only :data:`RECIPE_FIELDS`; its values are checked like the options.
        """
        if not recipe:
            return self.settings
        unknown = sorted(set(recipe) - set(RECIPE_FIELDS))
        if unknown:
            raise ConfigError(
                f"the trial's recipe sets {unknown}, which the train evaluator does not take per trial; "
                f"allowed: {list(RECIPE_FIELDS)}"
            )
        try:
            return TrainSettings.model_validate({**self.settings.model_dump(), **recipe})
        except ValidationError as exc:
            raise ConfigError(
                "invalid training recipe of the trial:\n" + format_validation_error(exc, TrainSettings)
            ) from exc

    def _size(self, arch: Architecture, dataset: LoadedDataset) -> tuple[int, float]:
        """Parameters and FLOPs (batch 1) from the space's own counter, without touching global RNG."""
        stats = getattr(self.space, "stats", None)
        with torch.random.fork_rng(devices=[]):
            if callable(stats):
                measured = stats(arch, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
                return int(measured.params), float(measured.flops)
            model = self.space.build(arch, num_classes=dataset.num_classes, input_shape=dataset.input_shape)
            return sum(p.numel() for p in model.parameters()), math.nan


def budget_epochs(budget: float) -> int:
    """A fidelity as a whole number of epochs (>= 1)."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget):
        raise ConfigError(f"budget={budget!r} is not allowed; expected a number of epochs >= 1")
    epochs = int(round(budget))
    if epochs < 1:
        raise ConfigError(f"budget={budget!r} rounds to {epochs} epochs; expected at least 1")
    return epochs


__all__ = ["METRICS", "RECIPE_FIELDS", "TrainEvaluator", "budget_epochs"]
