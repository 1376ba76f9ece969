"""The elastic fbnet supernet: nested weights, extraction of stand-alone networks, BN recalibration.

What every elastic supernet promises (extraction computes the path, every
decision value reachable, bounds, recalibration) is in tests/test_elastic_contract.py.

A 0.25-width supernet on 3x8x8 inputs: every test runs in about a second.
"""

from __future__ import annotations

import pytest
import torch
from elastic_supernets import SHAPE, trained
from torch import nn

from nas.core import ConfigError
from nas.core.oneshot import ELASTIC, OneShotView
from nas.oneshot.build import build_elastic
from nas.supernet.recalibrate import recalibrate_bn
from search_spaces import get_space
from search_spaces.fbnet.elastic import FbnetElasticSupernet
from search_spaces.fbnet.plan import LAYER_NAMES


@pytest.fixture(scope="module")
def space():
    return get_space("fbnet", width_mult=0.25)


def with_block(space, block: str, layer: str = "layer06", rest: str = "k5_e6"):
    """``rest`` everywhere except ``block`` at ``layer``."""
    return space.make({name: block if name == layer else rest for name in LAYER_NAMES})


def test_extraction_copies_the_grouped_and_the_transformed_kernel(space) -> None:
    supernet = trained(space)
    net = supernet.extract(with_block(space, "k3_e1_g2"))
    block = supernet.network.layers.layer06["mbconv"]
    expand, _, depthwise, _, project, _ = [
        m for m in net.layers.layer06.modules() if type(m) in (nn.Conv2d, nn.BatchNorm2d)
    ]
    assert expand.groups == 2 and project.groups == 2 and depthwise.kernel_size == (3, 3)
    c = block.c_in
    # group 1 of the expand conv is the lower-right diagonal block of the dense weight
    assert torch.equal(expand.weight[c // 2 :], block.expand[c // 2 : c, c // 2 : c])
    centre = block.depthwise.weight[:c, :, 1:4, 1:4].reshape(c, 9)
    transform = block.depthwise.transforms["5to3"]
    assert not torch.equal(transform, torch.eye(9))  # the transform was trained
    assert torch.allclose(depthwise.weight.reshape(c, 9), centre @ transform.T)
    expand.weight.data.add_(1.0)  # a copy: changing it leaves the supernet alone
    assert not torch.equal(expand.weight[c // 2 :], block.expand[c // 2 : c, c // 2 : c])


def test_sub_network_weights_are_slices_of_the_shared_tensors(space) -> None:
    supernet = FbnetElasticSupernet(space, 4, SHAPE)
    block = supernet.network.layers.layer06["mbconv"]
    (expand, *_), (kernel, *_), (project, *_) = block.tensors(3, 3, 1)
    hidden = block.c_in * 3
    storage = block.expand.untyped_storage().data_ptr()
    assert expand.untyped_storage().data_ptr() == storage and expand.shape[0] == hidden
    assert project.untyped_storage().data_ptr() == block.project.untyped_storage().data_ptr()
    assert block.expand_bn.running_mean[:hidden].data_ptr() == block.expand_bn.running_mean.data_ptr()

    # a k3_e3 path's gradient lands in the shared tensors, on its slice only
    supernet.forward_arch(torch.randn(4, *SHAPE), with_block(space, "k3_e3")).sum().backward()
    assert block.expand.grad[:hidden].abs().sum() > 0 and not block.expand.grad[hidden:].any()
    assert not block.project.grad[:, hidden:].any()
    dw = block.depthwise.weight.grad
    assert dw[:hidden, :, 1:4, 1:4].abs().sum() > 0
    border = dw[:hidden].clone()
    border[:, :, 1:4, 1:4] = 0
    assert not border.any() and not dw[hidden:].any()
    assert block.depthwise.transforms["5to3"].grad.abs().sum() > 0


def test_depth_skips_the_trailing_blocks_of_a_stage(space) -> None:
    supernet = trained(space).eval()
    # stage 2 is layer05 (strided) + layer06..08: a skip in layer06 runs as depth 3 of the stage
    middle = with_block(space, "skip", "layer06")
    trailing = with_block(space, "skip", "layer08")
    x = torch.randn(3, *SHAPE)
    before = supernet.forward_arch(x, middle)
    assert torch.equal(before, supernet.forward_arch(x, trailing))
    with torch.no_grad():  # the trailing block's weights are not used by either
        supernet.network.layers.layer08["mbconv"].expand.add_(1.0)
    assert torch.equal(before, supernet.forward_arch(x, middle))
    assert not torch.equal(before, supernet.forward_arch(x, supernet.largest()))


def test_largest_is_k5_e6_everywhere(space) -> None:
    supernet = FbnetElasticSupernet(space, 4, SHAPE)
    assert set(supernet.largest().as_dict().values()) == {"k5_e6"}


def test_recalibration_changes_only_batchnorm_statistics(space) -> None:
    supernet = trained(space)
    net = supernet.extract(supernet.smallest()).eval()
    params = {k: v.clone() for k, v in net.named_parameters()}
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    batches = [torch.randn(6, *SHAPE) * 2 + 1 for _ in range(3)]
    assert recalibrate_bn(net, batches) == 3
    assert not net.training  # the mode is restored
    assert all(torch.equal(v, params[k]) for k, v in net.named_parameters())
    changed = {k for k, v in net.named_buffers() if not torch.equal(v, buffers[k])}
    assert changed and all(
        k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked") for k in changed
    )
    # the running mean of the stem's BN is the exact average of the three batches' means
    conv = net.stem[0]
    means = torch.stack([conv(b).mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(net.stem[1].running_mean, means, atol=1e-5)
    assert net.stem[1].momentum == 0.1  # momentum restored


def test_only_an_elastic_view_has_an_elastic_builder(space) -> None:
    with pytest.raises(ConfigError, match="elastic"):
        OneShotView(kind=ELASTIC, build=print, shrink_advice="")
    with pytest.raises(ConfigError, match="has no elastic supernet; elastic supernets exist for fbnet"):
        build_elastic(get_space("nb201", channels=4, cells=1), num_classes=4, input_shape=SHAPE)
    with pytest.raises(ConfigError, match="channels, cells and partial_channels apply"):
        build_elastic(space, num_classes=4, input_shape=SHAPE, channels=8)
