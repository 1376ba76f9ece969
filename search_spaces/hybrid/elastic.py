"""The hybrid space's elastic supernet: per block one widest conv body and one widest attention body.

How the decisions of a block map onto shared weights (the elastic layers of
:mod:`nas.supernet.elastic`):

* ``width``, and the channel counts the down-sampling positions imply: block
  ``i`` has at most ``base_width * 2**min(i + 1, downsamples) * 2`` channels
  (every down-sampling so far, width 2). Every sub-network's block ``i`` runs
  the *first* ``c`` of them: the first rows and columns of each conv and
  linear weight, the first entries of each norm, the first heads of the
  attention (heads are about 32 channels wide, see
  :func:`~search_spaces.hybrid.plan.num_heads`, so a narrower attention's heads
  are the wider one's first heads), the first ``4 c`` hidden units of the MLP.
  The classifier reads the first channels of the widest final width;
* ``type``: a conv body and an attention body per block, each elastic in
  width. They compute different things (a 3x3 conv pair against token mixing
  by attention) with differently shaped weights, so neither nests in the
  other: the type is a single-path choice between the two, as FBNet's
  projection ``skip`` is a second candidate beside its elastic block;
* ``down``: where a block strides, its transition is the stride-2 3x3 conv +
  BN; where it only changes width, the 1x1 conv + BN; otherwise none --
  exactly the stand-alone block's transition. Each is elastic in both widths
  and as wide as its widest use in the space (:func:`reachable`). The two
  transitions keep separate weights: a down-sampling conv and a width
  projection serve different inputs (and different BatchNorm statistics), so
  tying the projection to the down-sampler's centre tap would cost both.

The space has no kernel-size, expansion or depth decisions (its depth is the
``blocks`` option), so nothing here nests kernels or skips blocks; those are
FBNet's (:mod:`search_spaces.fbnet.elastic`).

:meth:`HybridElasticSupernet.extract` returns the space's stand-alone network
(``space.network``) loaded, strictly, with copies of the slices the supernet
runs; the attention of the supernet uses ``scaled_dot_product_attention``, the
stand-alone one plain matmul and softmax (which export everywhere): the same
function, equal within float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from nas.core.architecture import Architecture, Scalar
from nas.supernet.elastic import (
    ElasticConvBn,
    ElasticLinear,
    ElasticSupernet,
    norm_state,
    prefixed,
    sliced_layer_norm,
)
from search_spaces.hybrid.model import make_stem
from search_spaces.hybrid.morphisms import has_transition
from search_spaces.hybrid.plan import DOWNS, MLP_RATIO, TYPES, WIDTHS, BlockPlan, num_heads

if TYPE_CHECKING:
    from search_spaces.hybrid.space import HybridSpace

State = dict[str, torch.Tensor]


def parameter_count(state: State) -> int:
    """The weights (not the BatchNorm statistics) of a stand-alone module's ``state``."""
    return sum(v.numel() for k, v in state.items() if k.endswith(("weight", "bias")))


class ElasticConvBody(nn.Module):
    """The ResNet basic block's body (two 3x3 conv + BN) of the widest channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.ModuleList([ElasticConvBn(channels, channels, 3) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.relu(x + self.body[1](F.relu(self.body[0](x, c)), c))

    def state(self, c: int) -> State:
        """The stand-alone :class:`~search_spaces.hybrid.model.ConvBlock`'s ``state_dict`` for ``c`` channels."""
        return {
            **prefixed("body.0.", self.body[0].state(c, c)),
            **prefixed("body.1.", self.body[1].state(c, c)),
        }


class ElasticAttentionBody(nn.Module):
    """The transformer block (positional dwconv, attention, MLP) of the widest channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pos = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = nn.ModuleDict(
            {"qkv": ElasticLinear(channels, channels, parts=3), "proj": ElasticLinear(channels, channels)}
        )
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            ElasticLinear(channels, MLP_RATIO * channels),
            nn.GELU(),
            ElasticLinear(MLP_RATIO * channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x + F.conv2d(x, self.pos.weight[:c], self.pos.bias[:c], padding=1, groups=c)  # type: ignore[index]
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attend(sliced_layer_norm(self.norm1, tokens))
        hidden = self.mlp[1](self.mlp[0](sliced_layer_norm(self.norm2, tokens), MLP_RATIO * c))
        tokens = tokens + self.mlp[2](hidden, c)
        return tokens.transpose(1, 2).reshape(b, c, h, w)

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        heads = num_heads(c)
        qkv = self.attn["qkv"](tokens, c).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.attn["proj"](out.transpose(1, 2).reshape(b, n, c), c)

    def state(self, c: int) -> State:
        """The stand-alone :class:`~search_spaces.hybrid.model.AttentionBlock`'s ``state_dict`` for ``c``."""
        return {
            "pos.weight": self.pos.weight.detach()[:c],
            "pos.bias": self.pos.bias.detach()[:c],  # type: ignore[union-attr]
            **prefixed("norm1.", norm_state(self.norm1, c)),
            **prefixed("attn.qkv.", self.attn["qkv"].state(c, c)),
            **prefixed("attn.proj.", self.attn["proj"].state(c, c)),
            **prefixed("norm2.", norm_state(self.norm2, c)),
            **prefixed("mlp.0.", self.mlp[0].state(c, MLP_RATIO * c)),
            **prefixed("mlp.2.", self.mlp[2].state(MLP_RATIO * c, c)),
        }


def options(space: HybridSpace, name: str, downs: int, c_in: int) -> list[BlockPlan]:
    """Every plan block ``name`` can take after ``downs`` down-samplings, with ``c_in`` input channels."""
    plans = []
    for down in DOWNS:
        stage = downs + int(down)
        if stage > space.downsamples:
            continue
        for width in WIDTHS:
            c_out = space.base_width * 2**stage * width
            plans.extend(BlockPlan(name, op, width, 2 if down else 1, stage, c_in, c_out) for op in TYPES)
    return plans


def reachable(space: HybridSpace) -> list[list[BlockPlan]]:
    """Per block, every plan some architecture of the space gives it (what its weights must cover)."""
    states, result = {(0, space.base_width)}, []
    for name in space.block_names:
        plans = [plan for downs, c_in in sorted(states) for plan in options(space, name, downs, c_in)]
        result.append(plans)
        states = {(plan.stage, plan.c_out) for plan in plans}
    return result


def cheapest(
    space: HybridSpace,
    block_cost: Callable[[BlockPlan], float],
    head_cost: Callable[[int, int], float],
) -> tuple[Architecture, float]:
    """The architecture minimising the sum of its blocks' ``block_cost`` and ``head_cost(stage, width)``, exactly.

    By dynamic programming: a block's cost may depend on its own decisions and
    on what it receives, which depends on the earlier blocks only through
    (down-samplings so far, previous width), the states of the programme. So
    both the largest and smallest supernet paths (cost: minus or plus the
    weights) and the fastest sub-network of a context latency table (cost: the
    table's entries) are found exactly without enumerating the space. Ties go
    to the first option in the space's choice order.
    """
    Partial = tuple[float, dict[str, Scalar]]  # cost so far, decisions so far
    frontier: dict[tuple[int, int], Partial] = {(0, space.base_width): (0.0, {})}
    for name in space.block_names:
        found: dict[tuple[int, int], list[Partial]] = {}
        for (downs, c_in), (cost, decisions) in frontier.items():
            for plan in options(space, name, downs, c_in):
                chosen = {
                    f"{name}.type": plan.op,
                    f"{name}.down": plan.stride == 2,
                    f"{name}.width": plan.width,
                }
                found.setdefault((plan.stage, plan.c_out), []).append(
                    (cost + block_cost(plan), {**decisions, **chosen})
                )
        frontier = {key: min(partials, key=lambda p: p[0]) for key, partials in found.items()}
    total, decisions = min(
        ((cost + head_cost(stage, c), d) for (stage, c), (cost, d) in frontier.items()), key=lambda p: p[0]
    )
    return space.make(decisions), total


def transition_kind(plan: BlockPlan) -> str | None:
    """``down`` (3x3 stride 2), ``proj`` (1x1, a width change) or None: the stand-alone block's transition."""
    if not has_transition(plan.c_in, plan.c_out, plan.stride):
        return None
    return "down" if plan.stride == 2 else "proj"


class ElasticHybridBlock(nn.Module):
    """One block position: its transitions and its two bodies, each as wide as its widest reachable use."""

    def __init__(self, plans: list[BlockPlan]) -> None:
        super().__init__()
        transitions = {}
        for kind, kernel, stride in (("proj", 1, 1), ("down", 3, 2)):
            uses = [p for p in plans if transition_kind(p) == kind]
            if uses:
                c_in, c_out = max(p.c_in for p in uses), max(p.c_out for p in uses)
                transitions[kind] = ElasticConvBn(c_in, c_out, kernel, stride=stride)
        self.transitions = nn.ModuleDict(transitions)
        c = max(p.c_out for p in plans)
        self.bodies = nn.ModuleDict({"conv": ElasticConvBody(c), "attn": ElasticAttentionBody(c)})

    def transition(self, plan: BlockPlan) -> ElasticConvBn | None:
        kind = transition_kind(plan)
        return None if kind is None else self.transitions[kind]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, plan: BlockPlan) -> torch.Tensor:
        transition = self.transition(plan)
        if transition is not None:
            x = transition(x, plan.c_out)
        return self.bodies[plan.op](x)

    def state(self, plan: BlockPlan) -> State:
        """The ``state_dict`` of ``model.block_module(plan)``: views of this block's tensors."""
        body = self.bodies[plan.op].state(plan.c_out)
        transition = self.transition(plan)
        if transition is None:
            return body
        return {**prefixed("transition.", transition.state(plan.c_in, plan.c_out)), **prefixed("body.", body)}


class HybridElasticSupernet(ElasticSupernet):
    """The stem, one :class:`ElasticHybridBlock` per block and a width-elastic head (module docstring)."""

    def __init__(self, space: HybridSpace, num_classes: int, input_shape: tuple[int, int, int]) -> None:
        super().__init__(space)
        self.num_classes, self.input_shape = num_classes, input_shape
        self.stem = make_stem(input_shape, space.base_width)
        plans = reachable(space)
        self.blocks = nn.ModuleDict(
            (name, ElasticHybridBlock(block_plans))
            for name, block_plans in zip(space.block_names, plans, strict=True)
        )
        widest = max(p.c_out for p in plans[-1])
        self.norm = nn.LayerNorm(widest)
        self.classifier = ElasticLinear(widest, num_classes)

    # -- the sub-networks ----------------------------------------------------------------------------
    def largest(self) -> Architecture:
        """The sub-network with the most weights (conv bodies, width 2, down-sampling early)."""
        return self._extreme(sign=1)

    def smallest(self) -> Architecture:
        """The sub-network with the fewest weights (attention bodies, width 1, no down-sampling)."""
        return self._extreme(sign=-1)

    def _extreme(self, sign: int) -> Architecture:
        """The architecture with the most (``sign=1``) or fewest (``-1``) weights, exactly (:func:`cheapest`)."""
        arch, _ = cheapest(
            self.space,  # type: ignore[arg-type]
            lambda plan: -sign * parameter_count(self.blocks[plan.name].state(plan)),
            lambda stage, c: -sign * parameter_count(self.head_state(c)),
        )
        return arch

    def residual_norms(self) -> list[nn.BatchNorm2d]:
        """The last BatchNorm of every conv body (the attention bodies end in a linear layer, no BN)."""
        return [block.bodies["conv"].body[1].bn for block in self.blocks.values()]

    # -- running one ---------------------------------------------------------------------------------
    def forward_arch(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        plans = self.space.plan(arch)  # type: ignore[attr-defined]  # validates
        x = self.stem(x)
        for plan in plans:
            x = self.blocks[plan.name](x, plan)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(sliced_layer_norm(self.norm, x), self.num_classes)

    def head_state(self, c: int) -> State:
        return {
            **prefixed("norm.", norm_state(self.norm, c)),
            **prefixed("classifier.", self.classifier.state(c, self.num_classes)),
        }

    def state(self, arch: Architecture) -> State:
        """The ``state_dict`` of ``arch``'s stand-alone network: views (and, for attention's qkv, a
        concatenation of views) of the supernet's tensors."""
        plans = self.space.plan(arch)  # type: ignore[attr-defined]
        state = prefixed("stem.", self.stem.state_dict())
        for plan in plans:
            state.update(prefixed(f"blocks.{plan.name}.", self.blocks[plan.name].state(plan)))
        return {**state, **self.head_state(plans[-1].c_out)}

    def extract(self, arch: Architecture) -> nn.Module:
        """``arch``'s stand-alone network holding copies of the supernet's slices (loaded strictly)."""
        with torch.random.fork_rng(devices=[]):  # building the network must not move the global generator
            net = self.space.network(arch, self.num_classes, self.input_shape)  # type: ignore[attr-defined]
        net.load_state_dict(self.state(arch))
        net.to(self.classifier.weight.device)
        net.train(self.training)
        return net


__all__ = [
    "ElasticAttentionBody",
    "ElasticConvBody",
    "ElasticHybridBlock",
    "HybridElasticSupernet",
    "cheapest",
    "options",
    "reachable",
    "transition_kind",
]
