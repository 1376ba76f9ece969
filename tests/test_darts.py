"""DARTS space facts: published genotypes, paper parameter counts, bad input, canonical key."""

from __future__ import annotations

import ast
import collections
import itertools
import json
import re

import networkx as nx
import numpy as np
import pytest
import torch

from nas.core import ArchitectureError, ConfigError, SearchSpace, UnknownNameError, UnknownOpError
from search_spaces import get_space
from search_spaces.darts import COMPACT_OPS, NODES, OPS, PATH_ENCODING_SIZE, DartsSpace
from search_spaces.darts.model import Cell, FactorizedReduce

# Published genotypes, verbatim from the authors' repositories (quark0/darts via its
# PC-DARTS and P-DARTS copies, yuhuixu1993/PC-DARTS, chenxin061/pdarts): spacing included.
DARTS_V1 = "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
DARTS_V2 = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
PC_DARTS_CIFAR = "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
PC_DARTS_IMAGE = "Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))"
PDARTS = "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))"
PUBLISHED = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "PC_DARTS_cifar": PC_DARTS_CIFAR,
    "PC_DARTS_image": PC_DARTS_IMAGE,
    "PDARTS": PDARTS,
}

SMALL = DartsSpace(cells=5, channels=4)


def normalised(text: str) -> str:
    """The printed form without whitespace, with ``range(2, 6)`` written as the list it is."""
    return re.sub(r"\s+", "", text).replace("range(2,6)", "[2,3,4,5]")


def pairs_of(text: str, cell: str) -> list[tuple[str, int]]:
    return SMALL.pairs(SMALL.parse(text), cell)


def with_cell(base: str, cell: str, pairs: list[tuple[str, int]]):
    """``base`` with one cell's pairs replaced, through the public genotype API."""
    genotype = SMALL.genotype(SMALL.parse(base))
    return SMALL.from_genotype(genotype._replace(**{cell: pairs}))


# -- string form ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotypes_parse_and_round_trip(name: str) -> None:
    text = PUBLISHED[name]
    arch = SMALL.parse(text)
    printed = SMALL.format(arch)
    assert normalised(printed) == normalised(text)
    assert SMALL.parse(printed) == arch
    call = ast.parse(text, mode="eval").body
    published = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg in ("normal", "reduce")}
    assert SMALL.pairs(arch, "normal") == published["normal"]
    assert SMALL.pairs(arch, "reduce") == published["reduce"]


def test_darts_v2_prints_exactly_as_published() -> None:
    assert SMALL.format(SMALL.parse(DARTS_V2)) == DARTS_V2
    assert SMALL.format(SMALL.parse(DARTS_V1)) == DARTS_V1


def test_whitespace_and_layout_variations() -> None:
    arch = SMALL.parse(DARTS_V2)
    spread = DARTS_V2.replace(", ", " ,\n    ").replace("(", "( ").replace("=", " = ")
    assert SMALL.parse("\n  " + spread + "  \n") == arch
    positional = "Genotype(" + ", ".join(
        str(value)
        for value in (
            SMALL.pairs(arch, "normal"),
            [2, 3, 4, 5],
            SMALL.pairs(arch, "reduce"),
            "range(2, 6)",
        )
    )
    assert SMALL.parse(positional + ")") == arch


def test_decision_names_and_choices() -> None:
    arch = SMALL.parse(DARTS_V2)
    names = list(arch)
    assert names[:8] == [
        "normal.n2.op0",
        "normal.n2.in0",
        "normal.n2.op1",
        "normal.n2.in1",
        "normal.n3.op0",
        "normal.n3.in0",
        "normal.n3.op1",
        "normal.n3.in1",
    ]
    assert names[16] == "reduce.n2.op0" and len(names) == 32
    assert arch["normal.n5.op1"] == "dil_conv_3x3" and arch["normal.n5.in1"] == 2
    choices = SMALL.choices()
    assert list(choices["reduce.n5.in0"]) == [0, 1, 2, 3, 4]
    assert list(choices["normal.n3.op1"]) == list(OPS)


def test_from_genotype_accepts_darts_namedtuple() -> None:
    genotype_type = collections.namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    genotype = genotype_type(
        normal=pairs_of(PDARTS, "normal"),
        normal_concat=range(2, 6),
        reduce=pairs_of(PDARTS, "reduce"),
        reduce_concat=range(2, 6),
    )
    assert SMALL.from_genotype(genotype) == SMALL.parse(PDARTS)
    with pytest.raises(ArchitectureError, match="fields"):
        SMALL.from_genotype(object())


BAD_TEXTS = {
    "empty": ("", "malformed"),
    "unclosed": ("Genotype(normal=[", "malformed"),
    "other call": (DARTS_V2.replace("Genotype(", "Genome(", 1), "Genotype"),
    "not a call": ("[('sep_conv_3x3', 0)]", "Genotype"),
    "missing field": (DARTS_V2.split(", reduce=")[0] + ")", "lacks"),
    "unknown field": (DARTS_V2[:-1] + ", extra=1)", "extra"),
    "field twice": (DARTS_V2[:-1] + ", normal=[])", "twice"),
    "seven pairs": (DARTS_V2.replace("[('sep_conv_3x3', 0), ", "[", 1), "7"),
    "pair not a pair": (DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0, 1)", 1), "pair"),
    "forward reference": (DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 2)", 1), "cycle"),
    "negative input": (DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', -1)", 1), "0..1"),
    "float input": (DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0.0)", 1), "0..1"),
    "bool input": (DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', False)", 1), "0..1"),
    "same input twice": (DARTS_V2.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1), "node 2"),
    "short concat": (
        DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4]"),
        r"\[2, 3, 4\]",
    ),
    "short range": (PDARTS.replace("range(2, 6)", "range(2, 5)", 1), "range"),
    "huge range": (PDARTS.replace("range(2, 6)", "range(0, 10**18)", 1), "literal"),
    "float concat": (DARTS_V2.replace("[2, 3, 4, 5]", "[2.0, 3, 4, 5]", 1), "integers"),
    "call inside": (DARTS_V2.replace("[2, 3, 4, 5]", "print('parsed')", 1), "literal"),
    "too long": (DARTS_V2 + " " * 20_000, "limit"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEXTS))
def test_bad_genotype_text_is_rejected_clearly(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    text, message = BAD_TEXTS[case]
    with pytest.raises(ArchitectureError, match=message):
        SMALL.parse(text)
    assert capsys.readouterr().out == ""  # nothing in the text was ever executed


def test_unknown_op_names_close_matches() -> None:
    text = DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x4', 2)")
    with pytest.raises(UnknownOpError, match="node 5") as info:
        SMALL.parse(text)
    assert isinstance(info.value, ArchitectureError) and isinstance(info.value, UnknownNameError)
    assert "Did you mean 'dil_conv_3x3'" in str(info.value)
    assert "sep_conv_5x5" in str(info.value)  # the allowed ops are listed


def test_non_string_text_rejected() -> None:
    with pytest.raises(ArchitectureError, match="str"):
        SMALL.parse(b"Genotype()")  # type: ignore[arg-type]


def test_duplicate_inputs_rejected_by_validate() -> None:
    arch = SMALL.parse(DARTS_V2)
    with pytest.raises(ArchitectureError, match="reduce cell node 4 takes input 1 twice"):
        SMALL.validate(arch.replace(**{"reduce.n4.in1": 1, "reduce.n4.in0": 1}))


def test_options_are_validated() -> None:
    space = get_space("darts", cells=3, channels=6, stem_multiplier=2)
    assert space.options == {"cells": 3, "channels": 6, "stem_multiplier": 2}
    for bad in ({"channels": 1}, {"cells": 0}, {"stem_multiplier": True}, {"channels": 2.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            DartsSpace(**bad)  # type: ignore[arg-type]


# -- size, sampling, moves -------------------------------------------------------------------------
def test_size_counts_ordered_decisions_with_distinct_inputs() -> None:
    per_cell = 1
    for node in NODES:
        ops = SMALL.choices()[f"normal.n{node}.op0"]
        inputs = SMALL.choices()[f"normal.n{node}.in0"]
        per_cell *= sum(a != b for _, a, _, b in itertools.product(ops, inputs, ops, inputs))
    assert SMALL.size() == per_cell**2 == (64**4 * 2 * 6 * 12 * 20) ** 2


def test_sampled_input_pairs_are_uniform() -> None:
    rng = np.random.default_rng(0)
    counts = collections.Counter()
    draws = 3_000
    for _ in range(draws):
        arch = SMALL.sample(rng)
        counts[(arch["normal.n3.in0"], arch["normal.n3.in1"])] += 1
    assert set(counts) == {(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)}
    assert all(abs(c - draws / 6) < 5 * (draws / 6) ** 0.5 for c in counts.values())


def test_neighbours_match_generic_definition() -> None:
    rng = np.random.default_rng(1)
    for _ in range(3):
        arch = SMALL.sample(rng)
        fast = SMALL.neighbours(arch)
        assert set(fast) == set(SearchSpace.neighbours(SMALL, arch))
        assert len(fast) == len(set(fast)) == 16 * 7 + 2 * 2 * (0 + 1 + 2 + 3)
        child = SMALL.mutate(arch, rng)
        assert child in set(fast)


# -- network -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32)])
def test_published_genotypes_build_and_run(name: str, input_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = SMALL.build(SMALL.parse(PUBLISHED[name]), num_classes=10, input_shape=input_shape)
    out = model(torch.randn(2, *input_shape))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert not model.imagenet_stem


@pytest.mark.parametrize("input_shape", [(3, 224, 224), (3, 65, 67), (1, 7, 9), (3, 33, 31), (2, 1, 1)])
def test_any_input_size_runs(input_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    space = DartsSpace(cells=3, channels=5)  # odd channels too
    model = space.build(space.parse(PC_DARTS_CIFAR), num_classes=3, input_shape=input_shape)
    assert model.imagenet_stem == (min(input_shape[1:]) >= 64)
    out = model(torch.randn(2, *input_shape))
    assert out.shape == (2, 3)
    out.sum().backward()


def test_factorized_reduce_matches_darts_crop_on_even_sizes() -> None:
    torch.manual_seed(0)
    reduce = FactorizedReduce(3, 6).eval()
    x = torch.randn(2, 3, 8, 10)
    relu = torch.relu(x)
    darts = reduce.bn(torch.cat([reduce.conv_1(relu), reduce.conv_2(relu[:, :, 1:, 1:])], dim=1))
    assert torch.equal(reduce(x), darts)
    assert FactorizedReduce(3, 5)(torch.randn(2, 3, 7, 5)).shape == (2, 5, 4, 3)


# Paper figures (CIFAR-10: 20 cells, C=36; ImageNet mobile: 14 cells, C=48, 1000 classes),
# parameters without the auxiliary head, as the papers count them.
PAPER_PARAMS = [
    ("DARTS_V2", (3, 32, 32), 10, 20, 36, 3.3e6),  # Liu et al. 2019, Table 1 (second order)
    ("PC_DARTS_cifar", (3, 32, 32), 10, 20, 36, 3.6e6),  # Xu et al. 2020, Table 1
    ("PDARTS", (3, 32, 32), 10, 20, 36, 3.4e6),  # Chen et al. 2019, Table 1
    ("DARTS_V2", (3, 224, 224), 1000, 14, 48, 4.7e6),  # Liu et al. 2019, Table 3
    ("PC_DARTS_image", (3, 224, 224), 1000, 14, 48, 5.3e6),  # Xu et al. 2020, Table 3
]


@pytest.mark.parametrize(("name", "shape", "classes", "cells", "channels", "paper"), PAPER_PARAMS)
def test_parameter_counts_match_papers(
    name: str, shape: tuple[int, int, int], classes: int, cells: int, channels: int, paper: float
) -> None:
    space = DartsSpace(cells=cells, channels=channels)
    model = space.build(space.parse(PUBLISHED[name]), num_classes=classes, input_shape=shape)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params - paper) < 0.1e6, params


# -- graph and encodings --------------------------------------------------------------------------------
def test_graph_has_both_cells_as_a_dag() -> None:
    arch = SMALL.parse(DARTS_V2)
    graph = SMALL.to_graph(arch)
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.number_of_nodes() == 14 and graph.number_of_edges() == 2 * (8 + 4)
    assert graph.nodes["reduce/c_k-1"] == {"kind": "input", "cell": "reduce"}
    assert graph.nodes["normal/3"]["kind"] == "intermediate"
    assert graph.edges["normal/0", "normal/3"]["op"] == "dil_conv_3x3"  # node 5 <- node 2
    assert graph.edges["normal/c_k-2", "normal/2"]["op"] == "skip_connect"
    assert graph.edges["reduce/2", "reduce/out"]["op"] == "concat"
    assert graph.in_degree("normal/out") == 4


def op_paths(space: DartsSpace, arch) -> set[tuple[str, str, tuple[str, ...]]]:
    """Every (cell, input, op sequence) path of the graph view, skipping ``none``."""
    graph = space.to_graph(arch)
    found = set()
    for cell in ("normal", "reduce"):
        for source in ("c_k-2", "c_k-1"):
            for target in range(4):
                for path in nx.all_simple_paths(graph, f"{cell}/{source}", f"{cell}/{target}"):
                    ops = tuple(graph.edges[u, v]["op"] for u, v in itertools.pairwise(path))
                    if "none" not in ops:
                        found.add((cell, source, ops))
    return found


def test_path_encoding_has_one_bit_per_distinct_path() -> None:
    rng = np.random.default_rng(2)
    for arch in [SMALL.parse(DARTS_V2), *(SMALL.sample(rng) for _ in range(10))]:
        vector = SMALL.path_encode(arch)
        assert vector.shape == (PATH_ENCODING_SIZE,) == (11_204,) and vector.dtype == np.float32
        assert set(np.unique(vector)) <= {0.0, 1.0}
        assert int(vector.sum()) == len(op_paths(SMALL, arch))


def test_path_encoding_layout_is_bananas() -> None:
    vector = SMALL.path_encode(SMALL.parse(DARTS_V2))
    block = PATH_ENCODING_SIZE // 4
    sep3 = COMPACT_OPS.index("sep_conv_3x3") + 1
    skip = COMPACT_OPS.index("skip_connect") + 1
    dil3 = COMPACT_OPS.index("dil_conv_3x3") + 1
    assert vector[sep3] == 1  # normal, c_k-2 -> sep_conv_3x3 -> node 2
    assert vector[block + sep3 + 7 * dil3] == 1  # normal, c_k-1 -> sep -> node 2 -> dil -> node 5
    assert vector[2 * block + skip] == 0  # reduce: no skip_connect straight from c_k-2
    assert vector[0] == vector[block] == 0  # the empty path has a slot but never a bit


# -- canonical key ------------------------------------------------------------------------------------------
def relabel(pairs: list[tuple[str, int]], order: tuple[int, ...], swapped: frozenset[int]):
    """Move old node ``order[i]`` to node ``NODES[i]``, exchanging the two pairs of ``swapped`` new nodes.

    Returns the new pairs and, for each new pair, the position of the old pair it came from.
    """
    new_index = {0: 0, 1: 1} | {old: NODES[i] for i, old in enumerate(order)}
    result, sources = [], []
    for i, old in enumerate(order):
        for slot in (1, 0) if NODES[i] in swapped else (0, 1):
            op, index = pairs[2 * (old - 2) + slot]
            result.append((op, new_index[index]))
            sources.append(2 * (old - 2) + slot)
    return result, sources


def cell_output(pairs, reduction: bool = False, template: Cell | None = None, sources=None):
    """A cell's output on fixed input, optionally with weights copied from ``template``."""
    torch.manual_seed(0)
    cell = Cell(pairs, 4, 4, 4, reduction=reduction, reduction_prev=False).eval()
    if template is not None:
        cell.preprocess0.load_state_dict(template.preprocess0.state_dict())
        cell.preprocess1.load_state_dict(template.preprocess1.state_dict())
        for position, source in enumerate(sources or range(len(pairs))):
            cell.ops[position].load_state_dict(template.ops[source].state_dict())
    generator = torch.Generator().manual_seed(1)
    s0, s1 = (torch.randn(2, 4, 6, 6, generator=generator) for _ in range(2))
    with torch.no_grad():
        return cell, cell(s0, s1)


def blocks(output: torch.Tensor) -> list[torch.Tensor]:
    return list(output.split(4, dim=1))


def test_relabelled_cell_has_same_key_and_computes_same_function() -> None:
    normal = pairs_of(DARTS_V2, "normal")
    # Old nodes 4, 2, 3, 5 become 2, 3, 4, 5 (node 5 now reads node 3); pairs of 2 and 5 swapped.
    pairs, sources = relabel(normal, (4, 2, 3, 5), frozenset({2, 5}))
    assert pairs[6:] == [("dil_conv_3x3", 3), ("skip_connect", 0)]
    moved = with_cell(DARTS_V2, "normal", pairs)
    original = SMALL.parse(DARTS_V2)
    assert moved.key != original.key
    assert SMALL.canonical_key(moved) == SMALL.canonical_key(original)

    template, out_a = cell_output(normal)
    _, out_b = cell_output(pairs, template=template, sources=sources)
    permutation = [NODES.index(old) for old in (4, 2, 3, 5)]
    for new_block, old in zip(blocks(out_b), permutation, strict=True):
        assert torch.allclose(new_block, blocks(out_a)[old])


def test_random_relabellings_keep_the_key() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        arch = SMALL.sample(rng)
        key = SMALL.canonical_key(arch)
        genotype = SMALL.genotype(arch)
        changes = {}
        for cell in ("normal", "reduce"):
            pairs = getattr(genotype, cell)
            dag = nx.DiGraph()
            dag.add_nodes_from(NODES)
            dag.add_edges_from((index, NODES[p // 2]) for p, (_, index) in enumerate(pairs) if index >= 2)
            orders = list(nx.all_topological_sorts(dag))
            order = tuple(orders[int(rng.integers(len(orders)))])
            swapped = frozenset(n for n in NODES if rng.random() < 0.5)
            changes[cell] = relabel(pairs, order, swapped)[0]
        other = SMALL.from_genotype(genotype._replace(**changes))
        assert SMALL.canonical_key(other) == key


def test_single_op_change_changes_the_key() -> None:
    arch = SMALL.parse(DARTS_V2)
    key = SMALL.canonical_key(arch)
    for name in arch:
        if ".op" in name:
            for op in ("sep_conv_5x5", "avg_pool_3x3"):
                if op != arch[name]:
                    assert SMALL.canonical_key(arch.replace(**{name: op})) != key, name


def test_published_genotypes_have_distinct_keys() -> None:
    keys = {SMALL.canonical_key(SMALL.parse(text)) for text in PUBLISHED.values()}
    assert len(keys) == len(PUBLISHED)


def test_shared_predecessor_is_not_confused_with_an_identical_twin() -> None:
    # Nodes 2 and 3 compute the same expression with separate weights. In `shared`
    # nodes 4 and 5 both read node 2; in `split` node 5 reads node 3. Expanded
    # expressions are equal, functions are not.
    twin = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 2
    shared = twin + [("sep_conv_5x5", 2), ("sep_conv_3x3", 0), ("dil_conv_3x3", 2), ("sep_conv_3x3", 0)]
    split = twin + [("sep_conv_5x5", 2), ("sep_conv_3x3", 0), ("dil_conv_3x3", 3), ("sep_conv_3x3", 0)]
    a, b = (with_cell(DARTS_V2, "normal", p) for p in (shared, split))
    assert SMALL.canonical_key(a) != SMALL.canonical_key(b)


def test_identity_node_is_its_input() -> None:
    # Node 3 = skip(node 2) + none: it *is* node 2, so reading node 3 or node 2 is the same.
    head = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 2), ("none", 0)]
    tail = [("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("avg_pool_3x3", 1)]
    via_alias = head + [("sep_conv_5x5", 3), *tail]
    direct = head + [("sep_conv_5x5", 2), *tail]
    a, b = (with_cell(DARTS_V2, "normal", p) for p in (via_alias, direct))
    assert SMALL.canonical_key(a) == SMALL.canonical_key(b)
    template, out_a = cell_output(via_alias)
    _, out_b = cell_output(direct, template=template)
    assert torch.equal(out_a, out_b)


def test_skip_from_reduction_input_is_not_identity() -> None:
    # normal: node 2 = skip(c_k-2) is c_k-2 itself, so sep(node 2) == sep(c_k-2) in node 3.
    def cell(source: int) -> list[tuple[str, int]]:
        return [("skip_connect", 0), ("none", 1), ("sep_conv_3x3", source), ("sep_conv_3x3", 1)] + [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
        ] * 2

    for kind, same in (("normal", True), ("reduce", False)):
        a, b = (with_cell(DARTS_V2, kind, cell(source)) for source in (2, 0))
        assert (SMALL.canonical_key(a) == SMALL.canonical_key(b)) is same, kind


def test_pooling_a_zero_node_is_zero_but_convolving_it_is_not() -> None:
    def cell(op: str) -> list[tuple[str, int]]:
        return [("none", 0), ("none", 1), (op, 2), ("sep_conv_3x3", 0)] + [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
        ] * 2

    keys = {op: SMALL.canonical_key(with_cell(DARTS_V2, "normal", cell(op))) for op in OPS}
    assert keys["max_pool_3x3"] == keys["avg_pool_3x3"] == keys["skip_connect"] == keys["none"]
    assert len({keys["sep_conv_3x3"], keys["dil_conv_3x3"], keys["none"]}) == 3
    template, out_max = cell_output(cell("max_pool_3x3"))
    _, out_none = cell_output(cell("none"), template=template)
    assert torch.equal(out_max, out_none)


def test_canonical_form_is_readable() -> None:
    form = SMALL.canonical_form(SMALL.parse(DARTS_V2))
    assert form.startswith("normal: ") and " | reduce: " in form
    assert "id(c0)" in form and "sep_conv_3x3(c1)" in form


# -- NASLib compact form ----------------------------------------------------------------------------------
def test_naslib_compact_round_trip() -> None:
    arch = SMALL.parse(DARTS_V2)
    compact = SMALL.to_naslib_compact(arch)
    assert compact[0][:2] == ((0, COMPACT_OPS.index("sep_conv_3x3")), (1, COMPACT_OPS.index("sep_conv_3x3")))
    assert SMALL.from_naslib_compact(compact) == arch
    with pytest.raises(ArchitectureError, match="none"):
        SMALL.to_naslib_compact(arch.replace(**{"normal.n2.op0": "none"}))
    with pytest.raises(ArchitectureError, match="op index"):
        SMALL.from_naslib_compact([[(0, 7)] * 8, compact[1]])


def test_nasbench301_sample_keys_convert(data_dir) -> None:
    with open(data_dir / "zero_cost" / "zc_nasbench301_sample.json") as handle:
        keys = list(json.load(handle)["cifar10"])
    archs = [SMALL.from_naslib_compact(ast.literal_eval(key)) for key in keys]
    assert len(set(archs)) == len(keys) == 725
    assert all(
        str(list(map(list, SMALL.to_naslib_compact(a)))) == k for a, k in zip(archs, keys, strict=True)
    )
