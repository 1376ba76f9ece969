"""The hybrid CNN-transformer space: membership, models at several sizes, string form, errors."""

from __future__ import annotations

import math
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch

from nas.core import Architecture, ArchitectureError, ConfigError
from search_spaces import get_space
from search_spaces.base import count_params
from search_spaces.hybrid import HybridSpace, num_heads, stem_stride
from search_spaces.hybrid.model import AttentionBlock, ConvBlock

PURE_CNN = "C1-C1-vC2-C1-vC1-C2-vC1-C1"
PURE_ATTN = "A1-A1-vA2-A1-vA1-A2-vA1-A1"
MIXED = "C1-vC2-A1-A2-vA1-C2-vA1-A2"


@pytest.fixture(scope="module")
def space() -> HybridSpace:
    return HybridSpace(base_width=8)


def modules_of(model: torch.nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


# -- membership and models -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "convs", "attns"), [(PURE_CNN, 8, 0), (PURE_ATTN, 0, 8), (MIXED, 3, 5)])
def test_pure_and_mixed_members_build(space: HybridSpace, text: str, convs: int, attns: int) -> None:
    arch = space.parse(text)
    assert space.is_valid(arch)
    model = space.build(arch, num_classes=5, input_shape=(3, 32, 32))
    assert modules_of(model, ConvBlock) == convs
    assert modules_of(model, AttentionBlock) == attns


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
@pytest.mark.parametrize("text", [PURE_CNN, PURE_ATTN, MIXED])
def test_forward_shapes_and_backward(space: HybridSpace, text: str, shape: tuple[int, int, int]) -> None:
    model = space.build(space.parse(text), num_classes=7, input_shape=shape)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    out = model(x)  # training mode needs > 1 value per BN channel, hence batch 2
    assert out.shape == (2, 7)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        single = model(x[:1])
    assert single.shape == (1, 7)
    assert torch.isfinite(single).all()


def test_forward_at_imagenet_size_batch_1(space: HybridSpace) -> None:
    model = space.build(space.parse(MIXED), num_classes=1000, input_shape=(3, 224, 224)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


def test_stem_patchifies_only_large_inputs() -> None:
    assert stem_stride((3, 224, 224)) == 4
    assert stem_stride((3, 64, 100)) == 4
    assert stem_stride((3, 32, 32)) == 1
    assert stem_stride((1, 8, 8)) == 1
    assert stem_stride((3, 300, 40)) == 1  # the smaller side decides


def test_channels_double_per_downsample_and_width(space: HybridSpace) -> None:
    plans = space.plan(space.parse(MIXED))
    # C1 vC2 A1 A2 vA1 C2 vA1 A2 with base 8: stages 0,1,1,1,2,2,3,3
    assert [p.c_out for p in plans] == [8, 32, 16, 32, 32, 64, 64, 128]
    assert [p.stride for p in plans] == [1, 2, 1, 1, 2, 1, 2, 1]
    assert all(b.c_in == a.c_out for a, b in zip(plans, plans[1:], strict=False))


def test_heads_divide_channels() -> None:
    assert [num_heads(c) for c in (8, 32, 64, 96, 256)] == [1, 1, 2, 3, 8]
    for c in range(8, 600, 8):
        assert c % num_heads(c) == 0 and 1 <= num_heads(c) <= max(1, c // 32)


def test_width_and_type_change_params(space: HybridSpace) -> None:
    narrow = space.parse("C1-C1-vC1-C1-vC1-C1-vC1-C1")
    wide = narrow.replace(**{"b7.width": 2})
    assert count_params(space.build(wide)) > count_params(space.build(narrow))
    attn = narrow.replace(**{"b0.type": "attn"})
    assert count_params(space.build(attn)) != count_params(space.build(narrow))


# -- space description -------------------------------------------------------------------------------


def test_size_counts_valid_members() -> None:
    small = HybridSpace(blocks=3, downsamples=1, base_width=8)
    archs = [
        Architecture(
            "hybrid",
            tuple(
                (f"b{i}.{field}", value)
                for i, block in enumerate(combo)
                for field, value in zip(("type", "down", "width"), block, strict=True)
            ),
        )
        for combo in _all_combos(3)
    ]
    assert len(archs) == 8**3
    assert small.size() == sum(small.is_valid(a) for a in archs) == 4**3 * (1 + 3)
    assert HybridSpace().size() == 4**8 * sum(math.comb(8, k) for k in range(4))


def _all_combos(blocks: int) -> list[tuple[tuple[str, bool, int], ...]]:
    per_block = [(t, d, w) for t in ("conv", "attn") for d in (False, True) for w in (1, 2)]
    combos: list[tuple[tuple[str, bool, int], ...]] = [()]
    for _ in range(blocks):
        combos = [c + (b,) for c in combos for b in per_block]
    return combos


def test_check_allows_at_most_downsamples(space: HybridSpace) -> None:
    assert space.is_valid(space.parse("C1-C1-C1-C1-C1-C1-C1-C1"))
    with pytest.raises(ArchitectureError, match=r"4 blocks.*at most 3"):
        space.parse("vC1-vC1-vC1-vC1-C1-C1-C1-C1")


def test_sample_is_valid_uniform_and_seeded() -> None:
    space = HybridSpace(blocks=4, downsamples=1, base_width=8)
    assert space.sample(5) == space.sample(5)
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(4000)]
    assert all(space.is_valid(a) for a in draws)
    downs = Counter(sum(bool(a[f"b{i}.down"]) for i in range(4)) for a in draws)
    # uniform over valid members: 1 placement without and 4 with a down-sampling
    assert abs(downs[0] / 4000 - 1 / 5) < 0.03


def test_sampling_long_chains_does_not_need_rejection() -> None:
    space = HybridSpace(blocks=60, downsamples=2, base_width=8)
    arch = space.sample(1)
    assert sum(bool(arch[f"b{i}.down"]) for i in range(60)) <= 2


def test_mutation_can_move_downsampling(space: HybridSpace) -> None:
    arch = space.parse("vC1-vC1-vC1-C1-C1-C1-C1-C1")
    neighbours = space.neighbours(arch)
    assert any(not n["b0.down"] for n in neighbours)  # removing one is a single valid change
    freed = space.parse("C1-vC1-vC1-C1-C1-C1-C1-C1")
    assert any(n["b5.down"] for n in space.neighbours(freed))


def test_graph_is_the_block_chain(space: HybridSpace) -> None:
    arch = space.parse(MIXED)
    graph = space.to_graph(arch)
    order = list(nx.topological_sort(graph))
    assert order == ["input", "stem", *[f"b{i}" for i in range(8)], "head", "output"]
    assert graph.number_of_edges() == len(order) - 1
    assert [graph.nodes[f"b{i}"]["op"] for i in range(8)] == ["conv", "conv"] + ["attn"] * 3 + ["conv"] + [
        "attn"
    ] * 2
    assert [graph.nodes[f"b{i}"]["stride"] for i in range(8)] == [1, 2, 1, 1, 2, 1, 2, 1]
    assert [graph.nodes[f"b{i}"]["width"] for i in range(8)] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert graph.nodes["b7"]["heads"] == num_heads(128) and graph.nodes["b0"]["heads"] == 0


# -- string form and errors ----------------------------------------------------------------------------


def test_round_trips(space: HybridSpace) -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        arch = space.sample(rng)
        assert space.parse(space.format(arch)) == arch
    assert space.format(space.parse(" C1 - vC2-A1-A2-vA1-C2-vA1-A2\n")) == MIXED


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("C1-C1-C1", "has 3 '-'-separated block"),
        ("", "has 1 '-'-separated block"),
        ("C1-C1-C1-C1-C1-C1-C1-X1", "block b7 token 'X1' is malformed"),
        ("C1-C1-C1-C3-C1-C1-C1-C1", "block b3 token 'C3'"),
        ("C1-C1-C1-c1-C1-C1-C1-C1", "token 'c1'"),
        ("C1-C1-C1-Cv1-C1-C1-C1-C1", "token 'Cv1'"),
        ("C1-C1-C1-C-C1-C1-C1-C1", "token 'C'"),
        ("C1-C1-C1--C1-C1-C1-C1", "token ''"),
        ("C1,C1,C1,C1,C1,C1,C1,C1", "has 1"),
    ],
)
def test_malformed_text(space: HybridSpace, text: str, fragment: str) -> None:
    with pytest.raises(ArchitectureError, match=fragment.replace("(", r"\(")):
        space.parse(text)


def test_non_string_and_foreign_architectures(space: HybridSpace) -> None:
    with pytest.raises(ArchitectureError, match="must be a str"):
        space.parse(None)  # type: ignore[arg-type]
    arch = space.parse(MIXED)
    with pytest.raises(ArchitectureError, match="b1.width"):
        space.validate(arch.replace(**{"b1.width": 3}))
    with pytest.raises(ArchitectureError, match="b1.down"):
        space.validate(arch.replace(**{"b1.down": 1}))  # int, not bool
    with pytest.raises(ArchitectureError):
        space.format(Architecture("hybrid", (("b0.type", "conv"),)))


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"blocks": 0}, "blocks=0"),
        ({"downsamples": -1}, "downsamples=-1"),
        ({"blocks": 2, "downsamples": 3}, r"downsamples=3 .* \[0, 2\]"),
        ({"base_width": 4}, "base_width=4"),
        ({"base_width": 16.0}, "base_width=16.0"),
    ],
)
def test_bad_options(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        HybridSpace(**options)  # type: ignore[arg-type]


def test_registered_with_options() -> None:
    space = get_space("hybrid", blocks=4, downsamples=2, base_width=16)
    assert isinstance(space, HybridSpace)
    assert space.options == {"blocks": 4, "downsamples": 2, "base_width": 16}
    assert space.parse("C1-vA2-A1-vC1").space == "hybrid"
    with pytest.raises(ConfigError, match="width"):
        get_space("hybrid", width=2)


def test_bad_build_arguments(space: HybridSpace) -> None:
    arch = space.parse(MIXED)
    with pytest.raises(ConfigError, match="input_shape"):
        space.build(arch, input_shape=(3, 32))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_classes"):
        space.build(arch, num_classes=0)
