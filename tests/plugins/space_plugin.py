"""A tiny chain space with a one-shot view, registered only by the tests.

It exists to prove that a space is one module plus a registration: the space
contract tests and the one-shot tests pick it up from the registries
(``tests/conftest.py`` imports every ``*_plugin`` module), with nothing in ``nas/`` naming it. Two
layers, each a 3x3 conv, a 1x1 conv or a skip; the supernet is the
stand-alone skeleton with every op per layer (single path, searched by SPOS
and by the test method of :mod:`oneshot_plugin`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import networkx as nx
import torch
from torch import nn

from nas.core import SPACES, Architecture, ArchitectureError, Scalar, UnknownOpError, positive_int
from nas.core.oneshot import SINGLE_PATH, OneShotView
from nas.supernet import Supernet
from search_spaces.base import TorchSpace
from search_spaces.ops import conv_bn

OPS: tuple[str, ...] = ("nor_conv_3x3", "nor_conv_1x1", "skip_connect")
LAYERS: tuple[str, ...] = ("l0", "l1")


def op_module(op: str, width: int) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    return conv_bn(width, width, 3 if op == "nor_conv_3x3" else 1)


class ChainNetwork(nn.Module):
    """Stem, one module per layer from ``make_layer(name)``, pooling and a classifier."""

    def __init__(
        self, make_layer: Callable[[str], nn.Module], width: int, num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, width, 3)
        self.layers = nn.ModuleDict((name, make_layer(name)) for name in LAYERS)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers.values():
            x = layer(x)
        return self.classify(x)


class ChainSupernet(Supernet):
    """The same skeleton with every op of every layer."""

    def __init__(self, space: ChainSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        self.network = ChainNetwork(
            lambda _: nn.ModuleDict((op, op_module(op, space.width)) for op in OPS),
            space.width,
            num_classes,
            input_shape[0],
        )

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        self.space.validate(arch)
        x = self.network.stem(x)
        for name, layer in self.network.layers.items():
            x = layer[str(arch[name])](x)
        return self.network.classify(x)


def build_supernet(
    space: ChainSpace, *, num_classes: int, input_shape: tuple[int, int, int], **_: Any
) -> Supernet:
    return ChainSupernet(space, num_classes, input_shape)


@SPACES.register("test_chain")
class ChainSpace(TorchSpace):
    """Two layers of conv3x3 / conv1x1 / skip (option ``width``)."""

    name = "test_chain"
    oneshot_view: ClassVar[OneShotView] = OneShotView(
        kind=SINGLE_PATH, build=build_supernet, shrink_advice="a lower width"
    )

    def __init__(self, *, width: int = 4) -> None:
        self.width = positive_int(self.name, "width", width)

    @property
    def options(self) -> dict[str, Any]:
        return {"width": self.width}

    def choices(self) -> dict[str, Sequence[Scalar]]:
        return {name: OPS for name in LAYERS}

    def parse(self, text: str) -> Architecture:
        """``op-op``, e.g. ``nor_conv_3x3-skip_connect``."""
        if not isinstance(text, str):
            raise ArchitectureError(f"{self.name} string form must be a str, got {type(text).__name__}")
        ops = text.strip().split("-")
        if len(ops) != len(LAYERS):
            raise ArchitectureError(
                f"{self.name} string {text!r} has {len(ops)} op(s); expected {len(LAYERS)}"
            )
        for op in ops:
            if op not in OPS:
                raise UnknownOpError(f"{self.name} op", op, OPS)
        return self.make(dict(zip(LAYERS, ops, strict=True)))

    def format(self, arch: Architecture) -> str:
        self.validate(arch)
        return "-".join(str(arch[name]) for name in LAYERS)

    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        self.validate(arch)
        graph = nx.DiGraph(space=self.name)
        graph.add_node("input", op="input")
        for name in LAYERS:
            graph.add_node(name, op=arch[name])
        graph.add_node("output", op="output")
        nx.add_path(graph, ["input", *LAYERS, "output"])
        return graph

    def network(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        return ChainNetwork(
            lambda name: op_module(str(arch[name]), self.width), self.width, num_classes, input_shape[0]
        )
