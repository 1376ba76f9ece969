"""Op prices (nas.supernet.pricing): a hand count, every supernet kind, and the FLOPs budget of rc_darts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nas.core.errors import ConfigError
from nas.data import Dataset, load_dataset
from nas.oneshot import create_method
from nas.oneshot.resource import BUDGET_WINDOW
from nas.supernet import CellSupernetSize
from nas.supernet.pricing import FLOPS, PARAMS, price_ops
from search_spaces import get_space
from search_spaces.fbnet.plan import BLOCKS, NUM_LAYERS, SKIP
from search_spaces.fbnet.supernet import FbnetSupernet
from search_spaces.nb201.supernet import Nb201Supernet

SHAPE = (3, 8, 8)
SYNTHETIC = {"name": "synthetic", "num_samples": 160, "num_test": 16, "num_classes": 4, "shape": SHAPE}


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(SYNTHETIC, seed=0)


def rc_darts(data: Dataset, **options: object):
    settings = {"epochs": 2, "batch_size": 16, "check_memory": False, **options}
    return create_method("rc_darts", get_space("nb201", channels=4, cells=1), data, settings, seed=0)


def test_a_convolution_is_priced_as_counted_by_hand() -> None:
    space = get_space("nb201", channels=4, cells=1)
    supernet = Nb201Supernet(space, CellSupernetSize(channels=4, cells=1, num_classes=4, input_shape=SHAPE))
    supernet.train()
    prices = price_ops(supernet, SHAPE)
    ops = space.ops
    # One search cell per stage: 4 channels at 8x8, 8 at 4x4, 16 at 2x2. A 3x3 convolution of C to C
    # channels on an HxW map: C*C*9 weights (BatchNorm without affine in the supernet), H*W*C*C*9 multiply-adds,
    # 2 FLOPs each.
    stages = [(4, 8 * 8), (8, 4 * 4), (16, 2 * 2)]
    conv3 = prices.costs(FLOPS)["cell"][:, ops.index("nor_conv_3x3")]
    assert conv3.tolist() == [sum(2 * c * c * 9 * hw for c, hw in stages)] * 6 == [55296.0] * 6
    assert prices.params["cell"][0, ops.index("nor_conv_3x3")] == sum(c * c * 9 for c, _ in stages) == 3024
    assert prices.flops["cell"][0, ops.index("nor_conv_1x1")] == sum(2 * c * c * hw for c, hw in stages)
    for free in ("none", "skip_connect", "avg_pool_3x3"):
        assert (
            prices.flops["cell"][:, ops.index(free)].sum()
            == prices.params["cell"][:, ops.index(free)].sum()
            == 0
        )
    # The constant is the rest of the supernet: stem, reductions, head.
    assert prices.total_params == sum(p.numel() for p in supernet.parameters())
    assert prices.constant(PARAMS) == prices.total_params - prices.params["cell"].sum() > 0
    assert prices.constant(FLOPS) > 0
    assert all(m.training for m in supernet.modules())  # priced in eval mode, modes restored
    with pytest.raises(ConfigError, match=re.escape("'latency'; allowed: params, flops")):
        prices.costs("latency")


def test_fbnet_layers_are_priced_too() -> None:
    """GOLD-NAS' old hooks only saw cell edges' mixed ops; the supernet's own op list prices FBNet's blocks."""
    space = get_space("fbnet", width_mult=0.25)
    prices = price_ops(FbnetSupernet(space, 4, SHAPE), SHAPE)
    flops, params = prices.flops["layers"], prices.params["layers"]
    assert flops.shape == params.shape == (NUM_LAYERS, len(BLOCKS))
    mbconv = np.arange(len(BLOCKS)) != BLOCKS.index(SKIP)
    assert (flops[:, mbconv] > 0).all() and (params[:, mbconv] > 0).all()
    assert prices.constant(FLOPS) > 0  # stem and head


def test_a_flops_budgeted_rc_darts_derivation_lands_in_its_budget_window(data: Dataset) -> None:
    free = rc_darts(data, target_flops=1e12)
    assert free.resource.metric == FLOPS
    uniform, smallest = float(free.expected_resource().detach()), free.resource.minimum()
    target = smallest + 0.3 * (uniform - smallest)
    searcher = rc_darts(data, target_flops=target)
    assert float(searcher.expected_resource().detach()) <= target  # projected when created
    searcher.fit(lambda m, _: None)
    assert searcher.history[-1]["expected_flops"] <= target
    searcher.space.validate(searcher.derive())
    assert (1 - BUDGET_WINDOW) * target <= searcher.derived_resource() <= target
    # The derived cell's FLOPs in the model are the constant plus its ops' prices.
    prices = price_ops(searcher.supernet, SHAPE)
    (picked,) = searcher.supernet.choices(searcher.derive()).values()
    by_hand = prices.constant(FLOPS) + sum(prices.flops["cell"][e, o] for e, o in enumerate(picked))
    assert searcher.derived_resource() == pytest.approx(by_hand)
    # nb201's stand-alone network has the supernet's skeleton: torch's own count of the derived
    # model (the spaces' model stats) is exactly the priced FLOPs.
    stats = searcher.space.stats(searcher.derive(), input_shape=SHAPE, num_classes=4)
    assert stats.flops == pytest.approx(searcher.derived_resource())


def test_an_unmeetable_flops_budget_is_refused_naming_the_smallest(data: Dataset) -> None:
    smallest = rc_darts(data, target_flops=1e12).resource.minimum()
    with pytest.raises(
        ConfigError, match=rf"FLOPs .*smallest achievable on this nb201 supernet is {smallest:.6g}"
    ):
        rc_darts(data, target_flops=smallest / 2)


def test_three_budgets_are_refused(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="are three budgets; set one"):
        rc_darts(data, target_flops=1e6, target_params=1e6, target_latency_ms=1.0, latency_device="pixel3")


def test_dnas_takes_a_flops_budget_on_fbnets_layers(data: Dataset) -> None:
    settings = {"epochs": 1, "batch_size": 16, "check_memory": False, "target_flops": 1e12}
    searcher = create_method("dnas", get_space("fbnet", width_mult=0.25), data, settings, seed=0)
    assert searcher.resource.metric == FLOPS and searcher.target == 1e12
    expected = float(searcher.expected_resource().detach())
    assert (
        searcher.resource.minimum()
        < expected
        < searcher.resource.constant + searcher.resource.costs["layers"].max(dim=1).values.sum()
    )
