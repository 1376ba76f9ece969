"""Resources of architectures under alpha: a device's latency or the parameter count, and their budgets.

Latency-aware differentiable search (FBNet's DNAS, RC-DARTS) needs a resource
that is a differentiable function of alpha. Both methods use an *additive*
model, as FBNet does: an architecture's resource is a constant plus one cost
per (edge or layer, op), so under alpha's op distribution the expected
resource is ``constant + sum_edges sum_ops p(op) * cost(edge, op)``.

* **latency** (``latency_device`` + ``target_latency_ms``): the per-op lookup
  table of the named device, fitted by least squares to the measured
  latencies of the space's latency table (:attr:`OneShotView.latency_table`;
  for ``fbnet`` HELP's 27 devices). NAS-Bench-201's latencies are far from
  additive in its cell's ops (the least-squares table even gives the
  fastest cell a negative latency), so ``nb201`` has no latency budget. It is the additive table of :class:`predictors.latency.LatencyLUT`
  (same one-hot design, same least squares), fitted here because one-shot
  methods and predictors are peers that do not import each other.
* **parameters** (``target_params``): each candidate op module's parameter
  count in the supernet (every cell that shares the alpha row counted), the
  rest of the supernet as the constant. It is exact for a derived
  architecture's sub-network with the supernet's own modules (search-time
  BatchNorm, so a retrained DARTS cell adds its affine BatchNorm parameters).
* **FLOPs** (``target_flops``): each candidate op's FLOPs per image in its
  convolutions and linear layers (a multiply-add counted as 2, as in the
  spaces' model stats), measured on the supernet, the rest of the
  supernet's as the constant; exact for the derived sub-network in the same
  count (pooling, BatchNorm and sums are not counted). Both prices come
  from :mod:`nas.supernet.pricing`, as GOLD-NAS' do.

Where a derived architecture keeps only some edges or never picks some ops
(DARTS: two incoming edges per node, never ``none``), the supernet says so
(:meth:`~nas.supernet.CellSupernet.edge_units`,
:meth:`~nas.supernet.CellSupernet.derivable_ops`) and the expectation weighs
each edge by its kept share and renormalises over derivable ops, so the
expected resource tracks what the derivation will produce.

Bad budgets are refused before training: an unknown device (the known ones
listed), a latency budget on a space without a latency table, a budget
below the smallest resource any architecture can have (the smallest named).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, UnknownNameError
from nas.core.oneshot import CELL, LAYER_ALPHA, oneshot_view, spaces_with
from nas.core.space import SearchSpace
from nas.data import latency_lut
from nas.data.paths import data_path
from nas.data.tables import Table
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.settings import OneShotSettings
from nas.supernet.base import CellSupernet
from nas.supernet.mixed import DROPPED
from nas.supernet.pricing import FLOPS, PARAMS, OpPrices, price_ops

#: The resources a budget can bound (``params`` and ``flops`` priced by :mod:`nas.supernet.pricing`).
LATENCY = "latency_ms"
#: The budgeted read-out looks for the most probable architecture within this share under the target.
BUDGET_WINDOW = 0.05
#: Steps of the budget in its dynamic programme.
KNAPSACK_BINS = 2000


# -- the device lookup table (torch-free: checked with the config) ------------------------------------
@dataclass(frozen=True)
class DeviceTable:
    """A device's additive latency table: ``constant`` plus ``costs[(decision, value)]`` ms per decision."""

    device: str
    constant: float
    costs: Mapping[tuple[str, object], float]

    def latency(self, space: SearchSpace, arch: object) -> float:
        """The table's latency (ms) of ``arch``."""
        arch = space.validate(arch)  # type: ignore[arg-type]
        return self.constant + sum(self.costs[(name, arch[name])] for name in space.choices())

    def fastest(self, space: SearchSpace) -> float:
        """The smallest latency the table gives any architecture of ``space`` (ms)."""
        return self.constant + sum(
            min(self.costs[(name, value)] for value in values) for name, values in space.choices().items()
        )


def latency_table(space: SearchSpace) -> Table:
    """The space's table of measured latencies, or a ConfigError naming the spaces that have one."""
    view = oneshot_view(space)
    if view is None or view.latency_table is None:
        having = [
            n
            for n in spaces_with((CELL, LAYER_ALPHA))
            if (v := oneshot_view(_space_class(n))) is not None and v.latency_table
        ]
        raise ConfigError(
            f"space {space.name!r} has no latency table, so a latency budget (target_latency_ms) cannot be "
            f"checked on it; latency tables exist for {', '.join(having) or '(none)'}. Use target_params"
        )
    return Table.load(data_path(view.latency_table), space)


def devices(space: SearchSpace) -> list[str]:
    """The devices of the space's latency table."""
    return latency_lut.devices(latency_table(space))


def device_table(space: SearchSpace, device: str) -> DeviceTable:
    """The least-squares additive table of ``device`` (UnknownNameError listing the known devices)."""
    table = latency_table(space)
    known = devices(space)
    if device not in known:
        raise UnknownNameError(f"latency device of space {space.name!r}", device, known)
    key = (id(table), device)
    if key not in _FITTED:
        _FITTED[key] = (table, _fit(space, table, device))  # the table is kept so its id stays unique
    return _FITTED[key][1]


def _fit(space: SearchSpace, table: Table, device: str) -> DeviceTable:
    fit = latency_lut.fit_additive(space, table, [device])[device]
    return DeviceTable(device, fit.constant, fit.costs)


_FITTED: dict[tuple[int, str], tuple[Table, DeviceTable]] = {}


def _space_class(name: str) -> type[SearchSpace]:
    from nas.core.space import SPACES

    return SPACES.get(name)  # type: ignore[no-any-return]


def check_budget(method: str, space: SearchSpace, settings: OneShotSettings) -> None:
    """Config-time check of a resource-constrained method's budget (the latency part needs no supernet)."""
    if (
        settings.target_latency_ms is None
        and settings.target_params is None
        and settings.target_flops is None
    ):
        raise ConfigError(
            f"one-shot method {method!r} needs a budget: target_latency_ms with latency_device "
            "(a device of the space's latency table), target_params or target_flops"
        )
    if settings.latency_device is not None:
        table = device_table(space, settings.latency_device)
        fastest = table.fastest(space)
        if settings.target_latency_ms is not None and settings.target_latency_ms <= fastest:
            raise ConfigError(
                f"target_latency_ms={settings.target_latency_ms:g} cannot be met on "
                f"{settings.latency_device}: the fastest {space.name} architecture takes {fastest:.4g} ms "
                "by the device's lookup table; choose a larger target"
            )


# -- the differentiable model over alpha --------------------------------------------------------------------
class ResourceModel:
    """Per alpha group, an ``(edges, ops)`` cost matrix plus a constant: the expected resource under alpha."""

    def __init__(
        self,
        supernet: CellSupernet,
        metric: str,
        costs: Mapping[str, np.ndarray],
        constant: float,
        label: str,
    ) -> None:
        self.metric = metric
        self.label = label
        self.constant = float(constant)
        self.costs = {g.name: torch.as_tensor(costs[g.name], dtype=torch.float32) for g in supernet.groups}
        self.units = {g.name: supernet.edge_units(g.name) for g in supernet.groups}
        self.keep = {}
        for group in supernet.groups:
            keep = torch.zeros(len(group.edges))
            for edges, kept in self.units[group.name]:
                keep[list(edges)] = kept / len(edges)
            self.keep[group.name] = keep
        self.derivable = {
            g.name: torch.as_tensor(supernet.derivable_ops(g.name), dtype=torch.bool) for g in supernet.groups
        }

    @classmethod
    def latency(cls, supernet: CellSupernet, table: DeviceTable) -> ResourceModel:
        """The device table on the supernet's alpha groups (edge labels are the space's decisions)."""
        costs = {}
        for group in supernet.groups:
            costs[group.name] = np.array(
                [[table.costs[(edge, op)] for op in group.ops] for edge in group.edges], dtype=float
            )
        return cls(supernet, LATENCY, costs, table.constant, f"latency on {table.device} (ms)")

    @classmethod
    def priced(cls, supernet: CellSupernet, prices: OpPrices, price: str) -> ResourceModel:
        """Each candidate op's ``price`` (summed over the cells sharing its alpha row); the rest constant."""
        label = {PARAMS: "parameters", FLOPS: "FLOPs per image"}[price]
        return cls(supernet, price, prices.costs(price), prices.constant(price), label)

    def expected(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``constant + sum keep(edge) * p(op) * cost(edge, op)``, differentiable in ``weights``."""
        total = torch.tensor(self.constant, dtype=torch.float32)
        for name, cost in self.costs.items():
            w = weights[name]
            cost, keep, derivable = cost.to(w.device), self.keep[name].to(w.device), self.derivable[name]
            if not bool(derivable.all()):
                w = w * derivable.to(w.device)
                w = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)
            total = total.to(w.device) + (keep[:, None] * w * cost).sum()
        return total

    def of(self, choices: Mapping[str, list[int]]) -> float:
        """The resource of a discrete architecture given as :meth:`~nas.supernet.CellSupernet.choices`."""
        total = self.constant
        for name, ops in choices.items():
            total += sum(float(self.costs[name][e, o]) for e, o in enumerate(ops) if o != DROPPED)
        return total

    def minimum(self) -> float:
        """The smallest expected resource: each edge's cheapest derivable op, edges weighted as kept."""
        total = self.constant
        for name, cost in self.costs.items():
            cheapest = cost.masked_fill(~self.derivable[name], math.inf).min(dim=-1).values
            total += float((self.keep[name] * cheapest).sum())
        return total


class ResourceConstrainedMethod(DifferentiableMethod):
    """The alpha loop plus a resource model and its budget (``self.resource``, ``self.target``).

    Searches cell spaces and spaces whose single-path supernet takes alpha
    per layer (``fbnet``). The budget is checked when alpha is created,
    before any training: a target below the smallest achievable resource is
    refused, naming it.
    """

    kinds = (CELL, LAYER_ALPHA)

    @classmethod
    def check_settings(cls, space: SearchSpace, settings: OneShotSettings) -> None:
        check_budget(cls.name, space, settings)

    def init_arch_parameters(self) -> None:
        super().init_arch_parameters()
        s = self.settings
        check_budget(self.name, self.space, s)
        if s.target_latency_ms is not None:
            assert s.latency_device is not None  # checked by the settings model
            self.resource = ResourceModel.latency(self.supernet, device_table(self.space, s.latency_device))
            self.target = float(s.target_latency_ms)
        else:
            price, target = (
                (PARAMS, s.target_params) if s.target_params is not None else (FLOPS, s.target_flops)
            )
            assert target is not None  # check_budget refused no budget
            prices = price_ops(self.supernet, self.data.input_shape)
            self.resource = ResourceModel.priced(self.supernet, prices, price)
            self.target = float(target)
        smallest = self.resource.minimum()
        if self.target <= smallest:
            raise ConfigError(
                f"{self.name} budget {self.target:g} ({self.resource.label}) cannot be met: the smallest "
                f"achievable on this {self.space.name} supernet is {smallest:.6g}; choose a larger target"
            )

    def expected_resource(self) -> torch.Tensor:
        """The expected resource under :meth:`expected_weights` (differentiable in alpha)."""
        return self.resource.expected(self.expected_weights())

    def derive(self) -> Architecture:
        """With ``selection: magnitude``, the budgeted read-out (:meth:`budget_derive`); else the loop's."""
        if self.settings.option("selection") == "magnitude":
            return self.budget_derive()
        return super().derive()

    def budget_derive(self) -> Architecture:
        """The most probable architecture that spends the budget without exceeding it.

        The plain argmax of a short search reads a near-uniform alpha: after
        RC-DARTS' projection every edge's cheapest op leads by a hair, so the
        argmax is the cheapest architecture, far under the budget; over budget
        it would break the constraint the search kept. The read-out therefore
        maximises the log-probability ``sum log p(op)`` of the kept edges'
        ops under softmax alpha among architectures whose resource lies in
        ``[(1 - BUDGET_WINDOW) target, target]`` (else at most ``target``).
        The supernet's edge units (:meth:`~nas.supernet.CellSupernet.edge_units`:
        an edge, or a DARTS node keeping two of its edges) are independent,
        so this is a multiple-choice knapsack, solved exactly by dynamic
        programming over the budget in ``KNAPSACK_BINS`` steps (costs rounded
        up, so the result fits). The chosen ops are read off through the
        supernet's own :meth:`~nas.supernet.CellSupernet.derive`.
        """
        with torch.no_grad():
            logp = {
                k: torch.log(v.clamp_min(1e-12)).cpu().numpy() for k, v in self.expected_weights().items()
            }
        costs = {k: c.numpy().astype(float) for k, c in self.resource.costs.items()}
        units = []  # per unit: its options as (log p, cost, [(group, edge, op), ...])
        for name, group_units in self.resource.units.items():
            ops = np.flatnonzero(self.resource.derivable[name].numpy())
            for edges, kept in group_units:
                options = []
                for chosen in itertools.combinations(edges, kept):
                    for picks in itertools.product(ops, repeat=kept):
                        pairs = list(zip(chosen, picks, strict=True))
                        options.append(
                            (
                                sum(float(logp[name][e, o]) for e, o in pairs),
                                sum(float(costs[name][e, o]) for e, o in pairs),
                                [(name, e, int(o)) for e, o in pairs],
                            )
                        )
                units.append(options)
        base = self.resource.constant + sum(min(c for _, c, _ in options) for options in units)
        # Below the cheapest (not reached: targets under the smallest are refused) every dearer option
        # would weigh more than the whole budget, so the cheapest architecture comes out.
        unit = max((self.target - base) / KNAPSACK_BINS, 1e-12 * max(1.0, abs(self.target)))
        value = np.full(KNAPSACK_BINS + 1, -np.inf)
        value[0] = 0.0
        trail = []  # per unit, per budget step: the option taken and its weight
        for options in units:
            cheapest = min(c for _, c, _ in options)
            new = np.full_like(value, -np.inf)
            taken = np.full(value.shape, -1)
            for index, (score, cost, _) in enumerate(options):
                w = int(math.ceil((cost - cheapest) / unit - 1e-9))
                if w > KNAPSACK_BINS:
                    continue
                shifted = np.full_like(value, -np.inf)
                shifted[w:] = value[: len(value) - w] + score
                better = shifted > new
                new[better], taken[better] = shifted[better], index
            value = new
            trail.append((taken, cheapest))
        low = min(KNAPSACK_BINS, max(0, math.ceil(((1 - BUDGET_WINDOW) * self.target - base) / unit)))
        window = value[low:] if np.isfinite(value[low:]).any() else value
        end = int(np.argmax(window)) + (len(value) - len(window))
        strength = {k: np.zeros_like(v) for k, v in logp.items()}
        for options, (taken, cheapest) in zip(reversed(units), reversed(trail), strict=True):
            _, cost, pairs = options[int(taken[end])]
            for name, e, o in pairs:
                strength[name][e, o] = 1.0
            end -= int(math.ceil((cost - cheapest) / unit - 1e-9))
        return self.supernet.derive(strength)

    def derived_resource(self) -> float:
        """The resource of the architecture :meth:`derive` reads off now."""
        return self.resource.of(self.supernet.choices(self.derive()))

    def extra_metrics(self) -> dict[str, float]:
        with torch.no_grad():
            return {f"expected_{self.resource.metric}": float(self.expected_resource())}


__all__ = [
    "FLOPS",
    "LATENCY",
    "PARAMS",
    "DeviceTable",
    "ResourceConstrainedMethod",
    "ResourceModel",
    "check_budget",
    "device_table",
    "devices",
    "latency_table",
]
