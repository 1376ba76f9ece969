"""A hybrid CNN-transformer space in the spirit of BossNAS's HyTra space.

A chain of ``blocks`` residual blocks after a conv stem. Per block ``i`` three
decisions:

* ``b{i}.type``: ``conv`` -- a ResNet basic block (two 3x3 convs with BN, ReLU
  after the residual add) -- or ``attn`` -- a pre-norm transformer block over
  the spatial tokens (multi-head self-attention + MLP), preceded by a
  depthwise-conv positional encoding (CPVT's conditional positional encoding,
  ``x + dwconv3x3(x)``), which works at any input size without interpolating a
  position table and exports as a plain conv;
* ``b{i}.down``: whether the block starts with a stride-2 down-sampling;
* ``b{i}.width``: a width multiplier in {1, 2}.

So pure CNNs, pure transformers and every mix are members, with searchable
down-sampling positions and widths. Block ``i`` has ``base_width * 2**s *
width`` channels where ``s`` counts the down-samplings up to and including
block ``i`` (the usual doubling per resolution halving). Where a block strides
or changes channels it starts with a transition, conv (3x3 stride 2 when
down-sampling, else 1x1) + BN, as ConvNeXt's and Swin's separate down-sampling
layers do; the residual body then keeps its shape, so both block types share
one down-sampling mechanism.

Validity (``check``): *at most* ``downsamples`` blocks down-sample. "At most"
rather than "exactly" keeps the space connected under single-decision mutation
(with an exact count no single change could move a down-sampling position),
and it makes the depth of the resolution pyramid searchable too.

Attention heads: ``channels // 32`` (head width about 32), at least 1, reduced
to the nearest divisor of the channel count.

Stem: stride 4 "patchify" conv 4x4 + BN + ReLU when the input's smaller side
is at least 64 (224x224 gives 56x56 = 3,136 tokens, not 50,176), otherwise
conv 3x3 stride 1 + BN + ReLU so that 8x8 digits and 32x32 CIFAR keep their
resolution. Head: global average pool, LayerNorm, linear.

Forward passes use only shape-derived reshapes, matmul and softmax: no
data-dependent Python control flow, so models trace, script and export to
ONNX (opset 17).

String form: one token per block joined by ``-``; a token is an optional ``v``
(down-sample), ``C`` (conv) or ``A`` (attn), then the width digit, e.g.
``C1-C1-vC2-A1-vA2-A2-vA1-A1``.

Canonical key: the exact key. Every decision changes the function class (the
block type, the channel counts or where resolution halves), so no two members
are equivalent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np

from nas.core import SPACES, Architecture, ArchitectureError, ConfigError, Scalar, as_rng, positive_int
from nas.core.morphism import MorphismView
from nas.core.oneshot import OneShotView
from nas.core.space import MAX_DEPTH, MAX_WIDTH
from search_spaces.base import TorchSpace
from search_spaces.hybrid.morphisms import VIEW as MORPHISMS
from search_spaces.hybrid.oneshot import VIEW
from search_spaces.hybrid.plan import DOWNS, LETTERS, TYPES, WIDTHS, BlockPlan

if TYPE_CHECKING:
    from torch import nn

_TYPE_OF = {letter: op for op, letter in LETTERS.items()}
_TOKEN_RE = re.compile(r"^(v?)([CA])([12])$")
_TOKEN_HELP = "[v]{C|A}{1|2} ('v' = down-sample, C = conv, A = attention, digit = width), e.g. 'vA2'"


# -- the space ---------------------------------------------------------------------------------------


@SPACES.register("hybrid")
class HybridSpace(TorchSpace):
    """Hybrid CNN-transformer chains (options: ``blocks``, ``downsamples``, ``base_width``)."""

    name = "hybrid"
    #: A single-path supernet (one module per reachable block shape, SPOS) and an elastic one (BigNAS).
    oneshot_view: ClassVar[OneShotView] = VIEW
    #: Function-preserving widenings (Net2Net), for children that inherit their parent's weights.
    morphism_view: ClassVar[MorphismView] = MORPHISMS

    def __init__(self, *, blocks: int = 8, downsamples: int = 3, base_width: int = 32) -> None:
        self.blocks = positive_int(self.name, "blocks", blocks, maximum=MAX_DEPTH)
        self.downsamples = positive_int(self.name, "downsamples", downsamples, minimum=0)
        self.base_width = positive_int(self.name, "base_width", base_width, minimum=8, maximum=MAX_WIDTH)
        if self.downsamples > self.blocks:
            raise ConfigError(
                f"{self.name} option downsamples={downsamples!r} is not allowed with blocks={blocks}; "
                f"expected an integer in [0, {blocks}]"
            )
        self.block_names = tuple(f"b{i}" for i in range(self.blocks))

    @property
    def options(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "downsamples": self.downsamples, "base_width": self.base_width}

    def choices(self) -> dict[str, Sequence[Scalar]]:
        result: dict[str, Sequence[Scalar]] = {}
        for block in self.block_names:
            result[f"{block}.type"] = TYPES
            result[f"{block}.down"] = DOWNS
            result[f"{block}.width"] = WIDTHS
        return result

    def check(self, decisions: Mapping[str, Scalar]) -> None:
        downs = [b for b in self.block_names if decisions[f"{b}.down"] is True]
        if len(downs) > self.downsamples:
            raise ArchitectureError(
                f"{self.name} architecture down-samples in {len(downs)} blocks {downs}; "
                f"at most {self.downsamples} allowed"
            )

    def size(self) -> int:
        placements = sum(math.comb(self.blocks, k) for k in range(self.downsamples + 1))
        return (len(TYPES) * len(WIDTHS)) ** self.blocks * placements

    def sample(self, rng: int | np.random.Generator | None = None) -> Architecture:
        """Uniform over valid architectures without rejection (which fails for long chains).

        The number of down-samplings ``k`` is drawn with probability
        proportional to ``C(blocks, k)``, then a uniform ``k``-subset of blocks.
        """
        rng = as_rng(rng)
        counts = np.array([math.comb(self.blocks, k) for k in range(self.downsamples + 1)], dtype=float)
        k = int(rng.choice(len(counts), p=counts / counts.sum()))
        down = set(rng.choice(self.blocks, size=k, replace=False).tolist())
        decisions: dict[str, Scalar] = {}
        for i, block in enumerate(self.block_names):
            decisions[f"{block}.type"] = TYPES[int(rng.integers(len(TYPES)))]
            decisions[f"{block}.down"] = i in down
            decisions[f"{block}.width"] = WIDTHS[int(rng.integers(len(WIDTHS)))]
        return self.make(decisions)

    def plan(self, arch: Architecture) -> tuple[BlockPlan, ...]:
        """Channels and strides of every block of a valid ``arch``."""
        self.validate(arch)
        plans = []
        stage, c_in = 0, self.base_width
        for block in self.block_names:
            stride = 2 if arch[f"{block}.down"] else 1
            if stride == 2:
                stage += 1
            width = int(arch[f"{block}.width"])
            c_out = self.base_width * 2**stage * width
            plans.append(BlockPlan(block, str(arch[f"{block}.type"]), width, stride, stage, c_in, c_out))
            c_in = c_out
        return tuple(plans)

    # -- string form ------------------------------------------------------------------------------
    def parse(self, text: str) -> Architecture:
        """Parse ``C1-vA2-...`` (one token per block; whitespace is ignored)."""
        if not isinstance(text, str):
            raise ArchitectureError(f"{self.name} string form must be a str, got {type(text).__name__}")
        tokens = re.sub(r"\s+", "", text).split("-")
        if len(tokens) != self.blocks:
            raise ArchitectureError(
                f"{self.name} string {text!r} has {len(tokens)} '-'-separated block(s); "
                f"expected {self.blocks}, each {_TOKEN_HELP}"
            )
        decisions: dict[str, Scalar] = {}
        for block, token in zip(self.block_names, tokens, strict=True):
            match = _TOKEN_RE.match(token)
            if match is None:
                raise ArchitectureError(
                    f"{self.name} block {block} token {token!r} is malformed; expected {_TOKEN_HELP}"
                )
            down, letter, width = match.groups()
            decisions[f"{block}.type"] = _TYPE_OF[letter]
            decisions[f"{block}.down"] = down == "v"
            decisions[f"{block}.width"] = int(width)
        return self.make(decisions)

    def format(self, arch: Architecture) -> str:
        self.validate(arch)
        return "-".join(
            f"{'v' if arch[f'{b}.down'] else ''}{LETTERS[str(arch[f'{b}.type'])]}{arch[f'{b}.width']}"
            for b in self.block_names
        )

    # -- graph view ---------------------------------------------------------------------------------
    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        """The chain ``input -> stem -> b0 .. b{n-1} -> head -> output``.

        Block nodes carry ``op`` (conv/attn), ``width`` (the multiplier),
        ``channels``, ``stride``, ``stage`` and ``heads`` (0 for conv); ``stem`` and
        ``head`` carry ``op`` and ``channels`` (the stem's stride depends on the
        input size, see :func:`stem_stride`).
        """
        plans = self.plan(arch)
        graph = nx.DiGraph(space=self.name, **self.options)
        graph.add_node("input", op="input")
        graph.add_node("stem", op="stem", channels=self.base_width)
        for p in plans:
            graph.add_node(
                p.name,
                op=p.op,
                width=p.width,
                channels=p.c_out,
                stride=p.stride,
                stage=p.stage,
                heads=p.heads,
            )
        graph.add_node("head", op="head", channels=plans[-1].c_out)
        graph.add_node("output", op="output")
        nx.add_path(graph, ["input", "stem", *self.block_names, "head", "output"])
        return graph

    # -- model ------------------------------------------------------------------------------------------
    def network(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        from search_spaces.hybrid.model import HybridNetwork

        return HybridNetwork(self.plan(arch), self.base_width, num_classes, input_shape)


__all__ = ["HybridSpace"]
