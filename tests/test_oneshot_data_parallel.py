"""Data-parallel supernet training (issue #20): N ranks take the steps one process takes on the whole batch.

The mechanism under a real 2-process gloo group (``torch.distributed``, no
Ray) against one process; then a real ``nas search`` of a one-shot method
with ``resources: {workers: 2}`` on the local Ray; then the refusals.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from gloo_ranks import gloo_group, spawn_ranks
from torch import nn

import nas
from nas.core import ConfigError, TrialState
from nas.data import load_dataset
from nas.oneshot import create_method, load_checkpoint, save_checkpoint
from nas.oneshot.method import OneShotMethod
from nas.oneshot.parallel import data_parallel
from nas.runner import run_search
from nas.settings.loading import load_config
from search_spaces import get_space

#: Tiny nb201 supernet on digits: 4 steps of a global batch of 32 (16 per rank), then validation.
OPTIONS = {"epochs": 2, "batch_size": 32, "check_memory": False, "rank_correlation": 0}
#: Per method: DARTS trains alpha from the first step.
EXTRA: dict[str, dict[str, Any]] = {"darts": {"warmup_epochs": 0}, "spos": {}}
STEPS = 4


def _method(name: str, batchnorm: bool) -> OneShotMethod:
    """``name`` on the tiny supernet, its weight split cut to ``STEPS`` batches (the same on every rank).

    Without BatchNorm (``batchnorm`` False) nothing in a step depends on how
    the batch is split: each rank's slice mean of the loss averages to the
    whole batch's, so the averaged gradient is the batch's gradient.
    """
    data = load_dataset("digits", seed=0)
    method = create_method(
        name, get_space("nb201", channels=4, cells=1), data, {**OPTIONS, **EXTRA[name]}, seed=0
    )
    size = STEPS * OPTIONS["batch_size"]
    method.data = dataclasses.replace(
        method.data,
        x_weights=method.data.x_weights[:size],
        y_weights=method.data.y_weights[:size],
        x_val=method.data.x_val[:64],
        y_val=method.data.y_val[:64],
    )
    if not batchnorm:
        _drop_batchnorm(method.supernet)
    return method


def _drop_batchnorm(module: nn.Module) -> None:
    """Every BatchNorm replaced by the identity (the stem's affine one leaves its parameters without gradients)."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _drop_batchnorm(child)


def _train(
    name: str, batchnorm: bool, parallel: bool, save: Path | None = None, resume: Path | None = None
) -> dict[str, Any]:
    """``name``'s epochs: its alpha, weights, curve, and every architecture SPOS sampled.

    ``save``: rank 0 writes the checkpoint of epoch 1 there (as the runner does);
    ``resume``: every rank starts from that checkpoint.
    """
    method = _method(name, batchnorm)
    if resume is not None:
        assert load_checkpoint(method, resume) and method.epoch == 1

    def checkpoint(trained: OneShotMethod, metrics: Any) -> None:
        if save is not None and trained.epoch == 1 and dist.get_rank() == 0:
            save_checkpoint(trained, save)

    sampled: list[str] = []
    sample = method.space.sample

    def recording(rng: Any) -> Any:
        arch = sample(rng)
        sampled.append(method.space.format(arch))
        return arch

    method.space.sample = recording  # type: ignore[method-assign]  # records what the loop draws
    if parallel:
        with data_parallel(method):
            method.fit(checkpoint)
    else:
        method.fit()
    del method.space.sample
    alpha = {k: v.detach().clone() for k, v in getattr(method, "alpha", {}).items()}
    return {
        "alpha": alpha,
        "weights": {k: v.detach().clone() for k, v in method.supernet.state_dict().items()},
        "history": [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in method.history],
        "sampled": sampled,
    }


def _rank(rank: int, world: int, port: int, out: str) -> None:
    with gloo_group(rank, world, port):
        saved = Path(out) / "epoch1"
        result = {"darts": _train("darts", False, True), "spos": _train("spos", True, True, save=saved)}
        dist.barrier()  # rank 0's checkpoint is written
        result["resumed"] = _train("spos", True, True, resume=saved)
        torch.save(result, Path(out) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What rank 0 and rank 1 of a real 2-process gloo group trained."""
    out = tmp_path_factory.mktemp("ranks")
    spawn_ranks(_rank, out)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_two_ranks_of_first_order_darts_take_the_steps_of_one_process(two_ranks) -> None:
    """2 epochs of 4 steps of first-order DARTS (alpha and weights, grad clip 5) without BatchNorm.

    The ranks hold the same alpha and weights bit for bit (each applies the
    same averaged gradient). Against one process on the whole batches they
    agree to float32 summation order: a gradient summed as two half-batch
    means differs by ~1e-7 relative, and 8 Adam/SGD steps carry that to at most
    ~1e-6 of the parameters' scale (alpha ~1e-3), so rtol 1e-4 / atol 1e-6
    would catch a missing average (which halves or drops a rank's gradient:
    differences of the size of a step, ~3e-4 on alpha) by orders of magnitude.
    """
    torch.set_num_threads(1)
    alone = _train("darts", False, False)
    first, second = two_ranks[0]["darts"], two_ranks[1]["darts"]
    for part in ("alpha", "weights"):
        for name, tensor in first[part].items():
            assert torch.equal(tensor, second[part][name]), (part, name)
            torch.testing.assert_close(tensor, alone[part][name], rtol=1e-4, atol=1e-6)
    moved = max(
        float((a - b).abs().max()) for a, b in zip(first["alpha"].values(), _initial_alpha(), strict=True)
    )
    assert moved > 1e-4  # alpha was trained (8 Adam steps of lr 3e-4), not left as initialised
    assert first["history"] == second["history"]
    for ours, theirs in zip(first["history"], alone["history"], strict=True):
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-4)  # the global (all-reduced) curve


def _initial_alpha() -> list[torch.Tensor]:
    return [v.detach().clone() for v in _method("darts", False).alpha.values()]


def test_two_ranks_of_spos_sample_the_same_paths_and_stay_identical(two_ranks) -> None:
    """Single path: every rank draws the architecture one process draws, step for step, and the
    weights stay equal bit for bit (with BatchNorm: each rank normalises its slice, statistics are
    rank 0's after every epoch)."""
    torch.set_num_threads(1)
    alone = _train("spos", True, False)
    first, second = two_ranks[0]["spos"], two_ranks[1]["spos"]
    assert first["sampled"] == second["sampled"] == alone["sampled"][: len(first["sampled"])]
    assert len(first["sampled"]) >= 2 * STEPS and len(set(first["sampled"])) > 1
    for name, tensor in first["weights"].items():
        assert torch.equal(tensor, second["weights"][name]), name
    assert first["history"] == second["history"]


def test_two_ranks_resumed_from_rank_0s_checkpoint_continue_as_the_uninterrupted_run(two_ranks) -> None:
    """Both ranks load rank 0's epoch-1 checkpoint (what the runner hands every worker on resume) and
    end where the uninterrupted 2-epoch run ended, bit for bit: weights, BatchNorm statistics, curve."""
    for rank in two_ranks:
        resumed, uninterrupted = rank["resumed"], rank["spos"]
        for name, tensor in uninterrupted["weights"].items():
            assert torch.equal(resumed["weights"][name], tensor), name
        assert resumed["history"] == uninterrupted["history"]
        assert resumed["sampled"] == uninterrupted["sampled"][-len(resumed["sampled"]) :]


def test_a_batch_the_ranks_cannot_split_evenly_is_refused() -> None:
    method = _method("darts", True)
    with pytest.raises(ConfigError, match=r"batch_size=32 with resources.workers=3: .* a multiple of 3"):
        from nas.training import Shard

        with data_parallel(method, Shard(0, 3)):
            pass


# -- inside `nas search`: Ray Train in the supernet's Tune trial -------------------------------------------


#: The derived architecture's training: data-parallel too (``workers`` applies to every trial).
TRAIN = {"epochs": 1, "batch_size": 64, "lr": 0.05, "latency_repeats": 1, "latency_warmup": 0}
SEARCH_EPOCHS = 2


@pytest.mark.ray
@pytest.mark.slow
def test_a_two_worker_supernet_in_nas_search_stores_its_curves_checkpoint_and_derived_trial(
    local_ray, tmp_path: Path
) -> None:
    """GDAS (sampled paths) on 2 Ray Train workers of 1 CPU: one supernet curve per epoch, its
    checkpoint, and the derived architecture trained as a COMPLETE trial."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = {
        "name": "ddp-gdas",
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "dataset": {"name": "digits", "limit": 512},
        "strategy": {
            "name": "gdas",
            "epochs": SEARCH_EPOCHS,
            "batch_size": 32,
            "rank_correlation": 0,
            "early_stop_on_collapse": False,
        },
        "evaluator": {"name": "train", **TRAIN},
        "resources": {"workers": 2, "cpu": 1},
    }
    run_search(config, storage=url, show_progress=False)
    study = nas.load_study("ddp-gdas", storage=url)
    (supernet,) = [t for t in study.trials() if t.system_attrs.get("kind") == "supernet"]
    (derived,) = [t for t in study.trials() if t.system_attrs.get("kind") == "derived"]
    assert supernet.state is TrialState.PRUNED, supernet.error
    assert supernet.user_attrs["epochs_completed"] == SEARCH_EPOCHS
    curves = study.metrics(supernet)
    epochs = list(range(1, SEARCH_EPOCHS + 1))
    assert [step for step, _ in curves["supernet/val_accuracy"]] == epochs  # rank 0's, once per epoch
    assert [step for step, _ in curves["supernet/tau"]] == epochs
    alphas = [name for name in curves if name.startswith("alpha/")]
    assert len(alphas) == 6 * 5 and all([s for s, _ in curves[n]] == epochs for n in alphas)
    state = torch.load(supernet.system_attrs["checkpoint"], weights_only=True)  # rank 0's last epoch
    assert state["epoch"] == SEARCH_EPOCHS and state["history"][-1]["val_accuracy"] == pytest.approx(
        curves["supernet/val_accuracy"][-1][1]
    )
    assert derived.state is TrialState.COMPLETE and derived.arch == supernet.arch, derived.error
    assert derived.system_attrs["derived_from"] == supernet.number and derived.user_attrs["workers"] == 2


def test_methods_that_cannot_average_their_step_are_refused_with_several_workers() -> None:
    base = {
        "name": "x",
        "space": {"name": "nb201"},
        "dataset": {"name": "digits"},
        "resources": {"workers": 2},
    }
    with pytest.raises(
        ConfigError, match=r"workers=2: one-shot method 'darts' with order: 2 .* allowed: workers: 1"
    ):
        load_config({**base, "strategy": {"name": "darts", "order": 2}})
    with pytest.raises(ConfigError, match=r"'amended_darts' computes .* one of .*darts.*gdas.*spos"):
        load_config({**base, "strategy": {"name": "amended_darts"}})
    with pytest.raises(ConfigError, match=r"'attentivenas' picks .* allowed: workers: 1"):
        load_config({**base, "strategy": {"name": "attentivenas"}})
    for method in ("darts", "pc_darts", "gdas", "spos"):
        assert load_config({**base, "strategy": {"name": method}}).resources.workers == 2
