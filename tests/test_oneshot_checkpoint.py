"""Activation checkpointing of supernets (the ``checkpoint`` option) and shared parameter-free ops.

Checkpointing must not change training: alpha, weights and BatchNorm
statistics after three DARTS steps equal the un-checkpointed run's. It must
keep less: what autograd holds after a checkpointed forward is counted with
``saved_tensors_hooks`` (the bytes the backward pass would need), and the
memory guard rail's estimate shrinks with it (DARTS cells, hybrid attention
blocks). No wall-clock figures here: step time is in
``benchmarks/oneshot_memory.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from supernet_steps import assert_same_state, kept_bytes, probe_images, three_steps
from torch import nn

from nas.core import ConfigError
from nas.data import Dataset
from nas.oneshot import create_method, estimate_memory
from nas.supernet import mix_node, set_checkpointing
from nas.supernet.recompute import checkpointing, recompute
from search_spaces import get_space
from search_spaces.darts.supernet import EDGES, SearchCell

DARTS = {"channels": 4, "cells": 3}
HYBRID = {"blocks": 3, "downsamples": 1, "base_width": 8}
#: Every block an attention block (with its transition where the width changes).
ALL_ATTENTION = {"b0.type": "attn", "b1.type": "attn", "b2.type": "attn"}


@pytest.fixture(scope="module")
def images() -> Dataset:
    return probe_images(96, 16)


def darts(images: Dataset, method: str = "darts", **options: object):
    settings = {"batch_size": 8, "check_memory": False, **options}
    return create_method(method, get_space("darts", **DARTS), images, settings, seed=0)


@pytest.mark.parametrize("method", ["darts", "pc_darts"])
def test_three_checkpointed_shared_steps_equal_the_plain_ones(method: str, images: Dataset) -> None:
    options = {"partial_channels": 2} if method == "pc_darts" else {}
    plain_run = darts(images, method, checkpoint=False, **options)
    set_checkpointing(plain_run.supernet, False, share_ops=False)  # the old path: every op on every edge
    plain = three_steps(plain_run)
    checkpointed_run = darts(images, method, checkpoint=True, **options)
    assert checkpointing(checkpointed_run.supernet)
    # alpha, weights and BatchNorm statistics (counted once per step)
    assert_same_state(plain, three_steps(checkpointed_run))


def test_checkpointing_keeps_less_for_the_backward_pass(images: Dataset) -> None:
    searcher = darts(images, checkpoint=False)
    x = searcher.data.x_weights[:8]
    plain = kept_bytes(lambda: searcher.supernet(x, searcher.mixed_path()))
    set_checkpointing(searcher.supernet, True)
    checkpointed = kept_bytes(lambda: searcher.supernet(x, searcher.mixed_path()))
    assert checkpointed < 0.5 * plain, (checkpointed, plain)


def test_the_estimate_counts_a_recomputed_region_and_shrinks(images: Dataset) -> None:
    plain = estimate_memory(darts(images, checkpoint=False), 32)
    checkpointed = estimate_memory(darts(images, checkpoint=True), 32)
    assert plain.recompute == 0
    assert 0 < checkpointed.recompute < plain.activations
    assert checkpointed.total < 0.6 * plain.total, (checkpointed.describe(), plain.describe())
    assert checkpointed.at_batch(64) > checkpointed.at_batch(32) > checkpointed.at_batch(16)


def test_auto_starts_off_true_is_on_and_impossible_settings_are_refused(images: Dataset) -> None:
    # auto is switched on by the memory guard only (the hybrid test below shows it happen)
    assert not checkpointing(darts(images).supernet)
    assert not checkpointing(darts(images, "gdas").supernet)
    assert checkpointing(darts(images, checkpoint=True).supernet)
    assert not checkpointing(darts(images, checkpoint=False).supernet)
    fbnet = create_method(
        "spos", get_space("fbnet", width_mult=0.25), images, {"batch_size": 8, "check_memory": False}
    )
    assert not checkpointing(fbnet.supernet)
    with pytest.raises(ConfigError, match="checkpoint=true, but the spos supernet on fbnet"):
        create_method(
            "spos",
            get_space("fbnet", width_mult=0.25),
            images,
            {"batch_size": 8, "check_memory": False, "checkpoint": True},
        )
    with pytest.raises(ConfigError, match="checkpoint"):
        darts(images, checkpoint="sometimes")
    with pytest.raises(ConfigError, match="checkpoint=true, but smash"):
        darts(images, "smash", checkpoint=True)


def test_shared_parameter_free_ops_run_once_per_state_with_the_same_result() -> None:
    torch.manual_seed(0)
    cell = SearchCell(8, 8, 8, reduction=False, reduction_prev=False, partial=1)
    pools = [m for m in cell.modules() if isinstance(m, nn.MaxPool2d)]
    calls = []
    for pool in pools:
        pool.register_forward_hook(lambda *_: calls.append(1))
    states = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)]
    weights = torch.softmax(torch.randn(len(EDGES), 8), dim=-1)
    incoming = {2: [0, 1], 3: [2, 3, 4]}
    sources = [j for _, j in EDGES]

    def node3(shared):
        nodes = list(states)
        nodes.append(mix_node(cell.edges, incoming[2], sources, nodes, weights, None, None, shared))
        return mix_node(cell.edges, incoming[3], sources, nodes, weights, None, None, shared)

    alone = node3(None)
    assert len(calls) == 5  # one max pool per edge
    calls.clear()
    shared = node3({})
    assert len(calls) == 3  # one per state read (0, 1, node 2)
    assert torch.allclose(alone, shared, atol=1e-6)


def test_recomputation_leaves_batchnorm_statistics_as_one_forward_does() -> None:
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    twin = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    twin.load_state_dict(block.state_dict())
    x = torch.randn(4, 3, 8, 8)
    block(x).square().sum().backward()
    recompute(twin, twin, x).square().sum().backward()
    for (name, a), b in zip(block.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(block.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


# -- hybrid: checkpointed attention blocks -----------------------------------------------------------------------


def hybrid(images: Dataset, **options: object):
    settings = {"batch_size": 8, "check_memory": False, **options}
    return create_method("spos", get_space("hybrid", **HYBRID), images, settings, seed=0)


def test_hybrid_attention_blocks_checkpointed_give_the_same_gradients(images: Dataset) -> None:
    searcher = hybrid(images, checkpoint=True)
    supernet = searcher.supernet
    arch = searcher.space.make({**searcher.space.sample(np.random.default_rng(1)).as_dict(), **ALL_ATTENTION})
    x, y = searcher.data.x_weights[:8], searcher.data.y_weights[:8]

    def gradients() -> dict[str, torch.Tensor]:
        supernet.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(supernet.forward_arch(x, arch), y).backward()
        return {k: p.grad.clone() for k, p in supernet.named_parameters() if p.grad is not None}

    state = {k: v.clone() for k, v in supernet.state_dict().items()}
    checkpointed = gradients()
    supernet.load_state_dict(state)
    supernet.checkpoint = False
    plain = gradients()
    assert checkpointed.keys() == plain.keys() and any(".attn." in k for k in plain)
    for name, grad in plain.items():
        assert torch.allclose(grad, checkpointed[name], atol=1e-6), name
    plain_kept = kept_bytes(lambda: supernet.forward_arch(x, arch))
    supernet.checkpoint = True
    assert kept_bytes(lambda: supernet.forward_arch(x, arch)) < 0.5 * plain_kept


def test_hybrid_estimate_shrinks_and_auto_checkpoints_when_it_would_not_fit(images: Dataset) -> None:
    plain_run = hybrid(images)
    assert not checkpointing(plain_run.supernet)  # single path: off unless memory is the limit
    plain = estimate_memory(plain_run, 32)
    checkpointed = estimate_memory(hybrid(images, checkpoint=True), 32)
    assert checkpointed.recompute > 0 and checkpointed.total < plain.total
    limit_mb = (checkpointed.total + plain.total) / 2 / 2**20  # fits only with checkpointing
    tight = {"batch_size": 32, "memory_limit_mb": limit_mb}
    searcher = hybrid(images, **tight, check_memory=True)
    assert checkpointing(searcher.supernet) and searcher.memory_estimate.recompute > 0
    with pytest.raises(ConfigError, match="checkpoint: true"):
        hybrid(images, **tight, check_memory=True, checkpoint=False)
