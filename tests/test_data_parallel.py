"""Data-parallel training: the same global batches on N ranks as in one process (issue #20).

``nas.training.fit`` under a real 2-process gloo group (``torch.distributed``,
no Ray) against the same training in one process, then a real 2-worker Ray
Train trial inside ``nas search``; the bad inputs are refused before any trial.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gloo_ranks import gloo_group, spawn_ranks
from torch import nn

import nas
from nas.core import ConfigError, TrialState
from nas.data import load_dataset
from nas.evaluators.train import TrainEvaluator
from nas.runner import run_search
from nas.runner.cluster import check_placeable
from nas.settings.loading import load_config
from nas.settings.train import TrainSettings
from nas.training import Precision, Shard, fit, seeded
from search_spaces import get_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TRAIN = {"epochs": 2, "batch_size": 64, "lr": 0.05, "latency_repeats": 1, "latency_warmup": 0}


def _evaluate(workdir: Path) -> tuple[list[dict[str, float]], dict[str, torch.Tensor], dict[str, float]]:
    """Train the fixed cell on digits (tiny nb201) with ``TRAIN``: curve, final weights, values."""
    space = get_space("nb201", channels=4, cells=1)
    data = load_dataset("digits", seed=0)
    curve: list[dict[str, float]] = []
    evaluator = TrainEvaluator(space, data, workdir=workdir, num_threads=1, **TRAIN)
    result = evaluator.evaluate(space.parse(CELL), seed=3, report=lambda _, m: curve.append(dict(m)))
    return curve, torch.load(result.artifacts["weights"], weights_only=True), dict(result.values)


def _fit_plain() -> dict[str, torch.Tensor]:
    """Weights after ``fit`` of a network without BatchNorm (no statistic depends on the split)."""
    data = load_dataset("digits", seed=0)
    settings = TrainSettings(epochs=1, batch_size=64, lr=0.05, augment=True)
    with seeded(0, torch.device("cpu")):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    fit(model, data, settings, epochs=1, seed=1, device=torch.device("cpu"), precision=Precision(False))
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _rank(rank: int, world: int, port: int, out: str) -> None:
    with gloo_group(rank, world, port):
        assert Shard.current() == Shard(rank, world)
        torch.save((_evaluate(Path(out) / f"rank{rank}"), _fit_plain()), Path(out) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple, tuple]:
    """What rank 0 and rank 1 of a real 2-process gloo group trained."""
    out = tmp_path_factory.mktemp("ranks")
    spawn_ranks(_rank, out)
    return torch.load(out / "rank0.pt", weights_only=False), torch.load(out / "rank1.pt", weights_only=False)


def test_two_ranks_take_exactly_the_steps_of_one_process(two_ranks) -> None:
    """The defining mechanism: halves of the same global batches, gradients averaged by DDP.

    Without BatchNorm nothing depends on how a batch is split, so the weights
    after an epoch (shuffled, augmented) equal one process's up to float
    summation order.
    """
    torch.set_num_threads(1)
    alone = _fit_plain()
    for _, plain in two_ranks:
        for name, tensor in alone.items():
            torch.testing.assert_close(plain[name], tensor, rtol=1e-4, atol=1e-5)


def test_two_ranks_give_the_curve_of_one_process_within_noise(two_ranks, tmp_path: Path) -> None:
    """Tiny nb201 on digits, 2 epochs, batch 64, same seed: 2 gloo ranks vs one process.

    Both ranks report the same global (all-reduced) curve and end with the same
    weights. With BatchNorm each rank normalises its half-batch, so the curve is
    equal within noise, not bit for bit (epoch 1 of this setting swings by
    30 points between seeds; epoch 2 is compared).
    """
    torch.set_num_threads(1)
    curve, _, values = _evaluate(tmp_path)
    (curve0, weights0, values0), _ = two_ranks[0]
    (curve1, weights1, values1), _ = two_ranks[1]
    for a, b in zip(curve0, curve1, strict=True):
        assert {k: v for k, v in a.items() if k != "epoch_time_s"} == {
            k: v for k, v in b.items() if k != "epoch_time_s"
        }
    for name in weights0:
        assert torch.equal(weights0[name], weights1[name]), name
    assert values0 == {**values1, "latency_ms": values0["latency_ms"]}
    assert [m["lr"] for m in curve0] == pytest.approx([m["lr"] for m in curve])  # same steps, same schedule
    assert [m["epoch"] for m in curve0] == [1.0, 2.0]
    assert abs(curve0[-1]["val_accuracy"] - curve[-1]["val_accuracy"]) < 6.0, (curve, curve0)
    assert curve0[-1]["train_loss"] == pytest.approx(curve[-1]["train_loss"], rel=0.25)
    assert values0["val_accuracy"] > 80.0  # it learned (10 classes: chance is 10%)


#: A cell whose last node takes only `none` edges: no parameter reaches the loss but the classifier's.
DEAD_CELL = "|avg_pool_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"


def _dead_cell_rank(rank: int, world: int, port: int, out: str) -> None:
    with gloo_group(rank, world, port):
        space = get_space("nb201", channels=4, cells=1)
        evaluator = TrainEvaluator(
            space, load_dataset("digits", seed=0), workdir=Path(out) / f"rank{rank}", num_threads=1, **TRAIN
        )
        result = evaluator.evaluate(space.parse(DEAD_CELL), seed=0)
        torch.save(dict(result.values), Path(out) / f"rank{rank}.pt")


def test_two_ranks_train_a_cell_whose_parameters_do_not_all_reach_the_loss(tmp_path: Path) -> None:
    """DDP of a network with parameters outside the loss (random nb201 cells have them) trains to the end.

    Without ``find_unused_parameters`` DDP raised at the second step ("Expected
    to have finished reduction ... parameters that did not receive grad"), which
    failed such a trial of a multi-worker search (seen in an ASHA search).
    """
    spawn_ranks(_dead_cell_rank, tmp_path)
    values = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    assert values[0]["val_accuracy"] == values[1]["val_accuracy"]  # the same global figure on both ranks


def test_shards_cover_each_global_batch_once() -> None:
    """N contiguous slices make up the global batch (sizes differ by at most one); alone, the whole batch."""
    index = torch.arange(10)
    parts = [Shard(rank, 3).take(index) for rank in range(3)]
    assert torch.equal(torch.cat(parts), index) and [len(p) for p in parts] == [4, 3, 3]
    assert Shard().take(index) is index and Shard.current() == Shard()


# -- inside `nas search`: Ray Train in the Tune trial -------------------------------------------------------


def digits_config(name: str, **resources: object) -> dict:
    return {
        "name": name,
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", **TRAIN},
        "budget": {"trials": 1, "concurrent": 1},
        "resources": resources,
    }


@pytest.mark.ray
@pytest.mark.slow
def test_a_two_worker_trial_in_nas_search_stores_one_curve_and_one_set_of_weights(
    local_ray, tmp_path: Path
) -> None:
    """A real 2-worker Ray Train trial (gloo, 1 CPU each, 2-CPU test cluster) inside the Tune search."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    outcome = run_search(digits_config("ddp", workers=2, cpu=1), storage=url, show_progress=False)
    study = nas.load_study("ddp", storage=url)
    (trial,) = study.trials()
    assert outcome.finished == 1 and trial.state is TrialState.COMPLETE, trial.error
    curves = study.metrics(trial)
    assert [step for step, _ in curves["val_accuracy"]] == [1, 2]  # one curve: rank 0's, once
    (artifact,) = study.artifacts(trial)
    state = torch.load(Path(artifact.uri.removeprefix("file://")), weights_only=True)
    study.space.build(trial.arch, num_classes=10, input_shape=(1, 8, 8)).load_state_dict(state)
    assert trial.node and "/" in trial.node
    assert trial.user_attrs["workers"] == 2  # trained by two ranks
    # The stored curve is the data-parallel training of this architecture: one process trains
    # the same architecture and seed to the same accuracy within noise.
    space = get_space("nb201", channels=4, cells=1)
    alone: list[float] = []
    TrainEvaluator(space, load_dataset("digits", seed=0), workdir=tmp_path, num_threads=1, **TRAIN).evaluate(
        trial.arch, seed=trial.seed, report=lambda _, m: alone.append(m["val_accuracy"])
    )
    assert abs(curves["val_accuracy"][-1][1] - alone[-1]) < 8.0, (curves["val_accuracy"], alone)


@pytest.mark.ray
def test_workers_the_cluster_cannot_place_are_refused_before_the_store(local_ray, tmp_path: Path) -> None:
    """3 workers of 1 CPU on the 2-CPU cluster, or a GPU per worker without GPUs: ConfigError, no store."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    with pytest.raises(ConfigError, match=r"workers=3 .* at most 2 such workers .* allowed: workers <= 2"):
        run_search(digits_config("wide", workers=3, cpu=1), storage=url, show_progress=False)
    with pytest.raises(ConfigError, match=r"gpu_per_worker=1 per worker .* has no GPU"):
        run_search(digits_config("gpu", workers=2, gpu_per_worker=1), storage=url, show_progress=False)
    assert not (tmp_path / "nas.db").exists()


def test_workers_need_a_data_parallel_evaluator_and_one_gpu_field() -> None:
    base = {"name": "x", "space": {"name": "nb201"}}
    with pytest.raises(
        ConfigError, match=r"workers=2 needs an evaluator that trains data-parallel.*nb201_table"
    ):
        load_config({**base, "evaluator": {"name": "nb201_table"}, "resources": {"workers": 2}})
    with pytest.raises(ConfigError, match=r"gpu=1 with workers=2: .* gpu_per_worker: 1"):
        load_config({**base, "resources": {"workers": 2, "gpu": 1}})
    with pytest.raises(ConfigError, match="trains its supernet on one worker"):
        load_config(
            {
                **base,
                "strategy": {"name": "darts", "order": 2},
                "dataset": {"name": "digits"},
                "resources": {"workers": 2},
            }
        )
    with pytest.raises(ConfigError, match="early stopping of multi-worker trials is not supported yet"):
        load_config({**base, "scheduler": {"name": "asha"}, "resources": {"workers": 2}})
    assert load_config({**base, "resources": {"workers": 2}}).resources.bundle == {"CPU": 1.0, "GPU": 0.0}


def test_placement_counts_whole_workers_per_node() -> None:
    """N identical bundles: each node holds as many as its scarcest resource allows; the sum must reach N."""
    nodes = [{"CPU": 3.0, "GPU": 1.0}, {"CPU": 2.0, "GPU": 2.0}]
    total = {"CPU": 5.0, "GPU": 3.0}
    check_placeable({"CPU": 1.0, "GPU": 1.0}, total, nodes, workers=3)
    with pytest.raises(ConfigError, match="at most 3 such workers"):
        check_placeable({"CPU": 1.0, "GPU": 1.0}, total, nodes, workers=4)
    # 5 CPUs in all, but only the 3-CPU node holds a worker of 2.5
    with pytest.raises(ConfigError, match="at most 1 such workers"):
        check_placeable({"CPU": 2.5}, total, nodes, workers=2)


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_worker_of_a_two_worker_trial_fails_it_and_tune_reruns_it(tmp_path: Path) -> None:
    """SIGKILL rank 0's Train worker mid-training: FAIL with its partial curve, a retry trial completes.

    ``nas search`` in a subprocess with its own local Ray (this machine's 2 CPUs:
    one 2-worker trial at a time), 2 trials of 4 epochs.
    """
    import os
    import signal

    from search_processes import driver, mid_training

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = digits_config("ddpkill", workers=2, cpu=1)
    config["evaluator"]["epochs"] = 4
    config["budget"]["trials"] = 2
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "NAS_ARTIFACTS")}
    with driver(config, tmp_path, url, env) as search:
        victim, pid = search.wait_for("a trial mid-training", lambda study: mid_training(study, 4))
        os.kill(pid, signal.SIGKILL)
        search.finish()
        study = search.study()
    trials = study.trials()
    dead = study.trial(victim.number)
    assert dead.state is TrialState.FAIL and dead.error.startswith("Ray lost the worker running this trial")
    assert 1 <= len(study.metrics(dead)["val_accuracy"]) < 4 and study.artifacts(dead) == []
    (retry,) = [t for t in trials if t.system_attrs.get("retry_of") == dead.number]
    assert retry.state is TrialState.COMPLETE and (retry.arch, retry.seed) == (dead.arch, dead.seed)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 2 and len(trials) == 3
    for trial in complete:
        assert [step for step, _ in study.metrics(trial)["val_accuracy"]] == [1, 2, 3, 4]
        assert len(study.artifacts(trial)) == 1 and trial.user_attrs["workers"] == 2


# -- final retraining in `nas export` on several workers ----------------------------------------------------


def _untrained_study(url: str, name: str, **resources: object) -> tuple[nas.Study, int]:
    """A study stored as ``nas search`` stores it, with one COMPLETE trial of ``CELL`` and no weights."""
    config = load_config(digits_config(name, **resources))
    study = nas.create_study(
        name,
        url,
        space="nb201",
        space_options={"channels": 4, "cells": 1},
        objectives=dict(config.objectives),
        config=config.model_dump(mode="json"),
    )
    trial = study.ask(study.space.parse(CELL), seed=3)
    study.tell(trial, {"val_accuracy": 90.0})  # a tabular-like result: export must retrain it
    return study, trial.number


@pytest.mark.ray
@pytest.mark.slow
def test_nas_export_retrains_on_the_studys_two_workers(local_ray, tmp_path: Path) -> None:
    """``nas export --retrain 2`` of a ``workers: 2`` study: a real 2-worker Ray Train run, rank 0's weights.

    The card records the two workers; the bundle's model loads and classifies
    the digits test split as the card says (the ranks' shared weights learned).
    """
    from click.testing import CliRunner

    from nas.cli import main
    from nas.export import load_exported
    from nas.training import Precision, evaluate

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study, number = _untrained_study(url, "ddpexport", workers=2, cpu=1)
    out = tmp_path / "bundle"
    args = ["export", study.name, "--trial", str(number), "--storage", url, "--format", "pytorch", "--quiet"]
    result = CliRunner().invoke(main, [*args, "--retrain", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "retrained 2 epochs on 2 workers" in result.output
    bundle = load_exported(out)
    weights = bundle.card["weights"]
    assert weights["kind"] == "retrained" and weights["workers"] == 2 and weights["epochs"] == 2
    assert weights["seed"] == 3 and weights["values"]["val_accuracy"] > 80.0  # rank 0's (all-reduced) result
    data = load_dataset("digits", seed=0)
    _, accuracy = evaluate(bundle.model, data.x_test, data.y_test, torch.device("cpu"), Precision(False))
    assert accuracy == pytest.approx(bundle.card["test"]["accuracy"]) and accuracy > 70.0
    assert [a.kind for a in study.artifacts(number)] == ["export"]


@pytest.mark.ray
def test_export_workers_the_cluster_cannot_place_are_refused_before_training(
    local_ray, tmp_path: Path
) -> None:
    """``--workers 3`` on the 2-CPU cluster: ConfigError naming what fits, no bundle, nothing recorded."""
    from nas.export import export_model
    from nas.runner.retraining import RayRetraining

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study, number = _untrained_study(url, "ddpwide", workers=2, cpu=1)
    out = tmp_path / "bundle"
    with pytest.raises(ConfigError, match=r"workers=3 .* at most 2 such workers .* allowed: workers <= 2"):
        export_model(
            study,
            trial=number,
            out=out,
            retrain_epochs=1,
            workers=3,
            on_workers=RayRetraining(),
            progress=False,
        )
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("nas.db")) == []  # no bundle
    assert study.artifacts(number) == []


def test_export_workers_apply_to_retraining_and_need_ray(tmp_path: Path) -> None:
    """More than one worker needs the runner's Ray; stored weights are shipped as they are, whatever ``workers``."""
    import hashlib

    from nas.export import export_model

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study, number = _untrained_study(url, "ddpnoray", workers=2, cpu=1)
    out = tmp_path / "bundle"
    with pytest.raises(ConfigError, match=r"workers=0 is not allowed; expected an integer >= 1"):
        export_model(study, trial=number, out=out, workers=0, progress=False)
    with pytest.raises(ConfigError, match=r"workers=2 needs Ray; pass on_workers="):
        export_model(study, trial=number, out=out, progress=False)  # the study's workers: 2
    model = study.space.build(study.trial(number).arch, num_classes=10, input_shape=(1, 8, 8))
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    study.add_artifact(number, "weights", path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())
    stored = export_model(study, trial=number, out=out, workers=2, progress=False, latency_repeats=1)
    assert stored.card["weights"]["kind"] == "stored"  # shipped as they are: nothing to train on 2 workers
