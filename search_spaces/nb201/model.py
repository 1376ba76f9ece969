"""NAS-Bench-201's network: the candidate ops, the cell and the ``TinyNetwork`` skeleton."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from nas.core import Scalar, UnknownOpError
from search_spaces.nb201.cell import NUM_NODES, OPS
from search_spaces.op_registry import CELL_OPS, ops_for
from search_spaces.ops import ReLUConvBN


def op_module(op: str, channels: int) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op in ops_for("nb201"):  # a plugin op the space's ``extra_ops`` named
        return CELL_OPS.get(op).factory(channels)
    raise UnknownOpError("nb201 op", op, OPS + tuple(ops_for("nb201")))


class Cell(nn.Module):
    """One NAS-Bench-201 cell (the benchmark's ``InferCell``), ``none`` edges omitted."""

    def __init__(self, decisions: Mapping[str, Scalar], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        self.inputs: list[list[tuple[int, str]]] = []  # per node: (source, edge key)
        for i in range(1, NUM_NODES):
            node_inputs = []
            for j in range(i):
                op = str(decisions[f"{i}<-{j}"])
                if op != "none":
                    key = f"e{i}{j}"
                    self.edges[key] = op_module(op, channels)
                    node_inputs.append((j, key))
            self.inputs.append(node_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node_inputs in self.inputs:
            if not node_inputs:  # every input is `none`: the benchmark's Zero op sums to zeros
                nodes.append(torch.zeros_like(x))
                continue
            total = None
            for source, key in node_inputs:
                out = self.edges[key](nodes[source])
                total = out if total is None else total + out
            nodes.append(total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The benchmark's ``ResNetBasicblock`` with stride 2 between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        # ceil_mode keeps both branches the same size on odd inputs; identical on even ones.
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Nb201Network(nn.Module):
    """The benchmark's ``TinyNetwork`` skeleton around cells made by ``make_cell(channels)``.

    The stand-alone network passes its fixed :class:`Cell`; the supernet
    (:mod:`search_spaces.nb201.supernet`) passes search cells on the very same
    skeleton, so a one-hot path computes what the derived network computes.
    """

    def __init__(
        self,
        make_cell: Callable[[int], nn.Module],
        channels: int,
        cells: int,
        num_classes: int,
        in_channels: int,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(make_cell(c) for _ in range(cells))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def head(self, out: torch.Tensor) -> torch.Tensor:
        """BN-ReLU, global pooling and the classifier after the last cell."""
        out = self.lastact(out)
        return self.classifier(torch.flatten(self.global_pooling(out), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


__all__ = ["Cell", "Nb201Network", "ResidualReduction", "op_module"]
