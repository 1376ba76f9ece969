"""Shared fixtures: data location, markers policy and the test-only plugins.

Tests that need ../shared/data skip with a reason when it is absent, except
in CI (``CI`` set), where the data is always present and a skip would hide a
failure.

Every ``tests/plugins/*_plugin.py`` module is imported here, before any test
module is collected: each registers one plugin (strategy, predictor, proxy,
evaluator, ...) into the global registries, so the contract tests, which are
parametrised over those registries, hold the plugins to the same contract as
the built-ins.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Tests build many tiny models; on a 2-core machine torch's default thread
# pool makes them far slower (threads fight each other and other processes).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def _import_test_plugins() -> list[str]:
    """Import every ``plugins/*_plugin`` module (they register themselves); returns their names."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:  # pytest's default import mode puts it there; other modes may not
        sys.path.insert(0, here)
    package = importlib.import_module("plugins")
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.endswith("_plugin"))
    for name in names:
        importlib.import_module(f"plugins.{name}")
    return names


#: The plugin modules under tests/plugins (e.g. ``strategy_plugin``), imported for their registrations.
TEST_PLUGINS = _import_test_plugins()


def shared_data_dir() -> Path:
    return Path(os.environ.get("NAS_DATA_DIR", REPO.parent / "shared" / "data"))


def require_tool(name: str, why: str, *, path: str | None = None) -> str:
    """The path of command-line tool ``name``; a skip with ``why`` without it, a failure in CI.

    In CI every tool a test needs is installed, so a missing one is a broken
    environment and must not pass as a skip. ``path``: where to look instead of
    ``$PATH`` (e.g. PostgreSQL's versioned ``bin`` directory).
    """
    found = shutil.which(name, path=path)
    if found is None:
        message = f"{name} is not installed: {why}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; it is missing in CI, where tests must not skip")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray (2 CPUs) shared by a module's searches; its workers import the test plugins.

    ``nas search`` joins an already initialised Ray instead of starting its
    own, so the module pays Ray's start-up once. Workers inherit
    ``PYTHONPATH`` when Ray starts, so both ``tests/`` (``plugins.<name>``, as
    this conftest imports them) and ``tests/plugins`` (the modules a
    config's ``plugins:`` names directly) are put on it first.
    """
    ray = pytest.importorskip("ray")
    here = Path(__file__).resolve().parent
    paths = [str(here), str(here / "plugins")]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, old]))
    added = [p for p in paths if p not in sys.path]
    sys.path[:0] = added
    from nas.runner.cluster import connect

    connect(None, num_cpus=2)
    yield
    ray.shutdown()
    for path in added:
        sys.path.remove(path)
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data directory {path} is missing in CI")
        pytest.skip(f"shared data directory {path} not present (set NAS_DATA_DIR)")
    return path


@pytest.fixture(scope="session", autouse=True)
def retrieval_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Retrieval indexes (``nas similar``, the trial page's panel) and latency tables (``nas latency profile``)
    go to a temporary directory, not ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.mktemp("nas-cache")))
    yield
    patch.undo()
