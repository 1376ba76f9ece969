"""Network morphisms: function preservation, the ``morphism`` strategy and ``inherit: parent``.

A morphism's child, filled from its parent's weights, computes the parent's
function before any training (eval mode, random input, to 1e-5); a child left
with its own fresh weights does not, so the check can fail. The strategy
proposes only morphisms of told trials and records them; a real search on
digits (tests/test_search.py, which shares its Ray) stores children that
trained from their parents' weights.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

import nas
from nas.core import ArchitectureError, ConfigError, Trial, TrialState
from nas.core.evaluator import Inheritance
from nas.core.morphism import find_morphism, morphism_view, morphisms, spaces_with_morphisms
from nas.evaluators.train import TrainEvaluator
from nas.runner import build_plan
from nas.strategies import create_strategy, run_loop
from search_spaces import get_space

#: Hybrid spaces covering conv blocks and both attention layouts (heads double at base width 32,
#: each head widens at 8).
HYBRID = [{"blocks": 3, "downsamples": 1, "base_width": 8}, {"blocks": 3, "downsamples": 1, "base_width": 32}]


def trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random BatchNorm statistics and affine parameters, so that no layer is an identity by accident."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.2)
    return model.eval()


def whole(net, morphism, x):  # noqa: ANN001, ANN201
    return net(x)


def through_layer(net, morphism, x):  # noqa: ANN001, ANN201
    """fbnet up to the changed layer: 22 random layers wash a change in an early one out of the logits."""
    index = list(net.layers._modules).index(morphism.decision)
    return net.layers[: index + 1](net.stem(x))


def check_preserved(space, parent_arch, chosen, shape, probe=whole) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    parent = trained_like(space.build(parent_arch, num_classes=5, input_shape=shape), 1)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(2))
    transfer = morphism_view(space).transfer_function()
    for morphism in chosen:
        assert morphism.child == parent_arch.replace(**{morphism.decision: morphism.child[morphism.decision]})
        assert space.validate(morphism.child) != parent_arch
        child = space.build(morphism.child, num_classes=5, input_shape=shape)
        with torch.no_grad():
            expected = probe(parent, morphism, x)
            transfer(space, morphism, parent, child, torch.Generator().manual_seed(3))
            got = probe(child.eval(), morphism, x)
            assert got.shape == expected.shape
            error = float((got - expected).abs().max())
            scale = max(1.0, float(expected.abs().max()))
            assert error <= 1e-5 * scale, (morphism, space.format(parent_arch), error)
            # The same child without the transfer is another function: the comparison can fail.
            fresh = space.build(morphism.child, num_classes=5, input_shape=shape).eval()
            assert float((probe(fresh, morphism, x) - expected).abs().max()) > 1e-3 * scale


@pytest.mark.parametrize("options", HYBRID)
def test_hybrid_widening_preserves_the_function(options: dict) -> None:
    space = get_space("hybrid", **options)
    widened = set()
    for seed in range(6):
        parent = space.sample(seed)
        chosen = morphisms(space, parent)
        widened |= {str(parent[m.decision.replace("width", "type")]) for m in chosen}
        check_preserved(space, parent, chosen, (1, 8, 8))
    # Conv and attention blocks were widened (attention heads widen at base width 8, double at 32).
    assert widened == {"conv", "attn"}


def test_fbnet_morphisms_preserve_the_function_for_every_kind() -> None:
    space = get_space("fbnet", width_mult=0.25)
    by_kind = {}
    for seed in range(4):
        parent = space.sample(seed)
        for morphism in morphisms(space, parent):
            by_kind.setdefault(morphism.kind, (parent, morphism))
    assert {"deepen", "widen", "kernel", "ungroup"} <= set(by_kind)
    for parent, morphism in by_kind.values():
        check_preserved(space, parent, [morphism], (3, 16, 16), probe=through_layer)


def test_hybrid_widening_that_would_drop_a_trained_transition_is_not_offered() -> None:
    space = get_space("hybrid", blocks=2, downsamples=0, base_width=8)
    # b1 widens 8 -> 16 through a trained 1x1 transition; widening b0 to 16 would make it vanish.
    parent = space.parse("C1-C2")
    assert [m.decision for m in morphisms(space, parent)] == []
    with pytest.raises(ArchitectureError, match="not a morphism"):
        find_morphism(space, parent, space.parse("C2-C2"))


def test_a_space_without_morphisms_is_a_clear_error() -> None:
    assert spaces_with_morphisms() == ["fbnet", "hybrid"] or {"fbnet", "hybrid"} <= set(
        spaces_with_morphisms()
    )
    with pytest.raises(
        ConfigError, match="space 'nb201' has no morphisms; spaces with them: .*fbnet.*hybrid"
    ):
        create_strategy("morphism", get_space("nb201"))
    config = {
        "name": "m",
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "inherit": "parent"},
    }
    with pytest.raises(ConfigError, match="evaluator: space 'nb201' has no morphisms"):
        build_plan(config)
    with pytest.raises(ConfigError, match="kinds"):
        create_strategy("morphism", get_space("fbnet"), kinds=["stretch"])


def _score(arch) -> dict:  # noqa: ANN001
    return {"val_accuracy": float(sum(len(str(v)) * (i % 7) for i, (_, v) in enumerate(arch.decisions)))}


def test_morphism_strategy_proposes_recorded_children_of_told_trials_reproducibly() -> None:
    space = get_space("fbnet", width_mult=0.25)

    def search(seed: int) -> tuple[list[Trial], list[dict]]:
        strategy = create_strategy("morphism", space, seed=seed, n_initial=3, population_size=3)
        attrs: list[dict] = []

        def evaluate(arch):  # noqa: ANN001, ANN202
            attrs.append(dict(strategy.last_attrs))
            return nas.core.EvalResult(values=_score(arch))

        return run_loop(strategy, evaluate, 10), attrs

    trials, attrs = search(7)
    assert [t.arch for t in search(7)[0]] == [t.arch for t in trials]
    assert [t.arch for t in search(8)[0]] != [t.arch for t in trials]
    assert attrs[:3] == [{}] * 3
    by_number = {t.number: t for t in trials}
    for trial, record in zip(trials[3:], attrs[3:], strict=True):
        parent = by_number[record["parent"]]
        assert parent.number < trial.number
        morphism = find_morphism(space, parent.arch, trial.arch)
        assert record["morphism"] == morphism.to_dict()
    # A resumed search continues exactly like the uninterrupted one.
    live = create_strategy("morphism", space, seed=7, n_initial=3, population_size=3)
    history = run_loop(live, lambda a: nas.core.EvalResult(values=_score(a)), 8)
    resumed = create_strategy("morphism", space, seed=7, n_initial=3, population_size=3)
    resumed.warm_start(history)
    for number in range(8, 11):
        a, b = live.ask(), resumed.ask()
        assert a == b and live.last_attrs == resumed.last_attrs
        done = Trial(number, a, TrialState.COMPLETE, values=_score(a))
        live.tell(done)
        resumed.tell(done)


def test_train_evaluator_starts_an_inheriting_child_from_its_parent(tmp_path: Path) -> None:
    space = get_space("hybrid", blocks=2, downsamples=1, base_width=8)
    settings = {"epochs": 2, "batch_size": 64, "latency_repeats": 1, "latency_warmup": 0}
    evaluator = TrainEvaluator(space, "digits", settings={**settings, "inherit": "parent"}, workdir=tmp_path)
    parent_arch = space.parse("C1-vC1")
    parent = evaluator.evaluate(parent_arch, seed=0)
    weights = Path(parent.artifacts["weights"]).read_bytes()
    (morphism, *_) = morphisms(space, parent_arch)
    inheritance = Inheritance(parent_arch, 4, morphism.to_dict(), weights)
    child = evaluator.evaluate(morphism.child, seed=0, parent=inheritance)
    assert child.user_attrs["inherited_from"] == {"trial": 4, "morphism": morphism.to_dict()}
    assert child.user_attrs["epochs"] == 1  # inherit_epochs defaults to half of epochs
    # It started from the parent: after one epoch it is at least close to the parent's two.
    assert child.values["val_accuracy"] >= parent.values["val_accuracy"] - 5
    wrong = Inheritance(parent_arch, 4, {**morphism.to_dict(), "to": 1}, weights)
    with pytest.raises(ConfigError, match="recorded morphism"):
        evaluator.evaluate(morphism.child, seed=0, parent=wrong)
    damaged = Inheritance(space.parse("C2-vC1"), 4, morphism.to_dict(), weights)
    with pytest.raises(ArchitectureError, match="not a morphism"):
        evaluator.evaluate(morphism.child, seed=0, parent=damaged)
    state = torch.load(io.BytesIO(weights), weights_only=True)
    assert any(name.startswith("blocks.") for name in state)
