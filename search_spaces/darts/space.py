"""The DARTS search space (Liu et al., 2019): a normal and a reduction cell.

Package layout: the vocabulary and genotype parsing in
:mod:`search_spaces.darts.genotype`, the network in :mod:`search_spaces.darts.model`,
the supernet in :mod:`search_spaces.darts.supernet`, the one-shot view in
:mod:`search_spaces.darts.oneshot`; this module is the space.

Each cell has two input nodes, ``c_{k-2}`` (index 0) and ``c_{k-1}``
(index 1), and four intermediate nodes 2..5. Intermediate node ``k`` sums two
ops, each applied to one earlier node (an index in ``0..k-1``) and chosen from
:data:`OPS`. The cell output concatenates the four intermediate nodes. This is
the space of DARTS' derived genotypes and of NAS-Bench-301.

Decisions (flat, in this order): for ``cell`` in ``normal, reduce``, for node
``k`` in 2..5: ``{cell}.n{k}.op0``, ``{cell}.n{k}.in0``, ``{cell}.n{k}.op1``,
``{cell}.n{k}.in1``. Ops are strings, inputs ints. Rule: the two inputs of a
node are distinct, as DARTS derives them (the two strongest edges from
different predecessors) and as NAS-Bench-301 defines its space; it also keeps
the cell a simple graph. :meth:`DartsSpace.size` counts *ordered* decisions:
swapping a node's two (op, input) pairs gives a different
:class:`~nas.core.Architecture` (and the same :meth:`~DartsSpace.canonical_key`).

String form: the DARTS ``Genotype`` exactly as printed by the DARTS code and
papers (the ``repr`` of its namedtuple), e.g. DARTS-V2::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

:meth:`DartsSpace.parse` also accepts ``range(2, 6)`` for the concat lists and
any whitespace. It reads the text with :func:`ast.parse` and
:func:`ast.literal_eval` on the pieces: nothing is ever evaluated.

The network is DARTS' ``NetworkCIFAR`` without the auxiliary head: a 3x3 conv
stem to ``stem_multiplier * channels`` + BN, ``cells`` cells with reduction
cells at ``cells // 3`` and ``2 * cells // 3`` that double the channels,
global average pooling and a linear classifier. Inputs at least 64 pixels on
their shorter side get the stem of DARTS' ``NetworkImageNet`` instead (three
stride-2 3x3 convs to ``channels``; ``stem_multiplier`` is then unused), so a
224x224 image reaches the cells at 28x28 as in the paper. Two deviations keep
every input size working and are identical to DARTS on even sizes and even
channel counts: :class:`FactorizedReduce` zero-pads its shifted half by one
pixel so odd sizes line up, and splits an odd channel count unevenly.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np

from nas.core import (
    SPACES,
    Architecture,
    ArchitectureError,
    Scalar,
    as_rng,
    positive_int,
)
from nas.core.oneshot import OneShotView
from nas.core.space import MAX_DEPTH, MAX_WIDTH
from search_spaces.base import TorchSpace
from search_spaces.darts.genotype import (
    CELL_TYPES,
    COMPACT_OPS,
    CONCAT,
    GENOTYPE_FIELDS,
    NODES,
    OPS,
    PARAMETER_FREE,
    Genotype,
    check_pairs,
    decision_name,
    parse_genotype,
)
from search_spaces.darts.oneshot import VIEW

if TYPE_CHECKING:
    from torch import nn


#: Longest input-to-node path, in ops (c_k -> 2 -> 3 -> 4 -> 5).
_MAX_PATH_OPS = len(NODES)
#: Path slots per (cell, input): BANANAS' sum of 7**i for i = 0..4 (slot 0, the empty path, stays 0).
_PATHS_PER_INPUT = sum(len(COMPACT_OPS) ** i for i in range(_MAX_PATH_OPS + 1))
#: Length of :meth:`DartsSpace.path_encode`: 2 cells x 2 inputs x 2,801 = 11,204.
PATH_ENCODING_SIZE = len(CELL_TYPES) * 2 * _PATHS_PER_INPUT

#: Pooling and identity map an all-zero node to zeros; convolutions do not (BN adds its shift).
_ZERO_PRESERVING = frozenset({"max_pool_3x3", "avg_pool_3x3", "skip_connect"})


def _describe(
    real: Mapping[int, Sequence[tuple[str, str]]], concat: Sequence[str], order: Sequence[int]
) -> tuple[str, ...]:
    """A cell's simplified nodes written with node ``order[i]`` labelled ``n{i}``."""
    label = {f"#{node}": f"n{i}" for i, node in enumerate(order)}
    terms = (
        f"n{i}=" + "+".join(sorted(f"{op}({label.get(src, src)})" for src, op in real[node]))
        for i, node in enumerate(order)
    )
    return (*terms, "concat=" + ",".join(sorted(label.get(ref, ref) for ref in concat)))


# -- the space ---------------------------------------------------------------------------------
@SPACES.register("darts")
class DartsSpace(TorchSpace):
    """The DARTS / NAS-Bench-301 cell space in DARTS' evaluation network.

    Options: ``cells`` (stacked cells, default 8; the paper evaluates 20),
    ``channels`` (initial channels C, default 16; the paper uses 36, at least 2
    so :class:`FactorizedReduce` can split them) and ``stem_multiplier``
    (CIFAR stem width over C, default 3).
    """

    name = "darts"
    has_path_encoding = True
    #: A cell supernet with a normal and a reduction alpha matrix.
    oneshot_view: ClassVar[OneShotView] = VIEW

    def __init__(self, *, cells: int = 8, channels: int = 16, stem_multiplier: int = 3) -> None:
        self.cells = positive_int(self.name, "cells", cells, maximum=MAX_DEPTH)
        self.channels = positive_int(self.name, "channels", channels, minimum=2, maximum=MAX_WIDTH)
        self.stem_multiplier = positive_int(self.name, "stem_multiplier", stem_multiplier, maximum=MAX_DEPTH)
        choices: dict[str, tuple[Scalar, ...]] = {}
        for cell in CELL_TYPES:
            for node in NODES:
                for slot in (0, 1):
                    choices[decision_name(cell, node, "op", slot)] = OPS
                    choices[decision_name(cell, node, "in", slot)] = tuple(range(node))
        self._choices = MappingProxyType(choices)
        self._names = tuple(choices)
        self._position = {name: i for i, name in enumerate(self._names)}

    @property
    def options(self) -> dict[str, Any]:
        return {"cells": self.cells, "channels": self.channels, "stem_multiplier": self.stem_multiplier}

    def choices(self) -> Mapping[str, Sequence[Scalar]]:
        return self._choices

    def parameter_free_ops(self) -> frozenset[Scalar]:
        return frozenset(PARAMETER_FREE)

    def zero_ops(self) -> frozenset[Scalar]:
        """``none``: a supernet candidate op only (a genotype never keeps it)."""
        return frozenset({"none"})

    def check(self, decisions: Mapping[str, Scalar]) -> None:
        for cell in CELL_TYPES:
            for node in NODES:
                first = decisions[decision_name(cell, node, "in", 0)]
                if first == decisions[decision_name(cell, node, "in", 1)]:
                    raise ArchitectureError(
                        f"DARTS {cell} cell node {node} takes input {first} twice; the two inputs of a "
                        "node must be distinct (as DARTS derives them and NAS-Bench-301 defines them)"
                    )

    def size(self) -> int:
        """Ordered decisions with distinct inputs: (8**2 * k * (k - 1)) over nodes k, squared.

        That is (64**4 * 2 * 6 * 12 * 20)**2, about 2.3e21 (NAS-Bench-301's
        oft-quoted 10**18 counts each node's two pairs as unordered and leaves
        ``none`` out).
        """
        per_cell = 1
        for node in NODES:
            per_cell *= len(OPS) ** 2 * node * (node - 1)
        return per_cell ** len(CELL_TYPES)

    # -- sampling and moves (direct, no rejection) -------------------------------------------------
    def sample(self, rng: int | np.random.Generator | None = None) -> Architecture:
        """Uniform over the space: ops uniform, the input pair uniform over distinct ordered pairs."""
        rng = as_rng(rng)
        slots = len(CELL_TYPES) * len(NODES)
        ops = rng.integers(len(OPS), size=(slots, 2))
        nodes = np.tile(np.asarray(NODES), len(CELL_TYPES))
        first = rng.integers(0, nodes)
        second = rng.integers(0, nodes - 1)
        second = second + (second >= first)  # skip the first input: uniform over the others
        decisions: list[tuple[str, Scalar]] = []
        for i, (cell, node) in enumerate(itertools.product(CELL_TYPES, NODES)):
            for slot, index in ((0, first[i]), (1, second[i])):
                decisions.append((decision_name(cell, node, "op", slot), OPS[int(ops[i, slot])]))
                decisions.append((decision_name(cell, node, "in", slot), int(index)))
        return Architecture(self.name, tuple(decisions))

    def _moves(self, arch: Architecture) -> Iterator[tuple[int, Scalar]]:
        """Every valid single-decision change of a valid ``arch``, as (position, new value)."""
        for cell in CELL_TYPES:
            for node in NODES:
                for slot in (0, 1):
                    op_name = decision_name(cell, node, "op", slot)
                    for op in OPS:
                        if op != arch[op_name]:
                            yield self._position[op_name], op
                    in_name = decision_name(cell, node, "in", slot)
                    taken = {arch[in_name], arch[decision_name(cell, node, "in", 1 - slot)]}
                    for index in range(node):
                        if index not in taken:
                            yield self._position[in_name], index

    def _moved(self, arch: Architecture, move: tuple[int, Scalar]) -> Architecture:
        position, value = move
        decisions = list(arch.decisions)
        decisions[position] = (decisions[position][0], value)
        return Architecture(self.name, tuple(decisions))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        self.validate(arch)
        return [self._moved(arch, move) for move in self._moves(arch)]

    def mutate(self, arch: Architecture, rng: int | np.random.Generator | None = None) -> Architecture:
        """One uniformly chosen valid single-decision change (the base class's distribution)."""
        rng = as_rng(rng)
        self.validate(arch)
        moves = list(self._moves(arch))
        return self._moved(arch, moves[int(rng.integers(len(moves)))])

    # -- genotype and string form -------------------------------------------------------------------
    def pairs(self, arch: Architecture, cell: str) -> list[tuple[str, int]]:
        """The eight (op, input) pairs of ``cell`` ("normal" or "reduce") in genotype order."""
        return [
            (
                str(arch[decision_name(cell, node, "op", slot)]),
                int(arch[decision_name(cell, node, "in", slot)]),
            )
            for node in NODES
            for slot in (0, 1)
        ]

    def genotype(self, arch: Architecture) -> Genotype:
        """DARTS' ``Genotype`` of ``arch`` (as used by DARTS-family code)."""
        self.validate(arch)
        return Genotype(
            normal=self.pairs(arch, "normal"),
            normal_concat=list(CONCAT),
            reduce=self.pairs(arch, "reduce"),
            reduce_concat=list(CONCAT),
        )

    def from_genotype(self, genotype: object) -> Architecture:
        """The architecture of any object with DARTS' genotype fields (e.g. DARTS' own namedtuple)."""
        decisions: dict[str, Scalar] = {}
        for cell in CELL_TYPES:
            try:
                pairs = getattr(genotype, cell)
                concat = getattr(genotype, f"{cell}_concat")
            except AttributeError as exc:
                raise ArchitectureError(
                    f"{type(genotype).__name__} is not a DARTS genotype; it needs the fields "
                    f"{', '.join(GENOTYPE_FIELDS)}"
                ) from exc
            if not isinstance(concat, Sequence) or list(concat) != list(CONCAT):
                raise ArchitectureError(
                    f"DARTS genotype {cell}_concat = {concat!r}; this space only allows {list(CONCAT)}"
                )
            for position, (op, index) in enumerate(check_pairs(cell, pairs)):
                node, slot = NODES[position // 2], position % 2
                decisions[decision_name(cell, node, "op", slot)] = op
                decisions[decision_name(cell, node, "in", slot)] = index
        return self.make(decisions)

    def parse(self, text: str) -> Architecture:
        """Parse DARTS' printed ``Genotype(...)`` (lists or ``range(2, 6)`` for the concat)."""
        return self.from_genotype(parse_genotype(text))

    def format(self, arch: Architecture) -> str:
        return repr(self.genotype(arch))

    def from_naslib_compact(self, compact: object) -> Architecture:
        """From NASLib's / BANANAS' compact form: per cell 8 ``(input, op index)`` pairs.

        Op indices refer to :data:`COMPACT_OPS` (DARTS' ops without ``none``);
        this is the key format of NAS-Bench-Suite-Zero's ``zc_nasbench301`` data.
        """
        if not (isinstance(compact, list | tuple) and len(compact) == len(CELL_TYPES)):
            raise ArchitectureError(f"NASLib compact DARTS form must be two cells, got {compact!r:.200}")
        cells = []
        for cell, pairs in zip(CELL_TYPES, compact, strict=True):
            if not isinstance(pairs, list | tuple):
                raise ArchitectureError(f"NASLib compact {cell} cell is {pairs!r:.200}; expected 8 pairs")
            converted = []
            for pair in pairs:
                if not (
                    isinstance(pair, list | tuple)
                    and len(pair) == 2
                    and type(pair[1]) is int
                    and 0 <= pair[1] < len(COMPACT_OPS)
                ):
                    raise ArchitectureError(
                        f"NASLib compact {cell} pair {pair!r} is not (input, op index 0..{len(COMPACT_OPS) - 1})"
                    )
                converted.append((COMPACT_OPS[pair[1]], pair[0]))
            cells.append(converted)
        return self.from_genotype(Genotype(cells[0], list(CONCAT), cells[1], list(CONCAT)))

    def to_naslib_compact(self, arch: Architecture) -> tuple[tuple[tuple[int, int], ...], ...]:
        """NASLib's compact form; ``none`` has no index there, so it is refused."""
        self.validate(arch)
        result = []
        for cell in CELL_TYPES:
            pairs = self.pairs(arch, cell)
            if any(op == "none" for op, _ in pairs):
                raise ArchitectureError(f"DARTS {cell} cell uses 'none', which NASLib's compact form lacks")
            result.append(tuple((index, COMPACT_OPS.index(op)) for op, index in pairs))
        return tuple(result)

    # -- graph ---------------------------------------------------------------------------------------
    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        """Both cells in one DAG.

        Nodes ``{cell}/c_k-2``, ``{cell}/c_k-1`` (``kind="input"``),
        ``{cell}/0``..``{cell}/3`` for intermediate nodes 2..5
        (``kind="intermediate"``) and ``{cell}/out`` (``kind="output"``), each
        with a ``cell`` attribute. An edge into an intermediate node carries
        its ``op`` (``none`` included) and ``slot`` (0 or 1); edges into
        ``out`` have ``op="concat"``. Distinct inputs mean no parallel edges.
        """
        self.validate(arch)
        graph = nx.DiGraph(space=self.name)
        for cell in CELL_TYPES:
            names = [f"{cell}/c_k-2", f"{cell}/c_k-1"] + [f"{cell}/{node - 2}" for node in NODES]
            for i, label in enumerate(names):
                graph.add_node(label, kind="input" if i < 2 else "intermediate", cell=cell)
            graph.add_node(f"{cell}/out", kind="output", cell=cell)
            for position, (op, index) in enumerate(self.pairs(arch, cell)):
                graph.add_edge(names[index], names[NODES[position // 2]], op=op, slot=position % 2)
            for node in CONCAT:
                graph.add_edge(names[node], f"{cell}/out", op="concat")
        return graph

    # -- identity ------------------------------------------------------------------------------------
    def _canonical_cell(self, cell: str, pairs: Sequence[tuple[str, int]]) -> str:
        """One cell's normal form (see :meth:`canonical_form`)."""
        reduction = cell == "reduce"
        refs: list[str] = ["c0", "c1"]  # what each node index stands for after simplification
        real: dict[int, list[tuple[str, str]]] = {}  # node -> its live (source ref, op) edges
        for position in range(0, len(pairs), 2):
            node = NODES[position // 2]
            edges = []
            for op, index in pairs[position : position + 2]:
                source = refs[index]
                if op == "none" or (source == "zero" and op in _ZERO_PRESERVING):
                    continue
                identity = op == "skip_connect" and not (reduction and index < 2)
                edges.append((source, "id" if identity else op))
            if not edges:
                refs.append("zero")
            elif len(edges) == 1 and edges[0][1] == "id":
                refs.append(edges[0][0])  # the node is its source, shared weights and all
            else:
                real[node] = edges
                refs.append(f"#{node}")
        concat = [refs[node] for node in CONCAT]
        # Brute force over labellings (at most 4! = 24): the smallest description is canonical.
        best = min(_describe(real, concat, order) for order in itertools.permutations(real))
        return "; ".join(best)

    def canonical_form(self, arch: Architecture) -> str:
        """A normal form of the function the network computes, shared by functionally identical cells.

        Per cell: ``none`` edges are dropped; a node with no live edge is
        ``zero``; pooling or identity of ``zero`` is dropped too (convolutions
        of zero are not: padding and BN make them non-zero); ``skip_connect``
        is ``id`` except from an input of a reduction cell (a learned
        FactorizedReduce); a node that is just ``id(x)`` *is* ``x`` (same tensor,
        so its consumers and concat slot refer to ``x``). The remaining nodes
        are unlabelled sums: each is written as the sorted multiset of its
        ``op(source)`` terms, and the labelling of nodes that gives the smallest
        description wins (brute force over at most 4! orders). The concat
        becomes a sorted multiset (a channel permutation, absorbed by the next
        1x1 convs or the classifier). Because sources are node labels, not
        expanded expressions, nodes that share a predecessor are never
        confused with nodes that use identical but separate predecessors; two
        architectures share a form iff their simplified cells are isomorphic,
        which makes them the same network up to a renaming of weights.
        """
        self.validate(arch)
        return " | ".join(
            f"{cell}: {self._canonical_cell(cell, self.pairs(arch, cell))}" for cell in CELL_TYPES
        )

    def canonical_key(self, arch: Architecture) -> str:
        digest = hashlib.blake2b(self.canonical_form(arch).encode(), digest_size=16)
        return f"{self.name}:{digest.hexdigest()}"

    # -- encodings -----------------------------------------------------------------------------------
    def path_encode(self, arch: Architecture) -> np.ndarray:
        """BANANAS' DARTS path encoding: one 0/1 slot per (cell, input, op sequence).

        A path runs from ``c_{k-2}`` or ``c_{k-1}`` through 1 to 4 ops to an
        intermediate node (every node feeds the concat, so every such path
        reaches the output). Layout as in BANANAS/NASLib (``encodings.py``):
        block ``2 * cell + input`` of 2,801 slots; inside it, the path
        ``o_0, ..., o_{L-1}`` (indices into :data:`COMPACT_OPS`) sits at
        ``sum(7**j * (o_j + 1))``, so shorter paths come first and a prefix of
        each block is a truncation to short paths. Paths through ``none``
        carry nothing and are left out. Length :data:`PATH_ENCODING_SIZE`
        (11,204) without truncation: small enough to keep whole.
        """
        self.validate(arch)
        vector = np.zeros(PATH_ENCODING_SIZE, dtype=np.float32)
        radix = len(COMPACT_OPS)
        for c, cell in enumerate(CELL_TYPES):
            pairs = self.pairs(arch, cell)
            # paths[k]: (input, slot offset within the block, length) of every path ending at node k
            paths: list[list[tuple[int, int, int]]] = [[(0, 0, 0)], [(1, 0, 0)]]
            for position in range(0, len(pairs), 2):
                ending = []
                for op, index in pairs[position : position + 2]:
                    if op == "none":
                        continue
                    digit = COMPACT_OPS.index(op) + 1
                    ending.extend(
                        (start, offset + radix**length * digit, length + 1)
                        for start, offset, length in paths[index]
                    )
                for start, offset, _ in ending:
                    vector[(2 * c + start) * _PATHS_PER_INPUT + offset] = 1.0
                paths.append(ending)
        return vector

    # -- model ---------------------------------------------------------------------------------------
    def network(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        """DARTS' evaluation network for ``arch`` (ImageNet stem from 64 pixels, see module doc)."""
        from search_spaces.darts.model import DartsNetwork

        genotype = self.genotype(arch)
        return DartsNetwork.for_genotype(
            genotype, self.channels, self.cells, self.stem_multiplier, num_classes, input_shape
        )


__all__ = ["PATH_ENCODING_SIZE", "DartsSpace"]
