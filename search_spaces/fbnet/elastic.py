"""FBNet's elastic supernet: one k5_e6 block per layer, every other block nested inside it (BigNAS).

How the nine blocks of a layer map onto one set of weights
(:class:`~nas.supernet.elastic.ElasticMBConv`):

* ``k3``/``k5``: the 3x3 depthwise kernel is the centre of the 5x5 one through
  a learned 9x9 transform (once-for-all);
* ``e1``/``e3``/``e6``: the hidden width ``c_in * e`` is the first channels of
  the ``c_in * 6`` of the largest block;
* ``_g2``: the two-group 1x1 convs are the block-diagonal halves of the dense
  1x1 weights, with the stand-alone block's channel shuffle. We nest them
  rather than give them their own weights because a grouped conv *is* a dense
  conv restricted to its diagonal blocks, so sharing costs no capacity and
  keeps "every sub-network is a slice" true for all eight MBConv blocks;
* ``skip`` is **depth**. On a layer that keeps its shape it is the identity,
  and the space's canonical form moves such skips to the end of their run of
  shape-keeping layers (the layers of a stage after its first) without
  changing the network. The supernet runs the canonical form, so a stage of
  depth ``d`` uses its first ``d`` blocks' weights and skips the trailing ones:
  once-for-all's and BigNAS' elastic depth. On a stage's first layer (stride
  or channel change) ``skip`` is FBNet's 1x1 projection, which nests in no
  MBConv block; those six layers keep it as a second candidate with its own
  weights (a single-path choice between it and the elastic block).

:meth:`FbnetElasticSupernet.extract` returns the stand-alone network of the
space (``space.network``, an ordinary ``nn.Module``) with copies of the
slices the supernet runs, so it computes what ``forward_arch`` computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.supernet.elastic import ElasticMBConv, ElasticSupernet, load_conv_bn
from search_spaces.fbnet.model import FBNetNetwork, block_module
from search_spaces.fbnet.plan import BLOCKS, LAYER_NAMES, MBCONV, SKIP, LayerPlan

if TYPE_CHECKING:
    from search_spaces.fbnet.space import FBNetSpace

#: The largest block, whose weights every other MBConv block slices.
LARGEST = "k5_e6"
KERNELS = sorted({k for k, _, _ in MBCONV.values()})
MAX_EXPANSION = max(e for _, e, _ in MBCONV.values())


def block_params(block: str, plan: LayerPlan) -> int:
    """Weights of ``block`` at a layer of shape ``plan`` (convs only): what "smallest" minimises."""
    if block == SKIP:
        return 0 if plan.keeps_shape else plan.c_in * plan.c_out
    kernel, expansion, groups = MBCONV[block]
    hidden = plan.c_in * expansion
    return (plan.c_in * hidden + hidden * plan.c_out) // groups + hidden * kernel * kernel


class FbnetElasticSupernet(ElasticSupernet):
    """FBNet's stem and head around 22 elastic layers (see the module docstring)."""

    def __init__(self, space: FBNetSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        self.plans = space.plans
        self.num_classes, self.input_shape = num_classes, input_shape

        def make_layer(plan: LayerPlan) -> nn.Module:
            layer = nn.ModuleDict(
                {"mbconv": ElasticMBConv(plan.c_in, plan.c_out, plan.stride, KERNELS, MAX_EXPANSION)}
            )
            if not plan.keeps_shape:
                layer[SKIP] = block_module(SKIP, plan)
            return layer

        self.network = FBNetNetwork(make_layer, self.plans, space.head_channels, num_classes, input_shape[0])
        #: ``size``'s per-layer table and fixed part, built on first use.
        self._sizes: tuple[dict[str, dict[str, int]], int] | None = None

    # -- the sub-networks ----------------------------------------------------------------------------
    def largest(self) -> Architecture:
        """Every layer the k5_e6 block: the network every other one is a slice of."""
        return self.space.make(dict.fromkeys(LAYER_NAMES, LARGEST))

    def smallest(self) -> Architecture:
        """Per layer the block with the fewest weights (depth-skipping where the layer keeps shape)."""
        choice = {p.name: min(BLOCKS, key=lambda b, p=p: block_params(b, p)) for p in self.plans}
        return self.space.canonical(self.space.make(choice))

    def size(self, arch: Architecture) -> int:
        """Parameters of ``arch``'s stand-alone network, as a sum of per-layer block sizes (no extraction).

        A layer's blocks do not change its input or output shape, so the count
        is the network's fixed part plus one table entry per layer.
        """
        table, constant = self._size_table()
        arch = self.space.canonical(arch)
        return constant + sum(table[plan.name][str(arch[plan.name])] for plan in self.plans)

    def _size_table(self) -> tuple[dict[str, dict[str, int]], int]:
        if self._sizes is None:
            with torch.device("meta"):  # shapes only: no memory, no draw from the global generator
                table = {
                    p.name: {b: sum(t.numel() for t in block_module(b, p).parameters()) for b in BLOCKS}
                    for p in self.plans
                }
            fixed = sum(
                t.numel()
                for part in ("stem", "head", "classifier")
                for t in getattr(self.network, part).parameters()
            )
            self._sizes = (table, fixed)
        return self._sizes

    def residual_norms(self) -> list[nn.BatchNorm2d]:
        """The last BatchNorm of every residual block (BigNAS zero-initialises its scale)."""
        return [layer["mbconv"].project_bn for layer in self.network.layers if layer["mbconv"].residual]

    # -- running one ---------------------------------------------------------------------------------
    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        arch = self.space.canonical(arch)  # validates; trailing skips = elastic depth
        x = self.network.stem(x)
        for plan, layer in zip(self.plans, self.network.layers, strict=True):
            block = str(arch[plan.name])
            if block == SKIP:
                x = x if plan.keeps_shape else layer[SKIP](x)
            else:
                x = layer["mbconv"](x, *MBCONV[block])
        return self.network.classify(x)

    def extract(self, arch: Architecture) -> nn.Module:
        """``arch``'s stand-alone network (of its canonical form) holding copies of the supernet's slices."""
        arch = self.space.canonical(arch)
        device = self.network.classifier.weight.device
        with torch.random.fork_rng(devices=[]):  # building the network must not move the global generator
            net = self.space.network(arch, self.num_classes, self.input_shape).to(device)
        for part in ("stem", "head", "classifier"):
            getattr(net, part).load_state_dict(getattr(self.network, part).state_dict())
        for plan, layer, target in zip(self.plans, self.network.layers, net.layers, strict=True):
            block = str(arch[plan.name])
            if block == SKIP:
                if not plan.keeps_shape:
                    target.load_state_dict(layer[SKIP].state_dict())
                continue
            load_conv_bn(target, layer["mbconv"].tensors(*MBCONV[block]))
        net.train(self.training)
        return net


__all__ = ["LARGEST", "FbnetElasticSupernet", "block_params"]
