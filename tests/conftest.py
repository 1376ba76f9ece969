"""Shared fixtures: data location and markers policy.

Tests that need ../shared/data skip with a reason when it is absent, except
in CI (``CI`` set), where the data is always present and a skip would hide a
failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

# Tests build many tiny models; on a 2-core machine torch's default thread
# pool makes them far slower (threads fight each other and other processes).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("NAS_DATA_DIR", REPO.parent / "shared" / "data"))


def require_tool(name: str, why: str) -> str:
    """The path of command-line tool ``name``; a skip with ``why`` without it, a failure in CI.

    In CI every tool a test needs is installed, so a missing one is a broken
    environment and must not pass as a skip.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: {why}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; it is missing in CI, where tests must not skip")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data directory {path} is missing in CI")
        pytest.skip(f"shared data directory {path} not present (set NAS_DATA_DIR)")
    return path
