"""The one search loop of the alpha-based (differentiable) methods, and its hooks.

Every differentiable method keeps an alpha matrix per cell type (edges x
ops) and alternates an architecture step on a batch of the architecture
split with a weight step on a batch of the weight split. A method is this
loop plus a few overridden *hooks* (``docs/oneshot.md`` has an example):

* ``alpha_shapes`` / ``init_arch_parameters`` -- how alpha is parameterised
  (a matrix per cell type; D-DARTS: one per cell; PC-DARTS adds a weight per
  edge; RARTS a second copy of the weights);
* ``op_weights`` -- the op weights a step trains with: softmax(alpha)
  (DrNAS: a Dirichlet sample; sharpDARTS: max-weight; DropNAS: softmax over
  the kept ops);
* ``expected_weights`` -- the deterministic weights that are read off,
  validated and stored as the alpha curves (``curve_weights``: normalised
  for the curves where they do not sum to one, GOLD-NAS);
* ``mixed_path`` / ``arch_path`` / ``train_path`` / ``eval_path`` -- the
  supernet path of the architecture step, the weight step and validation
  (GDAS: a sample, argmax; D-DARTS: every cell its own weights);
* ``regularization`` -- extra terms of the architecture loss (beta-decay, KL
  to a prior; GOLD-NAS' resource penalty);
* ``weight_loss`` -- extra terms of the weight step's loss (SD-DARTS'
  distillation from snapshots);
* ``begin_step`` / ``begin_epoch`` -- per-step and per-epoch state (DropNAS'
  drop mask);
* ``make_w_scheduler`` -- the weights' learning-rate schedule (sharpDARTS:
  cosine power annealing);
* ``arch_step`` -- the architecture gradient (DARTS order 2: the unrolled
  estimate; Amended-DARTS: the amended second-order term; RARTS: both data
  splits on both weight copies);
* ``train_step`` -- the order of the updates in a step (RARTS: weights, their
  copy, then alpha, Gauss-Seidel);
* ``strength`` / ``derive`` -- how the architecture is read off (magnitude
  or perturbation selection);
* ``after_epoch`` / ``should_stop`` -- when to stop (the DARTS+ collapse rule
  is built in; RobustDARTS adds its eigenvalue rule).

Common options against collapse: ``warmup_epochs`` (weights only, as PC-DARTS
does for its first 15 epochs), ``beta_regularization`` (beta-DARTS' penalty,
:func:`nas.oneshot.regularizers.beta_decay`, ramped linearly over the epochs)
and ``early_stop_on_collapse`` (DARTS+; the architecture is then derived from
the last epoch before the collapse).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.oneshot import CELL
from nas.oneshot.collapse import CollapseReport, detect_collapse
from nas.oneshot.method import OneShotMethod
from nas.oneshot.perturbation import SelectionReport, perturbation_selection
from nas.oneshot.regularizers import beta_decay, linear_ramp
from nas.supernet.base import CellPath, CellSupernet

logger = logging.getLogger(__name__)

#: Scale of the initial alpha (DARTS: 1e-3 * randn).
ALPHA_INIT = 1e-3


class DifferentiableMethod(OneShotMethod):
    """The alpha loop on cell supernets; a method overrides its hooks (see the module docstring)."""

    kinds = (CELL,)
    supernet: CellSupernet

    # -- construction -------------------------------------------------------------------------
    def partial_channels(self) -> int:
        return 1

    def uses_edge_weights(self) -> bool:
        return False

    def build_supernet(self) -> CellSupernet:
        """The cell supernet, non-affine BatchNorm unless ``affine: true`` (DARTS' search-time ops)."""
        return self.make_supernet(  # type: ignore[return-value]
            partial=self.partial_channels(), affine=bool(self.settings.affine)
        )

    def alpha_shapes(self) -> dict[str, tuple[int, int]]:
        """Hook: name -> ``(edges, ops)`` of every alpha matrix; one per cell type (D-DARTS: one per cell)."""
        return {g.name: g.shape for g in self.supernet.groups}

    def init_arch_parameters(self) -> None:
        groups = self.supernet.groups
        self.alpha = nn.ParameterDict(
            {
                name: nn.Parameter(ALPHA_INIT * torch.randn(shape, device=self.device))
                for name, shape in self.alpha_shapes().items()
            }
        )
        self.beta = nn.ParameterDict(
            {g.name: nn.Parameter(ALPHA_INIT * torch.randn(g.shape[0], device=self.device)) for g in groups}
            if self.uses_edge_weights()
            else {}
        )
        s = self.settings
        self.a_optimizer = torch.optim.Adam(
            self.arch_parameters(),
            lr=s.option("arch_lr"),
            betas=(0.5, 0.999),
            weight_decay=s.option("arch_weight_decay"),
        )
        self._healthy: dict[str, torch.Tensor] | None = None
        self._collapse: CollapseReport | None = None
        self._selection: tuple[int, Architecture, SelectionReport] | None = None

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.alpha.values(), *self.beta.values()]

    # -- weights ------------------------------------------------------------------------------------
    def op_weights(self) -> dict[str, torch.Tensor]:
        """Hook: per group, the ``(edges, ops)`` weights a step trains with (differentiable in alpha)."""
        return {name: torch.softmax(alpha, dim=-1) for name, alpha in self.alpha.items()}

    def expected_weights(self) -> dict[str, torch.Tensor]:
        """Hook: the deterministic op weights (read-out, validation, alpha curves); DrNAS: the Dirichlet mean."""
        return self.op_weights()

    def curve_weights(self) -> dict[str, torch.Tensor]:
        """Hook: per edge, a distribution over its ops (sums to one) for the alpha curves and collapse check.

        The expected weights by default; GOLD-NAS' independent sigmoid weights are normalised here.
        """
        return self.expected_weights()

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """Per group, each edge's softmax(beta) over its target node's incoming edges (PC-DARTS)."""
        if not self.beta:
            return None
        result = {}
        for group in self.supernet.groups:
            beta = self.beta[group.name]
            parts = torch.empty_like(beta)
            for edges in group.incoming().values():
                parts[edges] = torch.softmax(beta[edges], dim=0)
            result[group.name] = parts
        return result

    def mixed_path(self, detach: bool = False, expected: bool = False) -> CellPath:
        """Every op on every edge, weighted by :meth:`op_weights` (or :meth:`expected_weights`)."""
        weights = self.expected_weights() if expected else self.op_weights()
        edges = self.edge_weights()
        if detach:
            weights = {k: v.detach() for k, v in weights.items()}
            edges = None if edges is None else {k: v.detach() for k, v in edges.items()}
        return CellPath(weights=weights, edge_weights=edges)

    def strength(self) -> dict[str, np.ndarray]:
        """Per group, (edges, ops) softmaxed alpha, times the edge weight with edge normalisation."""
        with torch.no_grad():
            weights = self.expected_weights()
            edges = self.edge_weights()
            result = {}
            for name, matrix in weights.items():
                if edges is not None:
                    matrix = matrix * edges[name][:, None]
                result[name] = matrix.cpu().numpy().astype(float)
        return result

    def alphas(self) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = {}
        prefix = len(self.supernet.groups) > 1
        with torch.no_grad():
            weights = self.curve_weights()
            for group in self.supernet.groups:
                probs = weights[group.name].cpu().numpy()
                for e, edge in enumerate(group.edges):
                    label = f"{group.name}.{edge}" if prefix else edge
                    result[label] = {op: float(probs[e, o]) for o, op in enumerate(group.ops)}
        return result

    def derive(self) -> Architecture:
        """The cell by the ``selection`` option: strongest alpha, or DARTS-PT's perturbation read-out."""
        if self.settings.option("selection") == "magnitude":
            return self.magnitude_derive()
        if self._selection is None or self._selection[0] != self.epoch:
            self._selection = (self.epoch, *perturbation_selection(self))
        return self._selection[1]

    def magnitude_derive(self) -> Architecture:
        """The strongest op of every edge by alpha (what the collapse detector judges)."""
        return self.supernet.derive(self.strength())

    def selection_report(self) -> dict[str, Any] | None:
        """What perturbation selection measured for the last derivation (None for magnitude)."""
        return None if self._selection is None else self._selection[2].to_dict()

    # -- steps ------------------------------------------------------------------------------------------
    def regularization(self) -> torch.Tensor | float:
        """Hook: extra terms of the architecture loss; here beta-DARTS' ``beta_regularization`` option."""
        weight = self.settings.option("beta_regularization")
        if not weight:
            return 0.0
        return linear_ramp(weight, self.epoch, self.epochs) * beta_decay(self.alpha.values())

    def arch_path(self) -> CellPath:
        """Hook: the path of the architecture step (every op, weighted by :meth:`op_weights`)."""
        return self.mixed_path()

    def arch_loss(self, x: torch.Tensor, y: torch.Tensor, path: CellPath | None = None) -> torch.Tensor:
        logits = self.supernet(x, path if path is not None else self.arch_path())
        return nn.functional.cross_entropy(logits, y) + self.regularization()

    def train_path(self) -> CellPath:
        """Hook: the path of the weight step (alpha detached: only the weights learn from it)."""
        return self.mixed_path(detach=True)

    def eval_path(self) -> CellPath:
        """Hook: the path validation and perturbation selection measure (the expected weights)."""
        return self.mixed_path(detach=True, expected=True)

    def begin_step(self) -> None:  # noqa: B027
        """Hook before each step's architecture and weight updates (e.g. DropNAS draws its mask)."""

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        """Hook: one update of the architecture parameters (first order: the gradient at the current weights)."""
        self.a_optimizer.zero_grad(set_to_none=True)
        self.arch_loss(xa, ya).backward(inputs=self.arch_parameters())
        self.a_optimizer.step()

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        self.begin_step()
        if self.epoch >= self.settings.option("warmup_epochs"):
            self.arch_step(x, y, x_arch, y_arch)
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x, self.train_path())
        (nn.functional.cross_entropy(logits, y) + self.weight_loss(x, logits)).backward()
        self.clip_and_step()
        return logits

    def weight_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        """Hook: extra terms of the weight step's loss, given its batch and logits (SD-DARTS' distillation)."""
        return 0.0

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return self.supernet(x, self.eval_path())

    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """The one-hot path of ``arch``, scaled by the learned edge weights where the method has them."""
        path = self.supernet.path(arch, device=x.device)
        edges = self.edge_weights()
        if edges is not None:
            path = CellPath(path.weights, path.index, {k: v.detach() for k, v in edges.items()})
        return self.supernet(x, path)

    # -- memory probe ---------------------------------------------------------------------------------------
    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return self.supernet(x, self.mixed_path())

    # -- collapse ---------------------------------------------------------------------------------------------
    def collapse_report(self) -> CollapseReport | None:
        """The collapse verdict for the current alpha and its history."""
        return detect_collapse(
            self.space, self.magnitude_derive(), self.alpha_history, self.settings.collapse_threshold
        )

    def after_epoch(self, metrics: Mapping[str, float]) -> None:
        report = self.collapse_report()
        # Alpha has not been trained in warm-up: the derived cell is read off the
        # random initialisation, so a "collapse" verdict would be noise.
        warming_up = self.epoch <= self.settings.option("warmup_epochs")
        if report is not None and self.history and int(self.history[-1]["epoch"]) == self.epoch:
            # Per epoch, so the stored curves show when collapse set in (what an early stop must beat).
            self.history[-1]["skip_share"] = report.skip_share
            self.history[-1]["collapsed"] = float(report.collapsed and not warming_up)
        if warming_up:
            self._remember_healthy()
            return
        if report is None:
            return
        if not report.collapsed:
            self._remember_healthy()
            self._collapse = None
            return
        if self._collapse is None:
            logger.warning("%s seed %d epoch %d: %s", self.name, self.seed, self.epoch, report.message)
        self._collapse = report
        if self.settings.early_stop_on_collapse:
            restored = self._healthy is not None
            if self._healthy is not None:
                with torch.no_grad():
                    for name, tensor in self._arch_tensors().items():
                        tensor.copy_(self._healthy[name])
            self.stop_reason = f"early stop on collapse at epoch {self.epoch} ({report.message}); " + (
                f"architecture derived from epoch {self.epoch - 1}"
                if restored
                else "no earlier epoch to fall back on"
            )
            logger.warning("%s seed %d: %s", self.name, self.seed, self.stop_reason)

    def _remember_healthy(self) -> None:
        """Keep the current alpha (and beta): what an early stop on collapse falls back to."""
        self._healthy = {k: v.detach().clone() for k, v in self._arch_tensors().items()}

    def _arch_tensors(self) -> dict[str, torch.Tensor]:
        return {
            **{f"alpha.{k}": v for k, v in self.alpha.items()},
            **{f"beta.{k}": v for k, v in self.beta.items()},
        }

    # -- checkpoints ------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {
            "arch": {k: v.detach().clone() for k, v in self._arch_tensors().items()},
            "a_optimizer": self.a_optimizer.state_dict(),
            "healthy": self._healthy,
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for name, tensor in self._arch_tensors().items():
                tensor.copy_(state["arch"][name])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self._healthy = state["healthy"]


__all__ = ["ALPHA_INIT", "DifferentiableMethod"]
