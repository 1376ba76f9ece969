"""SMASH (Brock et al. 2018): a hypernetwork generates the weights of any architecture from its encoding.

Weight sharing ranks architectures by weights trained for all of them at once;
SMASH instead learns a *hypernetwork* ``H`` that maps an architecture's
encoding ``c`` to the weights ``W = H(c)`` of that architecture's network.
Training samples a random architecture per batch (``space.sample``, as SPOS
does), generates its weights and back-propagates the batch's loss into the
hypernetwork. After training, candidates are ranked by their validation
accuracy *with generated weights* -- no candidate is trained -- and the best of
``candidates`` random architectures is derived.

Here (:class:`SmashNetwork`):

* the network is the space's cell supernet run on the architecture's one-hot
  path, so a candidate computes with exactly the ops of its stand-alone
  network; every convolution of every candidate op is generated, the rest
  (stem, reductions, BatchNorm, classifier) is learned directly, as in SMASH
  where only part of the main network's weights come from the hypernetwork;
* the encoding is the architecture's one-hot ``(edges, ops)`` matrix per cell
  type, flattened (SMASH encodes its memory-bank reads and writes the same way:
  a fixed-size binary description of the graph);
* ``H`` is a small MLP trunk ``h = MLP(c)`` and, per generated tensor ``t``,
  a low-rank read-out ``W_t = U_t diag(1 + A_t h) V_t`` (rank ``hyper_rank``,
  width ``hyper_hidden``): few parameters (CPU), yet every weight depends on the
  whole architecture, not only on the op it belongs to.

BatchNorm is recalibrated per candidate before it is scored
(:meth:`~nas.oneshot.method.OneShotMethod.score`). Cell spaces only (``nb201``,
``darts``): other spaces are refused before training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.oneshot import CELL, ONESHOT
from nas.oneshot.spos import EvolutionResult, SposMethod
from nas.supernet.base import CellPath, CellSupernet, Supernet
from nas.supernet.mixed import MixedOp


def generated_parameters(supernet: CellSupernet) -> dict[str, nn.Parameter]:
    """The convolution kernels of every candidate op (the tensors the hypernetwork generates), by name."""
    found: dict[str, nn.Parameter] = {}
    for prefix, module in supernet.named_modules():
        if isinstance(module, MixedOp):
            for name, parameter in module.ops.named_parameters():
                if parameter.ndim == 4:
                    found[f"{prefix}.ops.{name}" if prefix else f"ops.{name}"] = parameter
    return found


class SmashNetwork(Supernet):
    """A cell supernet whose candidate-op convolutions are generated from the architecture (see the module)."""

    def __init__(self, base: CellSupernet, hidden: int, rank: int) -> None:
        super().__init__(base.space)
        self.base = base
        targets = generated_parameters(base)
        if not targets:
            raise ConfigError(
                f"space {base.space.name!r} has no convolution in its candidate ops; SMASH has nothing to generate"
            )
        #: ``(name, shape)`` of each generated tensor, in the order of the read-out heads.
        self.targets = [(name, tuple(p.shape)) for name, p in targets.items()]
        for parameter in targets.values():
            parameter.requires_grad_(False)  # replaced by generated tensors in every forward
        self.rank = rank
        size = sum(g.shape[0] * g.shape[1] for g in base.groups)
        self.trunk = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.codes = nn.Linear(hidden, rank * len(targets))
        nn.init.normal_(self.codes.weight, std=1.0 / math.sqrt(hidden))
        nn.init.zeros_(self.codes.bias)
        # W = U diag(code) V with code ~ 1: U ~ N(0, 1/rank) and V at the kernel's initial scale keep the
        # generated kernels at the scale of the supernet's own initialisation.
        self.left = nn.ParameterList(
            nn.Parameter(torch.randn(shape[0], rank) / math.sqrt(rank)) for _, shape in self.targets
        )
        self.right = nn.ParameterList(
            nn.Parameter(torch.randn(rank, int(np.prod(shape[1:]))) * float(p.detach().pow(2).mean().sqrt()))
            for (_, shape), p in zip(self.targets, targets.values(), strict=True)
        )

    def encode(self, path: CellPath) -> torch.Tensor:
        """An architecture's one-hot ``(edges, ops)`` matrices (its one-hot path), flattened in group order."""
        return torch.cat([path.weights[g.name].flatten() for g in self.base.groups])

    def generate(self, encoding: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generated kernels for ``encoding``, by the supernet's parameter names."""
        hidden = self.trunk(encoding)
        codes = 1.0 + self.codes(hidden).view(len(self.targets), self.rank)
        return {
            name: ((left * code) @ right).view(shape)
            for (name, shape), left, right, code in zip(
                self.targets, self.left, self.right, codes, strict=True
            )
        }

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        path = self.base.path(arch, device=x.device)
        return functional_call(self.base, self.generate(self.encode(path)), (x, path))


@ONESHOT.register("smash")
class SmashMethod(SposMethod):
    """SMASH: a hypernetwork trained on random architectures; the best of ``candidates`` by generated weights.

    Training, validation, the memory probe and the checkpointed generator are
    SPOS' (one random architecture per batch); the supernet and the search differ.
    """

    name = "smash"
    kinds = (CELL,)
    supernet: SmashNetwork

    def checkpoint_refusal(self) -> str | None:
        """The generated kernels exist only inside ``functional_call``: a recomputation would use others."""
        return "smash's cells run with generated kernels, which a recomputation in backward would not see"

    def build_supernet(self) -> SmashNetwork:
        base = super().build_supernet()
        if not isinstance(base, CellSupernet):  # the view's kind said cell; a plugin space may disagree
            raise ConfigError(
                f"smash needs a cell supernet; space {self.space.name!r} built {type(base).__name__}"
            )
        s = self.settings
        return SmashNetwork(base, int(s.option("hyper_hidden")), int(s.option("hyper_rank")))

    def search(self) -> EvolutionResult:
        """Score ``candidates`` random architectures (functional duplicates once) with generated weights."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5A54]))
        scored: dict[str, tuple[Architecture, float]] = {}
        for _ in range(int(self.settings.option("candidates"))):
            arch = self.space.sample(rng)
            key = self.space.canonical_key(arch)
            if key not in scored:
                scored[key] = (arch, self.score(arch))
        ranked = sorted(scored.values(), key=lambda item: -item[1])
        return EvolutionResult(scored=ranked, best_per_generation=[ranked[0][1]])


__all__ = ["SmashMethod", "SmashNetwork", "generated_parameters"]
