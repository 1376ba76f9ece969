"""The supervised training loop shared by the train evaluator and final training.

Kept apart from the evaluator so that export (retraining the best
architecture) and one-shot methods reuse the same device, precision,
seeding and measurement rules instead of growing their own copies:

* **device** -- ``auto`` means CUDA when present, else CPU;
* **precision** -- ``amp='auto'`` is fp16 autocast with a gradient scaler on
  CUDA and full fp32 on CPU (``amp=True`` on CPU opts into bf16);
* **seeding** -- a trial's initialisation and any in-model randomness use
  ``torch.manual_seed`` inside :func:`torch.random.fork_rng`, and shuffling
  and augmentation use a local :class:`torch.Generator`, so the same seed
  gives the same model and the process's global RNG state is left untouched;
* **threads** -- :func:`torch_threads` sets the intra-op thread count for the
  duration of a trial (the runner's per-trial CPU share) and restores it;
* **data parallel** -- when ``torch.distributed`` is initialised (Ray Train
  does this on each worker of a multi-worker trial), :func:`fit` trains the
  same global batches as one process would: every rank draws the same
  shuffle and augmentation, keeps its :class:`Shard` of each batch, DDP
  averages the gradients, and the epoch's metrics are summed over ranks, so
  every rank reports the global figures.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.core.evaluator import Checkpointer, Reporter
from nas.core.files import atomic_write
from nas.data import Dataset
from nas.data.augment import apply_crops, draw_crops
from nas.data.batching import ArrayBatches, Batches, split_batches, steps_per_epoch
from nas.data.batching import index_batches as batches
from nas.settings.train import TrainSettings

if TYPE_CHECKING:
    from nas.data.streaming import StreamingDataset

logger = logging.getLogger(__name__)


# -- environment ------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r} is not allowed; expected 'auto', 'cpu' or 'cuda'")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    """Autocast settings for one device: whether, which dtype, and whether to scale gradients."""

    enabled: bool
    dtype: torch.dtype = torch.float32
    scale_gradients: bool = False

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)

    @property
    def label(self) -> str:
        return str(self.dtype).removeprefix("torch.") if self.enabled else "float32"


def resolve_precision(amp: bool | str, device: torch.device) -> Precision:
    """fp16 + gradient scaling on CUDA (``auto`` or ``True``), bf16 on CPU only if ``True``."""
    if amp not in (True, False, "auto"):
        raise ConfigError(f"amp={amp!r} is not allowed; expected true, false or 'auto'")
    if device.type == "cuda" and amp in (True, "auto"):
        return Precision(True, torch.float16, scale_gradients=True)
    if device.type == "cpu" and amp is True:
        return Precision(True, torch.bfloat16)
    return Precision(False)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[int]:
    """Run with ``count`` intra-op threads (``None``: leave as is); yields the count in effect."""
    previous = torch.get_num_threads()
    if count is None:
        yield previous
        return
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"num_threads={count!r} is not allowed; expected an integer >= 1")
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's default generators for the block and restore their state afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# -- pieces of the loop ---------------------------------------------------------------------------------


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW, with the configured weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.SGD(
        params,
        lr=settings.lr,
        momentum=settings.momentum,
        nesterov=settings.nesterov and settings.momentum > 0,
        weight_decay=settings.weight_decay,
    )


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of 1/8 of the side, 4 px at 32x32) and horizontal flip.

    The standard CIFAR augmentation, drawn from ``generator`` so it is
    reproducible and independent of the global RNG (:mod:`nas.data.augment`;
    a streaming loader draws the same parameters and applies them in its workers).
    """
    n, _, h, w = images.shape
    return apply_crops(images, draw_crops(n, h, w, generator))


def mixup_batch(
    images: torch.Tensor, labels: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): ``lam * x + (1 - lam) * x[perm]``, the partners' labels and ``lam``.

    ``lam ~ Beta(alpha, alpha)`` and the permutation come from ``generator``
    (the loop's shuffling generator), so the run is reproducible, a resumed run
    draws what the uninterrupted one did, and every data-parallel rank mixes
    the same global batch before taking its share. The loss is then
    ``lam * CE(y) + (1 - lam) * CE(y[perm])``; training accuracy counts ``y``.
    """
    # Beta(a, a) as G1 / (G1 + G2) with gamma draws: torch's Beta takes no generator, so the
    # gammas' seed is drawn from it (one numpy generator per batch, cheap beside a step).
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    gammas = np.random.default_rng(seed).gamma(alpha, 1.0, size=2)
    lam = float(gammas[0] / gammas.sum()) if gammas.sum() > 0 else 1.0
    perm = torch.randperm(images.shape[0], generator=generator)
    return lam * images + (1.0 - lam) * images[perm], labels[perm], lam


@dataclass(frozen=True)
class Shard:
    """This process's part of a data-parallel run: ``rank`` of ``world`` (0 of 1 when alone).

    Ray Train initialises ``torch.distributed`` on every worker before the
    training function runs; nothing here imports Ray. Every rank builds the
    same global batch (same seed, same generator draws) and keeps its
    contiguous slice, so N ranks train on exactly the samples one process
    would, and DDP's gradient average equals the global batch's gradient when
    the slices are equal.
    """

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Shard:
        """The process group's rank and size, or the whole run when none is initialised."""
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def parallel(self) -> bool:
        return self.world > 1

    def take(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a batch (sizes differ by at most one)."""
        return batch.tensor_split(self.world)[self.rank] if self.parallel else batch

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in DistributedDataParallel (gradients averaged over ranks), or itself when alone."""
        if not self.parallel:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: a cell may leave parameters out of the loss (a node whose only way
        # to the output is a `none` edge); without it DDP fails such a network at its second step.
        if device.type != "cuda":
            return DistributedDataParallel(model, find_unused_parameters=True)
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index], find_unused_parameters=True)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over all ranks (one all-reduce), itself when alone."""
        if self.parallel:
            torch.distributed.all_reduce(values)
        return values

    def align_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics), so evaluation and weights agree."""
        if self.parallel:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    precision: Precision,
    batch_size: int = 512,
    memory_format: torch.memory_format = torch.preserve_format,
) -> tuple[float, float]:
    """Mean cross-entropy (no smoothing) and accuracy in percent over a whole split (one read-back)."""
    split = ArrayBatches(np.asarray(images), np.asarray(labels))
    return evaluate_batches(model, split, device, precision, batch_size, memory_format)


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    split: Batches,
    device: torch.device,
    precision: Precision,
    batch_size: int = 512,
    memory_format: torch.memory_format = torch.preserve_format,
) -> tuple[float, float]:
    """:func:`evaluate` over a split given as batches (in memory or streamed)."""
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for x_cpu, y_cpu in split.epoch(batch_size):
        x = x_cpu.to(device, non_blocking=True, memory_format=memory_format)
        y = y_cpu.to(device, non_blocking=True)
        with precision.autocast(device):
            logits = model(x)
        total_loss += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return float(total_loss) / len(split), 100.0 * int(correct) / len(split)


def measure_latency_ms(
    model: nn.Module, input_shape: tuple[int, int, int], repeats: int = 20, warmup: int = 3
) -> float:
    """Median wall time of a batch-1 eval forward on CPU, in ms, with the current thread count.

    A copy of the model is timed, so a model on a GPU is left where it is. The
    median resists the odd slow run a shared machine produces.
    """
    cpu_model = copy.deepcopy(model).to("cpu").float().eval()
    x = torch.zeros(1, *input_shape)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            cpu_model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def save_state_dict(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write the CPU state dict atomically (temp file + ``os.replace``), loadable with ``weights_only=True``."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return atomic_write(path, lambda stream: torch.save(state, stream))


def compiled(model: nn.Module, backend: bool | str) -> nn.Module:
    """``torch.compile(model)`` with ``backend`` (``True``: Inductor), or a ConfigError naming the allowed ones.

    The compiled module shares the model's parameters, so the optimiser, the
    saved weights and every other user of ``model`` see the same training.
    Compilation itself is lazy (at the first step). Inductor generates and
    builds C++ (CPU) or Triton (GPU) kernels, which takes minutes for a
    small network on a busy CPU; ``aot_eager`` traces the same graphs
    without code generation, which is how the tests exercise this path.
    """
    import torch._dynamo

    name = "inductor" if backend is True else backend
    allowed = torch._dynamo.list_backends(exclude_tags=())
    if not isinstance(name, str) or name not in allowed:
        raise ConfigError(
            f"compile={backend!r} is not allowed; expected true, false or one of {', '.join(allowed)}"
        )
    return torch.compile(model, backend=name)  # type: ignore[return-value]


# -- the loop -----------------------------------------------------------------------------------------------


@dataclass
class FitResult:
    """Per-epoch metrics of one training run and whether it diverged."""

    history: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False
    seconds: float = 0.0
    #: The epoch of the state the run resumed from (0: it started from scratch).
    resumed_after: int = 0

    @property
    def last(self) -> Mapping[str, float]:
        return self.history[-1] if self.history else {}


def fit(
    model: nn.Module,
    dataset: Dataset | StreamingDataset,
    settings: TrainSettings,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    precision: Precision,
    report: Reporter | None = None,
    resume: bytes | None = None,
    checkpoint: Checkpointer | None = None,
) -> FitResult:
    """Train ``model`` on the training split, validating after every epoch.

    ``checkpoint(epoch, state)`` receives, after each epoch and before
    ``report``, everything the loop needs to go on (weights, optimiser,
    learning-rate schedule, gradient scaler, shuffling generator, torch's RNG
    and the curve so far; see :class:`LoopState`); ``resume`` is such a state:
    the loop continues with the epoch after it and the run is the same, to the
    last bit on a CPU, as one that was never interrupted. ``model`` must be
    built as for the first run (same architecture); its weights are replaced.

    The learning rate follows a per-step cosine from ``settings.lr`` to zero
    over ``epochs``. ``report(epoch, metrics)`` is called after each epoch
    (1-based) and may raise to stop the run (early stopping): its exceptions
    propagate. A non-finite training loss stops the run at the end of its
    epoch and marks it diverged instead of training on garbage (checked once
    per epoch, so the hot loop never waits for a value from the device).

    ``settings.channels_last`` trains in the NHWC memory layout (faster
    convolutions on recent GPUs and some CPUs); ``settings.compile`` runs the
    forward pass through ``torch.compile``. Both leave the results' meaning
    unchanged; ``benchmarks/training.py`` measures whether they help.

    Under an initialised ``torch.distributed`` group (a multi-worker trial),
    each rank trains its :class:`Shard` of every global batch of
    ``settings.batch_size`` through DDP (a trailing batch is split as it
    is), and validates the whole split with rank 0's weights and buffers;
    ``model`` ends with them on every rank, and ``report`` gets the global
    figures on every rank. Checkpoints (``resume``) are for one process.
    """
    shard = Shard.current()
    model.to(device)
    memory_format = torch.channels_last if settings.channels_last else torch.preserve_format
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, settings)
    wrapped = shard.wrap(model, device)
    step_model = compiled(wrapped, settings.compile) if settings.compile else wrapped
    # Validation needs no gradient synchronisation: the plain module (same weights on every rank).
    eval_model = step_model if not shard.parallel else model
    # In memory: tensors over the dataset's read-only arrays (each batch is a copy), pinned on CUDA
    # so that each batch's copy to the GPU is asynchronous. Streaming: data workers read the files.
    train_split = split_batches(dataset, "train", pin=device.type == "cuda")
    val_split = split_batches(dataset, "val", pin=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)
    steps = steps_per_epoch(len(train_split), settings.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * steps))
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scale_gradients)
    criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    result = FitResult()
    first = 1
    loop = LoopState(model, optimizer, scheduler, scaler, generator, result)
    if resume is not None:
        result.resumed_after = loop.load(resume)
        first = result.resumed_after + 1
    started = time.perf_counter() - result.seconds
    for epoch in range(first, epochs + 1):
        epoch_start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        # Accumulated on the device: reading a value back every step would make the GPU wait for
        # the CPU (and the CPU for the GPU) once per batch. Read once, at the end of the epoch.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        finite = torch.ones((), dtype=torch.bool, device=device)
        seen = 0
        for x_cpu, y_cpu in train_split.epoch(settings.batch_size, generator, settings.augment):
            mixed = mixup_batch(x_cpu, y_cpu, settings.mixup, generator) if settings.mixup > 0 else None
            if mixed is not None:
                x_cpu, partner_cpu, lam = mixed
            x_cpu, y_cpu = shard.take(x_cpu), shard.take(y_cpu)  # the global batch's share of this rank
            x = x_cpu.to(device, non_blocking=True, memory_format=memory_format)
            y = y_cpu.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast(device):
                logits = step_model(x)
                loss = criterion(logits.float(), y)
                if mixed is not None:
                    partner = shard.take(partner_cpu).to(device, non_blocking=True)
                    loss = lam * loss + (1.0 - lam) * criterion(logits.float(), partner)
            scaler.scale(loss).backward()
            if settings.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            detached = loss.detach()
            finite &= torch.isfinite(detached)
            loss_sum += detached * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        # One all-reduce per epoch: the global sums, and the same divergence verdict on every rank.
        totals = shard.sum(
            torch.stack(
                [
                    loss_sum.double(),
                    correct.double(),
                    torch.tensor(float(seen), dtype=torch.float64, device=device),
                    (~finite).double(),
                ]
            )
        ).tolist()
        shard.align_buffers(model)
        if totals[3] > 0:
            logger.warning("training diverged in epoch %d (non-finite loss); stopping this run", epoch)
            result.diverged = True
            break
        val_loss, val_accuracy = evaluate_batches(
            eval_model,
            val_split,
            device,
            precision,
            settings.eval_batch_size,
            memory_format,
        )
        metrics = {
            "epoch": float(epoch),
            "train_loss": totals[0] / totals[2],
            "train_accuracy": 100.0 * totals[1] / totals[2],
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": float(lr),
            "epoch_time_s": time.perf_counter() - epoch_start,
        }
        result.history.append(metrics)
        logger.debug("epoch %d: %s", epoch, metrics)
        if checkpoint is not None:
            result.seconds = time.perf_counter() - started
            checkpoint(epoch, loop.save(epoch))
        if report is not None:
            report(epoch, metrics)
    result.seconds = time.perf_counter() - started
    if result.history and not math.isfinite(result.last["val_loss"]):
        result.diverged = True
    return result


@dataclass(frozen=True)
class LoopState:
    """The objects of a training loop whose state a checkpoint holds (see :meth:`save` and :meth:`load`)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    result: FitResult

    def save(self, epoch: int) -> bytes:
        """The loop's whole state after ``epoch`` as bytes (tensors on the CPU; loadable with ``weights_only``).

        torch's global RNG is included because in-model randomness (dropout,
        drop-path) draws from it inside :func:`seeded`; without it a resumed run
        would differ from an uninterrupted one.
        """
        state = {
            "epoch": epoch,
            "model": {name: tensor.detach().cpu() for name, tensor in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "rng": torch.get_rng_state(),
            "history": self.result.history,
            "seconds": self.result.seconds,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    def load(self, payload: bytes) -> int:
        """Load a state written by :meth:`save` into the loop's objects; returns its epoch."""
        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            self.generator.set_state(state["generator"])
            torch.set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, EOFError, TypeError) as exc:
            raise ConfigError(
                f"the checkpoint to resume from does not fit this training run ({type(exc).__name__}: {exc}); "
                "it must come from the same architecture, settings and budget"
            ) from exc
        self.result.history = list(state["history"])
        self.result.seconds = float(state["seconds"])
        return int(state["epoch"])


__all__ = [
    "FitResult",
    "LoopState",
    "Precision",
    "Shard",
    "augment_batch",
    "batches",
    "evaluate",
    "evaluate_batches",
    "fit",
    "make_optimizer",
    "measure_latency_ms",
    "mixup_batch",
    "resolve_device",
    "resolve_precision",
    "save_state_dict",
    "seeded",
    "torch_threads",
]
