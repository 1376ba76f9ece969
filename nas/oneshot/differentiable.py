"""Differentiable methods: DARTS (first and second order), PC-DARTS and GDAS.

All three keep an alpha matrix per cell type (edges x ops) and alternate an
architecture step on a batch of the architecture split with a weight step on
a batch of the weight split:

* **DARTS** (Liu et al. 2019): the mixed op is the softmax(alpha)-weighted sum
  of every op. First order differentiates the validation loss at the current
  weights; second order at the weights after one virtual SGD step, with the
  Hessian-vector product by finite differences, exactly as DARTS'
  ``Architect._backward_step_unrolled``.
* **PC-DARTS** (Xu et al. 2020): first-order DARTS on a 1/K slice of the
  channels (the rest bypasses the edge and is shuffled back in), which cuts the
  memory of the mixed ops by about K, plus *edge normalisation*: a weight
  beta per edge, softmaxed over each node's incoming edges, that multiplies the
  edge output and counts in the derivation.
* **GDAS** (Dong & Yang 2019): one op per edge sampled with the Gumbel-softmax
  (temperature annealed linearly from ``tau_max`` to ``tau_min``); only the
  sampled op runs, and the straight-through one-hot weights still give every
  alpha a gradient.

Common options against collapse: ``warmup_epochs`` (weights only, as PC-DARTS
does for its first 15 epochs), ``beta_regularization`` (beta-DARTS: a penalty
on each edge's log-sum-exp of alpha, ramped linearly over the epochs) and
``early_stop_on_collapse`` (DARTS+; the architecture is then derived from the
last epoch before the collapse).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.oneshot import CELL, ONESHOT
from nas.oneshot.collapse import CollapseReport, detect_collapse
from nas.oneshot.method import OneShotMethod
from nas.oneshot.perturbation import SelectionReport, perturbation_selection
from nas.supernet.base import CellPath, CellSupernet

logger = logging.getLogger(__name__)

#: Scale of the initial alpha (DARTS: 1e-3 * randn).
ALPHA_INIT = 1e-3
#: DARTS' finite-difference step for the Hessian-vector product, relative to the vector's norm.
FINITE_DIFFERENCE = 0.01


class DifferentiableMethod(OneShotMethod):
    """Shared machinery of the alpha-based methods on cell supernets."""

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

    def init_arch_parameters(self) -> None:
        groups = self.supernet.groups
        self.alpha = nn.ParameterDict(
            {g.name: nn.Parameter(ALPHA_INIT * torch.randn(g.shape, device=self.device)) for g in groups}
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
        return {name: torch.softmax(alpha, dim=-1) for name, alpha in self.alpha.items()}

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

    def mixed_path(self, detach: bool = False) -> CellPath:
        weights = self.op_weights()
        edges = self.edge_weights()
        if detach:
            weights = {k: v.detach() for k, v in weights.items()}
            edges = None if edges is None else {k: v.detach() for k, v in edges.items()}
        return CellPath(weights=weights, edge_weights=edges)

    def strength(self) -> dict[str, np.ndarray]:
        """Per group, (edges, ops) softmaxed alpha, times the edge weight with edge normalisation."""
        with torch.no_grad():
            weights = self.op_weights()
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
            for group in self.supernet.groups:
                probs = torch.softmax(self.alpha[group.name], dim=-1).cpu().numpy()
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
        """beta-DARTS' penalty: mean log-sum-exp of alpha per edge, weight ramped linearly to the option."""
        weight = self.settings.option("beta_regularization")
        if not weight:
            return 0.0
        ramp = weight * self.epoch / max(1, self.epochs - 1)
        return ramp * sum(torch.logsumexp(a, dim=-1).mean() for a in self.alpha.values())

    def arch_loss(self, x: torch.Tensor, y: torch.Tensor, path: CellPath | None = None) -> torch.Tensor:
        logits = self.supernet(x, path if path is not None else self.mixed_path())
        return nn.functional.cross_entropy(logits, y) + self.regularization()

    def train_path(self) -> CellPath:
        """The path of the weight step (alpha detached: only the weights learn from it)."""
        return self.mixed_path(detach=True)

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        self.a_optimizer.zero_grad(set_to_none=True)
        self.arch_loss(xa, ya).backward(inputs=self.arch_parameters())
        self.a_optimizer.step()

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        if self.epoch >= self.settings.option("warmup_epochs"):
            self.arch_step(x, y, x_arch, y_arch)
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x, self.train_path())
        nn.functional.cross_entropy(logits, y).backward()
        self.clip_and_step()
        return logits

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return self.supernet(x, self.mixed_path(detach=True))

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
        if self.epoch <= self.settings.option("warmup_epochs"):
            # Alpha has not been trained yet: the derived cell is read off the
            # random initialisation, so a "collapse" verdict would be noise.
            self._remember_healthy()
            return
        report = self.collapse_report()
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


@ONESHOT.register("darts")
class DartsMethod(DifferentiableMethod):
    """DARTS, first order (``order: 1``, default) or second order (``order: 2``)."""

    name = "darts"

    def extra_weight_copies(self) -> int:
        return 3 if self.settings.option("order") == 2 else 0

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        if self.settings.option("order") == 1:
            super().arch_step(x, y, xa, ya)
            return
        self.a_optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.arch_parameters(), self._unrolled_gradients(x, y, xa, ya), strict=True):
            alpha.grad = grad
        self.a_optimizer.step()

    def _unrolled_gradients(
        self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor
    ) -> list[torch.Tensor]:
        """d L_val(w - xi * grad L_train(w, a), a) / d a, the Hessian term by central differences."""
        params = [p for p in self.supernet.parameters() if p.requires_grad]
        arch = self.arch_parameters()
        group = self.w_optimizer.param_groups[0]
        xi, momentum, decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        train_loss = nn.functional.cross_entropy(self.supernet(x, self.train_path()), y)
        grads = torch.autograd.grad(train_loss, params)
        backup = [p.detach().clone() for p in params]
        with torch.no_grad():  # the virtual step w' = w - xi (momentum buffer + grad + decay w)
            for p, g in zip(params, grads, strict=True):
                buffer = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                step = g + decay * p
                if buffer is not None:
                    step = step + momentum * buffer
                p.sub_(xi * step)
        val_grads = torch.autograd.grad(self.arch_loss(xa, ya), [*arch, *params], allow_unused=True)
        direct = [g if g is not None else torch.zeros_like(a) for g, a in zip(val_grads, arch, strict=False)]
        vector = [
            g if g is not None else torch.zeros_like(p)
            for g, p in zip(val_grads[len(arch) :], params, strict=True)
        ]
        radius = FINITE_DIFFERENCE / (torch.cat([v.flatten() for v in vector]).norm() + 1e-12)

        def arch_grads_at(sign: float) -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                for p, b, v in zip(params, backup, vector, strict=True):
                    p.copy_(b + sign * radius * v)
            loss = nn.functional.cross_entropy(self.supernet(x, self.mixed_path()), y)
            found = torch.autograd.grad(loss, arch, allow_unused=True)
            return tuple(
                g if g is not None else torch.zeros_like(a) for g, a in zip(found, arch, strict=True)
            )

        positive, negative = arch_grads_at(1.0), arch_grads_at(-1.0)
        with torch.no_grad():
            for p, b in zip(params, backup, strict=True):
                p.copy_(b)
        return [
            d - xi * (gp - gn) / (2 * radius) for d, gp, gn in zip(direct, positive, negative, strict=True)
        ]


@ONESHOT.register("pc_darts")
class PcDartsMethod(DifferentiableMethod):
    """PC-DARTS: partial channel connections (1/K of the channels) and edge normalisation."""

    name = "pc_darts"

    def partial_channels(self) -> int:
        return int(self.settings.option("partial_channels"))

    def uses_edge_weights(self) -> bool:
        return bool(self.settings.option("edge_normalization"))


@ONESHOT.register("gdas")
class GdasMethod(DifferentiableMethod):
    """GDAS: one Gumbel-softmax-sampled op per edge, temperature annealed over the epochs."""

    name = "gdas"

    def tau(self) -> float:
        s = self.settings
        high, low = float(s.option("tau_max")), float(s.option("tau_min"))
        return max(low, high - (high - low) * self.epoch / max(1, self.epochs - 1))

    def sample_path(self) -> CellPath:
        """A straight-through Gumbel-softmax sample per edge (from the method's own generator)."""
        tau = self.tau()
        weights, index = {}, {}
        for name, alpha in self.alpha.items():
            noise = torch.empty(alpha.shape).exponential_(generator=self.sample_generator).clamp_min(1e-20)
            gumbel = -noise.log().to(alpha.device)
            probs = torch.softmax((torch.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)
            chosen = probs.argmax(dim=-1)
            onehot = nn.functional.one_hot(chosen, alpha.shape[-1]).to(probs.dtype)
            weights[name] = onehot - probs.detach() + probs
            index[name] = [int(i) for i in chosen.tolist()]
        return CellPath(weights=weights, index=index)

    def argmax_path(self) -> CellPath:
        weights, index = {}, {}
        for name, alpha in self.alpha.items():
            chosen = alpha.detach().argmax(dim=-1)
            weights[name] = nn.functional.one_hot(chosen, alpha.shape[-1]).to(alpha.dtype)
            index[name] = [int(i) for i in chosen.tolist()]
        return CellPath(weights=weights, index=index)

    def train_path(self) -> CellPath:
        path = self.sample_path()
        return CellPath(weights={k: v.detach() for k, v in path.weights.items()}, index=path.index)

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        self.a_optimizer.zero_grad(set_to_none=True)
        self.arch_loss(xa, ya, self.sample_path()).backward(inputs=self.arch_parameters())
        self.a_optimizer.step()

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return self.supernet(x, self.argmax_path())

    def extra_metrics(self) -> dict[str, float]:
        return {"tau": self.tau()}

    def probe_paths(self) -> list[Any]:
        """Every op on every edge in turn: the heaviest op decides GDAS' peak memory."""
        return list(range(len(self.supernet.groups[0].ops)))

    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        weights, index = {}, {}
        for group in self.supernet.groups:
            onehot = torch.zeros(group.shape, device=x.device)
            onehot[:, int(path)] = 1.0
            weights[group.name] = onehot + 0.0 * self.alpha[group.name]  # keep alpha in the graph
            index[group.name] = [int(path)] * group.shape[0]
        return self.supernet(x, CellPath(weights=weights, index=index))


__all__ = ["DartsMethod", "DifferentiableMethod", "GdasMethod", "PcDartsMethod"]
