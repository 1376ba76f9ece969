"""Torch building blocks shared by several spaces (and their supernets)."""

from __future__ import annotations

import torch
from torch import nn


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (strided in reduction cells)."""

    #: A supernet's full mix skips this op: it adds nothing (:func:`nas.supernet.mixed.mix_ops`).
    outputs_zeros = True

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BatchNorm: the conv op of NAS-Bench-201 and DARTS."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in, c_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False
            ),
            nn.BatchNorm2d(c_out, affine=affine),
        )


def conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    relu: bool = True,
    padding: int | None = None,
) -> nn.Sequential:
    """Conv (no bias) + BN [+ ReLU]: FBNet's ``ConvBNRelu``, also the hybrid space's conv unit."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            c_in,
            c_out,
            kernel,
            stride=stride,
            padding=kernel // 2 if padding is None else padding,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)
