"""Weisfeiler-Lehman features, the WL-kernel GP and the ``bowl`` strategy's explanation."""

from __future__ import annotations

import json
from collections import Counter

import networkx as nx
import numpy as np
import pytest

from nas.core import ArchitectureError, ConfigError
from nas.core.graph_stats import STATISTICS
from nas.core.wl import WLFeaturizer, count_matrix, feature_name, op_graph, vocabulary, wl_features
from nas.core.wl_gp import WLGaussianProcess
from nas.strategies import create_strategy, run_loop
from search_spaces import get_space

NB201 = get_space("nb201")


def test_wl_features_of_a_node_labelled_graph_match_the_hand_computed_counts() -> None:
    # in -> a -> c -> out and in -> b -> c: a diamond, ops on the nodes (a chain space's form)
    graph = nx.DiGraph()
    for node, op in {"in": "input", "a": "conv", "b": "pool", "c": "conv", "out": "output"}.items():
        graph.add_node(node, op=op)
    graph.add_edges_from([("in", "a"), ("in", "b"), ("a", "c"), ("b", "c"), ("c", "out")])
    expected = Counter(
        {
            (0, "input"): 1,
            (0, "conv"): 2,
            (0, "pool"): 1,
            (0, "output"): 1,
            (1, "input"): 1,
            (1, "conv(input)"): 1,
            (1, "pool(input)"): 1,
            (1, "conv(conv,pool)"): 1,
            (1, "output(conv)"): 1,
            (2, "input"): 1,
            (2, "conv(input)"): 1,
            (2, "pool(input)"): 1,
            (2, "conv(conv(input),pool(input))"): 1,
            (2, "output(conv(conv,pool))"): 1,
        }
    )
    assert wl_features(graph, 2) == expected
    assert wl_features(graph, 0) == Counter({f: n for f, n in expected.items() if f[0] == 0})
    assert feature_name((1, "conv(input)")) == "h1:conv(input)"


def test_cell_edges_become_operation_nodes_and_dead_operations_are_dropped() -> None:
    # node 1 = conv3(x); node 2 = pool(x) + skip(node 1); node 3 = conv1(node 2) + none(x) + none(node 1)
    arch = NB201.parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|")
    features = wl_features(NB201.to_graph(arch), 2)
    assert features[(0, "nor_conv_3x3")] == 1 and features[(0, "none")] == 0
    assert features[(1, "skip_connect(nor_conv_3x3)")] == 1  # the sum node 1 is contracted
    assert features[(1, "nor_conv_1x1(avg_pool_3x3,skip_connect)")] == 1
    assert features[(2, "output(nor_conv_1x1(avg_pool_3x3,skip_connect))")] == 1
    assert sum(n for (h, _), n in features.items() if h == 0) == 6  # input, 4 live ops, output
    # node 1's conv feeds only node 2 via skip, so everything is live; cut node 2's inputs and
    # the 1x1 conv out of it computes zeros: dead, like the ops into node 2 that reach nothing
    dead = NB201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    assert wl_features(NB201.to_graph(dead), 1) == Counter(
        {(0, "input"): 1, (0, "skip_connect"): 1, (0, "output"): 1}
        | {(1, "input"): 1, (1, "skip_connect(input)"): 1, (1, "output(skip_connect)"): 1}
    )


def test_graph_statistics_of_the_contracted_cell_count_operations_on_each_path() -> None:
    # input -> conv3 -> skip -> conv1 -> output and input -> pool -> conv1 -> output
    arch = NB201.parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|")
    stats = dict(zip(STATISTICS, WLFeaturizer(NB201).statistics([arch])[0], strict=True))
    assert stats == pytest.approx(
        {
            "nodes": 6,  # input, four live operations, output
            "edges": 6,
            "paths_log1p": np.log1p(2),
            "path_ops_min": 2,  # pool, conv1: the cell's input and output nodes do not compute
            "path_ops_mean": 2.5,
            "path_ops_max": 3,
            "in_degree_mean": 6 / 5,
            "in_degree_max": 2,
            "out_degree_max": 2,
        }
    )


def test_a_space_without_a_graph_and_bad_iterations_are_clear_errors() -> None:
    with pytest.raises(ArchitectureError, match="empty graph"):
        op_graph(nx.DiGraph())
    with pytest.raises(ConfigError, match="iterations=-1"):
        wl_features(NB201.to_graph(NB201.sample(0)), -1)


def test_count_matrix_norms_include_features_outside_the_vocabulary() -> None:
    featurize = WLFeaturizer(NB201)
    a, b = (featurize(NB201.sample(seed)) for seed in (1, 2))
    columns = vocabulary([a], max_iteration=1)
    matrix, norms = count_matrix([a, b], columns, max_iteration=1)
    assert matrix[0].sum() == sum(n for (h, _), n in a.items() if h <= 1)
    assert norms[1] == pytest.approx(np.sqrt(sum(n * n for (h, _), n in b.items() if h <= 1)))


def _conv_into_output(arch) -> float:  # noqa: ANN001
    return float(sum(arch[e] == "nor_conv_3x3" for e in ("3<-0", "3<-1", "3<-2")))


def test_wl_gp_learns_and_names_the_sub_graph_that_matters() -> None:
    rng = np.random.default_rng(0)
    archs = [NB201.sample(rng) for _ in range(80)]
    y = np.array([_conv_into_output(a) for a in archs]) + rng.normal(0, 0.1, len(archs))
    model = WLGaussianProcess(NB201).fit(archs, y)
    test = [NB201.sample(rng) for _ in range(200)]
    mean, std = model.predict_dist(test)
    assert np.corrcoef(mean, [_conv_into_output(a) for a in test])[0, 1] > 0.8
    assert (std >= 0).all() and model.iterations in (0, 1, 2)
    explanation = model.explain(top=3)
    json.dumps(explanation)  # stored as a trial attribute: must be JSON
    assert "nor_conv_3x3" in explanation["positive"][0]["feature"]
    assert all(row["effect"] < 0 for row in explanation["negative"])
    with pytest.raises(ConfigError, match="noise=0"):
        WLGaussianProcess(NB201, noise=0)
    with pytest.raises(ConfigError, match="graph_features='yes'"):
        WLGaussianProcess(NB201, graph_features="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("graph_features", [True, False])
def test_wl_gp_effects_are_the_gradient_of_its_posterior_mean(graph_features: bool) -> None:
    # The explanation must stay NAS-BOWL's: d(mean)/d(count of the sub-graph), averaged over the
    # training cells that contain it, with the graph-statistics factor of the kernel held fixed.
    rng = np.random.default_rng(1)
    archs = [NB201.sample(rng) for _ in range(40)]
    y = np.array([_conv_into_output(a) for a in archs]) + rng.normal(0, 0.3, len(archs))
    model = WLGaussianProcess(NB201, graph_features=graph_features).fit(archs, y)
    counts, _ = model._counts
    weights = model._r * model._alpha[None, :]  # row j: what training cell j's mean sums

    def mean(row: int, counts_row: np.ndarray) -> float:
        unit = counts_row / np.linalg.norm(counts_row)
        return float(model._y_std * model.amplitude * (unit @ model._x.T) @ weights[row])

    step = 1e-6
    names = {feature_name(f): j for f, j in model._columns.items()}
    for name, effect, support in model.feature_effects()[:5]:
        j = names[name]
        rows = np.flatnonzero(counts[:, j] > 0)
        shifted = [counts[r] + step * (np.arange(counts.shape[1]) == j) for r in rows]
        numeric = np.mean(
            [(mean(r, s) - mean(r, counts[r])) / step for r, s in zip(rows, shifted, strict=True)]
        )
        assert support == len(rows) and effect == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    assert (model.length_scale < np.inf) is graph_features


def test_bowl_explains_itself_once_its_model_is_fitted(data_dir) -> None:  # noqa: ANN001
    from nas.evaluators.tabular import Nb201TableEvaluator

    strategy = create_strategy("bowl", NB201, seed=0, n_initial=5, n_candidates=20)
    assert strategy.explain() is None  # nothing learned during the random start
    run_loop(strategy, Nb201TableEvaluator(NB201), 12)
    explanation = strategy.explain()
    assert explanation["model"] == "wl_gp" and explanation["trials"] >= 5
    assert explanation["positive"] and explanation["negative"]
    assert explanation["positive"][0]["feature"].startswith("h")
    json.dumps(explanation)
    with pytest.raises(ConfigError, match="'predictor' is not allowed"):
        create_strategy("bowl", NB201, predictor="gbt")
