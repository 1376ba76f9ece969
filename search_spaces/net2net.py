"""Net2Net's weight arithmetic, shared by the spaces' morphisms (:mod:`nas.core.morphism`).

A wider layer's units are replicas of the old ones (``mapping[new] = old``);
the consumers of a replicated input divide that input's weight among its
replicas, so the sum they compute is unchanged. The division gets a little
noise that sums to zero over each input's replicas: the function stays exact,
but replicas receive different gradients and do not stay twins forever (Net2Net's
symmetry breaking). A new layer that must start as the identity gets an identity
conv and a BatchNorm whose eval-mode transform is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

#: Noise added to split weights, relative to the standard deviation of the weight being split.
SPLIT_NOISE = 0.05


def doubling(channels: int) -> torch.Tensor:
    """The mapping of a width doubling: new channel ``n`` replicates old channel ``n % channels``."""
    return torch.arange(2 * channels) % channels


def replicate(tensor: torch.Tensor, mapping: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``tensor`` with the slices along ``dim`` replicated as ``mapping`` says (output units)."""
    return tensor.index_select(dim, mapping)


def split(
    tensor: torch.Tensor, mapping: torch.Tensor, generator: torch.Generator | None, dim: int = 1
) -> torch.Tensor:
    """The weight of a consumer of replicated inputs: each input's weight divided among its replicas.

    Exact for replicated inputs: the noise sums to zero over the replicas of each input.
    """
    sources = tensor.shape[dim]
    counts = torch.bincount(mapping, minlength=sources).to(tensor.dtype)
    shape = [1] * tensor.dim()
    shape[dim] = -1
    result = replicate(tensor, mapping, dim) / replicate(counts, mapping).reshape(shape)
    if generator is None or SPLIT_NOISE == 0:
        return result
    scale = SPLIT_NOISE * float(tensor.std()) if tensor.numel() > 1 else 0.0
    noise = torch.randn(result.shape, generator=generator, dtype=result.dtype) * scale
    total = torch.zeros_like(tensor).index_add_(dim, mapping, noise)
    return result + noise - replicate(total / counts.reshape(shape), mapping, dim)


def widen_weight(
    weight: torch.Tensor,
    outputs: torch.Tensor | None,
    inputs: torch.Tensor | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """A conv or linear weight with replicated outputs and/or inputs split among replicas."""
    if outputs is not None:
        weight = replicate(weight, outputs, 0)
    if inputs is not None:
        weight = split(weight, inputs, generator, 1)
    return weight


def set_params(module: nn.Module, **tensors: torch.Tensor) -> None:
    """Copy tensors into ``module``'s parameters and buffers by name (shapes must match)."""
    state = dict(module.named_parameters()) | dict(module.named_buffers())
    with torch.no_grad():
        for name, value in tensors.items():
            target = state[name]
            if target.shape != value.shape:
                raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit {tuple(target.shape)}")
            target.copy_(value)


def replicate_module(source: nn.Module, target: nn.Module, mapping: torch.Tensor) -> None:
    """``target`` = ``source`` with every per-channel tensor replicated (BatchNorm, LayerNorm, depthwise conv)."""
    state = {
        name: replicate(value, mapping) if value.dim() > 0 else value
        for name, value in source.state_dict().items()
    }
    target.load_state_dict(state)


def identity_batchnorm(bn: nn.BatchNorm2d) -> None:
    """A BatchNorm whose eval-mode transform is the identity: ``(x - 0) / sqrt(1 - eps + eps) * 1 + 0``."""
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def zero_batchnorm(bn: nn.BatchNorm2d) -> None:
    """A BatchNorm that outputs zeros (scale and shift 0): a residual branch ending in it is the identity."""
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def copy_matching(parent: nn.Module, child: nn.Module, skip: tuple[str, ...]) -> None:
    """Copy every parameter and buffer of ``child`` not under a ``skip`` prefix from ``parent`` (same name)."""
    source = parent.state_dict()
    state = child.state_dict()
    for name in state:
        if not name.startswith(skip):
            state[name] = source[name]
    child.load_state_dict(state)


__all__ = [
    "SPLIT_NOISE",
    "copy_matching",
    "doubling",
    "identity_batchnorm",
    "replicate",
    "replicate_module",
    "set_params",
    "split",
    "widen_weight",
    "zero_batchnorm",
]
