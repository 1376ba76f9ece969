"""DARTS' evaluation network: its ops, the cell and the ``NetworkCIFAR``/``NetworkImageNet`` skeleton.

The skeleton (:class:`DartsNetwork`) takes a cell factory, so the supernet
(:mod:`search_spaces.darts.supernet`) is built on the very same skeleton with
search cells instead of a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.core import ConfigError, UnknownOpError
from search_spaces.darts.genotype import CONCAT, OPS, Genotype
from search_spaces.ops import ReLUConvBN, Zero

#: Shorter side from which the network uses DARTS' ImageNet stem (three stride-2 convs).
IMAGENET_STEM_MIN_SIZE = 64


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs, the second shifted by one pixel.

    DARTS crops ``x[:, :, 1:, 1:]`` for the shifted half, which mismatches the
    unshifted half on odd sizes; padding one zero row and column first gives
    ``ceil(H / 2)`` for both and the very same values on even sizes. An odd
    ``c_out`` is split ``c_out // 2`` + the rest.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out < 2:
            raise ConfigError(f"FactorizedReduce needs c_out >= 2 to split in two halves, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN: DARTS' ``DilConv``."""

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """DARTS' ``SepConv``: two undilated :class:`DilConv` blocks, only the first strided."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel_size, stride, padding, dilation=1),
            DilConv(c_in, c_out, kernel_size, 1, padding, dilation=1),
        )


def make_op(op: str, channels: int, stride: int) -> nn.Module:
    """The module of one DARTS op (DARTS' ``OPS`` table, affine BN)."""
    if op == "none":
        return Zero(stride)
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
    if op == "sep_conv_3x3":
        return SepConv(channels, channels, 3, stride, 1)
    if op == "sep_conv_5x5":
        return SepConv(channels, channels, 5, stride, 2)
    if op == "dil_conv_3x3":
        return DilConv(channels, channels, 3, stride, 2, dilation=2)
    if op == "dil_conv_5x5":
        return DilConv(channels, channels, 5, stride, 4, dilation=2)
    raise UnknownOpError("DARTS op", op, OPS)


def preprocess(
    c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool
) -> tuple[nn.Module, nn.Module]:
    """A cell's two input adapters: after a reduction c_{k-2} is twice the size of c_{k-1}."""
    first: nn.Module = (
        FactorizedReduce(c_prev_prev, channels)
        if reduction_prev
        else ReLUConvBN(c_prev_prev, channels, 1, 1, 0)
    )
    return first, ReLUConvBN(c_prev, channels, 1, 1, 0)


class Cell(nn.Module):
    """One DARTS cell (DARTS' evaluation ``Cell``) from its eight (op, input) pairs."""

    def __init__(
        self,
        pairs: Sequence[tuple[str, int]],
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocess(c_prev_prev, c_prev, channels, reduction_prev)
        self.ops = nn.ModuleList(
            make_op(op, channels, 2 if reduction and index < 2 else 1) for op, index in pairs
        )
        self.indices: tuple[int, ...] = tuple(index for _, index in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for first in range(0, len(self.ops), 2):
            second = first + 1
            states.append(
                self.ops[first](states[self.indices[first]]) + self.ops[second](states[self.indices[second]])
            )
        return torch.cat([states[i] for i in CONCAT], dim=1)


#: ``make_cell(c_prev_prev, c_prev, channels, reduction, reduction_prev)`` -> a cell module.
CellFactory = Callable[[int, int, int, bool, bool], nn.Module]


def reduction_cells(cells: int) -> tuple[int, int]:
    """Positions of the two reduction cells: 1/3 and 2/3 of the depth."""
    return cells // 3, 2 * cells // 3


class DartsNetwork(nn.Module):
    """DARTS' ``NetworkCIFAR`` (or, for large inputs, ``NetworkImageNet``) without auxiliary head.

    Cells come from ``make_cell``; every cell outputs the concat of the
    :data:`CONCAT` nodes. ``imagenet_stem`` None picks the stem by input size
    (see the space's docstring); the supernet always uses the CIFAR stem, as
    DARTS' search network does.
    """

    def __init__(
        self,
        make_cell: CellFactory,
        channels: int,
        cells: int,
        stem_multiplier: int,
        num_classes: int,
        input_shape: tuple[int, int, int],
        imagenet_stem: bool | None = None,
    ) -> None:
        super().__init__()
        in_channels, height, width = input_shape
        if imagenet_stem is None:
            imagenet_stem = min(height, width) >= IMAGENET_STEM_MIN_SIZE
        self.imagenet_stem = imagenet_stem
        if self.imagenet_stem:
            half = max(channels // 2, 1)
            self.stem0: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, half, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(half),
                nn.ReLU(inplace=False),
                nn.Conv2d(half, channels, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
            )
            self.stem1: nn.Module = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(channels, channels, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
            )
            c_prev_prev = c_prev = channels
            reduction_prev = True
        else:
            stem_channels = stem_multiplier * channels
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(stem_channels),
            )
            self.stem1 = nn.Identity()  # both cell inputs of the first cell are the stem output
            c_prev_prev = c_prev = stem_channels
            reduction_prev = False
        c_curr = channels
        self.cells = nn.ModuleList()
        for i in range(cells):
            reduction = i in reduction_cells(cells)
            if reduction:
                c_curr *= 2
            self.cells.append(make_cell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, len(CONCAT) * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    @classmethod
    def for_genotype(
        cls,
        genotype: Genotype,
        channels: int,
        cells: int,
        stem_multiplier: int,
        num_classes: int,
        input_shape: tuple[int, int, int],
    ) -> DartsNetwork:
        """The stand-alone network of ``genotype``."""

        def make_cell(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> nn.Module:
            pairs = genotype.reduce if reduction else genotype.normal
            return Cell(pairs, c_pp, c_p, c, reduction, reduction_prev)

        return cls(make_cell, channels, cells, stem_multiplier, num_classes, input_shape)

    def stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs of the first cell."""
        s0 = self.stem0(x)
        return s0, self.stem1(s0)

    def head(self, s1: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0, s1 = self.stems(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)


__all__ = [
    "Cell",
    "CellFactory",
    "DartsNetwork",
    "DilConv",
    "FactorizedReduce",
    "SepConv",
    "Zero",
    "make_op",
    "preprocess",
    "reduction_cells",
]
