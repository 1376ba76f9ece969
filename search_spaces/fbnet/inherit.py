"""FBNet's weight transfer through a morphism (see :mod:`search_spaces.fbnet.morphisms`).

Every layer but the changed one is copied. The changed layer's MBConv is
three conv + BN units (expand 1x1, depthwise kxk, project 1x1); its tensors
go through the steps the morphism's kind names, in order: ``ungroup``
(block-diagonal dense 1x1 convs; the shuffle becomes a permutation of the
expansion's outputs), ``widen`` (middle channels replicated, the projection's
inputs split), ``kernel`` (the depthwise kernel zero-padded). ``deepen``
keeps the child's fresh block and zeroes its last BatchNorm, so the residual
layer starts as the identity.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from nas.core.morphism import Morphism
from search_spaces.fbnet.model import FBNetNetwork, Residual
from search_spaces.fbnet.morphisms import DEEPEN, KERNEL, UNGROUP, WIDEN
from search_spaces.fbnet.plan import MBCONV
from search_spaces.net2net import copy_matching, replicate, split, zero_batchnorm

#: The state dicts of an MBConv's three conv + BN units (keys ``0.weight`` for the conv, ``1.*`` for the BN).
Units = list[dict[str, torch.Tensor]]


def conv_units(layer: nn.Module) -> list[nn.Sequential]:
    """The three conv + BN units of an MBConv layer (residual or not; the shuffle is skipped)."""
    body = layer.body if isinstance(layer, Residual) else layer
    return [m for m in body if isinstance(m, nn.Sequential)]


def dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped 1x1 conv weight ``(out, in/groups, 1, 1)`` as the dense one with zero cross-group weights."""
    out, per_group = weight.shape[:2]
    result = weight.new_zeros(out, per_group * groups, *weight.shape[2:])
    rows = out // groups
    for group in range(groups):
        cols = slice(group * per_group, (group + 1) * per_group)
        result[group * rows : (group + 1) * rows, cols] = weight[group * rows : (group + 1) * rows]
    return result


def shuffle_order(channels: int, groups: int) -> torch.Tensor:
    """Which channel :class:`~search_spaces.fbnet.model.ChannelShuffle` puts at each position."""
    return torch.arange(channels).reshape(groups, channels // groups).t().reshape(-1)


def ungroup(units: Units, groups: int) -> None:
    expand, _, project = units
    order = shuffle_order(expand["0.weight"].shape[0], groups)
    expand["0.weight"] = dense(expand["0.weight"], groups)
    for key, value in expand.items():
        if value.dim() > 0:
            expand[key] = replicate(value, order)
    project["0.weight"] = dense(project["0.weight"], groups)


def widen(units: Units, factor: int, generator: torch.Generator) -> None:
    expand, dw, project = units
    middle = expand["0.weight"].shape[0]
    mapping = torch.arange(middle * factor) % middle
    for unit in (expand, dw):
        for key, value in unit.items():
            if value.dim() > 0:
                unit[key] = replicate(value, mapping)
    project["0.weight"] = split(project["0.weight"], mapping, generator)


def enlarge_kernel(units: Units, kernel: int) -> None:
    dw = units[1]
    pad = (kernel - dw["0.weight"].shape[-1]) // 2
    dw["0.weight"] = functional.pad(dw["0.weight"], (pad, pad, pad, pad))


def transfer(
    space: object, morphism: Morphism, parent: FBNetNetwork, child: FBNetNetwork, generator: torch.Generator
) -> None:
    """Fill ``child`` from the trained ``parent`` so that both compute the same function."""
    name = morphism.decision
    copy_matching(parent, child, (f"layers.{name}.",))
    new = conv_units(getattr(child.layers, name))
    kinds = morphism.kind.split("+")
    if DEEPEN in kinds:
        zero_batchnorm(new[-1][1])
        return
    old_block, new_block = str(morphism.parent[name]), str(morphism.child[name])
    (_, expansion, groups), (kernel, new_expansion, _) = MBCONV[old_block], MBCONV[new_block]
    units: Units = [dict(unit.state_dict()) for unit in conv_units(getattr(parent.layers, name))]
    if UNGROUP in kinds:
        ungroup(units, groups)
    if WIDEN in kinds:
        widen(units, new_expansion // expansion, generator)
    if KERNEL in kinds:
        enlarge_kernel(units, kernel)
    with torch.no_grad():
        for unit, state in zip(new, units, strict=True):
            unit.load_state_dict(state)


__all__ = ["conv_units", "dense", "shuffle_order", "transfer"]
