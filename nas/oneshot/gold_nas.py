"""GOLD-NAS (Bi et al. 2020): gradual, one-level, differentiable search with resource-constrained pruning.

GOLD-NAS drops three habits of DARTS at once:

* **one level** -- alpha and the weights learn from the *same* batch, in one
  backward pass of one loss (no bilevel approximation); the ``train_step``
  hook makes such a step on the weight batch and another on the held-out
  batch, so the search sees all its training data (GOLD-NAS trains on the
  whole set) at the cost of a first-order DARTS step;
* **sigmoid op weights** -- ``op_weights`` is ``sigmoid(alpha)`` per op, not a
  softmax per edge, so ops do not compete for a fixed budget and a weak op can
  fade out without lifting the others (``curve_weights`` normalises them per
  edge only for the alpha curves and the collapse check);
* **gradual pruning under a resource constraint** -- the architecture loss
  carries ``lambda * sum(sigmoid(alpha) * cost)``, where an op's cost is
  ``flops_share`` times its share of the supernet's FLOPs plus the rest times
  its share of the parameters (both priced on the built supernet by
  :func:`nas.supernet.pricing.price_ops`, per cell type, edge and op). Every ``prune_every``
  architecture steps, ops whose weight is below ``prune_threshold`` are pruned
  for good -- the weakest first, at most ``prune_max`` per round -- and lambda
  adapts as in the paper's algorithm: multiplied by ``resource_growth`` after
  a round that pruned nothing (more pressure), divided by it (not below
  ``resource_weight``) after one that pruned (keep it gradual). A pruned op
  gets weight 0 and no gradient, so it can never come back.

It searches the cell spaces and ``fbnet``, whose supernet takes alpha per
layer (:data:`~nas.core.oneshot.LAYER_ALPHA`): there an "edge" is a layer and
its ops are the layer's candidate blocks, so the kept-op masks are per-layer
block masks and the prices are each block's (``skip`` costs nothing, so a
strong penalty makes a layer's identity block the survivor, a shallower
network). Our spaces need an op on every edge (nb201: one per edge; darts:
two inputs per node; fbnet: one block per layer), so an edge's last op is
never pruned, and the search stops when
every edge is down to one op or, as GOLD-NAS stops at a FLOPs target, when
the kept ops cost at most ``min_resource`` of the supernet (``kept_ops`` and
``kept_cost`` are stored per epoch). The derived architecture is what survives: per
edge the strongest unpruned op (``strength``: pruned ops count 0), mapped onto
the space's genotype by its supernet's ``derive``. A zero op (the space's
:meth:`~nas.core.space.SearchSpace.zero_ops`, ``none`` in ``nb201`` and
``darts``) contributes nothing under a sigmoid weight; GOLD-NAS removes an
edge by pruning all its ops instead, so ``none`` starts pruned.

Not from the paper: our runs are minutes, not days, so an unset ``arch_lr``
is :data:`ARCH_LR` (the sigmoid must be able to fall to the threshold within
a few hundred steps) and thresholds default to 0.05; the paper's Pareto front
of the architectures met on the way is not kept (the search returns one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.core.oneshot import CELL, LAYER_ALPHA, ONESHOT
from nas.oneshot.differentiable import DifferentiableMethod
from nas.supernet.pricing import price_ops

#: Adam's learning rate on alpha when ``arch_lr`` is unset (the shared default 3e-4 prunes nothing in minutes).
ARCH_LR = 3e-3
#: Ceiling of the penalty's weight (a long run that cannot prune must not overflow it).
MAX_PENALTY = 1e6


@ONESHOT.register("gold_nas")
class GoldNasMethod(DifferentiableMethod):
    """One-level search with sigmoid op weights and gradual resource-constrained pruning (see the module)."""

    name = "gold_nas"
    kinds = (CELL, LAYER_ALPHA)

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        s = self.settings
        if s.arch_lr is None:
            for group in self.a_optimizer.param_groups:
                group["lr"] = ARCH_LR
        #: Per group, ``(edges, ops)`` True for the ops still in the search. The space's zero ops start
        #: pruned: no sigmoid weight can make an all-zero output matter.
        zero = self.space.zero_ops()
        self.kept = {
            g.name: torch.tensor([[op not in zero for op in g.ops]] * len(g.edges), device=self.device)
            for g in self.supernet.groups
        }
        prices = price_ops(self.supernet, self.data.input_shape)
        flops, params = prices.flops, prices.params
        share = float(s.option("flops_share"))
        total_flops = max(sum(f.sum() for f in flops.values()), 1.0)
        total_params = max(sum(p.sum() for p in params.values()), 1.0)
        #: Per group, each op's cost: its share of the supernet's FLOPs and parameters, mixed by flops_share.
        self.costs = {
            name: torch.tensor(
                share * flops[name] / total_flops + (1 - share) * params[name] / total_params,
                dtype=torch.float32,
                device=self.device,
            )
            for name in flops
        }
        #: The penalty's current weight (lambda), adapted after every pruning round.
        self.penalty_weight = float(s.option("resource_weight"))
        self.arch_steps = 0

    # -- weights -----------------------------------------------------------------------------------
    def op_weights(self) -> dict[str, torch.Tensor]:
        """Independent ``sigmoid(alpha)`` per op, 0 (and no gradient) for pruned ops."""
        return {
            name: torch.sigmoid(alpha).masked_fill(~self.kept[name], 0.0)
            for name, alpha in self.alpha.items()
        }

    def curve_weights(self) -> dict[str, torch.Tensor]:
        return {name: w / w.sum(dim=-1, keepdim=True) for name, w in self.op_weights().items()}

    def regularization(self) -> torch.Tensor | float:
        """``lambda * sum(sigmoid(alpha) * cost)`` over the kept ops: the expected resource use."""
        weights = self.op_weights()
        return self.penalty_weight * sum((weights[name] * cost).sum() for name, cost in self.costs.items())

    def kept_cost(self) -> float:
        """The summed cost of the ops still kept (1.0: the whole supernet)."""
        return float(sum((cost * self.kept[name]).sum() for name, cost in self.costs.items()))

    def kept_ops(self) -> int:
        return int(sum(int(k.sum()) for k in self.kept.values()))

    # -- one-level step and pruning ------------------------------------------------------------------
    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        """A one-level step on the weight batch, then one on the held-out batch (all the data, as DARTS' cost)."""
        self.begin_step()
        logits = self.one_level_step(x, y)
        self.one_level_step(x_arch, y_arch)
        return logits

    def one_level_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Weights and alpha from one loss and one backward pass on one batch; a pruning round when due."""
        searching = self.epoch >= self.settings.option("warmup_epochs")
        self.w_optimizer.zero_grad(set_to_none=True)
        self.a_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x, self.mixed_path(detach=not searching))
        loss = nn.functional.cross_entropy(logits, y)
        (loss + self.regularization() if searching else loss).backward()
        self.clip_and_step()
        if searching:
            self.a_optimizer.step()
            self.arch_steps += 1
            if self.arch_steps % int(self.settings.option("prune_every")) == 0:
                self.prune()
        return logits

    def prunable(self) -> list[tuple[float, str, int, int]]:
        """``(weight, group, edge, op)`` of the kept ops below the threshold, weakest first.

        An edge keeps its strongest op even when every op is below the threshold.
        """
        threshold = float(self.settings.option("prune_threshold"))
        found = []
        with torch.no_grad():
            for name, weights in self.op_weights().items():
                for edge, row in enumerate(weights.cpu().tolist()):
                    alive = [o for o in range(len(row)) if bool(self.kept[name][edge, o])]
                    strongest = max(alive, key=row.__getitem__)
                    found += [(row[o], name, edge, o) for o in alive if row[o] < threshold and o != strongest]
        return sorted(found)

    def prune(self) -> int:
        """One pruning round; adapts the penalty's weight; returns how many ops it pruned."""
        s = self.settings
        if self.finished_pruning():
            return 0
        chosen = self.prunable()[: int(s.option("prune_max"))]
        for _, name, edge, op in chosen:
            self.kept[name][edge, op] = False
        growth, floor = float(s.option("resource_growth")), float(s.option("resource_weight"))
        if chosen:
            self.penalty_weight = max(floor, self.penalty_weight / growth)
        else:
            self.penalty_weight = min(MAX_PENALTY, self.penalty_weight * growth)
        return len(chosen)

    def finished_pruning(self) -> bool:
        """True when every edge is down to one op or the kept ops cost at most ``min_resource``."""
        single = all(bool((k.sum(dim=-1) <= 1).all()) for k in self.kept.values())
        target = float(self.settings.option("min_resource"))
        return single or (target > 0 and self.kept_cost() <= target)

    def after_epoch(self, metrics: Mapping[str, float]) -> None:
        super().after_epoch(metrics)
        self.history[-1]["kept_ops"] = float(self.kept_ops())
        self.history[-1]["kept_cost"] = self.kept_cost()

    def should_stop(self, metrics: Mapping[str, float]) -> str | None:
        if self.finished_pruning():
            return (
                f"GOLD-NAS pruning finished at epoch {self.epoch}: {self.kept_ops()} ops kept, "
                f"cost {self.kept_cost():.3f} of the supernet"
            )
        return None

    def extra_metrics(self) -> dict[str, float]:
        return {"penalty_weight": self.penalty_weight}

    # -- checkpoints --------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {
            **super().extra_state(),
            "kept": {k: v.clone() for k, v in self.kept.items()},
            "penalty_weight": self.penalty_weight,
            "arch_steps": self.arch_steps,
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        super().load_extra_state(state)
        self.kept = {k: v.to(self.device).clone() for k, v in state["kept"].items()}
        self.penalty_weight = float(state["penalty_weight"])
        self.arch_steps = int(state["arch_steps"])


__all__ = ["ARCH_LR", "MAX_PENALTY", "GoldNasMethod"]
