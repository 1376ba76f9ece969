"""SPOS: single-path one-shot training, then evolution over the trained supernet.

Guo et al. (2020) decouple the two halves of weight sharing. Training samples
one architecture uniformly per step (``space.sample``, so every space's
validity rules hold) and trains only its path. The search afterwards is an
evolutionary algorithm whose fitness is a sub-network's accuracy with the
inherited weights, after recalibrating BatchNorm on a few training batches
(the running statistics of a supernet fit no single path).

The evolution keeps every scored architecture; each generation takes the
``parents`` best, makes ``population`` new candidates by uniform crossover of
two parents (half of them) or per-decision mutation with ``mutation_prob``
(at least one decision changes), skips functional duplicates
(``space.canonical_key``) and scores them. Its randomness comes from a
generator derived from the seed, separate from training's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture, Scalar
from nas.core.oneshot import KINDS, ONESHOT
from nas.oneshot.method import OneShotMethod, generator_state, restore_generator

logger = logging.getLogger(__name__)

#: Tries to make one new valid, unseen candidate before falling back to a random one.
_MAX_TRIES = 50
#: Random architectures whose memory the estimate probes (the heaviest counts).
_PROBES = 8


@dataclass
class EvolutionResult:
    """Every architecture the evolution scored, best first, and the best per generation."""

    scored: list[tuple[Architecture, float]] = field(default_factory=list)
    best_per_generation: list[float] = field(default_factory=list)

    @property
    def best(self) -> tuple[Architecture, float]:
        return self.scored[0]

    def to_dict(self, space: Any, top: int = 10) -> dict[str, Any]:
        return {
            "evaluated": len(self.scored),
            "best_per_generation": self.best_per_generation,
            "top": [{"arch": space.format(a), "supernet_accuracy": s} for a, s in self.scored[:top]],
        }


@ONESHOT.register("spos")
class SposMethod(OneShotMethod):
    """Single-path one-shot training and evolutionary search with inherited weights."""

    name = "spos"
    kinds = KINDS

    def init_arch_parameters(self) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5905]))
        self.evolution: EvolutionResult | None = None

    # -- training ------------------------------------------------------------------------------
    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        arch = self.space.sample(self.rng)
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet.forward_arch(x, arch)
        nn.functional.cross_entropy(logits, y).backward()
        self.clip_and_step()
        return logits

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """A uniformly random path per validation batch (the supernet's average quality)."""
        rng = np.random.default_rng([self.seed, self.epoch, batch])
        return self.supernet.forward_arch(x, self.space.sample(rng))

    # -- search ----------------------------------------------------------------------------------
    def derive(self) -> Architecture:
        """The best architecture of the evolutionary search (run once, then remembered)."""
        if self.evolution is None:
            self.evolution = self.search()
        return self.evolution.best[0]

    def search(self) -> EvolutionResult:
        s = self.settings
        population, generations = int(s.option("population")), int(s.option("generations"))
        parents, mutation = int(s.option("parents")), float(s.option("mutation_prob"))
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xE70]))
        scores: dict[str, tuple[Architecture, float]] = {}

        def add(arch: Architecture) -> None:
            scores[self.space.canonical_key(arch)] = (arch, self.score(arch))

        def ranked() -> list[tuple[Architecture, float]]:
            return sorted(scores.values(), key=lambda item: -item[1])

        for _ in range(population):
            arch = self._unseen(lambda: self.space.sample(rng), scores, rng)
            if arch is not None:
                add(arch)
        result = EvolutionResult(best_per_generation=[ranked()[0][1]])
        for generation in range(generations):
            elite = [a for a, _ in ranked()[:parents]]
            for _ in range(population):
                arch = self._unseen(functools.partial(self._child, elite, mutation, rng), scores, rng)
                if arch is not None:
                    add(arch)
            result.best_per_generation.append(ranked()[0][1])
            logger.info("spos seed %d generation %d: best %.2f%%", self.seed, generation + 1, ranked()[0][1])
        result.scored = ranked()
        return result

    def _child(
        self, elite: list[Architecture], mutation: float, rng: np.random.Generator
    ) -> Architecture | None:
        """Uniform crossover of two elite parents (half the time) or a mutation of one."""
        first = elite[int(rng.integers(len(elite)))]
        if len(elite) > 1 and rng.random() < 0.5:
            second = elite[int(rng.integers(len(elite)))]
            return self._crossover(first, second, rng)
        return self._mutate(first, mutation, rng)

    def _unseen(
        self, make: Callable[[], Architecture | None], seen: Mapping[str, Any], rng: np.random.Generator
    ) -> Architecture | None:
        """A candidate from ``make`` not scored yet (functionally), else a fresh random one, else None."""
        for _ in range(_MAX_TRIES):
            arch = make()
            if arch is not None and self.space.canonical_key(arch) not in seen:
                return arch
        arch = self.space.sample(rng)
        return None if self.space.canonical_key(arch) in seen else arch

    def _crossover(
        self, first: Architecture, second: Architecture, rng: np.random.Generator
    ) -> Architecture | None:
        take = rng.random(len(first)) < 0.5
        decisions = {n: (second[n] if t else first[n]) for n, t in zip(first, take, strict=True)}
        candidate = Architecture(self.space.name, tuple(decisions.items()))
        return candidate if self.space.is_valid(candidate) else None

    def _mutate(
        self, arch: Architecture, probability: float, rng: np.random.Generator
    ) -> Architecture | None:
        choices = self.space.choices()
        decisions: dict[str, Scalar] = {}
        for name, value in arch.decisions:
            allowed = choices[name]
            decisions[name] = (
                allowed[int(rng.integers(len(allowed)))] if rng.random() < probability else value
            )
        candidate = Architecture(self.space.name, tuple(decisions.items()))
        if candidate == arch or not self.space.is_valid(candidate):
            return self.space.mutate(arch, rng)
        return candidate

    # -- memory probe ---------------------------------------------------------------------------------
    def probe_paths(self) -> list[Any]:
        rng = np.random.default_rng(0)
        return [self.space.sample(rng) for _ in range(_PROBES)]

    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return self.supernet.forward_arch(x, path)

    # -- checkpoints -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"rng": generator_state(self.rng)}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        restore_generator(self.rng, state["rng"])


__all__ = ["EvolutionResult", "SposMethod"]
