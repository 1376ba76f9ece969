"""A tiny one-shot method registered only by the tests: one module plus a registration.

``test_random_path`` trains one uniformly sampled path per step (as SPOS
does) and derives the best of a few random architectures scored with the
inherited weights. It searches every space with a one-shot view, so the
parametrised one-shot tests run it on every space (the test space of
:mod:`space_plugin` included) with nothing in ``nas/`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.oneshot import KINDS, ONESHOT
from nas.oneshot.method import OneShotMethod, generator_state, restore_generator

#: Random architectures scored by the derivation.
CANDIDATES = 3


@ONESHOT.register("test_random_path")
class RandomPathMethod(OneShotMethod):
    """Uniform single-path training, then the best of a few random paths (the base class builds the supernet)."""

    name = "test_random_path"
    kinds = KINDS

    def init_arch_parameters(self) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x7E57]))

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet.forward_arch(x, self.space.sample(self.rng))
        nn.functional.cross_entropy(logits, y).backward()
        self.clip_and_step()
        return logits

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return self.supernet.forward_arch(x, self.space.sample(np.random.default_rng([self.seed, batch])))

    def derive(self) -> Architecture:
        rng = np.random.default_rng([self.seed, 0xD0])
        candidates = [self.space.sample(rng) for _ in range(CANDIDATES)]
        return max(candidates, key=self.score)

    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return self.supernet.forward_arch(x, self.space.sample(np.random.default_rng(0)))

    def extra_state(self) -> dict[str, Any]:
        return {"rng": generator_state(self.rng)}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        restore_generator(self.rng, state["rng"])
