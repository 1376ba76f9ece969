"""Elastic supernets moved away from their initialisation, shared by the elastic supernet tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nas.oneshot.build import build_elastic

#: Tiny RGB images: every elastic supernet of the tests runs a path in milliseconds.
SHAPE = (3, 8, 8)
CLASSES = 4


def trained(space: Any, steps: int = 3, seed: int = 0) -> Any:
    """``space``'s elastic supernet after ``steps`` rounds of (largest, smallest, a sample) SGD steps.

    Its weights and BatchNorm statistics have moved away from their initial
    values (zero-mean, unit-variance running statistics would hide a wrong
    slice of them). Cross-entropy to random labels moves the weights but keeps
    outputs bounded (a loss that drives logits to -inf made outputs so large
    that different paths rounded alike).
    """
    torch.manual_seed(seed)
    supernet = build_elastic(space, num_classes=CLASSES, input_shape=SHAPE)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for arch in (supernet.largest(), supernet.smallest(), space.sample(rng)):
            optimizer.zero_grad()
            logits = supernet.forward_arch(torch.randn(8, *SHAPE), arch)
            nn.functional.cross_entropy(logits, torch.randint(0, CLASSES, (8,))).backward()
            optimizer.step()
    return supernet
