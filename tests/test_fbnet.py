"""The FBNet space: HELP's string form, models, parameter counts, canonical key, errors."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from nas.core import Architecture, ArchitectureError, ConfigError, UnknownNameError
from search_spaces import get_space
from search_spaces.base import count_params
from search_spaces.fbnet import BLOCKS, LAYER_NAMES, FBNetSpace, round_channels


@pytest.fixture(scope="module")
def small() -> FBNetSpace:
    return FBNetSpace(width_mult=0.25)


def uniform(space: FBNetSpace, block: str) -> Architecture:
    return space.make(dict.fromkeys(LAYER_NAMES, block))


def mbconv_params(kernel: int, expansion: int, groups: int, c_in: int, c_out: int) -> int:
    """Independent count: 1x1 expand + BN, kxk depthwise + BN, 1x1 project + BN."""
    mid = c_in * expansion
    return (
        (c_in * mid // groups + 2 * mid)
        + (kernel * kernel * mid + 2 * mid)
        + (mid * c_out // groups + 2 * c_out)
    )


# -- string form -------------------------------------------------------------------------------


def test_every_help_architecture_round_trips(data_dir: Path) -> None:
    space = FBNetSpace()
    with (data_dir / "fbnet" / "fbnet_latency_ms.csv").open(newline="") as handle:
        strings = [row["arch"] for row in csv.DictReader(handle)]
    assert len(strings) == 5000
    archs = [space.parse(text) for text in strings]
    assert [space.format(arch) for arch in archs] == strings
    assert len({arch.key for arch in archs}) == len(set(strings))


def test_parse_names_decisions_by_layer() -> None:
    space = FBNetSpace()
    blocks = [BLOCKS[i % len(BLOCKS)] for i in range(22)]
    arch = space.parse("  " + "-".join(blocks) + "\n")
    assert list(arch) == [f"layer{i:02d}" for i in range(22)]
    assert [arch[name] for name in arch] == blocks


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "has 1 '-'-separated block(s); expected 22"),
        ("-".join(["k3_e1"] * 21), "has 21 '-'-separated block(s)"),
        ("-".join(["k3_e1"] * 23), "has 23"),
        ("-".join(["k3_e1"] * 10 + [""] + ["k3_e1"] * 11), "empty block name at layer10"),
        ("--".join(["k3_e1"] * 22), "expected 22"),
        (",".join(["k3_e1"] * 22), "has 1"),
    ],
)
def test_malformed_text_is_an_architecture_error(text: str, fragment: str) -> None:
    with pytest.raises(ArchitectureError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        FBNetSpace().parse(text)


def test_unknown_block_names_close_matches() -> None:
    text = "-".join(["k3_e1"] * 5 + ["k3_e2"] + ["k3_e1"] * 16)
    with pytest.raises(UnknownNameError, match=r"layer05.*'k3_e2'.*Did you mean") as info:
        FBNetSpace().parse(text)
    assert isinstance(info.value, ArchitectureError)  # callers catching parse errors catch it too
    assert re.search(r"Did you mean [^?]*'k3_e1'", str(info.value))


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(ArchitectureError, match="must be a str"):
        FBNetSpace().parse(["k3_e1"] * 22)  # type: ignore[arg-type]


def test_validate_rejects_foreign_values() -> None:
    space = FBNetSpace()
    arch = uniform(space, "k3_e1")
    with pytest.raises(ArchitectureError, match="k7_e6"):
        space.validate(arch.replace(layer03="k7_e6"))
    with pytest.raises(ArchitectureError):
        space.format(Architecture("fbnet", (("layer00", "k3_e1"),)))


@pytest.mark.parametrize("bad", [0, -1.0, 0.0, float("nan"), float("inf"), 5.0, True, "1.0", None])
def test_bad_width_mult(bad: object) -> None:
    with pytest.raises(ConfigError, match="width_mult"):
        FBNetSpace(width_mult=bad)  # type: ignore[arg-type]


def test_registered_with_options() -> None:
    space = get_space("fbnet", width_mult=0.5)
    assert isinstance(space, FBNetSpace)
    assert space.options == {"width_mult": 0.5}
    assert space.size() == 9**22
    with pytest.raises(ConfigError, match="width"):
        get_space("fbnet", width=0.5)


# -- shapes, graph ----------------------------------------------------------------------------------


def test_channel_rounding() -> None:
    assert [round_channels(c) for c in (16, 24, 1984)] == [16, 24, 1984]
    assert round_channels(16 * 0.25) == 8  # never below 8
    assert round_channels(112 * 0.25) == 32  # nearest multiple of 8 (28 -> 32)
    assert all(round_channels(c * w) % 8 == 0 for c in (16, 24, 184, 352) for w in (0.1, 0.35, 0.75, 1.3))


def test_layer_plan_matches_fbnet_macro() -> None:
    plans = FBNetSpace().plans
    assert len(plans) == 22
    assert [p.c_out for p in plans] == [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + [184] * 4 + [352]
    assert [i for i, p in enumerate(plans) if p.stride == 2] == [1, 5, 9, 17]
    assert all(b.c_in == a.c_out for a, b in zip(plans, plans[1:], strict=False))


def test_graph_is_the_layer_chain(small: FBNetSpace) -> None:
    arch = small.sample(3)
    graph = small.to_graph(arch)
    assert nx.is_directed_acyclic_graph(graph)
    order = list(nx.topological_sort(graph))
    assert order == ["input", "stem", *LAYER_NAMES, "head", "output"]
    assert graph.number_of_edges() == len(order) - 1
    assert [graph.nodes[n]["op"] for n in LAYER_NAMES] == [arch[n] for n in LAYER_NAMES]
    assert graph.nodes["layer09"]["stride"] == 2 and graph.nodes["layer09"]["stage"] == 3
    assert graph.nodes["layer21"]["channels"] == round_channels(352 * 0.25)


# -- models -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
@pytest.mark.parametrize("seed", [0, 1])
def test_build_forward_backward(small: FBNetSpace, shape: tuple[int, int, int], seed: int) -> None:
    arch = small.sample(seed)
    model = small.build(arch, num_classes=7, input_shape=shape)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed))
    out = model(x)
    assert out.shape == (2, 7)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, 7)


def test_extreme_blocks_build_at_tiny_input(small: FBNetSpace) -> None:
    """All-skip (pure projections) and all-k5_e6 (widest) both survive 1x1 feature maps."""
    for block in ("skip", "k5_e6", "k3_e1_g2"):
        model = small.build(uniform(small, block), num_classes=3, input_shape=(1, 8, 8))
        out = model(torch.randn(2, 1, 8, 8))
        assert out.shape == (2, 3)
        out.sum().backward()


def test_param_counts_follow_block_formulas() -> None:
    space = FBNetSpace()
    light, heavy = uniform(space, "k3_e1"), uniform(space, "k5_e6")
    counts = {
        block: count_params(space.build(uniform(space, block), num_classes=1000, input_shape=(3, 224, 224)))
        for block in ("skip", "k3_e1", "k3_e1_g2", "k5_e6")
    }
    assert counts["skip"] < counts["k3_e1_g2"] < counts["k3_e1"] < counts["k5_e6"]
    assert count_params(space.build(light)) < count_params(space.build(heavy))
    # changing one shape-keeping layer (stage 1, 24 -> 24) changes params by the formula difference
    base = count_params(space.build(light, num_classes=1000))
    for block, (k, e, g) in {"k5_e6": (5, 6, 1), "k3_e1_g2": (3, 1, 2), "k5_e3": (5, 3, 1)}.items():
        changed = count_params(space.build(light.replace(layer02=block), num_classes=1000))
        assert changed - base == mbconv_params(k, e, g, 24, 24) - mbconv_params(3, 1, 1, 24, 24)
    skipped = count_params(space.build(light.replace(layer02="skip"), num_classes=1000))
    assert base - skipped == mbconv_params(3, 1, 1, 24, 24)


# -- canonical key -----------------------------------------------------------------------------------


def test_skips_move_freely_within_a_shape_keeping_run(small: FBNetSpace) -> None:
    blocks = ["k3_e3"] * 22
    a = blocks.copy()
    a[2], a[3], a[4] = "skip", "k5_e6", "k3_e1_g2"  # stage 1: layer01 strides, layers 02-04 keep shape
    b = blocks.copy()
    b[2], b[3], b[4] = "k5_e6", "k3_e1_g2", "skip"
    arch_a, arch_b = small.parse("-".join(a)), small.parse("-".join(b))
    assert arch_a.key != arch_b.key
    assert small.canonical_key(arch_a) == small.canonical_key(arch_b) == arch_b.key

    # functional equality: same weights in the same order give the same outputs
    model_a = small.build(arch_a, input_shape=(3, 32, 32)).eval()
    model_b = small.build(arch_b, input_shape=(3, 32, 32)).eval()
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert [v.shape for v in state_a.values()] == [v.shape for v in state_b.values()]
    model_b.load_state_dict(dict(zip(state_b, state_a.values(), strict=True)))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model_a(x), model_b(x))


def test_order_and_strided_skips_are_kept(small: FBNetSpace) -> None:
    blocks = ["k3_e3"] * 22
    swapped = blocks.copy()
    swapped[3], swapped[4] = "k5_e6", "k3_e1"
    other = blocks.copy()
    other[3], other[4] = "k3_e1", "k5_e6"
    assert small.canonical_key(small.parse("-".join(swapped))) != small.canonical_key(
        small.parse("-".join(other))
    )
    # a skip on a strided layer (layer05) is a projection, not movable into the next run
    strided = blocks.copy()
    strided[5] = "skip"
    moved = blocks.copy()
    moved[6] = "skip"
    assert small.canonical_key(small.parse("-".join(strided))) != small.canonical_key(
        small.parse("-".join(moved))
    )


def test_canonical_key_is_a_class_invariant(small: FBNetSpace) -> None:
    rng = np.random.default_rng(0)
    moved = 0
    for _ in range(200):
        arch = small.sample(rng)
        canon = small.canonical(arch)
        assert small.canonical(canon) == canon
        assert small.canonical_key(arch) == canon.key
        if canon != arch and moved < 10:
            moved += 1
            assert count_params(small.build(arch)) == count_params(small.build(canon))
    assert moved == 10  # random architectures often have a movable skip
