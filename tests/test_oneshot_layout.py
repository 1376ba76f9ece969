"""The ``channels_last`` option: the supernet and its batches in NHWC, the same training as NCHW.

The layout changes only the strides, so three DARTS steps leave alpha,
weights and BatchNorm statistics equal to the NCHW run's up to rounding (the
kernels differ); compared in float64 (``supernet_steps.in_float64`` says
why float32 can cross a ReLU kink) within 1e-5. The test also checks that the
layout is really in use (weights and the cells' activations are NHWC), or it
could pass with the option doing nothing. Speed is in
``benchmarks/oneshot_memory.py``.
"""

from __future__ import annotations

import pytest
import torch
from supernet_steps import assert_same_state, in_float64, probe_images, search_state, three_steps
from torch import nn

from nas.core import ConfigError
from nas.data import Dataset
from nas.oneshot import create_method
from nas.supernet import MixedCell
from search_spaces import get_space

SMALL = {"darts": {"channels": 4, "cells": 3}, "nb201": {"channels": 4, "cells": 1}}


@pytest.fixture(scope="module")
def images() -> Dataset:
    return probe_images(96, 16)


def searcher(images: Dataset, space: str, method: str = "darts", **options: object):
    settings = {"batch_size": 8, "check_memory": False, **options}
    return create_method(method, get_space(space, **SMALL[space]), images, settings, seed=0)


def nhwc(tensor: torch.Tensor) -> bool:
    """Channels innermost, for a tensor with several channels and pixels (else the layouts coincide)."""
    return tensor.stride(1) == 1 < min(tensor.shape[1], tensor.shape[2] * tensor.shape[3])


def conv_weights(supernet: nn.Module) -> list[torch.Tensor]:
    """Weights of the convolutions whose two layouts differ (several input channels per group, kernel > 1x1)."""
    return [
        m.weight
        for m in supernet.modules()
        if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1 and m.kernel_size != (1, 1)
    ]


@pytest.mark.parametrize(
    ("space", "method"), [("darts", "darts"), ("nb201", "darts"), ("darts", "pc_darts")], ids=str
)
def test_three_channels_last_steps_equal_the_nchw_ones(space: str, method: str, images: Dataset) -> None:
    extra = {"partial_channels": 2} if method == "pc_darts" else {}
    nchw = searcher(images, space, method, channels_last=False, **extra)
    fast = searcher(images, space, method, channels_last=True, **extra)
    assert conv_weights(fast.supernet) and all(nhwc(w) for w in conv_weights(fast.supernet))
    assert not any(nhwc(w) for w in conv_weights(nchw.supernet))
    outputs: list[torch.Tensor] = []
    for cell in fast.supernet.modules():
        if isinstance(cell, MixedCell):
            cell.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    assert_same_state(three_steps(in_float64(nchw)), three_steps(in_float64(fast)))
    assert outputs and all(nhwc(out) for out in outputs)  # the cells computed in NHWC


def test_checkpointed_channels_last_steps_equal_the_plain_ones(images: Dataset) -> None:
    plain = searcher(images, "darts", channels_last=False, checkpoint=False)
    fast = searcher(images, "darts", channels_last=True, checkpoint=True)
    assert_same_state(three_steps(in_float64(plain)), three_steps(in_float64(fast)))


def test_a_channels_last_run_resumes_an_nchw_checkpoint(images: Dataset) -> None:
    """The layout is not part of the training trajectory: a checkpoint loads across it, values exact."""
    nchw = searcher(images, "nb201", channels_last=False)
    three_steps(nchw)
    fast = searcher(images, "nb201", channels_last=True)
    fast.load_state_dict(nchw.state_dict())
    assert_same_state(search_state(nchw), search_state(fast), atol=0)
    assert all(nhwc(w) for w in conv_weights(fast.supernet))  # loading kept the layout
    three_steps(fast)  # and it trains on


def test_a_bad_channels_last_value_is_refused(images: Dataset) -> None:
    with pytest.raises(ConfigError, match="channels_last"):
        searcher(images, "nb201", channels_last="sometimes")
