"""Specialisation without retraining (``nas specialize``, ``nas latency profile``): budgets, resume, export, errors.

One tiny BigNAS supernet (fbnet at width 0.25, one epoch on digits, trained
in-process as the runner's supernet worker trains it and stored as the runner
stores it) serves every test: the search of sub-networks with inherited
weights runs in-process, so no Ray is needed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nas.cli import main
from nas.core import ConfigError, Trial, UnknownNameError
from nas.specialize import device_model, specialize
from nas.specialize.run import CANDIDATE, SPECIALIZED
from nas.specialize.supernet import record_supernet
from nas.store.study import create_study, list_studies, load_study

DIGITS_SHAPE = (1, 8, 8)
SEARCH = {
    "name": "bn",
    "space": {"name": "fbnet", "width_mult": 0.25},
    "dataset": {"name": "digits", "limit": 640},
    "strategy": {
        "name": "bignas",
        "epochs": 1,
        "batch_size": 64,
        "num_random": 1,
        "score_images": 128,
        "bn_batches": 2,
        "lr": 0.05,
    },
    "evaluator": {"name": "train", "epochs": 1, "batch_size": 64},
    "objectives": {"val_accuracy": "max"},
}


def budget_between(device: str, share: float) -> float:
    """A budget ``share`` of the way from the device's fastest sub-network to its largest one."""
    from search_spaces import get_space

    space = get_space("fbnet", width_mult=0.25)
    model = device_model(space, device, input_shape=DIGITS_SHAPE, num_classes=10)
    largest = model.predict(space, space.make(dict.fromkeys(space.choices(), "k5_e6")))
    fastest = model.fastest(space)[1]
    # rounded up: a local table's range can be a few microseconds, and rounding down can fall below the fastest
    return math.ceil((fastest + share * (largest - fastest)) * 1e4) / 1e4


def trained_study(url: str, raw: dict[str, Any]) -> None:
    """Create the study of search config ``raw`` in ``url`` and store its trained supernet as ``nas search`` does."""
    from nas.data import load_dataset
    from nas.oneshot import create_method, run_oneshot
    from nas.settings import load_config
    from nas.store.url import artifacts_root
    from nas.training import torch_threads

    config = load_config(raw)
    name, space = config.name, raw["space"]
    study = create_study(
        name,
        storage=url,
        space=space["name"],
        space_options={k: v for k, v in space.items() if k != "name"},
        config=config.model_dump(mode="json"),
    )
    dataset = load_dataset(config.dataset, seed=config.data_seed)
    checkpoints = artifacts_root(url) / name / "oneshot" / "supernets-bignas-test-checkpoints" / "seed-0"
    with torch_threads(1):
        method = create_method(
            "bignas", study.space, dataset, {**config.strategy.options, "check_memory": False}, seed=0
        )
        result = run_oneshot(method, checkpoint_dir=checkpoints)
    record_supernet(study, result, checkpoints)


@pytest.fixture(scope="module")
def supernet(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Any]:
    """A trained one-epoch bignas supernet study, with a ``specialize:`` section of two targets."""
    folder = tmp_path_factory.mktemp("specialize")
    url = f"sqlite:///{folder}/nas.db"
    targets = [
        {"device": "pixel3", "max_latency_ms": budget_between("pixel3", 0.3)},
        {"device": "gold_6226", "max_latency_ms": budget_between("gold_6226", 0.2)},
    ]
    trained_study(url, {**SEARCH, "specialize": {"targets": targets, "candidates": 4, "population_size": 2}})
    return {"url": url, "targets": targets, "folder": folder}


def candidates_of(study: str, url: str, target: str) -> list[Trial]:
    return [
        t
        for t in load_study(study, storage=url).trials()
        if t.system_attrs.get("kind") == CANDIDATE and t.system_attrs.get("target") == target
    ]


def test_specialisation_respects_every_budget_and_a_killed_run_resumes_without_repeats(
    supernet: dict[str, Any],
) -> None:
    url = supernet["url"]
    full = specialize("bn", storage=url, name="full", threads=1)  # the study's own targets: two devices
    assert [r.target.device for r in full.results] == ["pixel3", "gold_6226"]
    study = load_study("full", storage=url)
    space = study.space
    for result, target in zip(full.results, supernet["targets"], strict=True):
        model = device_model(space, target["device"], input_shape=DIGITS_SHAPE, num_classes=10)
        candidates = candidates_of("full", url, result.target.key)
        assert len(candidates) == 4 and result.reused == 0
        for trial in candidates:  # every stored candidate is within the budget by the device's predictor
            assert model.predict(space, trial.arch) <= target["max_latency_ms"]
            assert (
                trial.system_attrs["derived_from"] == 0 and trial.system_attrs["device"] == target["device"]
            )
        best = max(
            candidates, key=lambda t: (t.value("val_accuracy"), -t.value("latency_ms"))
        )  # ties: faster
        chosen = result.trial
        assert chosen.system_attrs["kind"] == SPECIALIZED and chosen.system_attrs["candidate"] == best.number
        assert chosen.arch == best.arch and chosen.value("latency_ms") <= target["max_latency_ms"]
        assert [a.kind for a in study.artifacts(chosen)] == ["weights"]
        assert chosen.system_attrs["max_latency_ms"] == target["max_latency_ms"]

    # killed after the second target's second candidate: the rerun scores only what is missing
    scored: list[str] = []

    def kill(target: Any, done: int, total: int) -> None:
        scored.append(target.key)
        if len(scored) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        specialize("bn", storage=url, name="killed", progress=kill, threads=1)
    resumed = specialize("bn", storage=url, name="killed", threads=1)
    assert [r.reused for r in resumed.results] == [4, 2]
    for target in resumed.results:
        key = target.target.key
        assert [t.arch for t in candidates_of("killed", url, key)] == [
            t.arch for t in candidates_of("full", url, key)
        ]
    assert len(load_study("killed", storage=url).trials()) == len(study.trials())


def specialize_locally_and_export(
    study: str, url: str, budget: float, out: Path, *options: str
) -> tuple[Trial, dict[str, Any]]:
    """``nas specialize STUDY --device local`` (4 candidates), then ``nas export`` of its pick: the pick, its card."""
    runner = CliRunner()
    specialised = runner.invoke(
        main,
        [
            "specialize", study, "--device", "local", "--max-latency-ms", str(budget), "--candidates", "4",
            "--population", "2", "--threads", "1", *options, "--storage", url, "--quiet",
        ],
    )  # fmt: skip
    assert specialised.exit_code == 0, specialised.output
    (chosen,) = [
        t
        for t in load_study(f"{study}-specialized", storage=url).trials()
        if t.system_attrs["kind"] == SPECIALIZED
    ]
    assert chosen.system_attrs["device"] == "local"
    assert (
        chosen.user_attrs["predicted_latency_ms"] <= budget and chosen.user_attrs["measured_latency_ms"] > 0
    )
    exported = runner.invoke(
        main,
        ["export", f"{study}-specialized", "--trial", str(chosen.number), "--out", str(out), "--format", "onnx",
         "--storage", url, "--quiet"],
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    card = json.loads((out / "card.json").read_text())
    assert card["specialization"]["device"] == "local" and card["specialization"]["measured_latency_ms"] > 0
    return chosen, card


@pytest.mark.slow
def test_nas_specialize_for_this_machine_then_nas_export(supernet: dict[str, Any], tmp_path: Path) -> None:
    url = supernet["url"]
    runner = CliRunner()
    profiled = runner.invoke(
        main, ["latency", "profile", "bn", "--repeats", "3", "--validation", "1", "--storage", url]
    )
    assert profiled.exit_code == 0, profiled.output
    budget = budget_between("local", 0.5)
    chosen, card = specialize_locally_and_export(
        "bn", url, budget, tmp_path / "bundle", "--finetune-epochs", "1"
    )
    assert chosen.user_attrs["finetune_epochs"] == 1
    target = card["specialization"]
    assert target["device"] == "local" and target["max_latency_ms"] == budget
    assert target["predicted_latency_ms"] == pytest.approx(chosen.user_attrs["predicted_latency_ms"])
    assert target["measured_latency_ms"] == card["latency"]["ms"]["onnxruntime"] > 0
    assert card["weights"]["kind"] == "stored"  # the specialised weights, not a retraining
    assert "## Device target" in (tmp_path / "bundle" / "README.md").read_text()


def test_bad_targets_are_refused_before_any_work(supernet: dict[str, Any]) -> None:
    url = supernet["url"]
    with pytest.raises(UnknownNameError, match="pixel33") as unknown:
        specialize(
            "bn",
            storage=url,
            name="errs",
            settings={"targets": [{"device": "pixel33", "max_latency_ms": 10}]},
        )
    assert "pixel3" in str(unknown.value) and "local" in str(unknown.value)
    space = load_study("bn", storage=url).space
    fastest = device_model(space, "pixel3", input_shape=DIGITS_SHAPE, num_classes=10).fastest(space)[1]
    with pytest.raises(ConfigError, match=f"the fastest achievable is {fastest:.4g} ms"):
        specialize(
            "bn",
            storage=url,
            name="errs",
            settings={"targets": [{"device": "pixel3", "max_latency_ms": 0.01}]},
        )
    # the command line: one line, exit 2
    result = CliRunner().invoke(
        main,
        [
            "specialize",
            "bn",
            "--device",
            "pixel3",
            "--max-latency-ms",
            "0.01",
            "--name",
            "errs",
            "--storage",
            url,
        ],
    )
    assert result.exit_code == 2 and "fastest achievable" in result.output
    assert "errs" not in [s.info.name for s in list_studies(url)]  # refused before the study was created


def test_studies_without_an_elastic_supernet_are_refused(tmp_path: Path, data_dir: Path) -> None:
    from nas.settings import load_config

    url = f"sqlite:///{tmp_path}/nas.db"
    targets = {"targets": [{"device": "pixel3", "max_latency_ms": 20}]}
    spos = load_config({**SEARCH, "name": "spos", "strategy": {"name": "spos", "epochs": 1}})
    create_study(
        "spos",
        storage=url,
        space="fbnet",
        space_options={"width_mult": 0.25},
        config=spos.model_dump(mode="json"),
    )
    with pytest.raises(ConfigError, match="'spos', which trains no elastic supernet.*bignas"):
        specialize("spos", storage=url, settings=targets)
    darts = load_config(
        {
            **SEARCH,
            "name": "cells",
            "space": {"name": "nb201", "channels": 8, "cells": 1},
            "strategy": {"name": "darts"},
        }
    )
    create_study(
        "cells",
        storage=url,
        space="nb201",
        space_options={"channels": 8, "cells": 1},
        config=darts.model_dump(mode="json"),
    )
    with pytest.raises(ConfigError, match="space .nb201. .* has no elastic supernet.*spaces with one: fbnet"):
        specialize("cells", storage=url, settings=targets)
    bignas = load_config({**SEARCH, "name": "untrained"})
    create_study(
        "untrained",
        storage=url,
        space="fbnet",
        space_options={"width_mult": 0.25},
        config=bignas.model_dump(mode="json"),
    )
    with pytest.raises(ConfigError, match="no finished bignas supernet"):
        specialize("untrained", storage=url, settings=targets)
    assert sorted(s.info.name for s in list_studies(url)) == ["cells", "spos", "untrained"]


# -- hybrid: a latency table per block context -------------------------------------------------------------

#: A hybrid space small enough to enumerate (4^3 choices x 4 down-sampling placements = 256 members).
SMALL_HYBRID = {"blocks": 3, "downsamples": 1, "base_width": 8}
HYBRID_SEARCH = {
    **SEARCH,
    "name": "hy",
    "space": {"name": "hybrid", "blocks": 2, "downsamples": 1, "base_width": 8},
}


def every_member(space: Any) -> list[Any]:
    import itertools

    from nas.core import ArchitectureError

    names, members = list(space.choices()), []
    for values in itertools.product(*space.choices().values()):
        try:
            members.append(space.make(dict(zip(names, values, strict=True))))
        except ArchitectureError:  # too many down-samplings
            continue
    return members


def test_a_hybrid_context_table_prices_a_network_as_the_sum_of_the_entries_along_its_path() -> None:
    import numpy as np
    import torch

    from nas.core.oneshot import oneshot_view
    from nas.specialize.model import LatencyModel
    from nas.specialize.run import within_budget
    from search_spaces import get_space

    space = get_space("hybrid", **SMALL_HYBRID)
    parts = oneshot_view(space).latency_parts(space, num_classes=10, input_shape=DIGITS_SHAPE)
    assert [p[1] for p in parts if p[0] is None] == ["stem"]  # in every network: the constant
    rng = np.random.default_rng(0)
    table: dict[str, dict[str, float]] = {}
    for part, key, _, _ in parts:
        if part is not None:  # a distinct cost per context, so a wrong context changes the sum
            table.setdefault(part, {})[key] = float(rng.uniform(0.1, 1.0))
    model = LatencyModel("local", table, constant=0.5, source="test", context=True)
    members = every_member(space)
    assert len(members) == space.size() == 256
    used = set()
    for arch in members:
        keys = model.keys(space, arch)
        assert list(keys) == [*space.block_names, "head"]
        assert model.predict(space, arch) == pytest.approx(0.5 + sum(table[p][k] for p, k in keys.items()))
        used |= set(keys.items())
    # exactly the contexts some member reaches are listed (and so profiled)
    assert used == {(p, k) for p, k, _, _ in parts if p is not None}

    # each entry is the module the network runs at that point, at the input it receives there
    listed = {(p, k): (module, shape) for p, k, module, shape in parts}
    for arch in [space.sample(rng) for _ in range(12)]:
        net = space.network(arch, 10, DIGITS_SHAPE).eval()
        seen: list[tuple[int, ...]] = []
        hooks = [
            m.register_forward_pre_hook(lambda _, args, seen=seen: seen.append(tuple(args[0].shape[1:])))
            for m in [*net.blocks, net.pool]
        ]
        net(torch.zeros(1, *DIGITS_SHAPE))
        for hook in hooks:
            hook.remove()
        keys = model.keys(space, arch)
        for (part, key), module, shape in zip(keys.items(), [*net.blocks, None], seen, strict=True):
            part_module, part_shape = listed[(part, key)]
            assert part_shape == shape, (space.format(arch), part, key)
            if module is not None:
                assert repr(part_module) == repr(module)
        assert repr(listed[("head", keys["head"])][0].classifier) == repr(net.classifier)

    # the fastest member, by the space's dynamic programme, is the brute-force minimum
    fastest, ms = model.fastest(space)
    assert ms == pytest.approx(min(model.predict(space, a) for a in members))
    assert model.predict(space, fastest) == pytest.approx(ms)
    # a tight budget: samples repaired into it (some only by falling back to the fastest)
    within = within_budget(space, model, ms + 0.1)
    assert all(model.predict(space, within.sample(rng)) <= ms + 0.1 for _ in range(30))


def test_the_local_table_of_hybrid_is_cached_per_space_options() -> None:
    from nas.specialize.profile import profile_path
    from search_spaces import get_space

    paths = {
        profile_path(get_space("hybrid", **{**SMALL_HYBRID, **change}), DIGITS_SHAPE, 10)
        for change in ({}, {"base_width": 16}, {"blocks": 4}, {"downsamples": 2})
    }
    assert len(paths) == 4


@pytest.fixture(scope="module")
def hybrid_supernet(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> str:
    """A trained one-epoch bignas supernet study of a two-block hybrid space (store URL)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('specialize-hybrid')}/nas.db"
    trained_study(url, HYBRID_SEARCH)
    return url


def test_hybrid_is_specialised_for_this_machine_only(hybrid_supernet: str) -> None:
    url = hybrid_supernet
    for device in ("pixel3", "gold_6226", "pixel33"):
        with pytest.raises(
            ConfigError, match=f"device '{device}' is not available for the hybrid space"
        ) as error:
            specialize(
                "hy",
                storage=url,
                name="errs",
                settings={"targets": [{"device": device, "max_latency_ms": 5}]},
            )
        message = str(error.value)
        assert "the only device is 'local'" in message and "nas latency profile" in message
        assert "input width and resolution" in message  # why: a block's cost depends on the blocks before it
        assert ("fbnet space's" in message) == (device != "pixel33")  # whose table the name comes from
    # local before the table is built: the command that builds it
    with pytest.raises(ConfigError, match="nas latency profile STUDY"):
        specialize(
            "hy", storage=url, name="errs", settings={"targets": [{"device": "local", "max_latency_ms": 5}]}
        )
    result = CliRunner().invoke(
        main,
        [
            "specialize",
            "hy",
            "--device",
            "pixel3",
            "--max-latency-ms",
            "5",
            "--name",
            "errs",
            "--storage",
            url,
        ],
    )
    assert result.exit_code == 2 and "only device is 'local'" in result.output
    assert "errs" not in [s.info.name for s in list_studies(url)]


@pytest.mark.slow
def test_nas_specialize_hybrid_for_this_machine_then_nas_export(hybrid_supernet: str, tmp_path: Path) -> None:
    url = hybrid_supernet
    runner = CliRunner()
    profiled = runner.invoke(
        main, ["latency", "profile", "hy", "--repeats", "3", "--validation", "1", "--storage", url, "--quiet"]
    )
    assert profiled.exit_code == 0, profiled.output
    assert "per block context" in profiled.output
    space = load_study("hy", storage=url).space
    model = device_model(space, "local", input_shape=DIGITS_SHAPE, num_classes=10)
    assert model.context
    fastest = model.fastest(space)[1]
    slowest = max(model.predict(space, a) for a in every_member(space))
    budget = math.ceil((fastest + 0.5 * (slowest - fastest)) * 1e5) / 1e5
    assert fastest < budget < slowest  # a budget that rules some sub-networks out
    chosen, _ = specialize_locally_and_export("hy", url, budget, tmp_path / "bundle")
    candidates = candidates_of("hy-specialized", url, f"local<={budget:g}")
    assert len(candidates) == 4
    assert all(model.predict(space, t.arch) <= budget for t in candidates)  # each within budget by the table
    assert chosen.user_attrs["predicted_latency_ms"] == pytest.approx(model.predict(space, chosen.arch))
