"""What every elastic supernet promises, on every space whose one-shot view has one.

Parametrised over the registry (``spaces_with((ELASTIC,))``), so a space that
gains an elastic supernet is held to the contract without editing this file:
its extracted stand-alone networks compute what the supernet computes for
their path, every value of every decision is reachable, the largest and
smallest sub-networks bound the others' weights, and recalibrating BatchNorm
on the supernet's path equals recalibrating the extracted network. Each space
at its small test options (``small_spaces``) on 3x8x8 inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from elastic_supernets import CLASSES, SHAPE, trained
from small_spaces import small_space

from nas.core import Architecture
from nas.core.oneshot import ELASTIC, spaces_with
from nas.oneshot.build import build_elastic
from nas.supernet.recalibrate import recalibrate_bn

ELASTIC_SPACES = spaces_with((ELASTIC,))


def test_the_built_in_elastic_spaces_are_covered() -> None:
    assert {"fbnet", "hybrid"} <= set(ELASTIC_SPACES)


@pytest.fixture(scope="module", params=ELASTIC_SPACES)
def space(request: pytest.FixtureRequest):
    return small_space(request.param)


@pytest.fixture(scope="module")
def supernet(space):
    return trained(space).eval()


def covering(space, seed: int = 0, tries: int = 5000) -> list[Architecture]:
    """Sampled architectures that between them take every value of every decision.

    Fails if the space's sampler never produces some value: a value no
    architecture takes is no part of the supernet's space.
    """
    missing = {(name, value) for name, values in space.choices().items() for value in values}
    rng, archs = np.random.default_rng(seed), []
    for _ in range(tries):
        arch = space.sample(rng)
        new = {(name, arch[name]) for name in space.choices()} & missing
        if new:
            archs.append(arch)
            missing -= new
        if not missing:
            return archs
    raise AssertionError(f"{space.name}: no sampled architecture takes {sorted(missing, key=str)[:5]}")


def test_every_decision_value_runs_and_extracts_to_the_supernets_path(space, supernet) -> None:
    archs = [supernet.largest(), supernet.smallest(), *covering(space)]
    x = torch.randn(5, *SHAPE)
    outputs = set()
    for arch in archs:
        net = supernet.extract(arch).eval()
        assert type(net) is type(space.network(arch, CLASSES, SHAPE))  # an ordinary stand-alone network
        assert not net.training
        expected = supernet.forward_arch(x, arch)
        assert torch.allclose(net(x), expected, atol=1e-5), space.format(arch)
        outputs.add(tuple(expected.flatten().tolist()))
    assert len(outputs) == len({space.canonical_key(a) for a in archs})  # the paths differ: not vacuous


def test_largest_and_smallest_bound_every_sub_network(space) -> None:
    supernet = build_elastic(space, num_classes=CLASSES, input_shape=SHAPE)

    def weights(arch: Architecture) -> int:
        return sum(p.numel() for p in supernet.extract(arch).parameters())

    low, high = weights(supernet.smallest()), weights(supernet.largest())
    assert low < high
    rng = np.random.default_rng(0)
    for arch in (space.sample(rng) for _ in range(10)):
        assert low <= weights(arch) <= high, space.format(arch)


def test_recalibrating_the_supernet_path_matches_the_extracted_network(space) -> None:
    supernet = trained(space)
    arch = space.sample(np.random.default_rng(4))
    batches = [torch.randn(6, *SHAPE) for _ in range(2)]
    net = supernet.extract(arch)
    recalibrate_bn(net, batches)
    recalibrate_bn(supernet, batches, forward=lambda x: supernet.forward_arch(x, arch))
    x = torch.randn(4, *SHAPE)
    assert torch.allclose(net.eval()(x), supernet.eval().forward_arch(x, arch), atol=1e-5)
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_bn(net, [])
