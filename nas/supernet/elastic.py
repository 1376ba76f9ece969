"""Elastic building blocks: one set of weights, every smaller kernel, expansion and grouping by slicing.

Once-for-all (Cai et al. 2020) and BigNAS (Yu et al. 2020) share weights
between the sub-networks of a supernet by *nesting* them rather than by
keeping one copy per choice (the single-path supernets of :mod:`nas.supernet.base`):

* **expansion** (the hidden width of an inverted-residual block): a smaller
  block uses the first ``c_in * e`` channels of the largest one -- the first
  output rows of the expand conv, the first depthwise filters, the first input
  columns of the project conv, the first entries of each BatchNorm;
* **kernel size**: a 3x3 depthwise kernel is the centre of the 5x5 one, passed
  through a learned ``9 x 9`` transform shared by the layer's channels
  (once-for-all's kernel transformation matrix, initialised to the identity),
  so the centre can serve both sizes without forcing the 5x5 kernel's centre to
  be a good 3x3 kernel;
* **grouped 1x1 convs** (FBNet's ``_g2`` blocks): a grouped conv is a dense
  conv whose weight is zero off the block diagonal, so its weight is the
  diagonal blocks of the dense weight (each a slice of it), run with
  ``groups=g`` exactly as the stand-alone grouped conv runs.

Everything a sub-network computes with is a slice (a view) of the shared
parameters, or for a smaller kernel a function of a slice, so a gradient of
any sub-network lands in the shared tensors. :meth:`ElasticMBConv.tensors`
gives the stand-alone block's weights (copied into an ordinary module when a
sub-network is extracted).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nas.core.architecture import Architecture
from nas.supernet.base import Supernet
from nas.supernet.mixed import channel_shuffle

#: One conv + BatchNorm of a stand-alone block: the conv weight and the BN's
#: ``weight, bias, running_mean, running_var`` (in the order of the block's modules).
ConvBnTensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def sliced_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn`` on the first ``x.shape[1]`` channels, updating only that slice of its running statistics.

    The running statistics are passed as views, so training a slice updates
    the shared buffers in place; the momentum rule is ``nn.BatchNorm2d``'s
    (``momentum=None``: a cumulative average, which :func:`~nas.supernet.recalibrate.recalibrate_bn` uses).
    """
    c = x.shape[1]
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or bn.running_mean is None
    return F.batch_norm(
        x,
        None if bn.running_mean is None else bn.running_mean[:c],
        None if bn.running_var is None else bn.running_var[:c],
        None if bn.weight is None else bn.weight[:c],
        None if bn.bias is None else bn.bias[:c],
        use_batch,
        factor,
        bn.eps,
    )


def bn_tensors(bn: nn.BatchNorm2d, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``c`` entries of ``bn``'s affine parameters and running statistics (views)."""
    return bn.weight[:c], bn.bias[:c], bn.running_mean[:c], bn.running_var[:c]  # type: ignore[index]


def grouped_weight(weight: torch.Tensor, c_out: int, c_in: int, groups: int) -> torch.Tensor:
    """The ``groups``-grouped 1x1 conv weight ``(c_out, c_in/groups, 1, 1)`` inside a dense one.

    Output group ``j`` reads input group ``j`` only: the block-diagonal parts of
    ``weight[:c_out, :c_in]``. One group is a plain view; more are the diagonal
    views concatenated (their gradients still flow into ``weight``).
    """
    if groups == 1:
        return weight[:c_out, :c_in]
    o, i = c_out // groups, c_in // groups
    return torch.cat([weight[j * o : (j + 1) * o, j * i : (j + 1) * i] for j in range(groups)])


class ElasticDepthwise(nn.Module):
    """A depthwise conv of the largest kernel; smaller kernels are its centre through a learned transform."""

    def __init__(self, channels: int, kernels: Sequence[int], stride: int) -> None:
        super().__init__()
        self.kernels = tuple(sorted(kernels))
        self.stride = stride
        largest = self.kernels[-1]
        self.weight = nn.Parameter(torch.empty(channels, 1, largest, largest))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # once-for-all: one (k*k x k*k) matrix per step down, e.g. "5to3", identity at the start
        self.transforms = nn.ParameterDict(
            {
                f"{big}to{small}": nn.Parameter(torch.eye(small * small))
                for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1], strict=True)
            }
        )

    def kernel(self, size: int, channels: int) -> torch.Tensor:
        """The ``(channels, 1, size, size)`` kernel: the largest one's centre, transformed step by step."""
        if size not in self.kernels:
            raise ValueError(f"kernel {size} is not one of this layer's kernels {self.kernels}")
        weight = self.weight[:channels]
        for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1], strict=True):
            if big == size:
                break
            start = (big - small) // 2
            centre = weight[:, :, start : start + small, start : start + small]
            weight = F.linear(centre.reshape(channels, small * small), self.transforms[f"{big}to{small}"])
            weight = weight.reshape(channels, 1, small, small)
        return weight

    def forward(self, x: torch.Tensor, size: int) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.kernel(size, c), stride=self.stride, padding=size // 2, groups=c)


class ElasticMBConv(nn.Module):
    """The largest inverted-residual block of a layer, running any (kernel, expansion, groups) inside it.

    1x1 expand + BN + ReLU [+ channel shuffle when grouped], kxk depthwise +
    BN + ReLU, 1x1 project + BN, plus the residual where the shape is kept --
    FBNet's ``IRFBlock``, whose hidden width is ``c_in * expansion``.
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int, kernels: Sequence[int], max_expansion: int
    ) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.max_expansion = max_expansion
        hidden = c_in * max_expansion
        self.expand = nn.Parameter(torch.empty(hidden, c_in, 1, 1))
        self.expand_bn = nn.BatchNorm2d(hidden)
        self.depthwise = ElasticDepthwise(hidden, kernels, stride)
        self.depthwise_bn = nn.BatchNorm2d(hidden)
        self.project = nn.Parameter(torch.empty(c_out, hidden, 1, 1))
        self.project_bn = nn.BatchNorm2d(c_out)
        for weight in (self.expand, self.project):
            nn.init.kaiming_normal_(weight, mode="fan_out")
        self.residual = stride == 1 and c_in == c_out

    def check(self, kernel: int, expansion: int, groups: int) -> None:
        if expansion > self.max_expansion or self.c_in % groups or self.c_out % groups:
            raise ValueError(
                f"expansion {expansion} / groups {groups} do not fit a block of {self.c_in}->{self.c_out} "
                f"channels with expansion up to {self.max_expansion}"
            )

    def forward(self, x: torch.Tensor, kernel: int, expansion: int, groups: int) -> torch.Tensor:
        self.check(kernel, expansion, groups)
        hidden = self.c_in * expansion
        out = F.conv2d(x, grouped_weight(self.expand, hidden, self.c_in, groups), groups=groups)
        out = F.relu(sliced_batch_norm(self.expand_bn, out))
        if groups > 1:
            out = channel_shuffle(out, groups)
        out = F.relu(sliced_batch_norm(self.depthwise_bn, self.depthwise(out, kernel)))
        out = F.conv2d(out, grouped_weight(self.project, self.c_out, hidden, groups), groups=groups)
        out = sliced_batch_norm(self.project_bn, out)
        return x + out if self.residual else out

    @torch.no_grad()
    def tensors(self, kernel: int, expansion: int, groups: int) -> list[ConvBnTensors]:
        """The stand-alone block's (conv weight, BN weight, bias, mean, var) for expand, depthwise, project."""
        self.check(kernel, expansion, groups)
        hidden = self.c_in * expansion
        return [
            (grouped_weight(self.expand, hidden, self.c_in, groups), *bn_tensors(self.expand_bn, hidden)),
            (self.depthwise.kernel(kernel, hidden), *bn_tensors(self.depthwise_bn, hidden)),
            (
                grouped_weight(self.project, self.c_out, hidden, groups),
                *bn_tensors(self.project_bn, self.c_out),
            ),
        ]


class ElasticSupernet(Supernet):
    """A supernet whose sub-networks are nested slices of its largest one (what BigNAS trains).

    ``forward_arch`` runs any architecture of the space on the shared weights;
    :meth:`extract` turns one into an ordinary stand-alone module.
    """

    @abc.abstractmethod
    def largest(self) -> Architecture:
        """The sub-network all others are slices of (BigNAS' teacher)."""

    @abc.abstractmethod
    def smallest(self) -> Architecture:
        """The smallest sub-network (the other end of the sandwich)."""

    @abc.abstractmethod
    def extract(self, arch: Architecture) -> nn.Module:
        """``arch``'s stand-alone network with copies of the weights the supernet runs for it."""

    @abc.abstractmethod
    def residual_norms(self) -> list[nn.BatchNorm2d]:
        """The last BatchNorm of every residual block (zero-initialised by BigNAS)."""


def load_conv_bn(target: nn.Module, tensors: Sequence[ConvBnTensors]) -> None:
    """Copy ``tensors`` into the Conv2d/BatchNorm2d pairs of ``target``, in module order."""
    convs = [m for m in target.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in target.modules() if isinstance(m, nn.BatchNorm2d)]
    if not len(convs) == len(norms) == len(tensors):
        raise ValueError(f"{len(tensors)} conv+BN pairs do not fit a module with {len(convs)} convs")
    with torch.no_grad():
        for conv, bn, (weight, gamma, beta, mean, var) in zip(convs, norms, tensors, strict=True):
            conv.weight.copy_(weight)
            bn.weight.copy_(gamma)
            bn.bias.copy_(beta)
            bn.running_mean.copy_(mean)  # type: ignore[union-attr]
            bn.running_var.copy_(var)  # type: ignore[union-attr]


__all__ = [
    "ElasticDepthwise",
    "ElasticMBConv",
    "ElasticSupernet",
    "bn_tensors",
    "grouped_weight",
    "load_conv_bn",
    "sliced_batch_norm",
]
