"""beta-DARTS (Ye et al. 2022): DARTS with the beta-decay regularisation of alpha.

The one hook is ``regularization``: the architecture loss gains
``lambda(t) * mean_edges log sum_o exp(alpha_o)`` (:func:`~nas.oneshot.regularizers.beta_decay`),
whose gradient ``softmax(alpha)`` decays the leading ops most, so no op's
alpha runs away (the skip-connection collapse) and alpha's spread stays small
enough for the supernet's later epochs to still change the ranking. The weight
``lambda`` grows linearly from 0 in the first epoch to ``beta_decay`` in the
last (:func:`~nas.oneshot.regularizers.linear_ramp`).

``darts``, ``pc_darts`` and ``gdas`` accept the same term as their
``beta_regularization`` option; this method makes it the default.
"""

from __future__ import annotations

import torch

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.regularizers import beta_decay, linear_ramp


@ONESHOT.register("beta_darts")
class BetaDartsMethod(DifferentiableMethod):
    """First-order DARTS plus beta-decay on alpha, weight ramped to ``beta_decay``."""

    name = "beta_darts"

    def regularization(self) -> torch.Tensor | float:
        weight = linear_ramp(float(self.settings.option("beta_decay")), self.epoch, self.epochs)
        return weight * beta_decay(self.alpha.values()) if weight else 0.0


__all__ = ["BetaDartsMethod"]
