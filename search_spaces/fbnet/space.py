"""FBNet: the layer-wise space of FBNet (Wu et al. 2019) as used by HW-NAS-Bench and HELP.

A fixed macro skeleton with 22 searchable layers; each layer is one of nine
blocks. Eight are FBNet's inverted-residual (MBConv) blocks ``k{kernel}_e{expansion}``
(``_g2``: grouped 1x1 convs with 2 groups and a channel shuffle), the ninth is
``skip``. The skeleton, from FBNet's paper and its reference builder:

* stem: conv 3x3 stride 2 to 16 channels + BN + ReLU;
* stages ``(layers, channels, first stride)``: (1,16,1) (4,24,2) (4,32,2)
  (4,64,2) (4,112,1) (4,184,2) (1,352,1) -- 22 layers, only a stage's first
  layer strides or changes channels;
* head: conv 1x1 to 1984 + BN + ReLU, global average pool, linear classifier.

An MBConv block is 1x1 expand (groups g) + BN + ReLU, [channel shuffle if
g=2], kxk depthwise (stride) + BN + ReLU, 1x1 project (groups g) + BN, plus a
residual add when the layer keeps stride 1 and its channel count; the middle
width is ``in_channels * expansion`` as in FBNet's ``IRFBlock``. ``skip`` is the
identity where the layer keeps shape; where it strides or changes channels it
becomes FBNet's ``Identity`` projection, conv 1x1 (stride) + BN + ReLU (FBNet's
reference code includes the ReLU, so we do too).

The string form is the 22 block names joined by ``-``, exactly the ``arch``
column of HELP's FBNet latency table, so the benchmark data parses directly.

Canonical key: a ``skip`` on a shape-keeping layer is the identity, and every
shape-keeping layer of a run of consecutive shape-keeping layers has the same
input and output shape, so a skip may move anywhere inside that run without
changing the network (the modules built are the same, in the same order). The
canonical form therefore moves the skips of each run to its end; everything
else (kernel, expansion, groups, position relative to strided layers) changes
the function and is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx

from nas.core import SPACES, Architecture, ArchitectureError, ConfigError, Scalar, UnknownOpError
from nas.core.morphism import MorphismView
from nas.core.oneshot import OneShotView
from search_spaces.base import TorchSpace
from search_spaces.fbnet.morphisms import VIEW as MORPHISMS
from search_spaces.fbnet.oneshot import VIEW
from search_spaces.fbnet.plan import (
    BLOCKS,
    HEAD_CHANNELS,
    LAYER_NAMES,
    MAX_WIDTH_MULT,
    NUM_LAYERS,
    SKIP,
    layer_plan,
    round_channels,
)

if TYPE_CHECKING:
    from torch import nn

# -- the space ----------------------------------------------------------------------------------


def check_width_mult(space: str, value: object) -> float:
    """Validate a width multiplier: a finite number in (0, MAX_WIDTH_MULT]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_WIDTH_MULT
    ):
        raise ConfigError(
            f"{space} option width_mult={value!r} is not allowed; expected a number in (0, {MAX_WIDTH_MULT:g}]"
        )
    return float(value)


@SPACES.register("fbnet")
class FBNetSpace(TorchSpace):
    """The FBNet / HW-NAS-Bench layer-wise space: 9**22 architectures.

    ``width_mult`` scales every channel count (rounded to multiples of 8, at
    least 8), e.g. 0.25 for quick tests. As in FBNet's builder the 1984-channel
    head only grows with ``width_mult > 1``, never shrinks.
    """

    name = "fbnet"
    #: A single-path supernet (every block per layer, SPOS) and an elastic one (nested weights, BigNAS).
    oneshot_view: ClassVar[OneShotView] = VIEW
    #: Function-preserving block changes (deepen, widen, kernel, ungroup) for weight inheritance.
    morphism_view: ClassVar[MorphismView] = MORPHISMS

    def __init__(self, *, width_mult: float = 1.0) -> None:
        self.width_mult = check_width_mult(self.name, width_mult)
        self.plans = layer_plan(self.width_mult)
        self.head_channels = round_channels(HEAD_CHANNELS * max(1.0, self.width_mult))

    @property
    def options(self) -> dict[str, Any]:
        return {"width_mult": self.width_mult}

    def choices(self) -> dict[str, Sequence[Scalar]]:
        return {name: BLOCKS for name in LAYER_NAMES}

    # -- string form ----------------------------------------------------------------------------
    def parse(self, text: str) -> Architecture:
        """Parse the 22 block names joined by ``-`` (HELP's ``arch`` column); outer whitespace is ignored."""
        if not isinstance(text, str):
            raise ArchitectureError(f"fbnet string form must be a str, got {type(text).__name__}")
        names = text.strip().split("-")
        if len(names) != NUM_LAYERS:
            raise ArchitectureError(
                f"fbnet string {text!r} has {len(names)} '-'-separated block(s); expected {NUM_LAYERS}, "
                f"each one of {', '.join(BLOCKS)}"
            )
        for layer, name in zip(LAYER_NAMES, names, strict=True):
            if name not in BLOCKS:
                if not name:
                    raise ArchitectureError(f"fbnet string {text!r} has an empty block name at {layer}")
                raise UnknownOpError(f"fbnet block (at {layer})", name, BLOCKS)
        return self.make(dict(zip(LAYER_NAMES, names, strict=True)))

    def format(self, arch: Architecture) -> str:
        self.validate(arch)
        return "-".join(str(arch[name]) for name in LAYER_NAMES)

    # -- graph view --------------------------------------------------------------------------------
    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        """The layer chain ``input -> stem -> layer00 .. layer21 -> head -> output``.

        Nodes carry ``op`` (block name, or ``input``/``stem``/``head``/``output``),
        ``stage`` (-1 for stem and head), ``channels`` (output channels) and ``stride``.
        """
        self.validate(arch)
        graph = nx.DiGraph(space=self.name, width_mult=self.width_mult)
        graph.add_node("input", op="input")
        graph.add_node("stem", op="stem", stage=-1, channels=self.plans[0].c_in, stride=2)
        for plan in self.plans:
            graph.add_node(
                plan.name, op=arch[plan.name], stage=plan.stage, channels=plan.c_out, stride=plan.stride
            )
        graph.add_node("head", op="head", stage=-1, channels=self.head_channels, stride=1)
        graph.add_node("output", op="output")
        nx.add_path(graph, ["input", "stem", *LAYER_NAMES, "head", "output"])
        return graph

    # -- identity -------------------------------------------------------------------------------------
    def canonical(self, arch: Architecture) -> Architecture:
        """The representative of ``arch``'s class: skips moved to the end of each shape-keeping run."""
        self.validate(arch)
        blocks = [str(arch[name]) for name in LAYER_NAMES]
        i = 0
        while i < NUM_LAYERS:
            if not self.plans[i].keeps_shape:
                i += 1
                continue
            end = i
            while end < NUM_LAYERS and self.plans[end].keeps_shape:
                end += 1
            run = blocks[i:end]
            kept = [b for b in run if b != SKIP]
            blocks[i:end] = kept + [SKIP] * (len(run) - len(kept))
            i = end
        return self.make(dict(zip(LAYER_NAMES, blocks, strict=True)))

    def canonical_key(self, arch: Architecture) -> str:
        return self.canonical(arch).key

    # -- model --------------------------------------------------------------------------------------------
    def network(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        """The network; any input size works (strides bottom out at 1x1 on tiny inputs)."""
        from search_spaces.fbnet.model import FBNetNetwork, block_module

        blocks = {name: str(arch[name]) for name in LAYER_NAMES}
        return FBNetNetwork(
            lambda plan: block_module(blocks[plan.name], plan),
            self.plans,
            self.head_channels,
            num_classes,
            input_shape[0],
        )


__all__ = ["FBNetSpace", "check_width_mult"]
