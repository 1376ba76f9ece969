"""Zero-cost proxies: definitions checked by hand on tiny networks, NASLib agreement, the evaluator, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.core import EVALUATORS, ConfigError, UnknownNameError
from predictors.combine import rank_vote
from predictors.metrics import spearman
from predictors.suite_zero import naslib_nb201_string, read_zero_cost_nb201
from predictors.zero_cost import PROXIES, fresh_model, list_proxies, score, score_arch, synthetic_batch
from search_spaces import get_space

SMALL = get_space("nb201", channels=4, cells=1)
ALL = ("synflow", "snip", "grad_norm", "jacob_cov", "nwot", "fisher", "gradsign", "params", "flops")


def tiny_cnn(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        )


def linear(weight: list[list[float]]) -> nn.Module:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return nn.Sequential(nn.Flatten(), layer)


@pytest.fixture(scope="module")
def batch():
    x, _ = synthetic_batch(8, (3, 6, 6), num_classes=3, seed=1)
    return x, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])


#: Every registered proxy: the built-ins and the test-only plugin in tests/plugins.
REGISTERED = list_proxies()


def test_builtin_proxies_registered() -> None:
    assert set(ALL) <= set(list_proxies())


def test_the_test_plugin_is_held_to_the_contract() -> None:
    """tests/plugins/proxy_plugin.py is among the contract's cases (a plugin that drops out fails)."""
    assert "plugin_output_norm" in REGISTERED


@pytest.mark.parametrize("proxy", REGISTERED)
def test_every_proxy_is_finite_and_leaves_the_model_alone(proxy, batch) -> None:
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    value = score(model, *batch, proxy)
    assert isinstance(value, float) and math.isfinite(value)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert value == score(model, *batch, proxy)  # deterministic


def test_synflow_by_hand() -> None:
    # R = sum_j |w_ij| * 1 for an all-ones input, so |w * dR/dw| = |w| and synflow = log(sum |w|).
    model = linear([[1.0, -2.0], [0.5, 3.0]])
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    assert score(model, x, None, "synflow") == pytest.approx(math.log(6.5))
    # Data-free: any input values give the same score.
    assert score(model, x * 100, None, "synflow") == pytest.approx(math.log(6.5))


def test_synflow_ignores_batch_norm() -> None:
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 1, bias=False)
    )
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model[3].weight.copy_(torch.tensor([[1.0, -1.0]]))
    # Without BN: R = |v| . |W| 1 = 3 + 7 = 10; sum |W * dR/dW| = sum_i |v_i| sum_j |W_ij| = 10, same for v.
    assert score(model, torch.ones(3, 2), None, "synflow") == pytest.approx(math.log(20.0))


def test_snip_grad_norm_fisher_by_hand() -> None:
    model = linear([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]])
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]])
    y = torch.tensor([1, 0])
    weight = model[1].weight.detach().clone().requires_grad_(True)
    out = x @ weight.T
    out.retain_grad()
    nn.functional.cross_entropy(out, y).backward()
    assert score(model, x, y, "snip") == pytest.approx(float((weight.detach() * weight.grad).abs().sum()))
    assert score(model, x, y, "grad_norm") == pytest.approx(float(weight.grad.norm()))
    expected_fisher = float(0.5 * (out.detach() * out.grad).pow(2).mean(0).sum())
    assert score(model, x, y, "fisher") == pytest.approx(expected_fisher)


def test_gradsign_by_hand_on_two_weights() -> None:
    """Two classes, one input, two weights: dL_i/dw_k = (p_k - [k = y_i]) x_i, whose sign is known."""
    model = linear([[0.5], [-0.5]])
    y = torch.tensor([0, 0, 1, 1])
    # Signs of (w0, w1) per example: x=1,y=0: (-,+); x=-2,y=0: (+,-); x=3,y=1: (+,-); x=0: no gradient.
    x = torch.tensor([[1.0], [-2.0], [3.0], [0.0]])
    assert score(model, x, y, "gradsign") == pytest.approx(abs(-1 + 1 + 1) + abs(1 - 1 - 1))
    # All examples pull every weight the same way: each weight scores the number of examples.
    agreeing = torch.tensor([[1.0], [2.0], [-1.0], [-3.0]])
    assert score(model, agreeing, torch.tensor([0, 0, 1, 1]), "gradsign") == pytest.approx(8.0)


def test_gradsign_is_largest_for_identical_examples(batch) -> None:
    """Identical examples agree on every gradient sign: the score is the batch size x the live weights."""
    x, y = batch
    model = tiny_cnn()
    same_x, same_y = x[:1].repeat(8, 1, 1, 1), y[:1].repeat(8)
    work = tiny_cnn()
    nn.functional.cross_entropy(work(same_x[:1]), same_y[:1]).backward()
    live = sum(
        int((m.weight.grad != 0).sum()) for m in work.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    )
    assert score(model, same_x, same_y, "gradsign") == pytest.approx(8.0 * live)
    assert score(model, x, y, "gradsign") < 8.0 * live  # a real batch disagrees somewhere
    with pytest.raises(ConfigError, match="at least 2 examples"):
        score(model, x[:1], y[:1], "gradsign")


def test_nwot_by_hand() -> None:
    model = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(3, 1))
    x = torch.tensor([[1.0, -1.0, 2.0], [1.0, 1.0, -2.0], [-1.0, -1.0, -1.0]])
    codes = (x > 0).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    expected = float(torch.linalg.slogdet(kernel).logabsdet)
    assert score(model, x, None, "nwot") == pytest.approx(expected)


def test_jacob_cov_by_hand() -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    x = torch.randn(3, 4, generator=generator)
    inputs = x.clone().requires_grad_(True)
    model(inputs).sum().backward()
    eig = np.linalg.eigvalsh(np.corrcoef(inputs.grad.double().numpy())) + 1e-5
    assert score(model, x, None, "jacob_cov") == pytest.approx(float(-np.sum(np.log(eig) + 1 / eig)))


def test_params_and_flops() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.ones(5, 4)
    assert score(model, x, None, "params") == 15.0
    assert score(model, x, None, "flops") == 2 * 4 * 3  # one example, a multiply-add is 2 FLOPs


# -- bad input -----------------------------------------------------------------------------------


def test_unknown_proxy_close_match(batch) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'synflow'"):
        score(tiny_cnn(), *batch, "synflw")


def test_parameterless_network_is_an_error(batch) -> None:
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    for proxy in ("synflow", "snip", "grad_norm", "fisher"):
        with pytest.raises(ConfigError, match="without conv or linear weights"):
            score(model, *batch, proxy)
    assert score(model, *batch, "params") == 0.0


def test_nwot_needs_relu_modules(batch) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 2))
    with pytest.raises(ConfigError, match="nn.ReLU"):
        score(model, *batch, "nwot")


def test_non_finite_score_is_an_error_or_the_fallback(batch) -> None:
    dead = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 2, bias=False))
    with torch.no_grad():
        dead[1].weight.zero_()  # all-zero weights carry no synaptic flow: synflow = log 0
    with pytest.raises(ConfigError, match="fallback"):
        score(dead, *batch, "synflow")
    assert score(dead, *batch, "synflow", fallback=-1e8) == -1e8


def test_labels_and_batch_checked(batch) -> None:
    x, y = batch
    with pytest.raises(ConfigError, match="needs labels"):
        score(tiny_cnn(), x, None, "snip")
    with pytest.raises(ConfigError, match="must match"):
        score(tiny_cnn(), x, y[:3], "snip")
    with pytest.raises(ConfigError, match="at least 2"):
        score(tiny_cnn(), x[:1], None, "nwot")
    with pytest.raises(ConfigError, match="batch_x"):
        score(tiny_cnn(), x[0, 0, 0], None, "params")


# -- architectures, determinism, the evaluator -------------------------------------------------------


def test_score_arch_is_seeded_and_leaves_global_rng_alone() -> None:
    arch = SMALL.sample(3)
    x, y = synthetic_batch(4, (3, 8, 8), seed=0)
    state = torch.get_rng_state().clone()
    first = score_arch(SMALL, arch, ALL, x, y, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert first == score_arch(SMALL, arch, ALL, x, y, seed=5)
    assert first["synflow"] != score_arch(SMALL, arch, ["synflow"], x, y, seed=6)["synflow"]
    assert (
        fresh_model(SMALL, arch, seed=5).state_dict().keys()
        == fresh_model(SMALL, arch, seed=6).state_dict().keys()
    )


def test_zero_cost_evaluator(batch) -> None:
    cls = EVALUATORS.get("zero_cost")
    evaluator = cls(SMALL, proxy="nwot", batch_size=6, input_shape=(3, 8, 8))
    arch = SMALL.parse(
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    )
    result = evaluator.evaluate(arch, seed=1)
    assert set(result.values) == {"nwot", "params", "flops"}
    assert result.values == evaluator.evaluate(arch, seed=1).values
    assert result.values["params"] == score(fresh_model(SMALL, arch), batch[0], None, "params")
    # An explicit batch, and a real dataset (sklearn's bundled digits, 1 x 8 x 8).
    x, y = batch
    explicit = cls(SMALL, proxy="snip", batch=(x.numpy(), y.numpy()), num_classes=3).evaluate(arch)
    assert explicit.values["snip"] > 0
    digits = cls(SMALL, proxy="jacob_cov", dataset="digits", batch_size=16).evaluate(arch)
    assert math.isfinite(digits.values["jacob_cov"]) and digits.user_attrs["batch_size"] == 16


def test_zero_cost_evaluator_bad_input(batch) -> None:
    cls = EVALUATORS.get("zero_cost")
    with pytest.raises(UnknownNameError, match="zero-cost proxy"):
        cls(SMALL, proxy="flop")
    with pytest.raises(ConfigError, match="either batch or dataset"):
        cls(SMALL, batch=batch, dataset="digits")
    with pytest.raises(ConfigError, match="labels lie in"):
        cls(SMALL, batch=batch, num_classes=2)
    dead = SMALL.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ConfigError, match="synflow"):
        cls(SMALL, proxy="synflow", batch_size=2, input_shape=(3, 8, 8)).evaluate(dead)
    fallback = cls(SMALL, proxy="synflow", batch_size=2, input_shape=(3, 8, 8), fallback=-1e8)
    assert fallback.evaluate(dead).values["synflow"] == -1e8


# -- combination and the published scores ------------------------------------------------------------


def test_rank_vote() -> None:
    scores = {"a": [1.0, 2.0, 3.0, 4.0], "b": [4.0, 3.0, 2.0, 1.0], "c": [math.nan, 1.0, 2.0, 3.0]}
    np.testing.assert_allclose(rank_vote(scores, ["a", "b"]), [0.625] * 4)
    np.testing.assert_allclose(rank_vote(scores, ["c"]), [0.25, 0.5, 0.75, 1.0])  # NaN ranks lowest
    with pytest.raises(UnknownNameError, match="Did you mean 'a'"):
        rank_vote(scores, ["aa"])
    with pytest.raises(ConfigError, match="lengths"):
        rank_vote({"a": [1.0], "b": [1.0, 2.0]})


def test_naslib_key_mapping() -> None:
    # README: (e01, e02, e03, e12, e13, e23) -> |e01~0|+|e02~0|e12~1|+|e03~0|e13~1|e23~2|
    assert naslib_nb201_string("(0, 2, 3, 2, 3, 1)") == (
        "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|"
    )
    for bad in ("(0, 1)", "(0, 1, 2, 3, 4, 5)", "junk"):
        with pytest.raises(ConfigError, match="NASLib"):
            naslib_nb201_string(bad)


def test_synflow_matches_naslib_published_scores(data_dir) -> None:
    """Our synflow on the benchmark network reproduces NASLib's stored scores (log scale)."""
    space = get_space("nb201")
    path = data_dir / "zero_cost" / "zc_nasbench201_sample.json"
    with open(path) as handle:
        entries = list(json.load(handle)["cifar10"].items())[:6]
    x = torch.zeros(1, 3, 32, 32)
    ours, theirs = [], []
    for key, entry in entries:
        model = fresh_model(space, space.parse(naslib_nb201_string(key)), seed=0)
        ours.append(score(model, x, None, "synflow"))
        theirs.append(entry["synflow"]["score"])
    np.testing.assert_allclose(ours, theirs, atol=0.5)  # differences come from the random init only
    assert spearman(ours, theirs) > 0.9


def test_read_zero_cost_sample(data_dir) -> None:
    sample = read_zero_cost_nb201(data_dir / "zero_cost" / "zc_nasbench201_sample.json", get_space("nb201"))
    assert len(sample.archs) == len(sample.val_accuracy) > 700
    assert {"synflow", "jacov", "nwot", "params", "flops"} <= set(sample.scores)
    with pytest.raises(UnknownNameError, match="cifar10"):
        read_zero_cost_nb201(
            data_dir / "zero_cost" / "zc_nasbench201_sample.json", get_space("nb201"), "cifar11"
        )


def test_proxies_registry_entries_describe_themselves() -> None:
    for name in list_proxies():
        entry = PROXIES.get(name)
        assert entry.name == name and entry.description
        assert not (entry.needs_labels and not entry.uses_data)


@pytest.mark.slow  # loads the 10,000-image CIFAR-10 subset
def test_cli_bench_proxies(data_dir) -> None:
    from click.testing import CliRunner

    from nas.cli import main

    ours = CliRunner().invoke(
        main,
        ["bench", "proxies", "--proxies", "synflow,params", "--limit", "12", "--batch-size", "4"]
        + ["--vote", "synflow,params", "--json"],
    )
    assert ours.exit_code == 0, ours.output
    rows = {r["proxy"]: r for r in json.loads(ours.output)["rows"]}
    assert set(rows) == {"synflow", "params", "vote(synflow,params)"}
    assert rows["synflow"]["agreement"] > 0.9  # our synflow ranks the cells as NASLib's does
    stored = CliRunner().invoke(main, ["bench", "proxies", "--source", "naslib", "--json"])
    assert stored.exit_code == 0, stored.output
    rows = {r["proxy"]: r for r in json.loads(stored.output)["rows"]}
    assert rows["vote(synflow,jacob_cov,nwot)"]["spearman"] > max(
        rows[p]["spearman"] for p in ("synflow", "nwot")
    )


# -- proxy tables and features --------------------------------------------------------------------


def test_proxy_table_cache_resumes_and_refuses_other_settings(tmp_path) -> None:
    from predictors.proxy_table import proxy_table

    archs = [SMALL.sample(i) for i in range(4)]
    x, y = synthetic_batch(4, (3, 8, 8), seed=0)
    cache = tmp_path / "scores.npz"
    first = proxy_table(SMALL, archs[:2], ["synflow", "params"], x, y, cache=cache)
    assert cache.exists()
    calls: list[int] = []
    both = proxy_table(
        SMALL, archs, ["synflow", "params"], x, y, cache=cache, progress=lambda d, t: calls.append(d)
    )
    np.testing.assert_array_equal(both[:2], first)
    assert calls == [1, 2, 3, 4] and both.shape == (4, 2)
    with np.load(cache) as stored:
        assert len(stored["keys"]) == 4
    with pytest.raises(ConfigError, match="other settings"):
        proxy_table(SMALL, archs, ["synflow", "params"], x, y, seed=1, cache=cache)


def test_as_features_logs_sizes_and_ranks_undefined_lowest() -> None:
    from predictors.proxy_table import as_features

    scores = np.array([[1.0, 1e3], [np.nan, 1e5], [3.0, 1e4], [-np.inf, 1e6]])
    features = as_features(scores, ["synflow", "params"])
    np.testing.assert_allclose(features[:, 1], [3.0, 5.0, 4.0, 6.0])
    assert features[1, 0] == features[3, 0] < 1.0 and np.isfinite(features).all()
    assert features[1, 0] > 0.0  # just below the minimum, not a huge sentinel
    with pytest.raises(ConfigError, match="undefined on every"):
        as_features(np.array([[np.nan], [np.nan]]), ["jacob_cov"])


def test_proxy_features_average_over_seeds(tmp_path) -> None:
    from predictors.proxy_table import proxy_features, proxy_table, seed_cache_path

    archs = [SMALL.sample(i) for i in range(3)]
    x, y = synthetic_batch(4, (3, 8, 8), seed=0)
    features = proxy_features(SMALL, archs, ["synflow"], x, y, seeds=(0, 1), cache=tmp_path / "f.npz")
    assert seed_cache_path(tmp_path / "f.npz", 1).exists()
    single = [proxy_table(SMALL, archs, ["synflow"], x, y, seed=s)[:, 0] for s in (0, 1)]
    np.testing.assert_allclose([features[a][0] for a in archs], np.mean(single, axis=0))


@pytest.mark.parametrize(
    "options, named",
    [
        ({"input_shape": [3, 0, 32]}, "input_shape: input_shape [3, 0, 32] is not allowed"),
        ({"input_shape": [3, 32]}, "input_shape: input_shape [3, 32] is not allowed"),
        ({"input_shape": [3, 100000, 100000]}, "is too large"),
        ({"proxy": "flop", "input_shape": [3, 8, 8]}, "proxy: "),
        ({"batch_size": 0}, "batch_size: "),
    ],
)
def test_zero_cost_options_are_checked_in_the_plan_before_any_trial(options, named) -> None:
    """The evaluator is built only inside a trial: its settings model checks the options in the plan."""
    from nas.runner import build_plan

    config = {
        "name": "zc",
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "evaluator": {"name": "zero_cost", **options},
        "objectives": {"synflow": "max"},
    }
    with pytest.raises(ConfigError, match="invalid options of evaluator 'zero_cost'") as caught:
        build_plan(config)
    assert named in str(caught.value)
    ok = {**config, "evaluator": {"name": "zero_cost", "input_shape": [3, 8, 8], "batch_size": 4}}
    assert build_plan(ok).evaluator is EVALUATORS.get("zero_cost")
