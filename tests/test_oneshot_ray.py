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
from search_processes import driver

import nas
from nas.core import TrialState
from nas.oneshot.ranking import load_table
from search_spaces.nb201 import EDGE_NAMES

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 2


def command(config: Path, storage: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", "search", str(config), "--storage", storage, "--quiet"]


def nas_search(config: Path, storage: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(config, storage),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=900,
        cwd=config.parent,
    )


def tiny_config(tmp_path: Path, **strategy: object) -> tuple[dict, Path]:
    """``examples/oneshot_nb201.yaml`` shrunk to seconds, written to ``tmp_path``."""
    config = yaml.safe_load((REPO / "examples" / "oneshot_nb201.yaml").read_text())
    config["space"] = {"name": "nb201", "channels": 4, "cells": 1}
    config["dataset"] = {"name": "digits"}
    config["strategy"].update(
        {
            "epochs": EPOCHS,
            "batch_size": 32,
            "rank_correlation": 4,
            "score_images": 64,
            "bn_batches": 1,
            "seeds": 2,  # two supernets, run side by side (budget.concurrent: 2)
            "warmup_epochs": 0,  # the example never trains alpha; here alpha moves and is stored
            "early_stop_on_collapse": False,  # the run's length is what these tests check
            "selection": "perturbation",
            **strategy,
        }
    )
    path = tmp_path / "oneshot.yaml"
    path.write_text(yaml.safe_dump(config))
    return config, path


def test_nas_search_runs_supernets_then_derived_trials(tmp_path: Path, data_dir: Path) -> None:
    config, path = tiny_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'store.db'}"

    first = nas_search(path, storage)
    assert first.returncode == 0, first.stderr[-3000:]

    study = nas.load_study(config["name"], storage=storage)
    trials = study.trials()
    supernets = [t for t in trials if t.system_attrs.get("kind") == "supernet"]
    derived = [t for t in trials if t.system_attrs.get("kind") == "derived"]
    assert sorted(t.seed for t in supernets) == [0, 1] and len(derived) == 2
    table = load_table(study.space)
    for supernet in supernets:
        assert supernet.state is TrialState.PRUNED and supernet.values is None
        assert supernet.system_attrs["method"] == config["strategy"]["name"]
        assert supernet.user_attrs["epochs_completed"] == EPOCHS
        assert Path(supernet.system_attrs["checkpoint"]).is_file()  # its trained weights (nas specialize)
        assert supernet.user_attrs["rank_correlation"]["samples"] == 4
        curves = study.metrics(supernet)
        assert [step for step, _ in curves["supernet/val_accuracy"]] == list(range(1, EPOCHS + 1))
        assert len([name for name in curves if name.startswith("alpha/")]) == 6 * 5
        selection = supernet.user_attrs["selection"]
        assert selection["images"] == 64 and len(selection["without"]) == 6
        assert selection["kept"] == {edge: supernet.arch[edge] for edge in EDGE_NAMES}
        (child,) = [t for t in derived if t.system_attrs["derived_from"] == supernet.number]
        assert (
            child.state is TrialState.COMPLETE and child.arch == supernet.arch and child.seed == supernet.seed
        )
        assert child.values["val_accuracy"] == table.value(child.arch, "cifar10-val")
    assert {t.number for t in study.best_trials} <= {t.number for t in derived}

    again = nas_search(path, storage)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(study.trials()) == len(trials)


def test_killed_driver_resumes_the_supernet_from_its_last_epoch(tmp_path: Path, data_dir: Path) -> None:
    epochs = 12
    config, path = tiny_config(tmp_path, epochs=epochs, seeds=1, rank_correlation=0)
    storage = f"sqlite:///{tmp_path / 'store.db'}"
    checkpoints = tmp_path / "store_artifacts" / config["name"] / "oneshot"
    with driver(config, tmp_path, storage) as search:  # leaving it SIGKILLs the driver and its Ray
        search.until(
            "the supernet's first checkpoint",
            lambda: next(checkpoints.glob("*-checkpoints/seed-0/oneshot.pt"), None),
        )
    study = nas.load_study(config["name"], storage=storage)
    assert not study.trials()  # nothing stored: the supernet had not finished

    again = nas_search(path, storage)
    assert again.returncode == 0, again.stderr[-3000:]
    (supernet,) = [t for t in study.trials() if t.system_attrs.get("kind") == "supernet"]
    assert supernet.user_attrs["resumed_from_epoch"] >= 1
    assert supernet.user_attrs["epochs_completed"] == epochs
    curve = study.metrics(supernet)["supernet/train_loss"]
    assert [step for step, _ in curve] == list(range(1, epochs + 1))
