"""Second-order products of the supernet's loss by central differences on the weights.

The second-order architecture gradients (DARTS' unrolled step, Amended-DARTS)
need products of a Hessian block with a vector ``v`` of weight size:
``d/dw g(w) . v`` for some gradient ``g`` (of the training loss w.r.t. alpha,
or w.r.t. the weights themselves). Double back-propagation would keep the
first gradient's graph (about one more forward's activations); DARTS instead
evaluates ``g`` at ``w + r v`` and ``w - r v`` and takes the central
difference, with ``r = 0.01 / |v|`` (its ``Architect._hessian_vector_product``).
The weights are restored afterwards, so the products leave no trace in the
supernet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

#: DARTS' finite-difference step for the Hessian-vector product, relative to the vector's norm.
FINITE_DIFFERENCE = 0.01

#: ``gradient()`` -> a gradient at the weights as they currently are (re-evaluated after each shift).
Gradient = Callable[[], Sequence[torch.Tensor]]


def or_zeros(found: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``torch.autograd.grad(..., allow_unused=True)``'s result with the unused (None) entries as zeros."""
    return [g if g is not None else torch.zeros_like(t) for g, t in zip(found, like, strict=True)]


def step_radius(vector: Sequence[torch.Tensor]) -> torch.Tensor:
    """DARTS' finite-difference step ``0.01 / |v|`` (``|v|`` over every tensor of ``vector``)."""
    return FINITE_DIFFERENCE / (torch.cat([v.flatten() for v in vector]).norm() + 1e-12)


def gradients_both_sides(
    params: Sequence[torch.Tensor],
    center: Sequence[torch.Tensor],
    vector: Sequence[torch.Tensor],
    radius: torch.Tensor,
    gradient: Gradient,
) -> tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]:
    """``gradient()`` with ``params`` at ``center + radius v`` and at ``center - radius v``; then back at ``center``."""

    def at(sign: float) -> Sequence[torch.Tensor]:
        with torch.no_grad():
            for p, c, v in zip(params, center, vector, strict=True):
                p.copy_(c + sign * radius * v)
        return gradient()

    positive, negative = at(1.0), at(-1.0)
    with torch.no_grad():
        for p, c in zip(params, center, strict=True):
            p.copy_(c)
    return positive, negative


def central_difference(
    params: Sequence[torch.Tensor], vector: Sequence[torch.Tensor], gradient: Gradient
) -> list[torch.Tensor]:
    """``d gradient / d params . vector`` at the current ``params``, by a central difference of step :func:`step_radius`."""
    center = [p.detach().clone() for p in params]
    radius = step_radius(vector)
    positive, negative = gradients_both_sides(params, center, vector, radius, gradient)
    return [(gp - gn) / (2 * radius) for gp, gn in zip(positive, negative, strict=True)]


__all__ = [
    "FINITE_DIFFERENCE",
    "central_difference",
    "gradients_both_sides",
    "or_zeros",
    "step_radius",
]
