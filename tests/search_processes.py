"""Real ``nas search`` subprocesses for the fault tests: start, watch through the store, kill, check.

Shared by the tests that interrupt, kill or starve a driver
(``test_search_lifecycle``, ``test_oneshot_ray``, ``test_driver_lease``, ``test_search_db_faults``,
``test_worker_faults``, ``test_data_parallel``, ``test_freeze_thaw``):
the command line, the environment that makes the test plugins importable,
a poll of the store that tolerates a store still being created, a driver
started in a session of its own and killed with it whatever the test does
(:func:`driver`), killing a driver's whole process group (its local Ray
included), and the check that a resumed study holds exactly its budget,
nothing lost and nothing duplicated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

import nas
from nas.core import Trial, TrialState
from nas.runner.recovery import effective_finished

PLUGINS = Path(__file__).parent / "plugins"

T = TypeVar("T")


def digits_search(name: str, trials: int, epochs: int, **changes: Any) -> dict[str, Any]:
    """A small real search: random nb201 cells (4 channels, 1 cell) trained on digits, 2 at a time."""
    return {
        "name": name,
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "epochs": epochs, "batch_size": 64, "lr": 0.05},
        "budget": {"trials": trials, "concurrent": 2},
        **changes,
    }


def plugin_env(**extra: str) -> dict[str, str]:
    """The environment of a driver subprocess: this one, with ``tests/plugins`` importable, plus ``extra``."""
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def search_command(config: Mapping[str, Any], directory: Path, url: str) -> list[str]:
    """Write ``config`` to ``directory/search.yaml``; the ``nas search`` command line that runs it on ``url``."""
    path = directory / "search.yaml"
    path.write_text(yaml.safe_dump(dict(config)))
    return [sys.executable, "-m", "nas.cli", "search", str(path), "--storage", url, "--quiet"]


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 600.0) -> T:
    """Poll ``check`` until it returns something truthy (store errors while it is being created count as no).

    The timeout is generous on purpose: on a loaded machine a local Ray takes minutes to start, and
    how long a driver takes is never what these tests check.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except (nas.NASError, ValueError, KeyError) as exc:
            found, last = None, exc  # the store or the study is being created
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


def kill_group(pid: int) -> None:
    """SIGKILL a driver's process group: the Ray processes it started too, as an operator would clean up."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Driver:
    """A ``nas search`` subprocess in a session of its own (with the local Ray it may start)."""

    process: subprocess.Popen[bytes]
    command: list[str]
    log: Path
    url: str
    name: str

    def study(self) -> nas.Study:
        return nas.load_study(self.name, storage=self.url)

    def wait_for(self, what: str, find: Callable[[nas.Study], T | None], timeout: float = 600.0) -> T:
        """Poll the store until ``find`` returns something; fail if the driver exits first."""
        return self.until(what, lambda: find(self.study()), timeout)

    def until(self, what: str, check: Callable[[], T | None], timeout: float = 600.0) -> T:
        """Poll ``check`` until it returns something (not None); fail if the driver exits first.

        For what the store does not hold (a supernet's checkpoint file); store
        errors while the study is being created count as nothing yet.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the driver exited ({self.process.returncode}) before {what}:\n{self.output()}")
            try:
                found = check()
            except (nas.NASError, ValueError, KeyError):
                found = None  # the study is being created
            if found is not None:
                return found
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the driver alone (its Ray workers live on until the session is killed) and reap it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=600)

    def interrupt(self, timeout: float = 180.0) -> int:
        """Ctrl+C the driver alone (SIGINT, as a terminal sends it) and return its exit code once it stops."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not stop {timeout:.0f} s after Ctrl+C:\n{self.output()}")

    def finish(self, timeout: float = 600.0) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not finish after the fault:\n{self.output()}")
        assert self.process.returncode == 0, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def driver(
    config: Mapping[str, Any], workdir: Path, url: str, env: Mapping[str, str] | None = None
) -> Iterator[Driver]:
    """Start ``nas search`` on ``config``; whatever happens, SIGKILL its session afterwards.

    ``env`` defaults to :func:`plugin_env`; one OpenMP thread per process, as
    the machines running these tests have few cores. Killing the session is a
    no-op once the driver exited on its own.
    """
    command = search_command(config, workdir, url)
    log = workdir / "driver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**(plugin_env() if env is None else env), "OMP_NUM_THREADS": "1"},
            cwd=workdir,
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
    try:
        yield Driver(process, command, log, url, str(config["name"]))
    finally:
        kill_group(process.pid)
        process.wait(timeout=30)


def mid_training(
    study: nas.Study, epochs: int, where: Callable[[int], bool] = lambda pid: True
) -> tuple[Trial, int] | None:
    """A RUNNING trial past its first epoch but not its last, and its worker's pid (if ``where`` accepts it)."""
    for trial in study.trials(states=TrialState.RUNNING):
        workers = trial.system_attrs.get("workers")
        steps = len(study.metrics(trial, ["val_accuracy"]).get("val_accuracy", []))
        if workers and 1 <= steps < epochs - 1 and where(workers[-1][1]):
            return trial, workers[-1][1]
    return None


def assert_exact_budget(study: nas.Study, budget: int, epochs: int) -> None:
    """Exactly ``budget`` COMPLETE trials, each with its whole curve and its weights; nothing else left open.

    Trial numbers run 0..n-1 without gaps or duplicates; any FAIL trial is one
    an interrupted driver left RUNNING, and a later trial is its re-queued copy.
    """
    trials = study.trials()
    assert [t.number for t in trials] == list(range(len(trials))), [t.number for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == budget and len(effective_finished(trials)) == budget
    copies = {t.system_attrs.get("retry_of") for t in trials}
    for failed in (t for t in trials if t.state is TrialState.FAIL):
        assert failed.number in copies, f"trial {failed.number} failed and was not re-queued: {failed.error}"
    for trial in complete:
        curves = study.metrics(trial)
        assert curves, f"trial {trial.number} has no stored curve"
        for name, points in curves.items():
            assert [step for step, _ in points] == list(range(1, epochs + 1)), (trial.number, name, points)
        (weights,) = study.artifacts(trial)
        assert weights.kind == "weights" and Path(weights.uri.removeprefix("file://")).is_file()


__all__ = [
    "PLUGINS",
    "Driver",
    "assert_exact_budget",
    "driver",
    "kill_group",
    "mid_training",
    "plugin_env",
    "search_command",
    "wait_for",
]
