"""RC-DARTS (Jin et al. 2019): DARTS with a resource constraint, alpha projected onto the budget.

DARTS' bilevel search, plus a hard constraint on the expected resource
(latency on a device or parameters, :mod:`nas.oneshot.resource`): after
every architecture step alpha is projected onto the feasible set
``{alpha : E_softmax(alpha)[resource] <= target}``. As in the paper the
projection is iterative: each iteration projects alpha onto the constraint
linearised at the current point, ``alpha -= (R(alpha) - target) g / |g|^2``
with ``g`` the gradient of the expected resource ``R`` (the Euclidean
projection onto that half-space), aiming a hair under the target so it ends
inside; a feasible alpha is left alone. alpha also starts feasible (projected
once when created). The paper's multi-level search of the stem and
reduction layers is not implemented.
"""

from __future__ import annotations

import torch

from nas.core.errors import NASError
from nas.core.oneshot import ONESHOT
from nas.oneshot.resource import ResourceConstrainedMethod

#: Most linearised projections per step (each costs one tiny backward over alpha alone).
PROJECTION_STEPS = 1000
#: Each linearised projection aims this share under the target, so the iteration ends inside.
PROJECTION_SLACK = 1e-3


class ProjectionError(NASError, RuntimeError):
    """alpha could not be brought within the budget (a target too close to the smallest achievable)."""


@ONESHOT.register("rc_darts")
class RcDartsMethod(ResourceConstrainedMethod):
    """First-order DARTS whose alpha is projected onto ``expected resource <= target`` after each step."""

    name = "rc_darts"

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        self.project()

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        super().arch_step(x, y, xa, ya)
        self.project()

    def project(self) -> int:
        """Project alpha onto the budget in place; returns the linearised projections it took (0: feasible)."""
        params = list(self.alpha.values())
        goal = self.target * (1.0 - PROJECTION_SLACK)
        for step in range(PROJECTION_STEPS):
            with torch.enable_grad():
                value = self.expected_resource()
                if float(value.detach()) <= self.target:
                    return step
                grads = torch.autograd.grad(value, params)
            norm = sum(float(g.pow(2).sum()) for g in grads)
            if norm == 0.0:
                break
            scale = (float(value.detach()) - goal) / norm
            with torch.no_grad():
                for param, grad in zip(params, grads, strict=True):
                    param.sub_(scale * grad)
        raise ProjectionError(
            f"rc_darts could not project alpha within the budget {self.target:g} ({self.resource.label}) in "
            f"{PROJECTION_STEPS} steps: the expected resource stays at {float(self.expected_resource()):.6g}, "
            f"the smallest achievable is {self.resource.minimum():.6g}; choose a larger target"
        )


__all__ = ["PROJECTION_SLACK", "PROJECTION_STEPS", "ProjectionError", "RcDartsMethod"]
