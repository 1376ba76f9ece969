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
  ``groups=g`` exactly as the stand-alone grouped conv runs;
* **width** (a layer's channel count, e.g. the hybrid space's ``width`` and
  the widths its down-sampling positions imply): :class:`ElasticConvBn` and
  :class:`ElasticLinear` run the first ``c_in`` input and first ``c_out``
  output channels of the widest layer, :func:`sliced_batch_norm` and
  :func:`sliced_layer_norm` normalise the first channels (a LayerNorm over
  ``c`` channels computes its statistics over those ``c``, as the stand-alone
  ``nn.LayerNorm(c)`` does).

Everything a sub-network computes with is a slice (a view) of the shared
parameters, or for a smaller kernel a function of a slice, so a gradient of
any sub-network lands in the shared tensors. :meth:`ElasticMBConv.tensors`
gives the stand-alone block's weights (copied into an ordinary module when a
sub-network is extracted); the width-elastic layers give theirs as a
``state_dict`` of the stand-alone layer (``state``), views of the shared
tensors, so a space assembles a sub-network's whole state dict and loads it
strictly: a stand-alone tensor no elastic layer provides is an error, not a
silently random weight.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError
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


def sliced_layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm`` over the last dimension's ``c = x.shape[-1]`` features with its first ``c`` weights."""
    c = x.shape[-1]
    weight = None if norm.weight is None else norm.weight[:c]
    bias = None if norm.bias is None else norm.bias[:c]
    return F.layer_norm(x, (c,), weight, bias, norm.eps)


def norm_state(norm: nn.Module, c: int) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of ``norm`` (a BatchNorm or LayerNorm) over its first ``c`` channels (views).

    Scalars (BatchNorm's ``num_batches_tracked``) are shared by every width and kept whole.
    """
    return {k: v if v.ndim == 0 else v[:c] for k, v in norm.state_dict().items()}


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every key under ``prefix`` (a module path ending in ``.``), for nesting state dicts."""
    return {prefix + k: v for k, v in state.items()}


class ElasticConvBn(nn.Module):
    """Conv (no bias) + BatchNorm of the widest channels; runs the first ``c_in -> c_out`` of them.

    :meth:`state` is the ``state_dict`` of the stand-alone ``nn.Sequential(conv, bn[, relu])``
    (``0.`` the conv, ``1.`` the BN) of those widths, the layout of the spaces' ``conv_bn`` unit.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.c_in, self.c_out, self.kernel, self.stride = c_in, c_out, kernel, stride
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(c_out)

    def check(self, c_in: int, c_out: int) -> None:
        if not (0 < c_in <= self.c_in and 0 < c_out <= self.c_out):
            raise ArchitectureError(
                f"a {c_in}->{c_out} channel conv does not fit in this layer's {self.c_in}->{self.c_out}"
            )

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        self.check(x.shape[1], c_out)
        out = F.conv2d(x, self.weight[:c_out, : x.shape[1]], stride=self.stride, padding=self.kernel // 2)
        return sliced_batch_norm(self.bn, out)

    def state(self, c_in: int, c_out: int) -> dict[str, torch.Tensor]:
        self.check(c_in, c_out)
        return {"0.weight": self.weight.detach()[:c_out, :c_in], **prefixed("1.", norm_state(self.bn, c_out))}


class ElasticLinear(nn.Linear):
    """A linear layer of the widest features; runs the first ``in -> out`` of them.

    ``parts`` stacks that many ``out_features``-row blocks in one weight (a
    transformer's fused query/key/value projection: ``parts=3``): ``c_out``
    features take the first ``c_out`` rows *of each part*, in the stand-alone
    layer's order (all queries, then keys, then values), so the heads of a
    narrower attention are the first heads of the widest one.
    """

    def __init__(self, in_features: int, out_features: int, parts: int = 1) -> None:
        super().__init__(in_features, parts * out_features)
        self.parts, self.width = parts, out_features

    def rows(self, c_out: int) -> list[slice]:
        if not 0 < c_out <= self.width:
            raise ArchitectureError(f"{c_out} output features do not fit in this layer's {self.width}")
        return [slice(p * self.width, p * self.width + c_out) for p in range(self.parts)]

    def tensors(self, c_in: int, c_out: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight ``(parts * c_out, c_in)`` and bias: one view, or the parts' views concatenated."""
        if not 0 < c_in <= self.in_features:
            raise ArchitectureError(f"{c_in} input features do not fit in this layer's {self.in_features}")
        rows = self.rows(c_out)
        if len(rows) == 1:
            return self.weight[rows[0], :c_in], self.bias[rows[0]]
        return torch.cat([self.weight[r, :c_in] for r in rows]), torch.cat([self.bias[r] for r in rows])

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:  # type: ignore[override]
        return F.linear(x, *self.tensors(x.shape[-1], c_out))

    def state(self, c_in: int, c_out: int) -> dict[str, torch.Tensor]:
        weight, bias = self.tensors(c_in, c_out)
        return {"weight": weight.detach(), "bias": bias.detach()}


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

    def size(self, arch: Architecture) -> int:
        """Parameters of ``arch``'s stand-alone network: the resource level AttentiveNAS samples at.

        Counting the extracted network is right for every elastic supernet but
        costs an extraction; a supernet whose sub-network sizes are a sum over
        its layers overrides this with the sum (fbnet), since AttentiveNAS
        sizes dozens of samples per step.
        """
        return sum(p.numel() for p in self.extract(arch).parameters())


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
    "ElasticConvBn",
    "ElasticDepthwise",
    "ElasticLinear",
    "ElasticMBConv",
    "ElasticSupernet",
    "bn_tensors",
    "grouped_weight",
    "load_conv_bn",
    "norm_state",
    "prefixed",
    "sliced_batch_norm",
    "sliced_layer_norm",
]
