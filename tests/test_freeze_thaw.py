"""Pause and resume ("freeze-thaw") with the ``hyperband`` scheduler: real training, real Ray, the store.

One band of tiny nb201 networks on digits (4 epochs, η = 2: the first bracket
holds 4 trials with rungs at epochs 1 and 2):

* in one run, Hyperband pauses trials at each rung and promotes the top half,
  and a promoted trial's curve is the curve of an uninterrupted run with the
  same seed (epoch k+1 starts from epoch k's weights, optimiser, LR schedule
  and RNG);
* a driver SIGKILLed while a trial is paused, then the same command again:
  the paused trial's copy resumes from the checkpoint the store holds, not
  from epoch 0, and its one stored curve runs 1..n without a gap. This run
  trains 8 epochs, so its first bracket is sized for 8 trials and promotes
  all 4 past epoch 1 whatever their ranks: the copy of a trial paused at
  epoch 1 always trains on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from search_processes import driver, plugin_env

import nas
from nas.core import Trial, TrialState
from nas.evaluators.train import TrainEvaluator
from nas.runner import run_search
from nas.runner.checkpoints import resume_from
from nas.runner.recovery import effective_finished
from nas.runner.schedulers.hyperband import brackets, rungs
from nas.store import StudyStatus
from search_spaces import get_space

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EPOCHS = 4
TRAIN = {"epochs": EPOCHS, "batch_size": 64, "lr": 0.05}
CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


def hyperband_config(name: str, epochs: int = EPOCHS) -> dict:
    return {
        "name": name,
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", **TRAIN, "epochs": epochs},
        "budget": {"trials": 4, "concurrent": 2},
        "scheduler": {"name": "hyperband", "reduction_factor": 2},
    }


def uninterrupted(trial: Trial, epochs: int) -> list[dict[str, float]]:
    """The per-epoch metrics of ``trial``'s architecture trained in one go here (same seed, one thread)."""
    settings = {**TRAIN, "epochs": epochs}
    evaluator = TrainEvaluator(get_space("nb201", channels=4, cells=1), "digits", num_threads=1, **settings)
    return list(evaluator.evaluate(trial.arch, seed=trial.seed).user_attrs["learning_curve"])


def assert_same_curve(study: nas.Study, trial: Trial, epochs: int = EPOCHS) -> None:
    """The stored curve is epochs 1..n and equals an uninterrupted run's first n epochs."""
    stored = study.metrics(trial)
    steps = [step for step, _ in stored["val_loss"]]
    assert steps == list(range(1, len(steps) + 1)), steps
    whole = uninterrupted(trial, epochs)
    for name in CURVES:
        got = [value for _, value in stored[name]]
        want = [epoch[name] for epoch in whole[: len(got)]]
        assert got == pytest.approx(want, abs=1e-6), (trial.number, name)


def test_the_band_and_its_rungs() -> None:
    assert brackets(EPOCHS, 2) == [(4, 1), (3, 2), (3, 4)]  # most aggressive first, as in the paper
    assert brackets(27, 3) == [(27, 1), (12, 3), (6, 9), (4, 27)]
    assert rungs(EPOCHS, 2) == {1, 2} and rungs(27, 3) == {1, 3, 9}


def test_hyperband_pauses_at_each_rung_and_a_promoted_trial_continues_its_run(local_ray, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(hyperband_config("band"), storage=url, show_progress=False)
    study = nas.load_study("band", storage=url)
    trials = study.trials()
    assert len(trials) == 4 and len(effective_finished(trials)) == 4
    lengths = {t.number: len(study.metrics(t)["val_accuracy"]) for t in trials}
    # The bracket of 4 at 1 epoch: the top 2 go on to 2 epochs, the top 1 of those to the end.
    assert sorted(lengths.values()) == [1, 1, 2, 4]
    (winner,) = [t for t in trials if t.state is TrialState.COMPLETE]
    assert lengths[winner.number] == EPOCHS and winner.value("val_accuracy") > 0
    assert {t.state for t in trials if t is not winner} == {TrialState.PRUNED}
    # Every trial but the last to reach a rung waits there, paused; a paused trial holds no worker.
    pauses = [step for t in trials for step in t.system_attrs.get("pauses", [])]
    assert pauses.count(1) == 3 and pauses.count(2) == 1
    assert not [t for t in trials if t.system_attrs.get("paused_at") is not None]
    # Checkpoints at the rungs only, in the store's artifacts, one file each.
    for trial in trials:
        kinds = [a for a in study.artifacts(trial) if a.kind == "checkpoint"]
        assert [Path(a.uri).name for a in kinds] == [f"checkpoint-e{s:05d}.pt" for s in (1, 2)][
            : min(2, lengths[trial.number])
        ]
    resumed = [
        t for t in trials if t.system_attrs.get("pauses") and lengths[t.number] > t.system_attrs["pauses"][0]
    ]
    assert resumed, "no trial was paused and then promoted"
    for trial in resumed:
        assert_same_curve(study, trial)
    if winner.system_attrs.get("pauses"):
        assert winner.user_attrs["resumed_after_epoch"] == winner.system_attrs["pauses"][-1]


def paused_with_checkpoint(study: nas.Study, step: int) -> Trial | None:
    for trial in study.trials(states=TrialState.RUNNING):
        if trial.system_attrs.get("paused_at") == step and any(
            a.kind == "checkpoint" for a in study.artifacts(trial)
        ):
            return trial
    return None


def test_a_paused_trial_resumes_from_its_stored_checkpoint_after_a_driver_kill(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    with driver(hyperband_config("killed", epochs=8), tmp_path, url) as search:
        paused = search.wait_for(
            "a paused trial with a stored checkpoint", lambda study: paused_with_checkpoint(study, step=1)
        )
        search.kill()  # the driver alone; leaving the block kills its session (its local Ray)
        command = search.command
    step = paused.system_attrs["paused_at"]
    before = nas.load_study("killed", storage=url).metrics(paused)

    rerun = subprocess.run(
        command, env=plugin_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    study = nas.load_study("killed", storage=url)
    assert study.status is StudyStatus.FINISHED
    assert len(effective_finished(study.trials())) == 4
    assert study.trial(paused.number).state is TrialState.FAIL
    (copy,) = [t for t in study.trials() if t.system_attrs.get("retry_of") == paused.number]
    assert copy.system_attrs["resumed_from"] == {"trial": paused.number, "step": step}
    assert copy.system_attrs["paused_at"] is None and copy.system_attrs["pauses"][0] == step
    stored = study.metrics(copy)
    # Epochs up to the checkpoint are the paused trial's own points, timings included (a run from
    # epoch 0 would have reported and overwritten them); the copy's worker went on after them.
    for name, points in before.items():
        assert stored[name][:step] == [(s, v) for s, v in points if s <= step], name
    assert len(stored["val_loss"]) > step, "the copy never trained past its checkpoint"
    assert_same_curve(study, copy, epochs=8)
    if copy.state is TrialState.COMPLETE:
        assert copy.user_attrs["resumed_after_epoch"] >= step


def test_a_damaged_stored_checkpoint_is_logged_and_the_copy_trains_from_scratch(tmp_path, caplog) -> None:
    study = nas.create_study("damaged", f"sqlite:///{tmp_path / 'nas.db'}", space="nb201")
    arch = get_space("nb201").sample(0)
    original = study.ask(arch, seed=0, budget=4)
    study.report(original, 1, {"val_accuracy": 50.0})
    file = tmp_path / "checkpoint-e00001.pt"
    file.write_bytes(b"the state after epoch 1")
    study.add_artifact(original, "checkpoint", file.as_uri(), "0" * 64)  # not the file's digest
    study.tell(original, state=TrialState.FAIL, error="its driver died")
    # As the store re-queues it: the original's system attributes, and retry_of.
    inherited = {"pauses": [1], "paused_at": 1, "retry_of": original.number}
    copy = study.ask(arch, seed=0, budget=4, system_attrs=inherited)
    with caplog.at_level("WARNING"):
        assert resume_from(study, copy) is None
    assert f"stored checkpoint {file} is damaged" in caplog.text
    assert study.trial(copy.number).system_attrs["checkpoint_damaged"] == str(file)
    attrs = study.trial(copy.number).system_attrs
    assert attrs["pauses"] == [] and attrs["paused_at"] is None  # the original's pauses do not apply
    assert study.metrics(copy) == {}  # nothing carried over: the copy starts at epoch 1
