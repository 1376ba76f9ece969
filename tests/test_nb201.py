"""NAS-Bench-201 facts: string form, equivalence classes, parameter counts, bad input."""

from __future__ import annotations

import csv
from collections import defaultdict

import networkx as nx
import pytest
import torch

from nas.core import ArchitectureError, UnknownOpError
from search_spaces import get_space

SPACE = get_space("nb201")
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
PAIR = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|",
)


def all_cells(data_dir):
    with open(data_dir / "nb201" / "nb201_12epoch.csv") as handle:
        return [row["arch"] for row in csv.DictReader(handle)]


def benchmark_unique_str(arch) -> str:
    """NAS-Bench-201's own isomorphism rule (``CellStructure.to_unique_str(consider_zero=True)``)."""
    nodes = {0: "0"}
    for i in range(1, 4):
        terms = []
        for j in range(i):
            op = arch[f"{i}<-{j}"]
            if op == "none" or nodes[j] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[j])
            else:
                terms.append(f"({nodes[j]})@{op}")
        nodes[i] = "+".join(sorted(terms))
    return nodes[3]


def test_string_form_round_trip() -> None:
    arch = SPACE.parse(CELL)
    assert SPACE.format(arch) == CELL
    assert arch["3<-2"] == "nor_conv_1x1"
    assert SPACE.parse(" |nor_conv_3x3~0| + |nor_conv_3x3~0|nor_conv_3x3~1|+" + CELL.split("+", 2)[2]) == arch


def test_every_benchmark_cell_parses_and_classes(data_dir) -> None:
    cells = all_cells(data_dir)
    assert len(cells) == 15_625
    archs = [SPACE.parse(text) for text in cells]
    assert [SPACE.format(a) for a in archs] == cells
    keys = [SPACE.canonical_key(a) for a in archs]
    assert len(set(keys)) == 4_930
    # Never separate what the benchmark itself merges (its rule gives 6,466 classes).
    by_benchmark_class = defaultdict(set)
    for arch, key in zip(archs, keys, strict=True):
        by_benchmark_class[benchmark_unique_str(arch)].add(key)
    assert len(by_benchmark_class) == 6_466
    assert all(len(group) == 1 for group in by_benchmark_class.values())


def test_identical_pair_shares_key_but_not_exact_key() -> None:
    a, b = (SPACE.parse(text) for text in PAIR)
    assert a.key != b.key
    assert SPACE.canonical_key(a) == SPACE.canonical_key(b)
    assert benchmark_unique_str(a) != benchmark_unique_str(b)


def test_identical_pair_computes_the_same_function() -> None:
    a, b = (SPACE.parse(text) for text in PAIR)
    torch.manual_seed(0)
    net_a = get_space("nb201", channels=4, cells=1).build(a).eval()
    net_b = get_space("nb201", channels=4, cells=1).build(b).eval()
    # a: n1 = c10(x), n2 = c20(x) + pool(n1), n3 = x + c31(n1) + n2
    # b: n1 = c10(x), n2 = x + c21(n1),       n3 = c30(x) + pool(n1) + n2
    # Same function when b's conv edges carry a's weights: 10->10, 20->30, 31->21.
    rename = {".edges.e10.": ".edges.e10.", ".edges.e20.": ".edges.e30.", ".edges.e31.": ".edges.e21."}
    state_a, state_b = net_a.state_dict(), net_b.state_dict()
    for key, value in state_a.items():
        mapped = key
        for old, new in rename.items():
            mapped = mapped.replace(old, new)
        assert mapped in state_b, mapped
        state_b[mapped] = value.clone()
    net_b.load_state_dict(state_b)
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(net_a(x), net_b(x), atol=1e-5)


def test_dead_paths_share_key() -> None:
    dead_output = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    all_none = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert SPACE.canonical_key(dead_output) != SPACE.canonical_key(all_none)
    # An op applied to a dead node is dead too.
    a = SPACE.parse("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|skip_connect~2|")
    assert SPACE.canonical_key(a) == SPACE.canonical_key(all_none)


def test_different_functions_get_different_keys() -> None:
    a = SPACE.parse("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    b = SPACE.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    c = SPACE.parse("|none~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert SPACE.canonical_key(a) != SPACE.canonical_key(b)  # 0 vs x
    d = SPACE.parse("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert SPACE.canonical_key(d) != SPACE.canonical_key(b)  # 2x vs x
    assert SPACE.canonical_key(c) == SPACE.canonical_key(b)  # x + 0 == x


@pytest.mark.parametrize(
    "text, params",
    [
        (CELL, 1_073_466),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
            1_531_546,
        ),
        (
            "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
            73_306,
        ),
    ],
)
def test_parameter_counts_match_the_benchmark(text: str, params: int) -> None:
    assert SPACE.stats(SPACE.parse(text), input_shape=(3, 32, 32), num_classes=10).params == params


def test_path_encoding() -> None:
    arch = SPACE.parse(CELL)
    vector = SPACE.path_encode(arch)
    assert vector.shape == (84,)
    # Four paths, none through `none`: 0->3, 0->1->3, 0->2->3, 0->1->2->3.
    assert vector.sum() == 4
    all_none = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert SPACE.path_encode(all_none).sum() == 0


def test_graph_round_trip_and_bad_graphs() -> None:
    arch = SPACE.parse(CELL)
    graph = SPACE.to_graph(arch)
    assert graph.edges[0, 3]["op"] == "skip_connect"
    assert SPACE.from_graph(graph) == arch
    cyclic = graph.copy()
    cyclic.add_edge(3, 1, op="nor_conv_3x3")
    with pytest.raises(ArchitectureError, match="cycle"):
        SPACE.from_graph(cyclic)
    missing = graph.copy()
    missing.remove_edge(1, 3)
    with pytest.raises(ArchitectureError, match="inputs"):
        SPACE.from_graph(missing)
    bad_op = graph.copy()
    bad_op.edges[0, 1]["op"] = "conv9x9"
    with pytest.raises(UnknownOpError, match="Allowed"):
        SPACE.from_graph(bad_op)
    with pytest.raises(ArchitectureError):
        SPACE.from_graph(nx.path_graph(4))


@pytest.mark.parametrize(
    "text, message",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "expected 3"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "1 input"),
        (
            "|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
            "cycle",
        ),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
            "twice",
        ),
        (
            "|nor_conv_3x3-0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
            "malformed",
        ),
        (
            "|conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
            "nor_conv_3x3",
        ),
    ],
)
def test_bad_strings(text: str, message: str) -> None:
    with pytest.raises(ArchitectureError, match=message):
        SPACE.parse(text)


def test_builds_from_digits_to_imagenet_size() -> None:
    arch = SPACE.parse(CELL)
    small = get_space("nb201", channels=4, cells=1)
    for shape in [(1, 8, 8), (3, 7, 7), (3, 224, 224)]:
        out = small.build(arch, num_classes=5, input_shape=shape)(torch.randn(1, *shape))
        assert out.shape == (1, 5)
    with pytest.raises(ValueError, match="input_shape"):
        SPACE.build(arch, input_shape=(3, 32))
