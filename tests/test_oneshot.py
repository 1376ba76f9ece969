"""One-shot search: supernets, methods, derivation, checkpoints and guard rails.

Tiny supernets (4 channels, one cell per stage) on a small synthetic problem
(3x8x8 images, 4 classes), 1-2 epochs: every run takes about a second. The
tests are parametrised over the one-shot registry and each method's spaces,
so a newly registered method is covered by the contract tests.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nas.core import ArchitectureError, ConfigError, UnknownNameError
from nas.core.oneshot import ONESHOT, oneshot_view
from nas.core.space import SPACES as SPACE_REGISTRY
from nas.data import Dataset, load_dataset
from nas.oneshot import (
    OneShotResult,
    create_method,
    detect_collapse,
    estimate_memory,
    finish,
    load_checkpoint,
    run_oneshot,
    save_checkpoint,
)
from nas.oneshot.differentiable import DifferentiableMethod
from nas.oneshot.method import batch_statistics
from nas.runner import build_plan
from nas.settings import load_config
from nas.supernet import CellPath
from search_spaces import get_space, list_spaces
from search_spaces.nb201 import EDGE_NAMES
from search_spaces.nb201.supernet import SearchCell

SYNTHETIC = {"name": "synthetic", "num_samples": 160, "num_test": 16, "num_classes": 4, "shape": (3, 8, 8)}
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
SPACES = {
    "nb201": {"channels": 4, "cells": 1},
    "darts": {"channels": 4, "cells": 3},
    "fbnet": {"width_mult": 0.25},
    "hybrid": {"blocks": 3, "downsamples": 1, "base_width": 8},
}
#: Options keeping every method fast on the tiny problem.
FAST = {
    "darts": {},
    "pc_darts": {"partial_channels": 2},
    "gdas": {},
    "spos": {"population": 4, "generations": 1, "parents": 2, "score_images": 64, "bn_batches": 1},
    "drnas": {},
    "beta_darts": {},
    "sharpdarts": {},
    "dropnas": {},
    "robust_darts": {"hessian_iterations": 3, "hessian_window": 1},
    "rarts": {},
    "amended_darts": {},
    "d_darts": {},
    "bignas": {"num_random": 1, "score_images": 64, "bn_batches": 1},
    "attentivenas": {"num_random": 1, "candidates": 2, "score_images": 64, "bn_batches": 1},
    # Pruning every other step with a threshold near the start (0.5): rounds on both sides of a resume.
    "gold_nas": {"arch_lr": 0.05, "prune_every": 2, "prune_threshold": 0.45},
    "sd_darts": {},
    "smash": {"candidates": 4, "score_images": 64, "bn_batches": 1, "hyper_hidden": 8, "hyper_rank": 2},
    "dnas": {"target_params": 1e9},  # a budget every supernet meets: the contract, not the constraint
    "rc_darts": {"target_params": 1e9},
}
BUILTIN_METHODS = sorted(FAST)


def supported(method: str, space: str) -> bool:
    """Whether ``method`` searches ``space`` (by the kind of the space's one-shot view)."""
    view = oneshot_view(SPACE_REGISTRY.get(space))
    return view is not None and view.supports(ONESHOT.get(method).kinds)


#: Every registered method on every registered space it supports (test-only plugins included).
CASES = [(m, s) for m in ONESHOT.names() for s in list_spaces() if supported(m, s)]


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(SYNTHETIC, seed=0)


def make(method: str, space_name: str, data: Dataset, seed: int = 0, **options: object):
    """A tiny method; the memory check (tested on its own) is off unless asked for."""
    space = get_space(space_name, **SPACES.get(space_name, {}))
    settings = {"epochs": 2, "batch_size": 16, "check_memory": False, **FAST.get(method, {}), **options}
    return create_method(method, space, data, settings, seed=seed)


def alpha_snapshot(method) -> dict[str, np.ndarray]:
    return {k: v.detach().clone().numpy() for k, v in method.alpha.items()}


# -- registry and config -------------------------------------------------------------------------------


def test_registry_holds_the_builtin_methods() -> None:
    assert set(BUILTIN_METHODS) <= set(ONESHOT.names())
    from nas.oneshot.catalog import BUILTINS

    assert sorted(BUILTINS) == BUILTIN_METHODS  # every built-in method has fast test options
    assert "test_random_path" in ONESHOT.names()  # the test-only plugin (tests/plugins) is picked up
    assert {m for m, _ in CASES} == set(ONESHOT.names())
    assert ("spos", "test_chain") in CASES and ("darts", "test_chain") not in CASES


def test_a_lazily_declared_method_is_imported_on_get() -> None:
    assert ONESHOT.get("spos").__name__ == "SposMethod"
    assert ONESHOT.get("spos") is ONESHOT.get("spos")


def test_config_accepts_a_oneshot_method_and_lists_both_registries_for_typos() -> None:
    base = {"name": "s", "space": {"name": "nb201", "channels": 4, "cells": 1}, "dataset": {"name": "digits"}}
    config = load_config({**base, "strategy": {"name": "pc_darts", "epochs": 3, "partial_channels": 2}})
    assert config.strategy.name == "pc_darts" and config.strategy.options["epochs"] == 3
    with pytest.raises(ConfigError) as error:
        load_config({**base, "strategy": {"name": "gdass"}})
    assert "gdas" in str(error.value) and "evolution" in str(error.value)


@pytest.mark.parametrize(
    ("strategy", "space", "fragment"),
    [
        ({"name": "darts"}, {"name": "fbnet"}, "does not support space 'fbnet'"),
        ({"name": "gdas", "order": 2}, {"name": "nb201"}, "does not use option(s) order"),
        ({"name": "pc_darts", "partial_channels": 3}, {"name": "nb201", "channels": 8}, "allowed: [1, 2, 4]"),
        ({"name": "spos", "epochs": 0}, {"name": "nb201"}, "epochs"),
        ({"name": "darts", "rank_correlation": 10}, {"name": "darts"}, "has no tabular benchmark"),
    ],
)
def test_config_refuses_bad_oneshot_input(strategy: dict, space: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match="strategy") as error:
        build_plan({"name": "s", "space": space, "dataset": {"name": "digits"}, "strategy": strategy})
    assert fragment in str(error.value)


def test_config_needs_a_dataset_for_a_supernet() -> None:
    with pytest.raises(ConfigError, match="needs a dataset"):
        load_config(
            {
                "name": "s",
                "space": {"name": "nb201"},
                "strategy": {"name": "gdas"},
                "evaluator": {"name": "nb201_table"},
            }
        )


# -- bad input before training -----------------------------------------------------------------------------


def test_unsupported_space_is_refused_before_training(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="searches darts, nb201"):
        create_method("gdas", get_space("hybrid", **SPACES["hybrid"]), data, {"epochs": 1})


def test_dataset_too_small_to_split_is_refused(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="too small to split") as error:
        make("darts", "nb201", data, batch_size=100)
    assert "batch_size" in str(error.value)


def test_batch_that_cannot_fit_is_refused_with_advice(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="will not fit") as error:
        make("darts", "nb201", data, memory_limit_mb=0.5, check_memory=True)
    message = str(error.value)
    assert "pc_darts" in message and "memory_limit_mb=0.5" in message and "MiB" in message


def test_darts_supernet_without_a_normal_cell_is_refused(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="only reduction cells"):
        make("darts", "darts", data, cells=2)


# -- training, alpha, derivation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "space"), CASES)
def test_search_moves_alpha_and_derives_a_valid_architecture(method: str, space: str, data: Dataset) -> None:
    searcher = make(method, space, data, epochs=1)
    before = alpha_snapshot(searcher) if isinstance(searcher, DifferentiableMethod) else {}
    result = run_oneshot(searcher)
    searcher.space.validate(result.arch)
    assert result.arch_string == searcher.space.format(result.arch)
    assert result.epochs == 1 and len(result.history) == 1
    row = result.history[0]
    assert all(math.isfinite(row[k]) for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"))
    after = alpha_snapshot(searcher) if before else {}
    assert all(not np.allclose(before[k], after[k]) for k in before)
    alphas = result.alpha_history[-1]
    expected = sum(len(g.edges) for g in searcher.supernet.groups) if before else 0
    if before:
        assert expected == {"nb201": len(EDGE_NAMES), "darts": 28}.get(space, expected)
    assert len(alphas) == expected
    for ops in alphas.values():
        assert math.isclose(sum(ops.values()), 1.0, rel_tol=1e-5)


def test_second_order_darts_differs_from_first_order(data: Dataset) -> None:
    first = make("darts", "nb201", data, epochs=1)
    second = make("darts", "nb201", data, epochs=1, order=2)
    first.fit()
    second.fit()
    assert not np.allclose(alpha_snapshot(first)["cell"], alpha_snapshot(second)["cell"])


def test_gdas_anneals_the_temperature(data: Dataset) -> None:
    searcher = make("gdas", "nb201", data, epochs=3, tau_max=5.0, tau_min=0.5)
    searcher.fit()
    assert [h["tau"] for h in searcher.history] == pytest.approx([5.0, 2.75, 0.5])


def test_warmup_keeps_alpha_fixed(data: Dataset) -> None:
    searcher = make("pc_darts", "nb201", data, epochs=1, warmup_epochs=1)
    before = alpha_snapshot(searcher)
    searcher.fit()
    assert all(np.array_equal(before[k], v) for k, v in alpha_snapshot(searcher).items())


def test_nb201_derivation_is_the_argmax_of_each_edge(data: Dataset) -> None:
    searcher = make("darts", "nb201", data)
    with torch.no_grad():
        searcher.alpha["cell"].zero_()
        for edge, op in enumerate([3, 1, 2, 3, 4, 0]):
            searcher.alpha["cell"][edge, op] = 5.0
    arch = searcher.derive()
    assert [arch[e] for e in EDGE_NAMES] == [
        "nor_conv_3x3",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "none",
    ]


def test_darts_derivation_keeps_two_strongest_non_none_edges_per_node(data: Dataset) -> None:
    searcher = make("darts", "darts", data)
    with torch.no_grad():
        for alpha in searcher.alpha.values():
            alpha.zero_()
            alpha[:, 0] = 9.0  # `none` strongest everywhere: never chosen
        # node 3 has edges 2 (<-0), 3 (<-1), 4 (<-2): make <-2 sep_conv_5x5 and <-0 dil_conv_3x3 the strongest
        searcher.alpha["normal"][4, 5] = 8.0
        searcher.alpha["normal"][2, 6] = 7.0
    arch = searcher.derive()
    assert (arch["normal.n3.op0"], arch["normal.n3.in0"]) == ("sep_conv_5x5", 2)
    assert (arch["normal.n3.op1"], arch["normal.n3.in1"]) == ("dil_conv_3x3", 0)
    searcher.space.validate(arch)


@pytest.mark.parametrize("method", ["darts", "pc_darts", "gdas"])
def test_perturbation_selection_keeps_the_op_whose_removal_costs_most(method: str, data: Dataset) -> None:
    searcher = make(method, "nb201", data, epochs=1, selection="perturbation", score_images=48)
    result = run_oneshot(searcher)
    report = result.selection
    assert report is not None and report["images"] == 48
    kept = report["kept"]
    assert list(kept) == list(EDGE_NAMES)
    for edge, without in report["without"].items():
        assert kept[edge] == max(without, key=without.get)  # the op whose removal raises the loss most
    assert {e: result.arch[e] for e in EDGE_NAMES} == kept
    json.dumps(result.user_attrs()["selection"])
    assert searcher.derive() is searcher.derive()  # one selection per trained state, not one per call


def test_perturbation_selection_judges_each_edge_with_the_earlier_edges_fixed(data: Dataset) -> None:
    searcher = make("darts", "nb201", data, epochs=1, selection="perturbation", score_images=48)
    searcher.fit()
    arch = searcher.derive()
    report = searcher.selection_report()
    group = searcher.supernet.groups[0]
    # Rebuild the state the last edge was judged in: every earlier edge one-hot on its kept op,
    # the last edge mixed by alpha with one op removed; its loss must be the one reported.
    last = len(group.edges) - 1
    weights = searcher.mixed_path(detach=True).weights["cell"].clone()
    for edge in range(last):
        weights[edge] = 0.0
        weights[edge, group.ops.index(arch[group.edges[edge]])] = 1.0
    x, y = searcher.data.x_arch[:48], searcher.data.y_arch[:48]
    for op_index, op in enumerate(group.ops):
        trial = weights.clone()
        trial[last, op_index] = 0.0
        with torch.no_grad(), batch_statistics(searcher.supernet):
            logits = searcher.supernet(x, CellPath(weights={"cell": trial}))
        loss = float(torch.nn.functional.cross_entropy(logits, y))
        assert loss == pytest.approx(report["without"][group.edges[last]][op], rel=1e-5)


def test_perturbation_selection_on_darts_cells_gives_a_valid_genotype(data: Dataset) -> None:
    searcher = make("darts", "darts", data, epochs=1, selection="perturbation", score_images=32)
    searcher.fit()
    arch = searcher.derive()
    searcher.space.validate(arch)
    report = searcher.selection_report()
    assert set(report["kept"]) == {f"{g.name}.{e}" for g in searcher.supernet.groups for e in g.edges}


def test_selection_is_refused_for_spos_and_may_change_on_resume(data: Dataset, tmp_path) -> None:
    with pytest.raises(ConfigError, match="selection"):
        make("spos", "nb201", data, selection="perturbation")
    with pytest.raises(ConfigError, match="perturbation"):
        make("darts", "nb201", data, selection="largest")
    first = make("darts", "nb201", data, epochs=1)
    first.fit()
    save_checkpoint(first, tmp_path)
    again = make("darts", "nb201", data, epochs=1, selection="perturbation", score_images=32)
    assert load_checkpoint(again, tmp_path) and again.finished
    assert again.selection_report() is None
    again.derive()
    assert again.selection_report() is not None and first.selection_report() is None


def test_one_hot_path_computes_the_stand_alone_network(data: Dataset) -> None:
    """A derived cell's sub-network is the space's own network (same ops, same function)."""
    space = get_space("nb201", channels=4, cells=1)
    searcher = create_method("spos", space, data, {"epochs": 1, "batch_size": 16, **FAST["spos"]})
    arch = space.parse(
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
    )
    network = space.build(arch, num_classes=4, input_shape=(3, 8, 8))
    supernet = searcher.supernet
    mapped = {}
    for name in network.state_dict():
        parts = name.split(".")
        if parts[0] == "cells" and parts[2] == "edges":
            i, j = int(parts[3][1]), int(parts[3][2])
            edge = EDGE_NAMES.index(f"{i}<-{j}")
            op = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"].index(
                str(arch[f"{i}<-{j}"])
            )
            source = ".".join(["network.cells", parts[1], "edges", str(edge), "ops", str(op), *parts[4:]])
        else:
            source = f"network.{name}"  # the supernet is built on the stand-alone skeleton
        mapped[name] = supernet.state_dict()[source]
    network.load_state_dict(mapped)
    network.eval()
    supernet.eval()
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(network(x), supernet.forward_arch(x, arch), atol=1e-5)
    assert any(isinstance(m, SearchCell) for m in supernet.modules())


@pytest.mark.parametrize("space", ["fbnet", "hybrid"])
def test_single_path_supernet_runs_every_sampled_architecture(space: str, data: Dataset) -> None:
    searcher = make("spos", space, data, epochs=1)
    rng = np.random.default_rng(1)
    x = searcher.data.x_val[:2]
    with torch.no_grad():
        for _ in range(12):
            assert searcher.supernet.forward_arch(x, searcher.space.sample(rng)).shape == (2, 4)


def test_spos_search_reports_its_evolution(data: Dataset) -> None:
    result = run_oneshot(make("spos", "nb201", data, epochs=1, population=4, generations=2, parents=2))
    evolution = result.evolution
    assert evolution is not None and evolution["evaluated"] >= 4
    assert evolution["top"][0]["arch"] == result.arch_string
    assert evolution["best_per_generation"] == sorted(evolution["best_per_generation"])  # elitist


# -- checkpoints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(FAST))
def test_resume_from_checkpoint_gives_the_uninterrupted_run(method: str, data: Dataset, tmp_path) -> None:
    space = "nb201" if supported(method, "nb201") else next(s for m, s in CASES if m == method)
    full = run_oneshot(make(method, space, data, seed=3))

    interrupted = make(method, space, data, seed=3)

    def stop_after_one_epoch(trained, metrics) -> None:
        trained.stop_reason = "killed"

    interrupted.fit(stop_after_one_epoch)
    interrupted.stop_reason = None
    save_checkpoint(interrupted, tmp_path)
    del interrupted

    resumed_method = make(method, space, data, seed=3)
    resumed = run_oneshot(resumed_method, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 1 and full.resumed_from is None
    assert resumed.alpha_history == full.alpha_history
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert resumed.arch == full.arch
    if isinstance(resumed_method, DifferentiableMethod):
        assert resumed.alpha_history[-1] != resumed.alpha_history[0]  # alpha moved in the resumed epoch


def test_checkpoint_of_another_run_is_refused(data: Dataset, tmp_path) -> None:
    first = make("darts", "nb201", data, seed=1)
    save_checkpoint(first, tmp_path)
    other = make("darts", "nb201", data, seed=2)
    with pytest.raises(ConfigError, match="seed"):
        load_checkpoint(other, tmp_path)
    assert not load_checkpoint(other, tmp_path / "empty")


# -- guard rails ------------------------------------------------------------------------------------------------


def skip_history(edges: list[str], skip: float) -> list[dict[str, dict[str, float]]]:
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    rest = (1.0 - skip) / (len(ops) - 1)
    return [{e: {op: (skip if op == "skip_connect" else rest) for op in ops} for e in edges}]


def test_collapse_detector_fires_on_an_all_skip_alpha(data: Dataset) -> None:
    searcher = make("darts", "nb201", data)
    with torch.no_grad():
        searcher.alpha["cell"].zero_()
        searcher.alpha["cell"][:, 1] = 4.0  # skip_connect dominates every edge
    arch = searcher.derive()
    assert searcher.space.format(arch) == ALL_SKIP
    searcher.alpha_history.append(searcher.alphas())
    report = searcher.collapse_report()
    assert report is not None and report.collapsed and report.skip_share == 1.0
    assert "collapse" in report.message


def test_collapse_detector_stays_quiet_on_a_conv_cell_and_on_uniform_alpha() -> None:
    space = get_space("nb201")
    conv = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    assert not detect_collapse(space, conv).collapsed
    skippy = space.parse(ALL_SKIP.replace("skip_connect~0|+", "nor_conv_3x3~0|+", 1))
    assert detect_collapse(space, skippy).collapsed  # no alpha: the derived cell decides
    uniform = skip_history(list(EDGE_NAMES), 0.2)
    assert not detect_collapse(space, skippy, uniform).collapsed  # at uniform alpha it is noise
    assert detect_collapse(space, skippy, skip_history(list(EDGE_NAMES), 0.5)).collapsed
    assert detect_collapse(get_space("fbnet"), get_space("fbnet").sample(0)) is None


@pytest.mark.parametrize(
    ("weights", "collapsed"),
    [
        ((0.2, 0.4, 0.6), True),  # skip's weight climbs and leads every edge
        ((0.2001, 0.2001, 0.2002), False),  # untrained alpha: skip "leads" and "rises" by float noise
    ],
)
def test_collapse_detector_judges_a_rising_skip_trend_above_uniform_only(
    weights: tuple[float, ...], collapsed: bool
) -> None:
    space = get_space("nb201")
    conv = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    history = [skip_history(list(EDGE_NAMES), s)[0] for s in weights]
    report = detect_collapse(space, conv, history)
    assert report.skip_leading_share == 1.0 and report.skip_alpha_trend > 0
    assert report.collapsed is collapsed


def test_early_stop_on_collapse_falls_back_to_the_last_healthy_alpha(data: Dataset) -> None:
    searcher = make("darts", "nb201", data, epochs=5, early_stop_on_collapse=True)
    searcher.fit(lambda trained, metrics: trained.__setattr__("stop_reason", "pause"))
    searcher.stop_reason = None
    healthy = searcher.derive()
    assert not searcher.collapse_report().collapsed
    with torch.no_grad():
        searcher.alpha["cell"][:, 1] += 10.0  # as if the next epoch collapsed to skip
    searcher.alpha_history.append(searcher.alphas())
    searcher.epoch += 1
    searcher.after_epoch({})
    assert searcher.stop_reason is not None and "early stop on collapse at epoch 2" in searcher.stop_reason
    assert searcher.derive() == healthy
    assert searcher.finished


def test_collapse_is_not_judged_while_alpha_is_still_warming_up(data: Dataset) -> None:
    searcher = make("darts", "nb201", data, epochs=5, warmup_epochs=2, early_stop_on_collapse=True)
    with torch.no_grad():
        searcher.alpha["cell"][:, 1] += 10.0  # a skip-heavy random init
    for epoch in (1, 2):  # alpha untouched in these epochs: no verdict, no stop
        searcher.epoch = epoch
        searcher.alpha_history.append(searcher.alphas())
        searcher.after_epoch({})
        assert searcher.stop_reason is None
    searcher.epoch = 3  # the first epoch that trained alpha
    searcher.alpha_history.append(searcher.alphas())
    searcher.after_epoch({})
    assert searcher.stop_reason is not None and "early stop on collapse at epoch 3" in searcher.stop_reason


def test_collapse_is_stored_per_epoch_as_curves(data: Dataset) -> None:
    """Each epoch's skip share and verdict are curves (when collapse set in), no verdict in warm-up."""
    searcher = make("darts", "nb201", data, epochs=3, warmup_epochs=1)
    with torch.no_grad():
        searcher.alpha["cell"][:, 1] += 10.0  # skip leads every edge from the start
    result = run_oneshot(searcher)
    curves = result.curves()
    assert [step for step, _ in curves["supernet/skip_share"]] == [1, 2, 3]
    assert [value for _, value in curves["supernet/skip_share"]][-1] == result.collapse["skip_share"] == 1.0
    assert [value for _, value in curves["supernet/collapsed"]] == [0.0, 1.0, 1.0]


def test_memory_estimate_scales_with_the_batch_and_pc_darts_saves(data: Dataset) -> None:
    darts = make("darts", "nb201", data, channels=8)
    pc = make("pc_darts", "nb201", data, channels=8, partial_channels=4)
    small, large = estimate_memory(darts, 16), estimate_memory(darts, 64)
    assert large.activations > 3 * small.activations
    assert estimate_memory(pc, 64).activations < 0.5 * large.activations
    assert large.max_batch(large.total) >= 60


def test_result_round_trips_through_json_and_gives_store_curves(data: Dataset) -> None:
    result = run_oneshot(make("gdas", "nb201", data))
    again = OneShotResult.from_json(result.to_json())
    assert again.arch == result.arch and again.alpha_history == result.alpha_history
    curves = result.curves()
    assert [step for step, _ in curves["supernet/val_accuracy"]] == [1, 2]
    assert "supernet/tau" in curves and "alpha/3<-2/skip_connect" in curves
    attrs = result.user_attrs()
    assert attrs["derived_arch"] == result.arch_string and "kind" not in attrs  # kind: a system attr
    json.dumps(attrs)


def test_rank_correlation_against_the_nb201_table(data: Dataset, data_dir) -> None:
    searcher = make("spos", "nb201", data, epochs=1, rank_correlation=5)
    result = finish(searcher)
    rank = result.rank
    assert rank is not None and rank["samples"] == 5 and rank["metric"] == "cifar10-val"
    from nas.oneshot.ranking import load_table

    table = load_table(searcher.space)
    for pair in rank["pairs"]:
        assert pair["cifar10-val"] == table.value(searcher.space.parse(pair["arch"]), "cifar10-val")
    assert rank["kendall_tau"] is None or -1.0 <= rank["kendall_tau"] <= 1.0


def test_invalid_architecture_is_refused_by_the_supernet(data: Dataset) -> None:
    searcher = make("spos", "nb201", data)
    bad = get_space("darts").sample(0)
    with pytest.raises(ArchitectureError):
        searcher.supernet.forward_arch(searcher.data.x_val[:2], bad)


def test_unknown_method_names_the_registered_ones(data: Dataset) -> None:
    with pytest.raises(UnknownNameError, match="pc_darts"):
        create_method("pcdarts", get_space("nb201"), data)
