"""The one-shot method interface: a supernet training loop that can stop, save and resume.

One-shot methods are not ask/tell strategies (see ``ARCHITECTURE.md``): they
own a training loop. The interface is small:

* :meth:`OneShotMethod.fit` trains epoch by epoch, calling back after each
  (the callback checkpoints, reports, or stops the run);
* :meth:`OneShotMethod.state_dict` / :meth:`OneShotMethod.load_state_dict`
  hold *everything* the loop depends on -- weights, architecture parameters,
  optimiser and schedule state, every random generator, the curves -- so a
  run resumed from epoch ``k`` continues exactly as the uninterrupted one;
* :meth:`OneShotMethod.alphas` is the softmaxed architecture distribution
  ``{edge: {op: probability}}`` (empty for SPOS, which has none);
* :meth:`OneShotMethod.derive` is the discrete architecture found.

The loop calls hooks a method may override: ``make_w_scheduler`` (the
weights' schedule), ``begin_epoch``, ``train_step``, ``after_epoch`` and
``should_stop`` (a reason to stop, or None). The alpha-based methods add
their own hooks on top (:mod:`nas.oneshot.differentiable`).

Randomness never touches global state: initialisation runs under
:func:`nas.training.seeded`, batches and samples come from generators the
method owns and checkpoints.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.oneshot import KINDS, oneshot_view, spaces_with
from nas.core.seeds import check_seed
from nas.core.space import SearchSpace
from nas.data import Dataset
from nas.oneshot.data import SearchData, epoch_batches, split_dataset
from nas.oneshot.settings import OneShotSettings, parse_settings
from nas.supernet.base import Supernet
from nas.supernet.recompute import set_checkpointing, supports_checkpointing
from nas.training import Shard, augment_batch, resolve_device, seeded

logger = logging.getLogger(__name__)

#: ``callback(method, metrics)`` after every epoch; it may set ``method.stop_reason`` to stop.
EpochCallback = Callable[["OneShotMethod", Mapping[str, float]], None]

#: Version of the checkpoint layout (refused if different); 2: supernets hold their skeleton as `network`.
CHECKPOINT_FORMAT = 2


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Evaluate with batch statistics in BatchNorm without touching the running statistics.

    A supernet's running statistics average over many paths and fit none of
    them, so its predictions use the batch's own statistics (momentum 0 keeps
    the running averages as they are, and the batch counts are restored).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum) for m in norms]
    # a forward in training mode also counts the batch, which a cumulative average (momentum None) reads
    counts = [None if m.num_batches_tracked is None else m.num_batches_tracked.clone() for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.train()
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (training, momentum), count in zip(norms, saved, counts, strict=True):
            m.train(training)
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)  # type: ignore[union-attr]
        model.train(was_training)


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy generator's state with its big integers as strings (safe for ``weights_only`` loading)."""
    return _ints_to_str(rng.bit_generator.state)


def restore_generator(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    rng.bit_generator.state = _str_to_ints(state)


def _ints_to_str(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _ints_to_str(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return f"int:{value}"
    return value


def _str_to_ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _str_to_ints(v) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("int:"):
        return int(value[4:])
    return value


class OneShotMethod(abc.ABC):
    """Base class of every one-shot method (see the module docstring)."""

    #: Registered name (``darts``, ``pc_darts``, ``gdas``, ``spos``).
    name: ClassVar[str]
    #: Kinds of one-shot view (:data:`nas.core.oneshot.KINDS`) whose spaces the method can search.
    kinds: ClassVar[tuple[str, ...]]
    #: Whether the method trains an elastic supernet whose sub-networks are ready with inherited weights
    #: (BigNAS): only such a supernet can be specialised per device without retraining (``nas specialize``).
    specializable: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        dataset: Dataset,
        options: Mapping[str, Any] | OneShotSettings | None = None,
        *,
        seed: int = 0,
        data_seed: int = 0,
    ) -> None:
        check_support(self.name, self.kinds, space)
        self.settings = parse_settings(self.name, options)
        self.space = space
        self.seed = check_seed(seed)
        self.data: SearchData = split_dataset(
            dataset, self.settings.train_portion, self.settings.batch_size, check_seed(data_seed)
        )
        self.device = resolve_device(self.settings.device)
        streams = np.random.SeedSequence([self.seed, 0x05E5]).generate_state(2)
        self.data_generator = torch.Generator().manual_seed(int(streams[0]))
        self.sample_generator = torch.Generator().manual_seed(int(streams[1]))
        #: NHWC (``channels_last``) or as built: the layout of the supernet's weights and of every batch.
        self.memory_format = torch.channels_last if self.settings.channels_last else torch.preserve_format
        with seeded(self.seed, self.device):
            self.supernet: Supernet = self.place(self.build_supernet())
            self.init_arch_parameters()
        self.configure_checkpointing()
        s = self.settings
        self.w_optimizer = torch.optim.SGD(
            self.supernet.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
        )
        self.w_scheduler = self.make_w_scheduler()
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.alpha_history: list[dict[str, dict[str, float]]] = []
        #: Why training stopped before ``epochs`` (e.g. skip-connection collapse), or None.
        self.stop_reason: str | None = None
        #: The memory estimate made before launch (a :class:`~nas.oneshot.memory.MemoryEstimate`), if any.
        self.memory_estimate: Any = None
        #: This rank's part of every batch, and the gradient average over the ranks (None: one process);
        #: set while :func:`nas.oneshot.parallel.data_parallel` trains the method on several ranks.
        self.shard = Shard()
        self.gradients: Any = None

    # -- what subclasses write ---------------------------------------------------------------
    @classmethod
    def check_settings(cls, space: SearchSpace, settings: OneShotSettings) -> None:  # noqa: B027
        """Hook: config-time checks of the method's options on ``space`` (no data, no supernet yet)."""
        return None

    def build_supernet(self) -> Supernet:
        """The supernet (called once, under the method's seed); affine BatchNorm unless ``affine: false``."""
        return self.make_supernet(affine=True if self.settings.affine is None else bool(self.settings.affine))

    def make_supernet(self, *, partial: int = 1, affine: bool = True) -> Supernet:
        """The space's supernet for this method's data and ``channels``/``cells`` settings."""
        from nas.oneshot.build import build_supernet

        return build_supernet(
            self.space,
            num_classes=self.data.num_classes,
            input_shape=self.data.input_shape,
            channels=self.settings.channels,
            cells=self.settings.cells,
            partial=partial,
            affine=affine,
        )

    def checkpoint_refusal(self) -> str | None:
        """Hook: why this method's supernet cannot checkpoint (None: it can)."""
        if supports_checkpointing(self.supernet):
            return None
        return (
            f"the {self.name} supernet on {self.space.name} has no checkpointed regions "
            "(search cells, attention blocks)"
        )

    def configure_checkpointing(self) -> bool:
        """Switch the supernet's activation checkpointing by the ``checkpoint`` option; whether it is on."""
        setting = self.settings.checkpoint
        why_not = self.checkpoint_refusal()
        if setting is True and why_not is not None:
            raise ConfigError(f"checkpoint=true, but {why_not}; allowed here: false or auto")
        # auto starts off: recomputation costs time on every step, so it is switched on only by
        # the memory guard rail (check_memory) when a step would not fit without it.
        on = why_not is None and setting is True
        set_checkpointing(self.supernet, on)
        return on

    def place(self, model: nn.Module) -> nn.Module:
        """``model`` on the method's device, in its memory layout (NHWC with ``channels_last``)."""
        return model.to(self.device, memory_format=self.memory_format)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device in the supernet's layout (the same values, NHWC strides or not).

        Converting the batch too, not only the weights, keeps the first
        convolution from converting its input on every call.
        """
        return x.to(self.device, memory_format=self.memory_format)

    def make_w_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        """Hook: the weights' learning-rate schedule, stepped once per epoch (DARTS: cosine to ``lr_min``)."""
        s = self.settings
        return torch.optim.lr_scheduler.CosineAnnealingLR(self.w_optimizer, T_max=s.epochs, eta_min=s.lr_min)

    def init_arch_parameters(self) -> None:  # noqa: B027  (SPOS has none)
        """Create architecture parameters (called once, under the method's seed, after the supernet)."""

    @abc.abstractmethod
    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        """One step on a weight batch (and an architecture batch); returns the weight batch's logits."""

    @abc.abstractmethod
    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Logits of the supernet as the method sees it (for the validation curve); ``batch`` numbers the batch."""

    @abc.abstractmethod
    def derive(self) -> Architecture:
        """The discrete architecture the search found."""

    def alphas(self) -> dict[str, dict[str, float]]:
        """Softmaxed architecture weights ``{edge: {op: probability}}`` (none for single-path methods)."""
        return {}

    def selection_report(self) -> dict[str, Any] | None:
        """What the derivation measured, if it measures anything (perturbation selection)."""
        return None

    def extra_metrics(self) -> dict[str, float]:
        """Method-specific per-epoch metrics (e.g. GDAS' temperature)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """Method-specific checkpoint state (architecture parameters, their optimiser, generators)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:  # noqa: B027
        """Restore :meth:`extra_state`."""

    def extra_weight_copies(self) -> int:
        """Extra copies of the weights a step holds at its peak (DARTS' unrolled step keeps three)."""
        return 0

    def extra_activation_copies(self) -> int:
        """Extra forward activations a step holds at its peak (a double backward keeps the gradient graph)."""
        return 0

    def probe_paths(self) -> list[Any]:
        """Paths whose memory the estimate measures (the heaviest is used); ``[None]``: the training path."""
        return [None]

    @abc.abstractmethod
    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        """The forward pass of a training step whose activations the memory estimate counts."""

    # -- the loop --------------------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        return self.settings.epochs

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs or self.stop_reason is not None

    def fit(self, callback: EpochCallback | None = None) -> list[dict[str, float]]:
        """Train until ``epochs`` or a stop, from wherever the method is (a resumed run continues)."""
        while not self.finished:
            metrics = self.train_epoch()
            self.after_epoch(metrics)
            if self.stop_reason is None:
                self.stop_reason = self.should_stop(metrics)
            if callback is not None:
                callback(self, metrics)
        return self.history

    def begin_epoch(self) -> None:  # noqa: B027
        """Hook before each epoch's first step (per-epoch schedules read :attr:`epoch`, 0-based here)."""

    def after_epoch(self, metrics: Mapping[str, float]) -> None:  # noqa: B027
        """Hook after each epoch (collapse checks); may set :attr:`stop_reason`."""

    def should_stop(self, metrics: Mapping[str, float]) -> str | None:
        """Hook: why to stop after this epoch (e.g. an eigenvalue criterion), or None to go on."""
        return None

    def train_epoch(self) -> dict[str, float]:
        """One epoch over the weight split; appends to :attr:`history` and :attr:`alpha_history`."""
        started = time.perf_counter()
        data = self.data
        batch = self.settings.batch_size
        weight_batches = epoch_batches(len(data.y_weights), batch, self.data_generator)
        arch_batches = epoch_batches(len(data.y_arch), batch, self.data_generator)
        self.begin_epoch()
        lr = float(self.w_optimizer.param_groups[0]["lr"])
        extra = self.extra_metrics()  # the values this epoch trains with (e.g. GDAS' temperature)
        self.supernet.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for step, index in enumerate(weight_batches):
            arch_index = arch_batches[step % len(arch_batches)]
            x, y = data.x_weights[index], data.y_weights[index].to(self.device)
            if self.settings.augment:
                x = augment_batch(x, self.data_generator)
            x, y = self.images(self.shard.take(x)), self.shard.take(y)  # the whole batch in one process
            xa, ya = data.x_arch[self.shard.take(arch_index)], data.y_arch[self.shard.take(arch_index)]
            logits = self.train_step(x, y, self.images(xa), ya.to(self.device))
            loss = float(nn.functional.cross_entropy(logits.detach(), y))
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"{self.name} supernet training diverged in epoch {self.epoch + 1} (loss {loss}); "
                    "lower lr or arch_lr"
                )
            loss_sum += loss * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        self.w_scheduler.step()
        self.epoch += 1
        totals = torch.tensor([loss_sum, correct, seen], dtype=torch.float64, device=self.device)
        loss_sum, correct, seen = self.shard.sum(totals).tolist()  # the global batch's figures
        self.shard.align_buffers(self.supernet)  # rank 0's BatchNorm statistics everywhere
        if self.gradients is not None:
            self.gradients.check_in_step()
        val_loss, val_accuracy = self.validate()
        metrics = {
            "epoch": float(self.epoch),
            "train_loss": loss_sum / seen,
            "train_accuracy": 100.0 * correct / seen,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": lr,
            **extra,
            "epoch_time_s": time.perf_counter() - started,
        }
        self.history.append(metrics)
        self.alpha_history.append(self.alphas())
        logger.info(
            "%s seed %d epoch %d/%d: train %.2f%%, val %.2f%%",
            self.name,
            self.seed,
            self.epoch,
            self.epochs,
            metrics["train_accuracy"],
            val_accuracy,
        )
        return metrics

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """Loss and accuracy (%) of :meth:`predict` on the dataset's validation split."""
        data = self.data
        total, correct = 0.0, 0
        with batch_statistics(self.supernet):
            for number, index in enumerate(
                torch.arange(len(data.y_val)).split(self.settings.eval_batch_size)
            ):
                x, y = self.images(data.x_val[index]), data.y_val[index].to(self.device)
                logits = self.predict(x, number)
                total += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
        return total / len(data.y_val), 100.0 * correct / len(data.y_val)

    def clip_and_step(
        self, optimizer: torch.optim.Optimizer | None = None, parameters: Iterable[torch.Tensor] | None = None
    ) -> None:
        """Clip the weight gradients (DARTS clips at 5) and step the weight optimiser (or ``optimizer``).

        On several ranks the gradients are averaged first, so the clip sees the global batch's.
        """
        optimizer = self.w_optimizer if optimizer is None else optimizer
        if self.gradients is not None:
            self.gradients.before_clip(optimizer)
        if self.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(
                self.supernet.parameters() if parameters is None else parameters, self.settings.grad_clip
            )
        optimizer.step()

    # -- scoring sub-networks with inherited weights ------------------------------------------------
    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """Logits of ``arch``'s sub-network as this method trained it (scoring, rank correlation)."""
        return self.supernet.forward_arch(x, arch)

    @torch.no_grad()
    def score(self, arch: Architecture) -> float:
        """Accuracy (%) of ``arch``'s sub-network on held-out images, BatchNorm recalibrated first.

        Running statistics are reset and re-estimated on ``bn_batches`` fixed
        training batches through ``arch``'s path alone (SPOS' recalibration), so
        every candidate is judged with statistics of its own path; the score
        uses the first ``score_images`` images of the architecture split.
        """
        s, data = self.settings, self.data
        model = self.supernet
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if s.bn_batches:
            momenta = [m.momentum for m in norms]
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the recalibration batches
            model.train()
            for start in range(0, min(s.bn_batches * s.batch_size, len(data.y_weights)), s.batch_size):
                self.forward_arch(self.images(data.x_weights[start : start + s.batch_size]), arch)
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            context: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
            model.eval()
        else:
            context = batch_statistics(model)
        correct, count = 0, min(s.score_images, len(data.y_arch))
        with context:
            for start in range(0, count, s.eval_batch_size):
                stop = min(start + s.eval_batch_size, count)
                logits = self.forward_arch(self.images(data.x_arch[start:stop]), arch)
                correct += int((logits.argmax(1) == data.y_arch[start:stop].to(self.device)).sum())
        model.train()
        return 100.0 * correct / count

    # -- checkpoints --------------------------------------------------------------------------------
    def run_identity(self) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed by it (layout, method, space, seed, settings)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "method": self.name,
            "space": self.space.name,
            "space_options": dict(self.space.options),
            "seed": self.seed,
            "settings": training_settings(self.settings),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything the loop depends on (tensors, numbers, strings: loadable with ``weights_only``)."""
        return {
            **self.run_identity(),
            "epoch": self.epoch,
            "supernet": self.supernet.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "w_scheduler": self.w_scheduler.state_dict(),
            "data_generator": self.data_generator.get_state(),
            "sample_generator": self.sample_generator.get_state(),
            "history": list(self.history),
            "alpha_history": list(self.alpha_history),
            "stop_reason": self.stop_reason,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``; refuses a checkpoint of another method, space, seed or settings."""
        for key, value in self.run_identity().items():
            stored = state.get(key)
            if key == "settings" and isinstance(stored, dict):
                stored = {k: v for k, v in stored.items() if v is not None}  # written before the unset went
            if stored != value:
                raise ConfigError(
                    f"checkpoint does not belong to this run: its {key} is {state.get(key)!r}, "
                    f"this run has {value!r}; delete the checkpoint or use the run that wrote it"
                )
        self.supernet.load_state_dict(state["supernet"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.w_scheduler.load_state_dict(state["w_scheduler"])
        self.data_generator.set_state(state["data_generator"])
        self.sample_generator.set_state(state["sample_generator"])
        self.epoch = int(state["epoch"])
        self.history = [dict(h) for h in state["history"]]
        self.alpha_history = [dict(a) for a in state["alpha_history"]]
        self.stop_reason = state["stop_reason"]
        self.load_extra_state(state["extra"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed}, epoch={self.epoch})"


#: Settings that do not change the training trajectory (a resumed run may change them).
_NOT_TRAINING = frozenset(
    {
        "check_memory",
        "memory_limit_mb",
        "checkpoint",
        "channels_last",
        "rank_correlation",
        "rank_table",
        "rank_metric",
        "seeds",
        "device",
        "eval_batch_size",
        "population",
        "generations",
        "parents",
        "mutation_prob",
        "bn_batches",
        "score_images",
        "selection",
    }
)


def training_settings(settings: OneShotSettings) -> dict[str, Any]:
    """The settings a checkpoint must agree on to be resumed.

    Unset (None) options are left out, so a checkpoint stays loadable when a
    new method adds options that the run that wrote it never had.
    """
    return {
        k: v for k, v in settings.model_dump(mode="json").items() if k not in _NOT_TRAINING and v is not None
    }


def check_support(method: str, kinds: tuple[str, ...], space: SearchSpace) -> None:
    """Refuse a space the method cannot search (by its one-shot view's kind), naming the supported ones."""
    view = oneshot_view(space)
    if view is None or not view.supports(kinds):
        every = spaces_with(KINDS)
        supported = spaces_with(kinds)
        raise ConfigError(
            f"one-shot method {method!r} does not support space {space.name!r}; it searches "
            f"{', '.join(supported)}" + (f"; spos searches {', '.join(every)}" if supported != every else "")
        )


__all__ = [
    "CHECKPOINT_FORMAT",
    "EpochCallback",
    "OneShotMethod",
    "batch_statistics",
    "check_support",
    "generator_state",
    "restore_generator",
]
