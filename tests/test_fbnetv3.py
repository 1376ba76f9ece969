"""FBNetV3: joint architecture and training-recipe search with a proxy-pre-trained predictor.

The mechanism piece by piece (the recipe's decisions and their errors, the
recipe reaching the training loop, mixup, the predictor's pre-training on
proxies), then the strategy on the NAS-Bench-201 table, and one real
``nas search`` on fbnet/digits whose trial is exported with its recipe on the card.
The strategy's ask/tell contract runs in tests/test_strategies.py (it is registered).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_search_matrix import EVALUATOR, _config, _export, _nas, _write

import nas
from nas.core import STRATEGIES, ConfigError, TrialState, UnknownNameError
from nas.data import load_dataset
from nas.evaluators.train import TrainEvaluator
from nas.runner import build_plan
from nas.strategies import create_strategy, run_loop
from nas.strategies.fbnetv3 import DEFAULT_RECIPE, RecipeSpace
from nas.training import mixup_batch
from predictors.joint import RecipeMLP
from predictors.metrics import spearman
from predictors.zero_cost import score_arch, synthetic_batch
from search_spaces import get_space

NB201 = get_space("nb201")
SYNTHETIC = {"name": "synthetic", "num_samples": 240, "num_test": 40, "num_classes": 4, "noise": 0.8}
#: A small predictor so each fit takes a fraction of a second.
SMALL_PREDICTOR = {"members": 2, "epochs": 60, "pretrain_epochs": 60, "proxies": ["params"]}


# -- the recipe's decisions -------------------------------------------------------------------------


def test_recipe_space_defaults_samples_and_encoding() -> None:
    space = RecipeSpace(
        {
            "lr": {"low": 0.01, "high": 1.0, "log": True},
            "epochs": {"low": 2, "high": 6, "integer": True, "default": 3},
            "mixup": {"choices": [0.0, 0.2, 0.4]},
            "optimizer": {"choices": ["sgd", "adamw"], "default": "adamw"},
        }
    )
    assert space.default() == {"lr": pytest.approx(0.1), "epochs": 3, "mixup": 0.0, "optimizer": "adamw"}
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(50)]
    assert all(0.01 <= s["lr"] <= 1.0 and s["epochs"] in range(2, 7) for s in samples)
    assert {s["optimizer"] for s in samples} == {"sgd", "adamw"}
    # lr on a log scale, epochs on a linear one, mixup by its ordinal position, optimizer one-hot.
    row = space.encode([{"lr": 0.1, "epochs": 6, "mixup": 0.2, "optimizer": "sgd"}])[0]
    np.testing.assert_allclose(row, [0.5, 1.0, 0.5, 1.0, 0.0])
    # A stored recipe that lacks a setting ran with its default; one outside the decisions is refused.
    assert space.check({"lr": 0.5})["mixup"] == 0.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "expected a mapping setting"),
        ({"lr": 0.1}, r"recipe\.lr=0\.1 is not allowed"),
        ({"lr": {"low": 0.1}}, "needs low and high"),
        ({"lr": {"low": 0.2, "high": 0.1}}, "must be below high"),
        ({"lr": {"low": 0.0, "high": 0.1, "log": True}}, "log range needs low > 0"),
        ({"lr": {"low": 0.01, "high": 0.1, "default": 0.5}}, r"recipe\.lr\.default=0\.5"),
        ({"lr": {"low": 0.01, "high": 0.1, "step": 2}}, r"unknown keys \['step'\]"),
        ({"mixup": {"choices": []}}, "non-empty list"),
        ({"mixup": {"choices": [0.0, 0.2], "default": 0.3}}, r"default=0\.3 is not one of the choices"),
        ({"mixup": {"choices": [0.0, 0.2], "low": 0.0}}, "both choices and a range"),
        ({"mixup": {"choices": [0.1, 0.1]}}, "distinct"),
    ],
)
def test_bad_recipe_decisions_name_the_value(spec, message) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match=message):
        create_strategy("fbnetv3", NB201, recipe=spec)


def test_a_stored_recipe_outside_the_decisions_is_refused() -> None:
    space = RecipeSpace(DEFAULT_RECIPE)
    with pytest.raises(
        ConfigError, match=r"recipe mixup=0\.3 is not allowed; expected one of \[0\.0, 0\.2, 0\.4\]"
    ):
        space.check({"mixup": 0.3})
    with pytest.raises(ConfigError, match=r"recipe sets \['dropout'\].*its settings"):
        space.check({"dropout": 0.1})


def test_the_plan_refuses_recipe_settings_the_evaluator_does_not_take() -> None:
    fbnetv3 = STRATEGIES.get("fbnetv3")
    config = _config(
        "nb201", {"name": "fbnetv3", "recipe": {"lr_warmup": {"low": 0.0, "high": 1.0}}}, fbnetv3
    )
    config["space"] = {"name": "nb201", "channels": 4, "cells": 1}
    with pytest.raises(ConfigError, match="recipe setting .* takes per trial.*lr_warmup") as info:
        build_plan(config)
    assert "weight_decay" in str(info.value)  # the allowed ones are listed
    config = {
        **config,
        "strategy": {"name": "fbnetv3"},
        "evaluator": {"name": "zero_cost"},
        "objectives": {"synflow": "max"},
    }
    with pytest.raises(ConfigError, match="evaluator 'zero_cost' takes no per-trial recipe"):
        build_plan(config)


# -- the recipe reaches training ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    space = get_space("nb201", channels=4, cells=1)
    return space, space.sample(0), load_dataset(SYNTHETIC, seed=0)


def test_the_train_evaluator_trains_with_the_trials_recipe(tiny, tmp_path: Path) -> None:
    space, arch, data = tiny
    evaluator = TrainEvaluator(space, data, workdir=tmp_path, epochs=3, batch_size=32, latency_repeats=1)
    recipe = {"lr": 0.0123, "epochs": 1, "mixup": 0.4, "label_smoothing": 0.1}
    result = evaluator.evaluate(arch, seed=0, recipe=recipe)
    (epoch,) = result.user_attrs["learning_curve"]  # the recipe's 1 epoch, not the evaluator's 3
    assert epoch["lr"] == pytest.approx(0.0123)  # the first step's learning rate is the peak
    assert result.user_attrs["recipe"] == recipe
    plain = evaluator.evaluate(arch, seed=0)
    assert (
        plain.user_attrs["learning_curve"][0]["lr"] == pytest.approx(0.05)
        and "recipe" not in plain.user_attrs
    )
    with pytest.raises(ConfigError, match=r"recipe sets \['device'\].*allowed: \['lr'"):
        evaluator.evaluate(arch, recipe={"device": "cpu"})
    with pytest.raises(ConfigError, match="(?s)invalid training recipe.*mixup"):
        evaluator.evaluate(arch, recipe={"mixup": -1.0})


def test_mixup_mixes_a_batch_with_a_permutation_of_itself() -> None:
    x = torch.arange(8.0).reshape(4, 2)
    y = torch.tensor([0, 1, 2, 3])
    mixed, partners, lam = mixup_batch(x, y, 0.4, torch.Generator().manual_seed(0))
    assert 0.0 <= lam <= 1.0 and sorted(partners.tolist()) == [0, 1, 2, 3]
    np.testing.assert_allclose(mixed, lam * x + (1 - lam) * x[partners], rtol=1e-6)
    again = mixup_batch(x, y, 0.4, torch.Generator().manual_seed(0))
    assert again[2] == lam and torch.equal(again[0], mixed)  # drawn from the loop's generator


def test_mixup_changes_training_and_stays_reproducible(tiny, tmp_path: Path) -> None:
    space, arch, data = tiny

    def train(mixup: float) -> float:
        evaluator = TrainEvaluator(space, data, workdir=tmp_path, epochs=1, batch_size=32, latency_repeats=1)
        return evaluator.evaluate(arch, seed=0, recipe={"mixup": mixup}).values["train_loss"]

    assert train(0.4) == train(0.4)
    assert train(0.4) != train(0.0)


# -- the predictor ---------------------------------------------------------------------------------------


def convs(arch) -> float:  # noqa: ANN001
    """A cheap proxy that is a function of the cell: its number of 3x3 convolutions."""
    return float(sum(op == "nor_conv_3x3" for _, op in arch.decisions))


def test_pretraining_on_proxies_changes_the_initial_ranking() -> None:
    """With 4 results, the pre-trained predictor ranks unseen cells by what the proxy taught it."""
    rng = np.random.default_rng(0)
    pool = [NB201.sample(rng) for _ in range(300)]
    truth = np.array([convs(a) for a in pool]) + rng.normal(0, 0.1, len(pool))
    seen, unseen = slice(0, 4), slice(100, 300)
    bare = RecipeMLP(NB201, seed=1, **SMALL_PREDICTOR).fit(pool[seen], truth[seen])
    pre = RecipeMLP(NB201, seed=1, **SMALL_PREDICTOR)
    pre.pretrain(pool[:100], table=np.array([[convs(a)] for a in pool[:100]]))
    assert pre.pretrained and not bare.pretrained
    pre.fit(pool[seen], truth[seen])
    bare_rho = spearman(bare.predict(pool[unseen]), truth[unseen])
    pre_rho = spearman(pre.predict(pool[unseen]), truth[unseen])
    assert pre_rho > bare_rho + 0.1, (pre_rho, bare_rho)


def test_the_predictor_computes_its_proxies_on_fresh_networks(tiny) -> None:
    space, _, _ = tiny
    archs = [space.sample(i) for i in range(3)]
    model = RecipeMLP(space, seed=2, proxies=["params", "flops"], input_shape=(3, 8, 8), num_classes=4)
    x, y = synthetic_batch(2, (3, 8, 8), 4, seed=2)
    expected = [score_arch(space, a, ["params", "flops"], x, y, seed=2, num_classes=4) for a in archs]
    np.testing.assert_allclose(model.proxy_table(archs), [[e["params"], e["flops"]] for e in expected])
    with pytest.raises(UnknownNameError, match="synflw"):
        RecipeMLP(space, proxies=["synflw"])


def test_the_recipe_is_an_input_of_the_predictor() -> None:
    rng = np.random.default_rng(3)
    archs = [NB201.sample(rng) for _ in range(40)]
    recipes = rng.random((40, 1))
    y = np.array([convs(a) for a in archs]) + 4.0 * recipes[:, 0]  # the recipe matters as much
    model = RecipeMLP(NB201, seed=0, **SMALL_PREDICTOR).fit(archs, y, recipes)
    low, high = model.predict(archs, np.zeros((40, 1))), model.predict(archs, np.ones((40, 1)))
    assert (high > low).mean() > 0.9
    with pytest.raises(ConfigError, match="fitted with 1"):
        model.predict(archs, np.zeros((40, 2)))


# -- the strategy -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table(data_dir):  # noqa: ANN001, ANN201
    from nas.evaluators.tabular import Nb201TableEvaluator

    return Nb201TableEvaluator(NB201)


def strategy(**options):  # noqa: ANN003, ANN201
    settings = {
        "n_initial": 4,
        "pretrain_archs": 30,
        "n_candidates": 10,
        "recipes_per_arch": 2,
        "predictor_options": SMALL_PREDICTOR,
        "seed": 0,
    }
    return create_strategy("fbnetv3", NB201, **{**settings, **options})


def test_each_trial_carries_a_recipe_and_the_predictor_is_pretrained(table) -> None:  # noqa: ANN001
    search = strategy()
    trials = run_loop(search, table, 7)
    recipes = [t.system_attrs["recipe"] for t in trials]
    assert all(set(r) == set(DEFAULT_RECIPE) for r in recipes)
    # Searched, not fixed: moves from the default in the initial phase, then the predictor's pick
    # among moves from the best trials' recipes and the best trial's own (which it may well prefer).
    default = RecipeSpace(DEFAULT_RECIPE).default()
    initial = [tuple(sorted(r.items())) for r in recipes[:4]]
    assert len(set(initial)) == 4 and all(r != default for r in recipes[:4])
    assert search._model.pretrained  # pre-trained once, before its first proposal
    assert [t.system_attrs.get("recipe") for t in trials] == [search._recipes[t.number] for t in trials]


def test_local_recipe_moves_stay_in_range_and_near_where_they_start() -> None:
    space = RecipeSpace(DEFAULT_RECIPE)
    start = space.default()
    rng = np.random.default_rng(0)
    moves = [space.near(start, rng, 0.15) for _ in range(400)]
    assert all(space.check(m) == m for m in moves)  # in range, every setting present
    assert all(m != start for m in moves)  # at least one setting moved
    for name in ("label_smoothing", "mixup"):  # numeric choices move to a neighbour only
        ordered = DEFAULT_RECIPE[name]["choices"]
        assert {m[name] for m in moves} == set(ordered[:2])  # from the first: to the second, never further
    # lr moves on its log range by ~0.15 of it: rarely beyond 3 sigma, and both ways.
    span = np.log(DEFAULT_RECIPE["lr"]["high"] / DEFAULT_RECIPE["lr"]["low"])
    steps = np.array([np.log(m["lr"] / start["lr"]) / span for m in moves if m["lr"] != start["lr"]])
    assert len(steps) > 100 and np.mean(np.abs(steps) < 0.45) > 0.99
    assert (steps > 0).sum() > 30 and (steps < 0).sum() > 30
    # Reflected, not clipped, at a range's end: values at the bound stay inside and move away.
    edge = {**start, "lr": DEFAULT_RECIPE["lr"]["high"]}
    lrs = [space.near(edge, rng, 0.15)["lr"] for _ in range(200)]
    assert (
        max(lrs) <= DEFAULT_RECIPE["lr"]["high"] and sum(lr < DEFAULT_RECIPE["lr"]["high"] for lr in lrs) > 50
    )


def test_uniform_recipe_sampling_draws_recipes_anywhere(table) -> None:  # noqa: ANN001
    trials = run_loop(strategy(recipe_sampling="uniform"), table, 4)
    lrs = [t.system_attrs["recipe"]["lr"] for t in trials]
    assert len(set(lrs)) == 4 and 0.05 not in lrs  # each initial trial draws every setting
    with pytest.raises(ConfigError, match="recipe_sampling='near'"):
        strategy(recipe_sampling="near")
    with pytest.raises(ConfigError, match="recipe_step"):
        strategy(recipe_step=2.0)


def test_without_recipe_search_trials_train_with_the_evaluators_settings(table) -> None:  # noqa: ANN001
    search = strategy(search_recipe=False)
    trials = run_loop(search, table, 6)
    assert all("recipe" not in t.system_attrs for t in trials) and search.recipe_fields == ()
    # The model reads a trial without a recipe as one trained with the default recipe.
    assert all(search._recipes[t.number] == RecipeSpace(DEFAULT_RECIPE).default() for t in trials)


def test_it_is_registered_with_its_options() -> None:
    assert STRATEGIES.get("fbnetv3").phase_name == "joint predictor"
    with pytest.raises(ConfigError, match="search_recipe='yes'"):
        create_strategy("fbnetv3", NB201, search_recipe="yes")
    with pytest.raises(ConfigError, match="acquisition"):
        create_strategy("fbnetv3", NB201, acquisition="ei")


# -- a real search, exported -----------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_nas_search_on_fbnet_trains_each_trial_with_its_recipe_and_exports_it(
    local_ray: None, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    strategy_section = {
        "name": "fbnetv3",
        "n_initial": 2,
        "pretrain_archs": 4,
        "n_candidates": 4,
        "recipe": {"lr": {"low": 0.01, "high": 0.2, "log": True}, "mixup": {"choices": [0.0, 0.2]}},
        "predictor_options": {**SMALL_PREDICTOR, "input_shape": [1, 8, 8]},
    }
    config = _config("fbnet", strategy_section, STRATEGIES.get("fbnetv3"))
    config["budget"] = {"trials": 3, "concurrent": 1}
    _nas(tmp_path, "search", _write(tmp_path, config), "--storage", store, "--quiet")

    study = nas.load_study(config["name"], storage=store)
    trials = sorted(study.trials(), key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[-1].system_attrs["phase"] == "joint predictor"
    for trial in trials:
        recipe = trial.system_attrs["recipe"]
        assert set(recipe) == {"lr", "mixup"}
        # The stored lr is what the training used: the first epoch's (peak) learning rate.
        (first,) = study.metrics(trial)["lr"][:1]
        assert first[1] == pytest.approx(recipe["lr"])
        assert trial.user_attrs["recipe"] == recipe
        assert len(trial.user_attrs["learning_curve"]) == EVALUATOR["epochs"]

    _export(tmp_path, store, study, trials[-1].number)  # the matrix's: `nas export --format pytorch`
    out = tmp_path / "export"
    card = json.loads((out / "card.json").read_text())
    assert card["recipe"] == trials[-1].system_attrs["recipe"]
    readme = (out / "README.md").read_text()
    assert "## Training recipe" in readme and "| mixup |" in readme
