"""RobustDARTS (Zela et al. 2020): stop DARTS when the validation loss turns sharp in alpha.

DARTS' failures (skip-connection cells, poor test accuracy) go together with
a large dominant eigenvalue of the Hessian of the validation loss with
respect to alpha: the supernet sits in a sharp minimum whose discretisation
hurts. DARTS-ES, the paper's early-stopping variant, tracks that eigenvalue
every epoch and stops when its mean over the last ``k = hessian_window``
epochs has grown past ``1 / hessian_ratio`` times its mean over the ``k``
epochs before (``mean(i - k) / mean(i) < hessian_ratio``, 0.75 in the
paper); the architecture is then read off alpha as it was ``k`` epochs
before the stop.

Hooks on the alpha loop: ``after_epoch`` measures the eigenvalue
(:func:`dominant_eigenvalue`: power iteration with Hessian-vector products by
double back-propagation on a fixed held-out batch, BatchNorm on batch
statistics so nothing of the training state changes) and keeps alpha's
snapshots; ``should_stop`` applies the rule and restores alpha. The
eigenvalue is stored per epoch as the ``supernet/hessian_eigenvalue`` curve.
The paper's other remedies are options every method has: more L2 on the
weights (``weight_decay``); ScheduledDropPath is not implemented.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from nas.core.oneshot import ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.method import batch_statistics

logger = logging.getLogger(__name__)


def dominant_eigenvalue(
    loss: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    iterations: int,
    generator: torch.Generator,
) -> float:
    """The Hessian's eigenvalue of largest magnitude (its Rayleigh quotient after power iteration)."""
    grads = torch.autograd.grad(loss(), params, create_graph=True)
    vector = [torch.randn(p.shape, generator=generator).to(p.device) for p in params]
    value = 0.0
    for _ in range(iterations):
        norm = math.sqrt(sum(float(v.pow(2).sum()) for v in vector))
        vector = [v / norm for v in vector]
        product = torch.autograd.grad(grads, params, grad_outputs=vector, retain_graph=True)
        value = sum(float((v * h).sum()) for v, h in zip(vector, product, strict=True))
        vector = [h.detach() for h in product]
    return value


def early_stop_epoch(values: Sequence[float], window: int, ratio: float) -> int | None:
    """DARTS-ES on eigenvalues of epochs 1..n: the epoch to fall back to (``n - window``) if it fires, else None."""
    if len(values) < 2 * window:
        return None
    recent = sum(values[-window:]) / window
    earlier = sum(values[-2 * window : -window]) / window
    return len(values) - window if recent > 0 and earlier / recent < ratio else None


@ONESHOT.register("robust_darts")
class RobustDartsMethod(DifferentiableMethod):
    """First-order DARTS with DARTS-ES: early stop on the growth of the Hessian's dominant eigenvalue."""

    name = "robust_darts"

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        self.eigenvalues: list[float] = []
        #: Alpha (and beta) after each of the last ``window + 1`` epochs, by epoch: the fall-back.
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self._warn_if_the_stop_cannot_fire()

    def _warn_if_the_stop_cannot_fire(self) -> None:
        """Say so when ``epochs`` ends before the stop's first chance (epoch ``2 * hessian_window``).

        A warning, not an error: the run is then plain DARTS with the
        eigenvalue measured, which still trains; without it the method would
        silently never stop.
        """
        window = int(self.settings.option("hessian_window"))
        earliest = 2 * window
        if self.settings.epochs < earliest:
            logger.warning(
                "robust_darts: epochs=%d ends before epoch %d, the earliest its eigenvalue stop can fire at "
                "(2 x hessian_window=%d): it trains as plain DARTS and never stops early",
                self.settings.epochs,
                earliest,
                window,
            )

    def extra_activation_copies(self) -> int:
        """The eigenvalue's double backward keeps the first gradient's graph: about one forward more.

        An assumption that errs on the safe side (the graph of the gradient
        holds about what the forward saved), not a measured figure.
        """
        return 1

    def hessian_eigenvalue(self) -> float:
        """The validation loss's dominant Hessian eigenvalue w.r.t. alpha on the first held-out batch."""
        s, data = self.settings, self.data
        x = self.images(data.x_arch[: s.batch_size])
        y = data.y_arch[: s.batch_size].to(self.device)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        with batch_statistics(self.supernet):
            return dominant_eigenvalue(
                lambda: self.arch_loss(x, y, self.mixed_path()),
                self.arch_parameters(),
                int(s.option("hessian_iterations")),
                generator,
            )

    def after_epoch(self, metrics: Mapping[str, float]) -> None:
        super().after_epoch(metrics)
        value = self.hessian_eigenvalue()
        self.eigenvalues.append(value)
        self.history[-1]["hessian_eigenvalue"] = value
        window = int(self.settings.option("hessian_window"))
        self.snapshots[self.epoch] = {k: v.detach().clone() for k, v in self._arch_tensors().items()}
        self.snapshots = {e: a for e, a in self.snapshots.items() if e >= self.epoch - window}

    def should_stop(self, metrics: Mapping[str, float]) -> str | None:
        s = self.settings
        back = early_stop_epoch(
            self.eigenvalues, int(s.option("hessian_window")), float(s.option("hessian_ratio"))
        )
        if back is None or back not in self.snapshots:
            return None
        with torch.no_grad():
            for name, tensor in self._arch_tensors().items():
                tensor.copy_(self.snapshots[back][name])
        return (
            f"early stop on the Hessian's dominant eigenvalue at epoch {self.epoch} "
            f"({self.eigenvalues[-1]:.4g}, up from {self.eigenvalues[back - 1]:.4g}); "
            f"architecture derived from epoch {back}"
        )

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "eigenvalues": list(self.eigenvalues), "snapshots": self.snapshots}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        super().load_extra_state(state)
        self.eigenvalues = [float(v) for v in state["eigenvalues"]]
        self.snapshots = {int(e): dict(a) for e, a in state["snapshots"].items()}


__all__ = ["RobustDartsMethod", "dominant_eigenvalue", "early_stop_epoch"]
