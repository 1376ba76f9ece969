"""Options of the one-shot methods: one validated model, method-specific fields checked per method.

A config names a method and its options in the ``strategy`` section::

    strategy: {name: pc_darts, epochs: 10, batch_size: 64, partial_channels: 4}

Every method shares the supernet training options (epochs, batch, SGD on the
weights, Adam on the architecture weights, the split of the training set) and
the guard rails (memory check, collapse detection, rank correlation). Fields
that only one method reads default to ``None`` and are refused for the others,
so ``order: 2`` on ``gdas`` is an error rather than silently ignored.

Defaults follow the DARTS paper (SGD lr 0.025 cosine to 0.001, momentum 0.9,
weight decay 3e-4, clip 5; Adam 3e-4 with betas (0.5, 0.999) and weight decay
1e-3 on alpha; half the training set for the weights, half for alpha),
PC-DARTS (K = 4), GDAS (tau 10 -> 0.1), SPOS (population 20, 10
generations, half of the population as parents), DrNAS (prior weight 1e-3),
sharpDARTS (power base 2, its CIFAR-10 setting), DropNAS (r = 3e-5), BigNAS (2 random
sub-networks per step, label smoothing 0.1 on the largest), AttentiveNAS (BestUp-3: the best of
3 candidates by their batch loss), FBNet's DNAS (alpha 0.2,
beta 0.6; the temperature as GDAS', annealed geometrically); GOLD-NAS, SD-DARTS and SMASH
use defaults scaled to the short CPU runs here (see their modules); RARTS' beta = lambda = 1
and Amended-DARTS' eta = 0.01 are ours (at 0.01 the amended term is about as large as the
direct gradient on a reduced nb201 supernet; 12 times larger at 0.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas.core.errors import ConfigError
from nas.core.leakage import check_report_column
from nas.core.seeds import check_seed

#: The methods on the alpha loop (:mod:`nas.oneshot.differentiable`): they share its options.
ALPHA_METHODS: tuple[str, ...] = (
    "darts",
    "pc_darts",
    "gdas",
    "drnas",
    "beta_darts",
    "sharpdarts",
    "dropnas",
    "robust_darts",
    "gold_nas",
    "sd_darts",
    "rarts",
    "amended_darts",
    "d_darts",
    "dnas",
    "rc_darts",
)

#: The methods with a resource budget (:mod:`nas.oneshot.resource`).
BUDGET_METHODS: tuple[str, ...] = ("dnas", "rc_darts")

#: Options read by only some methods (the rest apply to all).
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "order": ("darts",),
    "partial_channels": ("pc_darts",),
    "edge_normalization": ("pc_darts",),
    "tau_max": ("gdas", "dnas"),
    "tau_min": ("gdas", "dnas"),
    "arch_lr": ALPHA_METHODS,
    "arch_weight_decay": ALPHA_METHODS,
    "warmup_epochs": ALPHA_METHODS,
    "beta_regularization": ("darts", "pc_darts", "gdas"),
    # D-DARTS' per-cell alpha has no one path per cell type for DARTS-PT to perturb.
    "selection": tuple(m for m in ALPHA_METHODS if m != "d_darts"),
    "prior_weight": ("drnas",),
    "beta_decay": ("beta_darts",),
    "power_order": ("sharpdarts",),
    "drop_rate": ("dropnas",),
    "hessian_iterations": ("robust_darts",),
    "hessian_window": ("robust_darts",),
    "hessian_ratio": ("robust_darts",),
    "prune_every": ("gold_nas",),
    "prune_threshold": ("gold_nas",),
    "prune_max": ("gold_nas",),
    "resource_weight": ("gold_nas",),
    "resource_growth": ("gold_nas",),
    "flops_share": ("gold_nas",),
    "min_resource": ("gold_nas",),
    "distill_weight": ("sd_darts",),
    "distill_teachers": ("sd_darts",),
    "distill_temperature": ("sd_darts",),
    "hyper_hidden": ("smash",),
    "hyper_rank": ("smash",),
    "candidates": ("smash", "attentivenas"),
    "relaxation": ("rarts",),
    "train_loss_weight": ("rarts",),
    "amend_weight": ("amended_darts",),
    "population": ("spos",),
    "generations": ("spos",),
    "parents": ("spos",),
    "mutation_prob": ("spos",),
    "num_random": ("bignas", "attentivenas"),
    "label_smoothing": ("bignas", "attentivenas"),
    "pareto": ("attentivenas",),
    "candidate_score": ("attentivenas",),
    "target_latency_ms": BUDGET_METHODS,
    "latency_device": BUDGET_METHODS,
    "target_params": BUDGET_METHODS,
    "target_flops": BUDGET_METHODS,
    "latency_alpha": ("dnas",),
    "latency_beta": ("dnas",),
}

#: Defaults of the method-specific options (used when the field is unset).
METHOD_DEFAULTS: dict[str, Any] = {
    "order": 1,
    "partial_channels": 4,
    "edge_normalization": True,
    "tau_max": 10.0,
    "tau_min": 0.1,
    "arch_lr": 3e-4,
    "arch_weight_decay": 1e-3,
    "warmup_epochs": 0,
    "beta_regularization": 0.0,
    "selection": "magnitude",
    "prior_weight": 1e-3,
    "beta_decay": 1.0,
    "power_order": 2.0,
    "drop_rate": 3e-5,
    "hessian_iterations": 20,
    "hessian_window": 5,
    "hessian_ratio": 0.75,
    "prune_every": 20,
    "prune_threshold": 0.05,
    "prune_max": 4,
    "resource_weight": 1e-3,
    "resource_growth": 2.0,
    "flops_share": 0.5,
    "min_resource": 0.0,
    "distill_weight": 1.0,
    "distill_teachers": 2,
    "distill_temperature": 2.0,
    "hyper_hidden": 64,
    "hyper_rank": 8,
    "candidates": 100,
    "relaxation": 1.0,
    "train_loss_weight": 1.0,
    "amend_weight": 0.01,
    "population": 20,
    "generations": 10,
    "parents": 10,
    "mutation_prob": 0.1,
    "num_random": 2,
    "label_smoothing": 0.1,
    "pareto": "best",
    "candidate_score": "loss",
    "latency_alpha": 0.2,
    "latency_beta": 0.6,
}


#: Shared options whose default differs by method: ``{option: {method: default}}``. AttentiveNAS ranks
#: ``candidates`` every step (3, its paper's BestUp-3), SMASH once after training (100).
METHOD_SPECIFIC_DEFAULTS: dict[str, dict[str, Any]] = {"candidates": {"attentivenas": 3}}


class OneShotSettings(BaseModel):
    """Every option of a one-shot search (see the module docstring for defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # -- supernet training ---------------------------------------------------------------
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=2)
    eval_batch_size: int = Field(256, ge=2)
    augment: bool = Field(False, description="random crop and flip of weight batches (CIFAR augmentation)")
    train_portion: float = Field(
        0.5, gt=0.0, lt=1.0, description="share of the training set for the weights; the rest trains alpha"
    )
    lr: float = Field(0.025, gt=0.0)
    lr_min: float = Field(0.001, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(3e-4, ge=0.0)
    grad_clip: float | None = Field(5.0, gt=0.0)
    channels: int | None = Field(None, ge=2, description="supernet width C (default: the space's)")
    cells: int | None = Field(None, ge=1, description="supernet depth (default: the space's)")
    affine: bool | None = Field(
        None, description="affine BatchNorm in candidate ops (default: off for differentiable methods)"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seeds: int | list[int] | None = Field(
        None,
        description="supernet seeds run in parallel: a count (0..n-1 offset by the config seed) or a list",
    )

    # -- method-specific (see METHOD_OPTIONS) ------------------------------------------------
    order: Literal[1, 2] | None = None
    partial_channels: int | None = Field(None, ge=1)
    edge_normalization: bool | None = None
    tau_max: float | None = Field(None, gt=0.0)
    tau_min: float | None = Field(None, gt=0.0)
    arch_lr: float | None = Field(None, gt=0.0)
    arch_weight_decay: float | None = Field(None, ge=0.0)
    warmup_epochs: int | None = Field(None, ge=0)
    beta_regularization: float | None = Field(None, ge=0.0)
    selection: Literal["magnitude", "perturbation"] | None = Field(
        None,
        description="how the cell is read off the supernet: strongest alpha per edge (magnitude) or "
        "the op whose removal raises the supernet's held-out loss most (perturbation, DARTS-PT)",
    )
    prior_weight: float | None = Field(
        None, ge=0.0, description="DrNAS: weight of the KL divergence to the uniform Dirichlet(1) prior"
    )
    beta_decay: float | None = Field(
        None, ge=0.0, description="beta-DARTS: final weight of the beta-decay term (ramped from 0)"
    )
    power_order: float | None = Field(
        None, ge=1.0, description="sharpDARTS: base of cosine power annealing (1: plain cosine)"
    )
    drop_rate: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="DropNAS: chance a whole op group would be dropped; each op drops at rate**(1/group size)",
    )
    hessian_iterations: int | None = Field(
        None, ge=1, le=1000, description="RobustDARTS: power iterations per eigenvalue estimate"
    )
    hessian_window: int | None = Field(None, ge=1, description="RobustDARTS: epochs k averaged by DARTS-ES")
    hessian_ratio: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="RobustDARTS: stop when mean eigenvalue(i-k) / mean(i) falls below this",
    )
    prune_every: int | None = Field(
        None, ge=1, le=100_000, description="GOLD-NAS: architecture steps between pruning rounds"
    )
    prune_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="GOLD-NAS: an op whose sigmoid weight falls below this is pruned"
    )
    prune_max: int | None = Field(
        None, ge=1, le=10_000, description="GOLD-NAS: ops pruned per round at most (the weakest first)"
    )
    resource_weight: float | None = Field(
        None, gt=0.0, le=1e3, description="GOLD-NAS: initial weight of the FLOPs/params penalty"
    )
    resource_growth: float | None = Field(
        None,
        gt=1.0,
        le=100.0,
        description="GOLD-NAS: factor on the penalty's weight after a round that pruned nothing (divides it "
        "after one that pruned)",
    )
    flops_share: float | None = Field(
        None, ge=0.0, le=1.0, description="GOLD-NAS: share of FLOPs in an op's cost (the rest: parameters)"
    )
    min_resource: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="GOLD-NAS: stop once the kept ops cost at most this share of the supernet "
        "(0: prune until every edge has one op)",
    )
    distill_weight: float | None = Field(
        None, ge=0.0, le=1e3, description="SD-DARTS: weight of the KL to the snapshot teachers"
    )
    distill_teachers: int | None = Field(
        None, ge=1, le=10, description="SD-DARTS: supernet snapshots of the previous epochs that vote"
    )
    distill_temperature: float | None = Field(
        None, gt=0.0, le=100.0, description="SD-DARTS: softmax temperature of teachers and student"
    )
    hyper_hidden: int | None = Field(None, ge=4, le=1024, description="SMASH: width of the hypernetwork")
    hyper_rank: int | None = Field(
        None, ge=1, le=64, description="SMASH: rank of each generated weight tensor"
    )
    candidates: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="SMASH: random architectures ranked by their generated weights; AttentiveNAS: "
        "sub-networks of one size level ranked by their batch loss for each pick",
    )
    relaxation: float | None = Field(
        None, ge=0.0, le=100.0, description="RARTS: beta of the tie beta/2 |w - y|^2 of the two weight copies"
    )
    train_loss_weight: float | None = Field(
        None, gt=0.0, le=100.0, description="RARTS: lambda, weight of L_train(w, alpha) in the relaxed loss"
    )
    amend_weight: float | None = Field(
        None, gt=0.0, le=10.0, description="Amended-DARTS: eta of the amended term (H^-1 replaced by eta H)"
    )
    population: int | None = Field(None, ge=2)
    generations: int | None = Field(None, ge=0)
    parents: int | None = Field(None, ge=1)
    mutation_prob: float | None = Field(None, ge=0.0, le=1.0)
    num_random: int | None = Field(
        None,
        ge=0,
        description="BigNAS: random sub-networks per step between the largest and the smallest "
        "(AttentiveNAS: its picks)",
    )
    label_smoothing: float | None = Field(
        None, ge=0.0, lt=1.0, description="BigNAS, AttentiveNAS: label smoothing of the largest's loss"
    )
    pareto: Literal["best", "worst"] | None = Field(
        None,
        description="AttentiveNAS: train the best (BestUp) or the worst (WorstUp) of each pick's candidates",
    )
    candidate_score: Literal["loss", "distill"] | None = Field(
        None,
        description="AttentiveNAS: how candidates are ranked: their loss on the step's batch (the paper's), "
        "or their KL divergence to the largest's soft labels (the loss they would train on)",
    )
    target_latency_ms: float | None = Field(
        None, gt=0.0, description="dnas, rc_darts: latency budget (ms) on latency_device"
    )
    latency_device: str | None = Field(
        None,
        min_length=1,
        description="dnas, rc_darts: a device (column) of the space's latency table, e.g. pixel3 for fbnet",
    )
    target_params: float | None = Field(None, gt=0.0, description="dnas, rc_darts: parameter budget")
    target_flops: float | None = Field(
        None, gt=0.0, description="dnas, rc_darts: FLOPs budget per image (a multiply-add is 2 FLOPs)"
    )
    latency_alpha: float | None = Field(
        None, gt=0.0, description="DNAS: the factor alpha of the loss CE * alpha * log(LAT)^beta"
    )
    latency_beta: float | None = Field(
        None, gt=0.0, description="DNAS: the exponent beta of the loss CE * alpha * log(LAT)^beta"
    )

    # -- scoring sub-networks with inherited weights (SPOS search, rank correlation) ---------
    bn_batches: int = Field(4, ge=0, description="training batches to recalibrate BatchNorm before scoring")
    score_images: int = Field(1000, ge=1, description="held-out images per supernet score")

    # -- memory ----------------------------------------------------------------------------------
    checkpoint: bool | Literal["auto"] = Field(
        "auto",
        description="recompute checkpointed regions' activations in the backward pass (search cells' mixed "
        "ops, hybrid attention blocks): less memory, same gradients, one more forward of those regions; "
        "auto: on only when the memory guard finds the step would not fit the budget otherwise",
    )

    # -- speed -------------------------------------------------------------------------------------
    channels_last: bool = Field(
        True,
        description="supernet and batches in the NHWC memory layout (same math; faster convolutions and "
        "pooling on CPU and with CUDA AMP); false: the default NCHW layout",
    )

    # -- guard rails ---------------------------------------------------------------------------
    check_memory: bool = True
    memory_limit_mb: float | None = Field(None, gt=0.0, description="default: the device's free memory")
    collapse_threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="skip share of the derived normal cell that counts as collapse"
    )
    early_stop_on_collapse: bool = False
    rank_correlation: int = Field(
        0, ge=0, description="cells scored by the supernet and compared with the space's tabular benchmark"
    )
    rank_table: str | None = None
    rank_metric: str = Field(
        "cifar10-val",
        description="table column the supernet's ranking is compared with, after the search (a report: "
        "a test column only from the report allow-list)",
    )

    @field_validator("rank_metric")
    @classmethod
    def _reported_column(cls, value: str) -> str:
        # The rank correlation is computed in ``finish``, after the cell is derived, and nothing reads
        # it back: a report after the search, so a test column is allowed only from the allow-list.
        return check_report_column(value, "rank_metric")

    @model_validator(mode="after")
    def _consistent(self) -> OneShotSettings:
        if self.tau_max is not None and self.tau_min is not None and self.tau_min > self.tau_max:
            raise ConfigError(
                f"tau_min={self.tau_min} exceeds tau_max={self.tau_max}; expected tau_min <= tau_max"
            )
        if self.population is not None and self.parents is not None and self.parents > self.population:
            raise ConfigError(
                f"parents={self.parents} exceeds population={self.population}; allowed: 1..{self.population}"
            )
        if self.lr_min > self.lr:
            raise ConfigError(f"lr_min={self.lr_min} exceeds lr={self.lr}; expected lr_min <= lr")
        if (self.target_latency_ms is None) != (self.latency_device is None):
            raise ConfigError(
                f"target_latency_ms={self.target_latency_ms} and latency_device={self.latency_device!r} go "
                "together: a latency budget is for a named device"
            )
        budgets = {
            name: value
            for name in ("target_latency_ms", "target_params", "target_flops")
            if (value := getattr(self, name)) is not None
        }
        if len(budgets) > 1:
            raise ConfigError(
                " and ".join(f"{name}={value:g}" for name, value in budgets.items())
                + f" are {('two', 'three')[len(budgets) - 2]} budgets; set one"
            )
        if isinstance(self.seeds, list) and not self.seeds:
            raise ConfigError("seeds=[] is not allowed; expected a count >= 1 or a non-empty list of seeds")
        for seed in self.seeds if isinstance(self.seeds, list) else ():
            check_seed(seed, "seeds item")
        if isinstance(self.seeds, list) and len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds={self.seeds} repeats a seed; each supernet seed runs once")
        if isinstance(self.seeds, int) and self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} is not allowed; expected a count >= 1 or a list of seeds")
        return self

    def option(self, name: str, method: str | None = None) -> Any:
        """A method-specific option: its value, or (when unset) ``method``'s default for it."""
        value = getattr(self, name)
        if value is not None:
            return value
        return METHOD_SPECIFIC_DEFAULTS.get(name, {}).get(method or "", METHOD_DEFAULTS[name])

    def seed_list(self, base: int) -> list[int]:
        """The supernet seeds: ``seeds`` as a list, ``base .. base+n-1`` for a count, else ``[base]``."""
        if isinstance(self.seeds, list):
            return list(self.seeds)
        return [base + i for i in range(self.seeds or 1)]


def parse_settings(method: str, options: Mapping[str, Any] | OneShotSettings | None) -> OneShotSettings:
    """Validate ``options`` for ``method``: unknown fields, bad values and foreign options fail together."""
    if isinstance(options, OneShotSettings):
        settings = options
    else:
        try:
            settings = OneShotSettings.model_validate(dict(options or {}))
        except ValidationError as exc:
            from nas.settings.errors import format_validation_error

            raise ConfigError(
                f"invalid options for one-shot method {method!r}:\n"
                + format_validation_error(exc, OneShotSettings)
            ) from exc
    foreign = [
        f"{name} (used by {', '.join(users)})"
        for name, users in METHOD_OPTIONS.items()
        if getattr(settings, name) is not None and method not in users
    ]
    if foreign:
        raise ConfigError(f"one-shot method {method!r} does not use option(s) {', '.join(foreign)}")
    return settings


__all__ = [
    "ALPHA_METHODS",
    "BUDGET_METHODS",
    "METHOD_DEFAULTS",
    "METHOD_SPECIFIC_DEFAULTS",
    "METHOD_OPTIONS",
    "OneShotSettings",
    "parse_settings",
]
