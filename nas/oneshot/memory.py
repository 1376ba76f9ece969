"""Will the supernet fit? An estimate of a training step's peak memory, checked before launch.

Supernets hold every candidate op's activations at once, so they run out of
memory where a stand-alone network of the same space trains easily. The
estimate is measured, not guessed from formulas:

* **activations** -- one forward pass of the method's training path at two
  tiny batch sizes (2 and 4) under :func:`torch.autograd.graph.saved_tensors_hooks`,
  summing the bytes of the distinct storages autograd keeps for the backward
  pass (weights excluded); the size is linear in the batch, so the two points
  give a per-sample and a fixed part that extrapolate to the real batch;
* **transients** -- during the backward pass the gradient of the largest
  saved activations exists next to them; counted as the largest saved tensor,
  scaled to the batch, times :data:`TRANSIENT_FACTOR`;
* **weights** -- parameters, their gradients, SGD's momentum buffers, the
  architecture parameters with Adam's two moments, plus the extra weight
  copies of DARTS' second-order step;
* **recomputation** -- with activation checkpointing (the ``checkpoint``
  option, :mod:`nas.supernet.recompute`) a checkpointed region (a search
  cell's mixed ops, an attention block) keeps only its inputs; its
  activations are counted apart, region by region, and the largest region,
  which the backward pass recomputes and holds at once, is added.

The budget is the device's free memory (``MemAvailable`` and the cgroup
limit on CPU, ``torch.cuda.mem_get_info`` on a GPU) or ``memory_limit_mb``.
With ``checkpoint: auto`` a supernet that would not fit without
checkpointing, but does with it, is switched to checkpointing here. A step
that does not fit is refused with advice: checkpointing (when off), the
largest batch that fits, PC-DARTS' partial channels, and what to make smaller
in the space (its one-shot view's ``shrink_advice``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.core.errors import ConfigError, NASError
from nas.core.oneshot import oneshot_view
from nas.oneshot.method import OneShotMethod
from nas.supernet.recompute import checkpointing, measure_regions, set_checkpointing

logger = logging.getLogger(__name__)

MIB = 2**20
#: Batch sizes of the two probing passes.
PROBE_BATCHES = (2, 4)
#: Gradient buffers alive next to the saved activations at the peak of the backward pass,
#: in units of the largest saved tensor (calibrated against measured peaks on CPU).
TRANSIENT_FACTOR = 3.0
#: Share of the free memory a step may plan to use (the allocator and the rest of the process need room).
USABLE_SHARE = 0.9


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of one training step, by part."""

    batch_size: int
    params: int
    grads: int
    optimizer: int
    activations: int
    transient: int
    per_sample: float
    fixed: int
    #: Activations of the largest checkpointed region, recomputed in the backward pass (0: no checkpointing).
    recompute: int = 0

    @property
    def weights(self) -> int:
        """Bytes that do not depend on the batch size."""
        return self.params + self.grads + self.optimizer

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.transient + self.recompute

    @property
    def step(self) -> int:
        """Bytes a training step adds to an already built supernet (everything but the parameters)."""
        return self.total - self.params

    def at_batch(self, batch_size: int) -> int:
        """Total bytes at another batch size."""
        scale = self.per_sample * batch_size
        activations = self.fixed + scale
        transient = (self.transient + self.recompute) / max(1, self.batch_size) * batch_size
        return int(self.weights + activations + transient)

    def max_batch(self, budget: int) -> int:
        """The largest batch whose step fits in ``budget`` bytes (0 if none)."""
        per = self.per_sample + (self.transient + self.recompute) / max(1, self.batch_size)
        room = budget - self.weights - self.fixed
        return max(0, int(room // per)) if per > 0 else 0

    def describe(self) -> str:
        return (
            f"{self.total / MIB:.1f} MiB (parameters {self.params / MIB:.1f}, gradients {self.grads / MIB:.1f}, "
            f"optimiser state {self.optimizer / MIB:.1f}, activations {self.activations / MIB:.1f}, "
            f"backward transients {self.transient / MIB:.1f}"
            + (f", recomputed region {self.recompute / MIB:.1f}" if self.recompute else "")
            + ")"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def _param_pointers(model: nn.Module, extra: list[torch.Tensor]) -> set[int]:
    tensors = [*model.parameters(), *model.buffers(), *extra]
    return {t.untyped_storage().data_ptr() for t in tensors}


def saved_activation_bytes(method: OneShotMethod, batch: int, path: Any) -> tuple[int, int, int]:
    """Bytes of distinct non-weight storages autograd keeps in one training forward, the largest, and the
    largest checkpointed region's (0 without checkpointing; its activations are not kept but recomputed)."""
    # Copies: a slice would share (and count) the storage of the whole training split.
    x = method.images(method.data.x_weights[:batch].clone())
    y = method.data.y_weights[:batch].clone().to(method.device)
    arch_params = list(getattr(method, "alpha", {}).values()) + list(getattr(method, "beta", {}).values())
    weights = _param_pointers(method.supernet, arch_params)
    seen: dict[int, int] = {}

    def is_weight(tensor: torch.Tensor) -> bool:
        return tensor.untyped_storage().data_ptr() in weights

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in weights and storage.device.type != "meta":
            seen[pointer] = max(seen.get(pointer, 0), storage.nbytes())
        return tensor

    state = {k: v.clone() for k, v in method.supernet.state_dict().items()}
    method.supernet.train()
    try:
        with (
            measure_regions(is_weight) as regions,
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            logits = method.probe_forward(x, path)
            loss = nn.functional.cross_entropy(logits, y)
        del loss, logits
    finally:
        method.supernet.load_state_dict(state)  # the probe must not move BatchNorm statistics
    seen.update({k: max(v, seen.get(k, 0)) for k, v in regions.inputs.items()})
    return sum(seen.values()), max(seen.values(), default=0), regions.largest


def estimate_memory(method: OneShotMethod, batch_size: int | None = None) -> MemoryEstimate:
    """Peak memory of one training step of ``method`` at ``batch_size`` (default: its setting)."""
    batch = method.settings.batch_size if batch_size is None else batch_size
    small, large = PROBE_BATCHES
    candidates = []
    for path in method.probe_paths():
        a_small, _, _ = saved_activation_bytes(method, small, path)
        a_large, top_large, region_large = saved_activation_bytes(method, large, path)
        per_sample = (a_large - a_small) / (large - small)
        fixed = max(0, int(a_small - per_sample * small))
        region = int(region_large / large * batch)
        kept = fixed + per_sample * batch
        candidates.append((kept + region, per_sample, fixed, int(top_large / large * batch), region))
    _, per_sample, fixed, top, region = max(candidates)  # the heaviest path decides
    copies = 1 + method.extra_activation_copies()  # e.g. a Hessian-vector product's kept gradient graph
    per_sample, fixed = per_sample * copies, fixed * copies
    param_bytes = sum(p.numel() * p.element_size() for p in method.supernet.parameters())
    trainable = sum(p.numel() * p.element_size() for p in method.supernet.parameters() if p.requires_grad)
    arch = sum(
        p.numel() * p.element_size()
        for p in list(getattr(method, "alpha", {}).values()) + list(getattr(method, "beta", {}).values())
    )
    momentum = trainable if method.settings.momentum > 0 else 0
    return MemoryEstimate(
        batch_size=batch,
        params=param_bytes + arch,
        grads=trainable + arch,
        optimizer=momentum + 2 * arch + method.extra_weight_copies() * trainable,
        activations=int(fixed + per_sample * batch),
        transient=int(TRANSIENT_FACTOR * top),
        per_sample=per_sample,
        fixed=fixed,
        recompute=region * copies,
    )


def available_memory(device: torch.device) -> int:
    """Free bytes on ``device``: CUDA's free memory, or on CPU ``MemAvailable`` capped by the cgroup limit."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    available = _meminfo_available()
    limit = _cgroup_room()
    return min(x for x in (available, limit) if x is not None) if (available or limit) else 2**62


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup v2 (or v1) memory limit, if one is set."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit_text = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 2**60:
            return None
        return max(0, int(limit_text) - usage)
    return None


def check_memory(method: OneShotMethod) -> MemoryEstimate:
    """Estimate and refuse (ConfigError, with advice) a supernet step that will not fit the device.

    With ``checkpoint: auto`` and checkpointing off, a step that does not fit
    is estimated again with checkpointing; if that fits, the run checkpoints.
    """
    estimate = estimate_memory(method)
    s = method.settings
    if s.memory_limit_mb is not None:
        budget, source = int(s.memory_limit_mb * MIB), f"memory_limit_mb={s.memory_limit_mb:g}"
    else:
        free = available_memory(method.device)
        budget, source = (
            int(free * USABLE_SHARE),
            f"{USABLE_SHARE:.0%} of the {free / MIB:.0f} MiB free on {method.device}",
        )
    logger.info("%s supernet step at batch %d: about %s", method.name, s.batch_size, estimate.describe())
    if estimate.total <= budget:
        return estimate
    can_checkpoint = method.checkpoint_refusal() is None and not checkpointing(method.supernet)
    if can_checkpoint and s.checkpoint == "auto":
        set_checkpointing(method.supernet, True)
        checkpointed = estimate_memory(method)
        if checkpointed.total <= budget:
            logger.info(
                "%s supernet: %s does not fit the budget of %.0f MiB without activation checkpointing; "
                "checkpointing (checkpoint: auto): about %s",
                method.name,
                f"{estimate.total / MIB:.0f} MiB",
                budget / MIB,
                checkpointed.describe(),
            )
            return checkpointed
        estimate, can_checkpoint = checkpointed, False
        recomputing = " (with activation checkpointing, which checkpoint: auto switched on)"
    else:
        recomputing = ""
    advice = []
    if can_checkpoint:
        advice.append("checkpoint: true (recompute activations in the backward pass)")
    fits = estimate.max_batch(budget)
    if fits >= 2:
        advice.append(f"batch_size: {fits} (the largest that fits)")
    view = oneshot_view(method.space)
    if hasattr(method, "alpha") and method.name != "pc_darts" and view is not None and view.differentiable:
        advice.append(
            "method pc_darts with partial_channels: 4 (about a quarter of the mixed-op activations)"
        )
    if method.name == "pc_darts":
        k = int(s.option("partial_channels"))
        advice.append(f"a larger partial_channels than {k} (if it divides the channels)")
    if view is not None:
        advice.append(view.shrink_advice)
    raise ConfigError(
        f"the {method.name} supernet on {method.space.name} will not fit: a training step at batch "
        f"{s.batch_size} with input {'x'.join(map(str, method.data.input_shape))}{recomputing} needs about "
        f"{estimate.describe()}, but the budget is {budget / MIB:.0f} MiB ({source}). "
        f"Try: {'; '.join(advice)}. Set check_memory: false to skip this check."
    )


def measure_step_memory(method: OneShotMethod) -> int:
    """Measured bytes one real training step adds at its peak (Linux, CPU); trains ``method`` one step.

    The check of the estimate: the process's peak resident size (``VmHWM``)
    is reset to the current size through ``/proc/self/clear_refs`` just
    before the step, glibc is told to serve blocks of 64 KiB and more with
    ``mmap`` (so a freed block leaves the resident set at once and a new one
    enters it) and to return freed heap memory first; the result is the peak
    during the step minus the resident size before it.
    """
    import ctypes

    status = Path("/proc/self/status")
    if not status.exists() or method.device.type != "cpu":
        raise NASError("measuring a step's memory needs Linux's /proc and a CPU device")
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    libc.malloc_trim(0)
    batch = method.settings.batch_size
    data = method.data
    x, y = data.x_weights[:batch].clone(), data.y_weights[:batch].clone()
    xa, ya = data.x_arch[:batch].clone(), data.y_arch[:batch].clone()
    method.supernet.train()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_bytes(status, "VmRSS")
    method.train_step(x, y, xa, ya)
    return _status_bytes(status, "VmHWM") - before


#: glibc's ``mallopt`` parameter number of the mmap threshold.
_M_MMAP_THRESHOLD = -3


def _status_bytes(status: Path, field: str) -> int:
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise NASError(f"{status} has no {field} line")


__all__ = [
    "MemoryEstimate",
    "available_memory",
    "check_memory",
    "estimate_memory",
    "measure_step_memory",
    "saved_activation_bytes",
]
