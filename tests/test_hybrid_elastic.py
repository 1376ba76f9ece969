"""The hybrid space's elastic supernet: widths by channel slicing, a conv and an attention body per block.

The contract every elastic supernet keeps (extraction, every decision value,
bounds, recalibration) is tested in tests/test_elastic_contract.py; here what
is particular to hybrid, on 3 blocks with 2 down-samplings from 8 channels
(8 to 64 channels, 1 or 2 attention heads) and 3x8x8 inputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from elastic_supernets import CLASSES, SHAPE, trained

from nas.core import ArchitectureError
from nas.data import load_dataset
from nas.oneshot import create_method, run_oneshot
from nas.oneshot.bignas import BignasMethod
from nas.supernet.elastic import ElasticConvBn, ElasticLinear
from search_spaces import get_space
from search_spaces.hybrid.elastic import HybridElasticSupernet, reachable
from search_spaces.hybrid.model import block_module
from search_spaces.hybrid.plan import DOWNS, TYPES, WIDTHS


@pytest.fixture(scope="module")
def space():
    return get_space("hybrid", blocks=3, downsamples=2, base_width=8)


def storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def test_every_reachable_block_shape_is_its_stand_alone_block(space) -> None:
    supernet = trained(space).eval()
    plans = reachable(space)
    for name, block_plans in zip(space.block_names, plans, strict=True):
        # every value of the block's decisions, and every input width the earlier blocks give it
        assert {p.op for p in block_plans} == set(TYPES)
        assert {p.stride == 2 for p in block_plans} == set(DOWNS)
        assert {p.width for p in block_plans} == set(WIDTHS)
        shapes = {
            (p.op, p.c_in, p.c_out, p.stride): p for p in block_plans
        }  # the stage alone changes nothing
        for plan in shapes.values():
            reference = block_module(plan)
            reference.load_state_dict(supernet.blocks[name].state(plan))  # strict: every tensor provided
            x = torch.randn(2, plan.c_in, 8, 8)
            expected = supernet.blocks[name](x, plan)
            assert expected.shape[1] == plan.c_out
            assert torch.allclose(reference.eval()(x), expected, atol=1e-5), plan
    # the sampled architectures' blocks are among the reachable plans
    rng = np.random.default_rng(0)
    for arch in (space.sample(rng) for _ in range(20)):
        assert all(p in ps for p, ps in zip(space.plan(arch), plans, strict=True))


def test_sub_network_weights_are_slices_of_the_shared_tensors(space) -> None:
    supernet = HybridElasticSupernet(space, CLASSES, SHAPE)
    narrow = space.parse("A1-C1-A1")  # 8 channels everywhere: no transitions
    state = supernet.state(narrow)
    conv = supernet.blocks["b1"].bodies["conv"].body[0]
    attn = supernet.blocks["b0"].bodies["attn"]
    widest = attn.norm1.weight.numel()
    assert state["blocks.b1.body.0.0.weight"].shape == (8, 8, 3, 3)
    assert storage(state["blocks.b1.body.0.0.weight"]) == storage(conv.weight)
    assert storage(state["blocks.b1.body.0.1.running_var"]) == storage(conv.bn.running_var)
    for key, shared in (("attn.proj.weight", attn.attn["proj"].weight), ("mlp.0.weight", attn.mlp[0].weight)):
        assert storage(state[f"blocks.b0.{key}"]) == storage(shared)
    assert state["blocks.b0.mlp.0.weight"].shape == (32, 8)  # the MLP's first 4 * 8 hidden units

    # the narrow path's gradient lands in the shared tensors, on its slice only
    supernet.forward_arch(torch.randn(4, *SHAPE), narrow).sum().backward()
    grad = conv.weight.grad
    assert grad[:8, :8].abs().sum() > 0 and not grad[8:].any() and not grad[:, 8:].any()
    qkv = attn.attn["qkv"].weight.grad
    for part in range(3):  # queries, keys and values: the first 8 rows of each, the first 8 columns
        rows = qkv[part * widest : (part + 1) * widest]
        assert rows[:8, :8].abs().sum() > 0 and not rows[8:].any() and not rows[:, 8:].any()
    assert supernet.blocks["b0"].bodies["conv"].body[0].weight.grad is None  # the other type: untouched
    assert all(p.grad is None for p in supernet.blocks["b1"].transitions.parameters())  # no transition

    # mutation: the supernet's slice is what the path runs; outside it nothing changes; extraction copies
    supernet.eval()
    x = torch.randn(3, *SHAPE)
    before = supernet.forward_arch(x, narrow)
    net = supernet.extract(narrow).eval()
    with torch.no_grad():
        conv.weight[8:].add_(1.0)
        attn.attn["qkv"].weight[:, 8:].add_(1.0)
    assert torch.equal(before, supernet.forward_arch(x, narrow))
    with torch.no_grad():
        conv.weight[:8, :8].add_(0.5)
    assert not torch.allclose(before, supernet.forward_arch(x, narrow))
    assert torch.allclose(net(x), before, atol=1e-6)  # the extracted copy kept the old weights


def test_transitions_follow_the_down_sampling_and_width_decisions(space) -> None:
    supernet = HybridElasticSupernet(space, CLASSES, SHAPE)
    block = supernet.blocks["b1"]
    plans = {
        space.format(a): space.plan(a)[1] for a in map(space.parse, ("C1-vC2-C1", "C1-C2-C1", "C1-C1-C1"))
    }
    assert block.transition(plans["C1-vC2-C1"]) is block.transitions["down"]
    assert block.transition(plans["C1-C2-C1"]) is block.transitions["proj"]
    assert block.transition(plans["C1-C1-C1"]) is None
    # each transition is as wide as its widest use: b2 strides only after at most one down-sampling,
    # from at most 32 channels (stage 1, width 2), to 64; its body is 64 wide (2 down-samplings, width 2)
    last = supernet.blocks["b2"]
    assert last.transitions["down"].weight.shape == (64, 32, 3, 3)
    assert last.transitions["proj"].weight.shape == (64, 64, 1, 1)
    assert last.bodies["conv"].body[0].weight.shape == (64, 64, 3, 3)


def test_largest_and_smallest_are_exact(space) -> None:
    small = get_space("hybrid", blocks=2, downsamples=1, base_width=8)
    supernet = HybridElasticSupernet(small, CLASSES, SHAPE)
    weights = {}
    for values in itertools.product(*small.choices().values()):
        decisions = dict(zip(small.choices(), values, strict=True))
        try:
            arch = small.make(decisions)
        except ArchitectureError:
            continue
        weights[arch] = sum(p.numel() for p in small.network(arch, CLASSES, SHAPE).parameters())
    assert len(weights) == small.size()
    assert weights[supernet.largest()] == max(weights.values())
    assert weights[supernet.smallest()] == min(weights.values())
    assert small.format(supernet.largest()) == "vC2-C2"  # conv, widest, down-sampling first
    assert small.format(supernet.smallest()) == "A1-A1"


def test_elastic_layers_refuse_a_slice_wider_than_themselves() -> None:
    conv, linear = ElasticConvBn(8, 16, 3), ElasticLinear(8, 16, parts=3)
    with pytest.raises(ArchitectureError, match="12->32 channel conv does not fit in this layer's 8->16"):
        conv.state(12, 32)
    with pytest.raises(ArchitectureError, match="32 output features do not fit in this layer's 16"):
        linear(torch.randn(2, 8), 32)
    with pytest.raises(ArchitectureError, match="9 input features"):
        linear.state(9, 4)


def test_bignas_trains_the_hybrid_supernet_and_derives(tmp_path) -> None:
    data = load_dataset(
        {"name": "synthetic", "num_samples": 64, "num_test": 16, "num_classes": CLASSES, "shape": SHAPE},
        seed=0,
    )
    settings = {"epochs": 1, "batch_size": 16, "check_memory": False, "num_random": 1, "score_images": 16}
    method = create_method(
        "bignas", get_space("hybrid", blocks=3, downsamples=2, base_width=8), data, settings
    )
    assert isinstance(method, BignasMethod) and isinstance(method.supernet, HybridElasticSupernet)
    # BigNAS zero-initialises the last BatchNorm of every conv body (each starts as the identity)
    assert all(not norm.weight.any() for norm in method.supernet.residual_norms())
    before = {k: v.clone() for k, v in method.supernet.state_dict().items()}
    result = run_oneshot(method)
    assert result.arch == method.supernet.largest() and result.method == "bignas"
    assert "supernet/train_loss" in result.curves()
    changed = [k for k, v in method.supernet.state_dict().items() if not torch.equal(v, before[k])]
    assert any(".attn." in k for k in changed) and any(".conv." in k for k in changed)  # both bodies trained
    score = method.score(method.space.sample(np.random.default_rng(0)))
    assert 0.0 <= score <= 100.0
