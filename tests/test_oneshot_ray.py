"""``nas search`` with a one-shot method, end to end on a real local Ray (slow, ``ray``).

The example config ``examples/oneshot_nb201.yaml`` shrunk to seconds (digits,
a 4-channel supernet, 2 epochs, 2 seeds): the CLI trains both supernets as
Ray trials, stores them (PRUNED, with curves and alpha), and evaluates each
derived cell as an ordinary trial through the NAS-Bench-201 table. Running
the command again finds everything done and trains nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nas
from nas.core import TrialState
from nas.oneshot.ranking import load_table

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 2


def nas_search(config: Path, storage: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", str(config), "--storage", storage, "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=config.parent,
    )


def test_nas_search_runs_supernets_then_derived_trials(tmp_path: Path, data_dir: Path) -> None:
    config = yaml.safe_load((REPO / "examples" / "oneshot_nb201.yaml").read_text())
    config["space"] = {"name": "nb201", "channels": 4, "cells": 1}
    config["dataset"] = {"name": "digits"}
    config["strategy"].update(
        {"epochs": EPOCHS, "batch_size": 32, "rank_correlation": 4, "score_images": 64, "bn_batches": 1}
    )
    path = tmp_path / "oneshot.yaml"
    path.write_text(yaml.safe_dump(config))
    storage = f"sqlite:///{tmp_path / 'store.db'}"

    first = nas_search(path, storage)
    assert first.returncode == 0, first.stderr[-3000:]

    study = nas.load_study(config["name"], storage=storage)
    trials = study.trials()
    supernets = [t for t in trials if t.user_attrs.get("kind") == "supernet"]
    derived = [t for t in trials if t.user_attrs.get("kind") == "derived"]
    assert sorted(t.seed for t in supernets) == [0, 1] and len(derived) == 2
    table = load_table(study.space)
    for supernet in supernets:
        assert supernet.state is TrialState.PRUNED and supernet.values is None
        assert supernet.user_attrs["method"] == "gdas" and supernet.user_attrs["epochs_completed"] == EPOCHS
        assert supernet.user_attrs["rank_correlation"]["samples"] == 4
        curves = study.metrics(supernet)
        assert [step for step, _ in curves["supernet/val_accuracy"]] == list(range(1, EPOCHS + 1))
        assert len([name for name in curves if name.startswith("alpha/")]) == 6 * 5
        (child,) = [t for t in derived if t.user_attrs["derived_from"] == supernet.number]
        assert (
            child.state is TrialState.COMPLETE and child.arch == supernet.arch and child.seed == supernet.seed
        )
        assert child.values["val_accuracy"] == table.value(child.arch, "cifar10-val")
    assert {t.number for t in study.best_trials} <= {t.number for t in derived}

    again = nas_search(path, storage)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(study.trials()) == len(trials)
