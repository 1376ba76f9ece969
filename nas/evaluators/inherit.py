"""Weight inheritance: a morphism's child starts from its parent's trained weights.

The parent's network is rebuilt from its architecture and loaded with its
stored weights; the space's morphism view (:mod:`nas.core.morphism`) then maps
them onto the child's freshly built network, so that before any training the
child computes the parent's function (exactly, in eval mode). New units that a
morphism adds get seeded noise where it breaks the symmetry of replicas, so
the same trial seed gives the same child.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.evaluator import Inheritance
from nas.core.morphism import find_morphism, morphism_view
from nas.core.space import SearchSpace


def parent_network(space: SearchSpace, parent: Inheritance, num_classes: int, input_shape: Any) -> nn.Module:
    """The parent's network with its stored weights."""
    model = space.build(parent.arch, num_classes=num_classes, input_shape=input_shape)
    try:
        state = torch.load(io.BytesIO(parent.weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the weights of parent trial {parent.trial} do not fit its architecture "
            f"{space.format(parent.arch)} ({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc
    return model


def inherit(
    space: SearchSpace, arch: Architecture, child: nn.Module, parent: Inheritance, dataset: Any, seed: int
) -> None:
    """Fill ``child`` (``arch``'s fresh network) from ``parent`` through their morphism, in place."""
    morphism = find_morphism(space, parent.arch, arch)
    recorded = (
        {k: parent.morphism.get(k) for k in ("decision", "to")}
        if isinstance(parent.morphism, Mapping)
        else {}
    )
    if recorded and recorded != {"decision": morphism.decision, "to": arch[morphism.decision]}:
        raise ConfigError(
            f"trial's recorded morphism {dict(parent.morphism)} does not match the edit from its parent "
            f"({morphism.decision} -> {arch[morphism.decision]!r})"
        )
    with torch.random.fork_rng(devices=[]):  # building the parent must not move the child's training RNG
        source = parent_network(space, parent, dataset.num_classes, dataset.input_shape)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        morphism_view(space).transfer_function()(space, morphism, source, child, generator)


__all__ = ["inherit", "parent_network"]
