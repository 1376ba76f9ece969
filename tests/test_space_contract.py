"""Contract tests run against every registered search space.

A new space is covered by registering it: these tests are parametrised over
``list_spaces()``. Spaces are built small (see tests/small_spaces.py) so 50 forward and
backward passes per space stay fast.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from small_spaces import small_space

from nas.core import Architecture, ArchitectureError, ConfigError, UnknownNameError
from search_spaces import get_space, list_spaces

SPACES = list_spaces()


@pytest.fixture(params=SPACES)
def space(request):
    return small_space(request.param)


def test_builtin_spaces_registered() -> None:
    assert {"darts", "fbnet", "hybrid", "nb201"} <= set(SPACES)
    assert "test_chain" in SPACES  # the test-only plugin (tests/plugins) is covered like a built-in


def test_sample_is_valid_and_reproducible(space) -> None:
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(20)]
    for arch in archs:
        assert space.validate(arch) is arch
        assert arch.space == space.name
    again = [space.sample(np.random.default_rng(seed)) for seed in range(20)]
    assert archs == again
    assert len(set(archs)) > 1


def test_sampling_leaves_global_rng_alone(space) -> None:
    state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state().clone()
    space.sample(np.random.default_rng(1))
    assert np.array_equal(np.random.get_state()[1], state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_mutate_changes_exactly_one_decision(space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        space.validate(child)
        changed = [name for name in arch if arch[name] != child[name]]
        assert len(changed) == 1, changed


def test_neighbours_are_valid_single_changes(space) -> None:
    arch = space.sample(np.random.default_rng(3))
    neighbours = space.neighbours(arch)
    assert neighbours
    assert len(set(neighbours)) == len(neighbours)
    for other in neighbours[:50]:
        space.validate(other)
        assert sum(arch[n] != other[n] for n in arch) == 1


def test_json_round_trip(space) -> None:
    arch = space.sample(np.random.default_rng(4))
    text = arch.to_json()
    assert json.loads(text)["space"] == space.name
    again = space.from_json(text)
    assert again == arch and hash(again) == hash(arch) and again.key == arch.key


def test_string_round_trip(space) -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        arch = space.sample(rng)
        assert space.parse(space.format(arch)) == arch


def test_canonical_key_is_stable_and_exact_key_distinguishes(space) -> None:
    rng = np.random.default_rng(6)
    arch = space.sample(rng)
    assert space.canonical_key(arch) == space.canonical_key(space.parse(space.format(arch)))
    other = space.mutate(arch, rng)
    assert other.key != arch.key


def test_graph_is_a_dag_with_ops(space) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        graph = space.to_graph(space.sample(rng))
        assert isinstance(graph, nx.DiGraph)
        assert nx.is_directed_acyclic_graph(graph)
        assert graph.number_of_nodes() > 1
        has_ops = any("op" in d for _, d in graph.nodes(data=True)) or any(
            "op" in d for _, _, d in graph.edges(data=True)
        )
        assert has_ops


def test_encoding_has_fixed_length(space) -> None:
    rng = np.random.default_rng(8)
    lengths = {space.encode(space.sample(rng)).shape for _ in range(20)}
    assert lengths == {(space.encoding_size(),)}
    if space.has_path_encoding:
        assert len({space.path_encode(space.sample(rng)).shape for _ in range(20)}) == 1


def test_size_is_positive(space) -> None:
    assert space.size() > 1


def test_zero_ops_are_parameter_free_ops(space) -> None:
    """A zero op carries nothing, so it has no weights either (GOLD-NAS starts it pruned)."""
    assert space.zero_ops() <= space.parameter_free_ops()


def test_zero_ops_of_the_builtin_spaces() -> None:
    assert get_space("nb201").zero_ops() == {"none"}
    assert get_space("nb201", exclude_ops=["none"]).zero_ops() == frozenset()
    assert get_space("darts").zero_ops() == {"none"}  # a supernet op: genotypes never keep it
    assert get_space("fbnet").zero_ops() == frozenset()  # its skip block is the identity, not zero


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32)])
def test_build_forward_backward_50_random(space, input_shape) -> None:
    rng = np.random.default_rng(9)
    torch.manual_seed(0)
    count = 50 if input_shape == (1, 8, 8) else 5
    for _ in range(count):
        arch = space.sample(rng)
        model = space.build(arch, num_classes=7, input_shape=input_shape)
        out = model(torch.randn(2, *input_shape))
        assert out.shape == (2, 7)
        out.sum().backward()
        assert torch.isfinite(out).all()


def test_stats_counts_params_and_flops(space) -> None:
    arch = space.sample(np.random.default_rng(10))
    stats = space.stats(arch, input_shape=(3, 32, 32))
    model = space.build(arch, num_classes=10, input_shape=(3, 32, 32))
    assert stats.params == sum(p.numel() for p in model.parameters()) > 0
    assert stats.flops > 0


def test_wrong_space_and_bad_values_rejected(space) -> None:
    arch = space.sample(np.random.default_rng(11))
    with pytest.raises(ArchitectureError, match="belongs to space"):
        space.validate(Architecture("other_space", arch.decisions))
    first = next(iter(arch))
    with pytest.raises(ArchitectureError, match="allowed"):
        space.validate(arch.replace(**{first: "no_such_value"}))
    with pytest.raises(ArchitectureError, match="missing"):
        space.validate(Architecture(space.name, arch.decisions[1:]))


def test_malformed_string_rejected(space) -> None:
    for text in ["", "garbage", "|||", "{not json"]:
        with pytest.raises(ArchitectureError):
            space.parse(text)


def test_unknown_space_and_option() -> None:
    with pytest.raises(UnknownNameError, match="nb201"):
        get_space("nb2O1")
    with pytest.raises(ConfigError, match="allowed"):
        get_space("nb201", no_such_option=1)
    with pytest.raises(ConfigError, match="channels"):
        get_space("nb201", channels=0)
