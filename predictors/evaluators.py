"""The ``zero_cost`` evaluator: score an architecture instead of training it.

A search can optimise a zero-cost proxy in place of accuracy (e.g. a
pre-screening study, or a pareto front of ``synflow`` against ``flops``).
The evaluator builds the architecture with weights initialised from the
trial's seed and scores it on one mini-batch, which comes from, in order of
preference: an explicit ``batch`` (arrays or tensors), a ``dataset`` loaded
by :func:`nas.data.load_dataset` (e.g. ``"cifar10"``; a batch drawn from its
training split with ``data_seed``), or a synthetic standard-normal batch of
``input_shape`` (fine for the data-free ``synflow``, ``params`` and
``flops``; a weaker, data-free variant of the others).

Returned values: ``{proxy: score, "params": ..., "flops": ...}``, so a
study can use the proxy as objective and model size as a constraint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from nas.core import EVALUATORS, ConfigError, EvalResult, Evaluator, SearchSpace
from nas.core.evaluator import EvalRequest
from nas.core.space import MAX_CLASSES, check_input_shape
from predictors.zero_cost import PROXIES, dataset_batch, score_arch, synthetic_batch

BatchLike = tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]


def _as_batch(batch: BatchLike) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(batch, Sequence) and len(batch) == 2):
        raise ConfigError("batch must be a pair (images N x C x H x W, integer labels N)")
    x, y = (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v)) for v in batch)
    if x.dim() != 4 or not x.is_floating_point():
        raise ConfigError(f"batch images must be a float N x C x H x W array, got {x.dtype} {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise ConfigError(f"batch labels must be {x.shape[0]} integers, got {y.dtype} {tuple(y.shape)}")
    return x.float(), y.long()


class ZeroCostSettings(BaseModel):
    """The ``zero_cost`` options as a config gives them, checked when the search's plan is built.

    The evaluator is built inside each trial; without this model a bad
    ``input_shape`` or an unknown ``proxy`` would only fail there, once per
    trial, after the study was written. The constructor keeps its own checks
    (it is also called from Python with arrays as ``batch``).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    proxy: str = "synflow"
    batch: Any = None
    dataset: str | dict[str, Any] | None = None
    batch_size: int = Field(64, ge=1)
    data_seed: int = 0
    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = Field(10, ge=1, le=MAX_CLASSES)
    fallback: float | None = None

    @field_validator("proxy")
    @classmethod
    def _known_proxy(cls, proxy: str) -> str:
        PROXIES.get(proxy)  # an UnknownNameError (a ValueError) naming the registered proxies
        return proxy

    @field_validator("input_shape", mode="before")
    @classmethod
    def _buildable_shape(cls, shape: object) -> tuple[int, int, int]:
        return check_input_shape(shape, "input_shape")


@EVALUATORS.register("zero_cost")
class ZeroCostEvaluator(Evaluator):
    """Evaluate by zero-cost proxy ``proxy`` (one of :data:`predictors.zero_cost.PROXIES`)."""

    settings_model: ClassVar[type | None] = ZeroCostSettings

    @classmethod
    def reported_metrics(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The proxy's score (named after it), ``params`` and ``flops``."""
        return tuple(dict.fromkeys((str(options.get("proxy", "synflow")), "params", "flops")))

    def __init__(
        self,
        space: SearchSpace,
        proxy: str = "synflow",
        *,
        batch: BatchLike | None = None,
        dataset: str | Mapping[str, Any] | None = None,
        batch_size: int = 64,
        data_seed: int = 0,
        input_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 10,
        fallback: float | None = None,
    ) -> None:
        super().__init__(space)
        PROXIES.get(proxy)  # unknown names fail here, with close matches
        if not callable(getattr(space, "build", None)):
            raise ConfigError(f"space {space.name!r} cannot build models; zero-cost proxies need one")
        if batch is not None and dataset is not None:
            raise ConfigError("pass either batch or dataset, not both")
        self.proxy = proxy
        self.fallback = fallback
        if batch is not None:
            self.x, self.y = _as_batch(batch)
            self.num_classes = int(num_classes)
        elif dataset is not None:
            self.x, self.y, self.num_classes = dataset_batch(dataset, batch_size, data_seed)
        else:
            shape = check_input_shape(tuple(input_shape), "zero_cost option input_shape")
            self.x, self.y = synthetic_batch(batch_size, shape, num_classes, data_seed)
            self.num_classes = int(num_classes)
        labels = self.y
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ConfigError(
                f"batch labels lie in [{int(labels.min())}, {int(labels.max())}]; allowed: 0..{self.num_classes - 1}"
            )

    def measure(self, request: EvalRequest) -> EvalResult:
        """Score the architecture on a network initialised from ``seed``; ``budget`` is ignored (nothing trains)."""
        arch, seed = request.arch, request.seed
        self.space.validate(arch)
        names = list(dict.fromkeys((self.proxy, "params", "flops")))
        values = score_arch(
            self.space,
            arch,
            names,
            self.x,
            self.y,
            seed=seed,
            num_classes=self.num_classes,
            fallback=self.fallback,
        )
        return EvalResult(values=values, user_attrs={"batch_size": int(self.x.shape[0])})
