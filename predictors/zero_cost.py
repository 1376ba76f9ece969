"""Zero-cost proxies: score a freshly initialised network from one mini-batch.

A zero-cost proxy ranks architectures without training them, from a
randomly initialised network and (at most) one batch: ``synflow``, ``snip``,
``grad_norm``, ``jacob_cov``, ``nwot`` (NASWOT), ``fisher``, ``gradsign`` and
the model's ``params`` and ``flops``. The definitions follow Abdelfattah et al. 2021
("Zero-Cost Proxies for Lightweight NAS") as implemented in NASLib, so our
scores rank networks like the published ones; where NASLib deviates from the
papers we follow NASLib and say so.

Every proxy works on a deep copy of the model (synflow rewrites the weights,
others attach hooks), so the caller's network is never changed. Proxies are
registered by name in :data:`PROXIES`; an unknown name raises
:class:`~nas.core.UnknownNameError` with close matches.

Invalid results: a proxy that comes out NaN or infinite (e.g. ``synflow`` of a
network whose output does not depend on its input, ``jacob_cov`` when every
input gradient is zero) and a gradient proxy on a network with no weights
raise :class:`~nas.core.ConfigError` naming the proxy and the reason, unless
the caller passes ``fallback=``: then that value is returned and a warning is
logged. Nothing is silently turned into a number.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nas.core import Architecture, ConfigError, Registry, SearchSpace

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, LossFn], float]

#: Small ridge added to the Jacobian-correlation eigenvalues (as in NASWOT v1 / NASLib).
_JACOB_COV_EPS = 1e-5


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: its scoring function and what it needs.

    ``uses_data`` says whether the batch's *values* matter (``synflow``,
    ``params`` and ``flops`` only use its shape), so callers know when a
    synthetic batch is as good as a real one; ``needs_labels`` whether the
    proxy backpropagates a loss and so needs ``batch_y``.
    """

    name: str
    fn: ProxyFn
    uses_data: bool
    needs_labels: bool
    description: str


#: Name -> :class:`Proxy`. Add one with :func:`register_proxy`.
PROXIES: Registry[Proxy] = Registry("zero-cost proxy")


def register_proxy(name: str, *, uses_data: bool, needs_labels: bool) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn(model, x, y, loss_fn) -> float`` as proxy ``name``."""

    def decorator(fn: ProxyFn) -> ProxyFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        PROXIES.register(name)(Proxy(name, fn, uses_data, needs_labels, doc[0] if doc else name))
        return fn

    return decorator


def list_proxies(pattern: str = "*") -> list[str]:
    """Names of the registered proxies matching a shell-style pattern."""
    return PROXIES.names(pattern)


# -- helpers ------------------------------------------------------------------------------


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    """Conv and linear layers: the layers whose weights the pruning proxies score (as NASLib)."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) and m.weight is not None
    ]


def _require_weights(model: nn.Module, proxy: str) -> list[nn.Module]:
    layers = _weighted_layers(model)
    if not layers:
        raise ConfigError(
            f"proxy {proxy!r} is undefined for a network without conv or linear weights; "
            "use 'params', 'flops', 'nwot' or 'jacob_cov' for such networks"
        )
    return layers


def _layer_sum(layers: Sequence[nn.Module], metric: Callable[[nn.Module], torch.Tensor]) -> float:
    """Sum of a per-layer metric over layers that received a gradient (others count as 0)."""
    total = 0.0
    for layer in layers:
        if layer.weight.grad is not None:
            total += float(metric(layer).detach().sum())
    return total


def _bn_as_identity(model: nn.Module) -> None:
    """Replace batch norms by identities (synflow is defined on the network without BN)."""
    for name, module in list(model.named_children()):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            _bn_as_identity(module)


@contextmanager
def _hooks(handles: list[Any]) -> Iterator[list[Any]]:
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()


# -- the proxies ----------------------------------------------------------------------------


@register_proxy("synflow", uses_data=False, needs_labels=False)
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """Log synaptic flow: log of sum |theta * dR/dtheta| with R = sum of outputs (Tanaka et al. 2020).

    As NASLib computes it: batch norm removed, every weight replaced by its
    absolute value, an all-ones input of one example, float64 throughout, and
    the sum over conv and linear weights. NASLib reports the natural log of
    the sum (the raw value reaches 1e40 on NAS-Bench-201); so do we. A network
    whose output does not depend on its weights gives log(0) = -inf: invalid.
    """
    _bn_as_identity(model)
    model.double().train()
    layers = _require_weights(model, "synflow")
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    model.zero_grad()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    torch.sum(model(ones)).backward()
    total = _layer_sum(layers, lambda m: (m.weight * m.weight.grad).abs())
    return math.log(total) if total > 0 else -math.inf


@register_proxy("snip", uses_data=True, needs_labels=True)
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """Connection sensitivity: sum |theta * dL/dtheta| over conv and linear weights (Lee et al. 2019)."""
    layers = _require_weights(model, "snip")
    model.train().zero_grad()
    loss_fn(model(x), y).backward()
    return _layer_sum(layers, lambda m: (m.weight * m.weight.grad).abs())


@register_proxy("grad_norm", uses_data=True, needs_labels=True)
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """Sum over conv and linear layers of the L2 norm of the loss gradient of the layer's weight."""
    layers = _require_weights(model, "grad_norm")
    model.train().zero_grad()
    loss_fn(model(x), y).backward()
    return _layer_sum(layers, lambda m: m.weight.grad.norm())


@register_proxy("fisher", uses_data=True, needs_labels=True)
def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """Fisher information of each layer's output channels (Theis et al. 2018; Turner et al. 2020).

    Per conv/linear output channel k: 0.5 * mean over the batch of
    (sum over positions of activation * its loss gradient)^2, summed over
    channels and layers.
    """
    layers = _require_weights(model, "fisher")
    total = torch.zeros((), dtype=torch.float64)

    def on_output(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        activation = output.detach()

        def on_grad(grad: torch.Tensor) -> None:
            nonlocal total
            product = activation * grad.detach()
            per_channel = product.sum(dim=tuple(range(2, product.dim()))) if product.dim() > 2 else product
            total = total + 0.5 * per_channel.double().pow(2).mean(0).sum()

        if output.requires_grad:
            output.register_hook(on_grad)

    with _hooks([layer.register_forward_hook(on_output) for layer in layers]):
        model.train().zero_grad()
        loss_fn(model(x), y).backward()
    return float(total)


@register_proxy("jacob_cov", uses_data=True, needs_labels=False)
def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """Jacobian covariance (NASWOT v1, Mellor et al. 2020), NASLib's ``jacov``.

    The input gradients of the summed outputs, one row per example; the score
    is -sum(log(v + k) + 1/(v + k)) over the eigenvalues v of their
    correlation matrix (k = 1e-5): higher means less correlated gradients.
    """
    if x.shape[0] < 2:
        raise ConfigError(f"proxy 'jacob_cov' needs a batch of at least 2 examples, got {x.shape[0]}")
    model.train().zero_grad()
    inputs = x.detach().clone().requires_grad_(True)
    output = model(inputs)
    output.backward(torch.ones_like(output))
    if inputs.grad is None:
        return math.nan
    jacobian = inputs.grad.detach().reshape(inputs.shape[0], -1).double().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jacobian)
    if not np.isfinite(corr).all():
        return math.nan  # an example's gradient is constant (e.g. zero): no correlation defined
    eigenvalues = np.linalg.eigvalsh(corr)
    shifted = eigenvalues + _JACOB_COV_EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.sum(np.log(shifted) + 1.0 / shifted))


@register_proxy("nwot", uses_data=True, needs_labels=False)
def nwot(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """NASWOT (Mellor et al. 2021): log|det K| of the ReLU binary-code kernel of the batch.

    Each ``nn.ReLU`` contributes, for each pair of examples, the number of
    units where both are active or both inactive (inputs > 0 as the code).
    Functional ReLUs are invisible to the hooks, so a network without
    ``nn.ReLU`` modules is an error rather than a meaningless 0.
    """
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ConfigError("proxy 'nwot' needs a network with nn.ReLU modules; this one has none")
    if x.shape[0] < 2:
        raise ConfigError(f"proxy 'nwot' needs a batch of at least 2 examples, got {x.shape[0]}")
    n = x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def on_input(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        nonlocal kernel
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel = kernel + codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T

    with _hooks([relu.register_forward_pre_hook(on_input) for relu in relus]), torch.no_grad():
        model.train()
        model(x)
    return float(torch.linalg.slogdet(kernel).logabsdet)


@register_proxy("gradsign", uses_data=True, needs_labels=True)
def gradsign(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """GradSign (Zhang & Jia, ICLR 2022): sum over weights of |sum over examples of sign(dL_i/dw)|.

    Each example's loss gradient is computed on its own (a forward and
    backward pass with a batch of one, as the authors' code does), over conv
    and linear weights. A weight whose per-example gradients agree in sign
    scores the batch size, one pulled both ways scores little: networks
    whose sample-wise optima lie close together train better. Zero gradients
    count as sign 0.
    """
    if x.shape[0] < 2:
        raise ConfigError(f"proxy 'gradsign' needs a batch of at least 2 examples, got {x.shape[0]}")
    layers = _require_weights(model, "gradsign")
    model.train()
    agreement = [torch.zeros_like(layer.weight, dtype=torch.float64) for layer in layers]
    for i in range(x.shape[0]):
        model.zero_grad()
        loss_fn(model(x[i : i + 1]), y[i : i + 1]).backward()
        for total, layer in zip(agreement, layers, strict=True):
            if layer.weight.grad is not None:
                total += torch.sign(layer.weight.grad.detach()).double()
    return float(sum(total.abs().sum() for total in agreement))


@register_proxy("params", uses_data=False, needs_labels=False)
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """Number of trainable parameters."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


@register_proxy("flops", uses_data=False, needs_labels=False)
def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """FLOPs of one single-example forward pass in eval mode, counted by torch (a multiply-add is 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x[:1])
    return float(counter.get_total_flops())


# -- entry points ------------------------------------------------------------------------------


def score(
    model: nn.Module,
    batch_x: torch.Tensor,
    batch_y: torch.Tensor | None,
    proxy: str,
    *,
    loss_fn: LossFn | None = None,
    fallback: float | None = None,
    inplace: bool = False,
) -> float:
    """Score ``model`` with ``proxy`` on one batch; the model itself is left unchanged.

    ``inplace=True`` skips the protective deep copy (which costs more than
    building a small network): only for a throwaway model, which the proxy
    may then change (synflow takes absolute weights and removes batch norms).

    ``batch_y`` holds class indices (needed by loss-based proxies; ``None`` is
    allowed for the others). ``loss_fn`` defaults to cross-entropy. A NaN or
    infinite result raises :class:`ConfigError` unless ``fallback`` is given,
    which is then returned (and a warning logged).
    """
    entry = PROXIES.get(proxy)
    if not isinstance(batch_x, torch.Tensor) or batch_x.dim() < 2 or batch_x.shape[0] < 1:
        raise ConfigError(
            f"batch_x must be a tensor of shape (batch, ...) with at least one example, got "
            f"{getattr(batch_x, 'shape', type(batch_x).__name__)}"
        )
    if batch_y is None:
        if entry.needs_labels:
            raise ConfigError(f"proxy {proxy!r} needs labels: pass batch_y")
        batch_y = torch.zeros(batch_x.shape[0], dtype=torch.long)
    elif batch_y.shape[0] != batch_x.shape[0]:
        raise ConfigError(
            f"batch_y has {batch_y.shape[0]} labels for {batch_x.shape[0]} examples; they must match"
        )
    work = model if inplace else copy.deepcopy(model)
    dtype = next((p.dtype for p in work.parameters()), torch.float32)
    value = entry.fn(work, batch_x.to(dtype), batch_y, loss_fn or F.cross_entropy)
    if math.isfinite(value):
        return float(value)
    if fallback is None:
        raise ConfigError(
            f"proxy {proxy!r} is {value} for this network (e.g. its output does not depend on its "
            "input or weights); pass fallback=<value> to score such networks anyway"
        )
    log.warning("proxy %r gave %s; using fallback %s", proxy, value, fallback)
    return float(fallback)


def fresh_model(
    space: SearchSpace,
    arch: Architecture,
    seed: int = 0,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (3, 32, 32),
) -> nn.Module:
    """Build ``arch`` with weights initialised from ``seed``, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch, num_classes=num_classes, input_shape=input_shape)


def score_arch(
    space: SearchSpace,
    arch: Architecture,
    proxies: Sequence[str],
    batch_x: torch.Tensor,
    batch_y: torch.Tensor | None,
    *,
    seed: int = 0,
    num_classes: int = 10,
    fallback: float | None = None,
) -> dict[str, float]:
    """Every proxy in ``proxies`` for ``arch`` on one freshly initialised network (seeded)."""
    for name in proxies:
        PROXIES.get(name)  # fail on a typo before building anything
    shape = tuple(batch_x.shape[1:])
    # One freshly built (identically seeded) network per proxy: cheaper than copying one.
    return {
        name: score(
            fresh_model(space, arch, seed, num_classes, shape),  # type: ignore[arg-type]
            batch_x,
            batch_y,
            name,
            fallback=fallback,
            inplace=True,
        )
        for name in proxies
    }


def synthetic_batch(
    batch_size: int = 64,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A standard-normal batch with uniform labels from an explicit generator.

    For when no dataset is at hand: data-free proxies are unaffected, the
    data-dependent ones become a (weaker) data-free variant.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} is not allowed; expected an integer >= 1")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=generator)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator)
    return x, y


def dataset_batch(
    dataset: str | Mapping[str, Any], batch_size: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A mini-batch of a :func:`nas.data.load_dataset` source's training split, drawn with ``seed``.

    Returns images, labels and the dataset's number of classes. (The data
    module needs pydantic, so it is imported only here.)
    """
    from nas.data import load_dataset

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} is not allowed; expected an integer >= 1")
    data = load_dataset(dataset, seed=seed)
    count = min(batch_size, len(data.x_train))
    pick = np.random.default_rng(seed).choice(len(data.x_train), size=count, replace=False)
    x = torch.from_numpy(np.array(data.x_train[pick]))
    y = torch.from_numpy(np.array(data.y_train[pick]))
    return x, y, data.num_classes
