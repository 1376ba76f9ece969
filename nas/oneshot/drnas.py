"""DrNAS (Chen et al. 2021): alpha as the concentration of a Dirichlet distribution over each edge's ops.

Hooks on the alpha loop:

* ``op_weights`` -- every step's op weights are a *sample* from
  ``Dirichlet(elu(alpha) + 1)`` per edge, drawn with the reparameterised
  (implicit) gradient of :meth:`torch.distributions.Dirichlet.rsample`, so
  the validation loss trains the concentration itself, not a point estimate;
  the noise of the samples is what keeps DrNAS away from sharp minima (and
  from skip-connection collapse);
* ``expected_weights`` -- the Dirichlet mean ``beta / sum(beta)``: what is
  read off, validated and shown as the alpha curves;
* ``regularization`` -- ``prior_weight`` times the KL divergence of each
  edge's Dirichlet to the uniform ``Dirichlet(1)`` anchor (DrNAS' anchor
  regulariser), which stops the concentration from growing without bound.

Samples come from the method's own generator (:func:`private_rng`), so a
resumed run draws exactly the samples of the uninterrupted one. DrNAS'
progressive learning (growing the partial-channel fraction while pruning
ops between stages) is not implemented here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod


@contextlib.contextmanager
def private_rng(generator: torch.Generator) -> Iterator[None]:
    """Run torch's global-RNG samplers (Dirichlet has no ``generator`` argument) on ``generator``'s stream.

    The global state is saved and restored around the block; ``generator``
    advances by exactly what the block drew.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.set_rng_state(generator.get_state())
        yield
        generator.set_state(torch.random.get_rng_state())


@ONESHOT.register("drnas")
class DrnasMethod(DifferentiableMethod):
    """DrNAS: Dirichlet-distributed op weights, their concentration learned by reparameterised sampling."""

    name = "drnas"

    def concentration(self) -> dict[str, torch.Tensor]:
        """Per group, the ``(edges, ops)`` Dirichlet concentration ``elu(alpha) + 1`` (positive)."""
        return {name: nn.functional.elu(alpha) + 1.0 for name, alpha in self.alpha.items()}

    def op_weights(self) -> dict[str, torch.Tensor]:
        concentration = self.concentration()
        with private_rng(self.sample_generator):
            return {name: Dirichlet(c).rsample() for name, c in concentration.items()}

    def expected_weights(self) -> dict[str, torch.Tensor]:
        return {name: c / c.sum(dim=-1, keepdim=True) for name, c in self.concentration().items()}

    def regularization(self) -> torch.Tensor | float:
        weight = float(self.settings.option("prior_weight"))
        if not weight:
            return 0.0
        total = sum(
            kl_divergence(Dirichlet(c), Dirichlet(torch.ones_like(c))).sum()
            for c in self.concentration().values()
        )
        return weight * total


__all__ = ["DrnasMethod", "private_rng"]
