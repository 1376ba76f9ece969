"""Computational graphs, GENNAPE-style graph features and the ``gcn`` predictor (Neural Predictor).

The registry contract (fit, seeds, RNG, bad training sets) runs for ``gcn``
in tests/test_predictors.py; here: the graph view checked by hand, the GCN
fitting a toy target, invariance to node numbering, the two-stage cascade.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nas.core import PREDICTORS, ConfigError
from predictors.features import Featurizer
from predictors.graph import GraphFeaturizer, graph_features, op_graph, vocabulary
from predictors.metrics import kendall_tau
from search_spaces import get_space

SPACE = get_space("nb201")
#: 0 -conv3-> 1 -skip-> 2 -conv1-> 3 and 0 -avgpool-> 3; the other two edges are none.
CELL = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
FAST = {"members": 1, "epochs": 80, "batch_size": 32, "hidden": 32, "head": 32}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


def features_by_name(text: str) -> dict[str, float]:
    featurizer = GraphFeaturizer(SPACE)
    return dict(zip(featurizer.names, featurizer(SPACE.parse(text)).tolist(), strict=True))


def test_op_graph_of_a_hand_drawn_cell() -> None:
    graph = op_graph(SPACE, SPACE.parse(CELL))
    edges = {(graph.ops[i], graph.ops[j]) for i, j in zip(*np.nonzero(graph.adjacency), strict=True)}
    assert sorted(graph.ops) == sorted(
        ["input", "nor_conv_3x3", "intermediate", "skip_connect", "intermediate", "nor_conv_1x1"]
        + ["avg_pool_3x3", "output"]
    )
    assert ("input", "nor_conv_3x3") in edges and ("nor_conv_1x1", "output") in edges
    assert ("input", "avg_pool_3x3") in edges and ("avg_pool_3x3", "output") in edges
    assert graph.adjacency.sum() == 8 and graph.ops[0] == "input" and graph.ops[-1] == "output"


def test_graph_features_of_a_hand_drawn_cell() -> None:
    f = features_by_name(CELL)
    counts = {k: v for k, v in f.items() if k.startswith("count[")}
    assert counts == {
        "count[skip_connect]": 1,
        "count[nor_conv_1x1]": 1,
        "count[nor_conv_3x3]": 1,
        "count[avg_pool_3x3]": 1,
        "count[input]": 1,
        "count[intermediate]": 2,
        "count[output]": 1,
        "count[other]": 0,
    }
    assert (f["nodes"], f["edges"]) == (8, 8)
    # Two input-to-output paths: conv3 -> skip -> conv1 (3 ops) and avgpool (1 op).
    assert f["paths_log1p"] == pytest.approx(np.log(3.0))
    assert (f["path_ops_min"], f["path_ops_mean"], f["path_ops_max"]) == (1, 2, 3)
    # Seven nodes have inputs, 8 edges in all; the output sums two, the input feeds two.
    assert f["in_degree_mean"] == pytest.approx(8 / 7)
    assert (f["in_degree_max"], f["out_degree_max"]) == (2, 2)
    # Renumbering the nodes changes nothing.
    graph, featurizer = op_graph(SPACE, SPACE.parse(CELL)), GraphFeaturizer(SPACE)
    shuffled = graph.permuted(np.random.default_rng(0).permutation(len(graph.ops)))
    assert shuffled.ops != graph.ops
    np.testing.assert_array_equal(
        graph_features(shuffled, featurizer.labels, featurizer.op_set),
        graph_features(graph, featurizer.labels, featurizer.op_set),
    )


def test_dead_operations_are_pruned() -> None:
    """Node 1 feeds nothing and node 2 gets nothing: only the skip into the output computes."""
    dead = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert op_graph(SPACE, SPACE.parse(dead)).ops == ("input", "skip_connect", "output")
    other_dead_op = "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert features_by_name(dead) == features_by_name(other_dead_op)
    cut = features_by_name("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert cut["paths_log1p"] == 0 and cut["edges"] == 0  # the output is cut off: no path at all


@pytest.mark.parametrize("name", ["darts", "fbnet", "hybrid"])
def test_graph_features_in_every_space(name) -> None:
    space = get_space(name)
    featurizer = GraphFeaturizer(space)
    rows = np.stack([featurizer(space.sample(seed)) for seed in range(3)])
    assert rows.shape == (3, len(featurizer.names)) and np.isfinite(rows).all()
    assert vocabulary(space)[-1] == "other" and "input" in vocabulary(space)


def test_featurizer_graph_feature_option() -> None:
    arch = SPACE.sample(0)
    width = Featurizer(SPACE, "path", graph_features=True)([arch]).shape[1]
    assert width == SPACE.path_encode(arch).size + len(GraphFeaturizer(SPACE).names)
    assert Featurizer(SPACE, "none", graph_features=True)([arch]).shape[1] == len(
        GraphFeaturizer(SPACE).names
    )
    with pytest.raises(ConfigError, match="graph_features='yes'"):
        Featurizer(SPACE, graph_features="yes")  # type: ignore[arg-type]


def test_every_encoded_predictor_takes_graph_features() -> None:
    archs = [SPACE.sample(seed) for seed in range(40)]
    y = [features_by_name(SPACE.format(a))["path_ops_max"] + 0.01 * k for k, a in enumerate(archs)]
    model = PREDICTORS.get("rf")(SPACE, encoding="none", graph_features=True, n_estimators=30)
    assert kendall_tau(model.fit(archs[:30], y[:30]).predict(archs[30:]), y[30:]) > 0.5


# -- the GCN ---------------------------------------------------------------------------------------


def live_score(arch) -> float:
    """A graph-level toy target: what the pruned cell computes (convs help, pooling hurts)."""
    ops = op_graph(SPACE, arch).ops
    return 2.0 * ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1") - ops.count("avg_pool_3x3")


def convolution_free(arch) -> bool:
    """No convolution computes in the cell: toy stand-in for a network that fails to train."""
    ops = op_graph(SPACE, arch).ops
    return "nor_conv_3x3" not in ops and "nor_conv_1x1" not in ops


def toy(count: int, seed: int):
    rng = np.random.default_rng(seed)
    archs = [SPACE.sample(rng) for _ in range(count)]
    return archs, np.array([live_score(a) for a in archs]) + rng.normal(0, 0.1, count)


@pytest.fixture(scope="module")
def fitted():
    train, y = toy(100, seed=1)
    return PREDICTORS.get("gcn")(SPACE, seed=0, **FAST).fit(train, y)


def test_gcn_fits_a_toy_target(fitted) -> None:
    (curve,) = fitted.loss_curves
    assert curve[-1] < 0.2 * curve[0]  # the training loss falls
    test, y_test = toy(200, seed=2)
    assert kendall_tau(fitted.predict(test), y_test) > 0.7


def test_gcn_ignores_node_numbering(fitted) -> None:
    graphs = [op_graph(SPACE, SPACE.sample(seed)) for seed in range(10, 20)]
    rng = np.random.default_rng(0)
    shuffled = [g.permuted(rng.permutation(len(g.ops))) for g in graphs]
    assert any(s.ops != g.ops for s, g in zip(shuffled, graphs, strict=True))
    before, after = fitted.predict_graphs(graphs)[0], fitted.predict_graphs(shuffled)[0]
    np.testing.assert_allclose(before, after, atol=1e-5)
    assert np.ptp(before) > 0.1  # not a constant: the invariance is not vacuous


def test_gcn_two_stage_ranks_filtered_cells_last() -> None:
    train, y = toy(100, seed=3)
    broken = np.flatnonzero([convolution_free(a) for a in train])
    y[broken] = -50.0  # a tail of failed cells, as NAS-Bench-201's 10% accuracy ones
    assert 10 <= broken.size <= 40
    model = PREDICTORS.get("gcn")(SPACE, seed=0, two_stage=True, filter_quantile=0.2, **FAST).fit(train, y)
    assert len(model.loss_curves) == 2  # a regressor and a classifier
    z = model.predict_graphs([op_graph(SPACE, a) for a in train])[0]
    kept, filtered = z > model._threshold, z < model._threshold
    assert kept.sum() > 50 and (kept | filtered).all()
    assert np.isin(broken, np.flatnonzero(filtered)).mean() > 0.8  # the failed cells are filtered
    test, y_test = toy(200, seed=4)
    assert kendall_tau(model.predict(test), y_test) > 0.6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"two_stage": "yes"}, "two_stage='yes'"),
        ({"filter_quantile": 1.0}, "filter_quantile=1.0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"hidden": 0}, "hidden"),
        ({"target_transform": "log"}, "target_transform='log'"),
    ],
)
def test_gcn_bad_options_name_the_value(options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        PREDICTORS.get("gcn")(SPACE, **options)
