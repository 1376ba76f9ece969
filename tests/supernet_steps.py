"""Probe data and step helpers shared by the tests of the supernet step (memory, checkpointing, layout).

The memory, checkpointing and layout tests all train a few real supernet
steps on random images and compare what they leave (alpha, weights,
BatchNorm statistics) or what autograd keeps; the data and the comparison
live here once.
"""

from __future__ import annotations

import numpy as np
import torch

from nas.data import Dataset
from nas.oneshot.method import OneShotMethod


def probe_images(count: int, size: int, classes: int = 4) -> Dataset:
    """``count`` random ``3 x size x size`` images in ``classes`` balanced classes, 8 of them as validation."""
    x = np.random.default_rng(0).standard_normal((count, 3, size, size)).astype(np.float32)
    y = (np.arange(count) % classes).astype(np.int64)
    return Dataset("probe", x, y, x[:8].copy(), y[:8].copy(), classes)


def in_float64(searcher: OneShotMethod) -> OneShotMethod:
    """``searcher`` with its supernet and architecture parameters in float64, before its first step.

    Two implementations of the same math (NCHW and NHWC kernels) round
    differently; in float32 that moves a ReLU input lying within ~1e-6 of zero
    to the other side of the kink now and then, which changes that pixel's
    (sub)gradient and, through BatchNorm, the step by ~1e-4. In float64 the
    rounding is ~1e-16, so a 1e-5 difference after three steps is a real one.
    """
    searcher.supernet.double()
    for tensor in [*getattr(searcher, "alpha", {}).values(), *getattr(searcher, "beta", {}).values()]:
        tensor.data = tensor.data.double()
    return searcher


def three_steps(searcher: OneShotMethod) -> dict[str, torch.Tensor]:
    """Three training steps on consecutive batches; alpha, beta and the supernet's state after them."""
    d, b = searcher.data, searcher.settings.batch_size
    dtype = next(searcher.supernet.parameters()).dtype
    for step in range(3):
        part = slice(step * b, (step + 1) * b)
        searcher.train_step(
            searcher.images(d.x_weights[part]).to(dtype),
            d.y_weights[part],
            searcher.images(d.x_arch[part]).to(dtype),
            d.y_arch[part],
        )
    return search_state(searcher)


def search_state(searcher: OneShotMethod) -> dict[str, torch.Tensor]:
    """Copies of alpha, beta and the supernet's state (weights and BatchNorm statistics)."""
    state = {f"alpha.{k}": v.detach().clone() for k, v in getattr(searcher, "alpha", {}).items()}
    state.update({f"beta.{k}": v.detach().clone() for k, v in getattr(searcher, "beta", {}).items()})
    return {**state, **{k: v.detach().clone() for k, v in searcher.supernet.state_dict().items()}}


def assert_same_state(
    expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor], atol: float = 1e-5
) -> None:
    """Every tensor of :func:`three_steps` equal within ``atol`` (whatever the memory layouts)."""
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        assert torch.allclose(value.double(), actual[name].double(), rtol=0, atol=atol), name


def kept_bytes(forward) -> int:  # type: ignore[no-untyped-def]
    """Bytes of the distinct storages autograd keeps for the backward pass of ``forward()`` (parameters too)."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(seen.values())
