"""Performance predictors: the contract every registered predictor keeps, features, metrics, bad input.

The contract tests are parametrised over ``PREDICTORS``, so a newly
registered predictor is covered without touching this file (give it cheap
options in ``FAST`` if its defaults are slow).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nas.core import PREDICTORS, ConfigError, UnknownNameError
from predictors.evaluation import predictor_study, split_indices, summarise
from predictors.features import Featurizer
from predictors.metrics import kendall_tau, rank_metrics, spearman, top_k_precision
from search_spaces import get_space


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # OpenMP/BLAS pools oversubscribe a shared 2-core machine (10x slower boosted trees).
    with threadpool_limits(1):
        yield


SPACE = get_space("nb201")

#: Cheap options so the contract runs in seconds.
FAST: dict[str, dict] = {
    "mlp_ensemble": {"members": 3, "epochs": 60, "hidden": 16},
    "gbt": {"members": 2, "n_estimators": 60},
    "rf": {"n_estimators": 60},
    "gp": {"restarts": 0},
    "gcn": {"members": 1, "epochs": 60, "batch_size": 32, "hidden": 32, "head": 32},
    "latency_learned": {"max_iter": 30},
    "recipe_mlp": {"members": 2, "epochs": 100, "hidden": 16},
}


def make(name: str, seed: int = 0, **options):
    return PREDICTORS.get(name)(SPACE, seed=seed, **{**FAST.get(name, {}), **options})


def toy_problem(count: int, seed: int):
    """Cells whose score counts 3x3 convs on the input-to-output edges plus small noise."""
    rng = np.random.default_rng(seed)
    archs = [SPACE.sample(rng) for _ in range(count)]
    y = np.array([toy_score(a) for a in archs]) + rng.normal(0, 0.3, count)
    return archs, y


def toy_score(arch) -> float:
    """The noiseless toy score: 3x3 convs into the output (and on 1<-0), a pooled skip costs."""
    conv = [arch[e] == "nor_conv_3x3" for e in ("3<-0", "3<-1", "3<-2", "1<-0")]
    return float(np.dot(conv, [3.0, 2.0, 2.0, 1.0]) - 2.0 * (arch["3<-0"] == "avg_pool_3x3"))


@pytest.fixture(scope="module")
def toy():
    return toy_problem(80, seed=1), toy_problem(200, seed=2)


#: Every registered predictor: the built-ins and the test-only plugin in tests/plugins.
ALL = PREDICTORS.names()


@pytest.fixture(params=ALL)
def name(request) -> str:
    return request.param


# -- the contract --------------------------------------------------------------------------


def test_builtins_registered() -> None:
    assert {"mlp_ensemble", "gbt", "rf", "gp", "gcn", "latency_lut", "latency_learned"} <= set(
        PREDICTORS.names()
    )


def test_the_test_plugin_is_held_to_the_contract() -> None:
    """tests/plugins/predictor_plugin.py is among the contract's cases (a plugin that drops out fails)."""
    assert "plugin_linear" in ALL


def test_fit_predict_learns_and_gives_uncertainty(name, toy) -> None:
    (train, y_train), (test, y_test) = toy
    model = make(name).fit(train, y_train)
    mean, std = model.predict_dist(test)
    assert mean.shape == std.shape == (len(test),)
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()
    assert spearman(mean, y_test) > 0.6, name
    np.testing.assert_array_equal(model.predict(test), mean)


def test_same_seed_same_predictions(name, toy) -> None:
    (train, y_train), (test, _) = toy
    first = make(name, seed=3).fit(train, y_train).predict_dist(test[:20])
    second = make(name, seed=3).fit(train, y_train).predict_dist(test[:20])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_fit_leaves_global_rng_alone(name, toy) -> None:
    import torch

    (train, y_train), _ = toy
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    make(name).fit(train[:30], y_train[:30])
    assert (np.random.get_state()[1] == np_state).all()
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], "non-empty"),
        ([1.0], "at least 2"),
        ([5.0] * 10, "constant"),
        ([1.0, math.nan] * 5, "NaN"),
        ([1.0, 2.0], "must match"),
    ],
)
def test_bad_training_sets_are_errors(name, targets, message) -> None:
    archs = [SPACE.sample(i) for i in range(len(targets) if len(targets) != 2 else 3)]
    with pytest.raises(ConfigError, match=message):
        make(name).fit(archs, targets)


def test_predict_before_fit_is_an_error(name) -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        make(name).predict_dist([SPACE.sample(0)])


def test_unknown_predictor_names_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'gbt'"):
        PREDICTORS.get("gbtt")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("gbt", {"members": 0}, "members=0"),
        ("gbt", {"learning_rate": 0.0}, "learning_rate"),
        ("rf", {"max_features": 2.0}, "max_features"),
        ("gp", {"nu": 3.0}, "nu=3.0"),
        ("mlp_ensemble", {"lr": -1.0}, "lr=-1.0"),
        ("mlp_ensemble", {"lr": True}, "lr=True"),  # a bool is not a learning rate (it trained at 1)
        ("mlp_ensemble", {"weight_decay": "0.1"}, "weight_decay='0.1'"),
        ("gcn", {"lr": True}, "lr=True"),
        ("gcn", {"weight_decay": -1.0}, "weight_decay=-1.0"),
        ("recipe_mlp", {"lr": 0}, "lr=0"),
        ("recipe_mlp", {"weight_decay": False}, "weight_decay=False"),
        ("mlp_ensemble", {"encoding": "graph"}, "encoding='graph'"),
        ("gbt", {"seed": -1}, "seed=-1"),
        ("wl_gp", {"max_iterations": -1}, "iterations=-1"),
        ("wl_gp", {"target_transform": "log"}, "target_transform='log'"),
        ("wl_gp", {"graph_features": 1}, "graph_features=1"),
    ],
)
def test_bad_options_name_the_value(name, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        make(name, **options)


# -- features ---------------------------------------------------------------------------------


def test_featurizer_encodings() -> None:
    arch = SPACE.sample(0)
    assert Featurizer(SPACE)([arch]).shape == (1, SPACE.path_encode(arch).size)  # auto -> path
    assert Featurizer(SPACE, "onehot")([arch]).shape == (1, SPACE.encoding_size())
    both = Featurizer(SPACE, "both")([arch])
    assert both.shape == (1, SPACE.path_encode(arch).size + SPACE.encoding_size())


def test_path_encoding_needs_a_space_that_has_one() -> None:
    with pytest.raises(ConfigError, match="lacks"):
        Featurizer(get_space("fbnet", width_mult=0.25), "path")
    assert Featurizer(get_space("fbnet", width_mult=0.25)).encoding == "onehot"


def test_extra_features_mapping_and_callable(toy) -> None:
    (train, y_train), (test, y_test) = toy
    # The toy target itself as an injected feature: a tree predictor then ranks almost perfectly.
    oracle = dict(zip(train + test, [[v] for v in np.concatenate([y_train, y_test])], strict=True))
    model = make("rf", encoding="none", extra_features=oracle).fit(train, y_train)
    assert spearman(model.predict(test), y_test) > 0.95
    width = Featurizer(SPACE, "onehot", extra_features=lambda a: [1.0, 2.0])([train[0]]).shape[1]
    assert width == SPACE.encoding_size() + 2


def test_extra_features_errors(toy) -> None:
    (train, y_train), _ = toy
    with pytest.raises(ConfigError, match="no entry"):
        make("gbt", extra_features={train[0]: [1.0]}).fit(train[:5], y_train[:5])
    with pytest.raises(ConfigError, match="NaN"):
        make("gbt", extra_features=lambda a: [math.nan]).fit(train[:5], y_train[:5])
    with pytest.raises(ConfigError, match="no features"):
        Featurizer(SPACE, "none")
    with pytest.raises(ConfigError, match="mapping"):
        Featurizer(SPACE, extra_features=[1.0, 2.0])  # type: ignore[arg-type]


# -- metrics ------------------------------------------------------------------------------------


def test_rank_metrics_known_values() -> None:
    actual = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(actual, actual) == pytest.approx(1.0)
    assert kendall_tau(actual[::-1], actual) == pytest.approx(-1.0)
    # One swapped pair out of ten: tau = (9 - 1) / 10.
    assert kendall_tau([1, 2, 3, 5, 4], actual) == pytest.approx(0.8)
    assert top_k_precision([5, 4, 1, 2, 3], actual, k=2) == pytest.approx(0.0)
    assert top_k_precision([1, 2, 3, 5, 4], actual, k=2) == pytest.approx(1.0)
    assert top_k_precision([1, 2, 3, 5, 4], actual, k=0.2) == pytest.approx(0.0)
    assert rank_metrics(actual, actual, k=1) == pytest.approx(
        {"spearman": 1.0, "kendall_tau": 1.0, "top_k": 1.0}
    )


def test_constant_prediction_has_no_rank_agreement() -> None:
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0
    assert kendall_tau([1.0, 2.0, 3.0], [7.0, 7.0, 7.0]) == 0.0


@pytest.mark.parametrize(
    ("predicted", "actual", "k", "message"),
    [
        ([1.0, 2.0], [1.0], 1, "same length"),
        ([1.0], [1.0], 1, "at least 2"),
        ([1.0, math.nan], [1.0, 2.0], 1, "finite"),
        ([1.0, 2.0], [1.0, 2.0], 0, "k=0"),
        ([1.0, 2.0], [1.0, 2.0], 1.5, "fraction"),
    ],
)
def test_metric_errors(predicted, actual, k, message) -> None:
    with pytest.raises(ConfigError, match=message):
        rank_metrics(predicted, actual, k)


# -- the evaluation protocol ----------------------------------------------------------------------


def test_split_indices_is_seeded_and_disjoint() -> None:
    train, test = split_indices(50, 10, seed=4)
    assert len(train) == 10 and len(test) == 40 and not set(train) & set(test)
    np.testing.assert_array_equal(train, split_indices(50, 10, seed=4)[0])
    with pytest.raises(ConfigError, match="training size 50"):
        split_indices(50, 50, seed=0)


def test_predictor_study_rows_and_summary(toy) -> None:
    (archs, y), _ = toy
    rows = predictor_study(
        SPACE, archs, y, ["rf"], train_sizes=(20, 40), seeds=(0, 1), options={"rf": FAST["rf"]}
    )
    assert [(r.train_size, r.seed) for r in rows] == [(20, 0), (20, 1), (40, 0), (40, 1)]
    assert all(r.test_size == len(archs) - r.train_size for r in rows)
    summary = summarise(rows)
    assert [s["train_size"] for s in summary] == [20, 40]
    assert summary[1]["kendall_tau"] == pytest.approx(np.mean([r.kendall_tau for r in rows[2:]]))
    with pytest.raises(ConfigError, match="not run"):
        predictor_study(SPACE, archs, y, ["rf"], options={"gbt": {}})
    # Variants of one predictor under their own labels.
    variants = {"rf/path": ("rf", {**FAST["rf"]}), "rf/onehot": ("rf", {**FAST["rf"], "encoding": "onehot"})}
    labelled = predictor_study(SPACE, archs, y, variants, train_sizes=(30,), seeds=(0,))
    assert [r.predictor for r in labelled] == ["rf/path", "rf/onehot"]
    assert labelled[0].kendall_tau != labelled[1].kendall_tau


def test_predictor_study_refuses_options_a_predictor_lacks(toy) -> None:
    """gcn reads graphs, not feature vectors: proxy features for it are a clear error, not a TypeError."""
    (archs, y), _ = toy
    with pytest.raises(ConfigError, match=r"'gcn' has no option\(s\) \['extra_features'\]"):
        predictor_study(SPACE, archs, y, {"gcn+zc": ("gcn", {"extra_features": {}})}, train_sizes=(20,))


def test_real_benchmark_predictor_beats_chance(data_dir) -> None:
    """On NAS-Bench-201's 12-epoch accuracies, 100 cells teach a forest a clearly positive ranking."""
    import csv

    with open(data_dir / "nb201" / "nb201_12epoch.csv") as handle:
        rows = [r for _, r in zip(range(600), csv.DictReader(handle), strict=False)]
    archs = [SPACE.parse(r["arch"]) for r in rows]
    y = np.array([float(r["cifar10-val"]) for r in rows])
    result = predictor_study(
        SPACE, archs, y, ["rf"], train_sizes=(100,), seeds=(0,), options={"rf": FAST["rf"]}
    )
    assert result[0].kendall_tau > 0.3


def test_cli_bench_predictors(data_dir) -> None:
    import json

    from click.testing import CliRunner

    from nas.cli import main

    args = ["bench", "predictors", "--predictors", "rf", "--train-sizes", "40", "--seeds", "1"]
    args += ["--test-limit", "300", "--option", "rf.n_estimators=30", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    (row,) = payload["rows"]
    assert (row["predictor"], row["train_size"], row["test_size"]) == ("rf", 40, 300)
    assert row["kendall_tau"] > 0.2
    typo = CliRunner().invoke(main, ["bench", "predictors", "--predictors", "rff", "--seeds", "1"])
    assert typo.exit_code == 2 and "Did you mean 'rf'" in typo.output


# -- target transforms -----------------------------------------------------------------------------


def test_rank_transform_round_trip_and_monotone() -> None:
    from predictors.targets import TargetTransform

    y = np.array([10.0, 55.0, 70.0, 71.0, 90.0, 10.0])
    transform = TargetTransform("rank")
    z = transform.fit_forward(y)
    assert np.allclose(transform.inverse(z), y)
    assert z[0] == z[5] and z[4] == z.max()  # ties share a rank
    grid = np.linspace(-5, 5, 101)  # far beyond the training range on both sides
    assert (np.diff(transform.inverse(grid)) > 0).all()
    assert (transform.inverse_std(grid, np.ones_like(grid)) >= 0).all()
    with pytest.raises(ConfigError, match="target_transform='log'"):
        TargetTransform("log")


@pytest.mark.parametrize("name", ["rf", "gp", "mlp_ensemble"])
def test_rank_target_predictors_learn(name, toy) -> None:
    (train, y_train), (test, y_test) = toy
    # Broken-network outliers in the training targets: the rank transform shrugs them off.
    y_outliers = y_train.copy()
    y_outliers[:8] = -100.0
    model = make(name, target_transform="rank").fit(train, y_outliers)
    mean, std = model.predict_dist(test)
    assert spearman(mean, y_test) > 0.5 and (std >= 0).all()


@pytest.mark.parametrize("name", ["mlp_ensemble", "gp"])
def test_heavy_tailed_extra_features_reach_distance_and_gradient_models(name, toy, monkeypatch) -> None:
    """A proxy whose informative bulk sits in a sliver next to one far outlier (jacob_cov-like)."""
    (archs, y), (test_archs, test_y) = toy
    rng = np.random.default_rng(0)
    jitter = {a: float(rng.normal()) for a in [*archs, *test_archs]}

    def proxy(arch) -> list[float]:  # the toy score squeezed into 1e-3, plus one far outlier
        if arch is archs[0]:
            return [-1000.0]
        return [1e-3 * toy_score(arch) + 1e-6 * jitter[arch]]

    cls = PREDICTORS.get(name)
    seen: list[np.ndarray] = []
    fit = cls._fit
    monkeypatch.setattr(cls, "_fit", lambda self, x, t: (seen.append(x), fit(self, x, t))[1])
    model = make(name, encoding="none", extra_features=proxy).fit(archs, y)
    column = np.sort(seen[0][:, 0])
    # The bulk spreads over [0, 1] (rank positions) instead of squashing into its top 1e-6.
    assert column[0] == 0.0 and column[1] < 0.05 and column[-1] == 1.0
    assert np.ptp(column[1:]) > 0.9
    assert kendall_tau(model.predict(test_archs), test_y) > 0.5
    assert not PREDICTORS.get("gbt").rank_continuous and not PREDICTORS.get("rf").rank_continuous
