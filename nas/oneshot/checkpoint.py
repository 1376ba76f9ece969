"""Per-epoch checkpoints of a one-shot run in a plain directory.

The same directory layout serves local runs (tests, notebooks) and Ray Tune,
which wraps it in a ``Checkpoint``: one file, written atomically
(:func:`nas.core.files.atomic_write`) so a run killed while saving keeps its previous
checkpoint, and read with ``weights_only=True`` so loading a checkpoint never
executes code from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nas.core.errors import StorageError
from nas.core.files import atomic_write
from nas.oneshot.method import OneShotMethod

FILENAME = "oneshot.pt"


def checkpoint_file(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / FILENAME


def save_checkpoint(method: OneShotMethod, directory: str | os.PathLike[str]) -> Path:
    """Write ``method``'s full state to ``directory/oneshot.pt`` atomically."""
    state = method.state_dict()
    return atomic_write(checkpoint_file(directory), lambda stream: torch.save(state, stream))


def load_checkpoint(method: OneShotMethod, directory: str | os.PathLike[str]) -> bool:
    """Restore ``method`` from ``directory`` if it holds a checkpoint; returns whether it did."""
    path = checkpoint_file(directory)
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location=method.device, weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise StorageError(f"checkpoint {path} cannot be read ({exc}); delete it to start afresh") from exc
    method.load_state_dict(state)
    return True


__all__ = ["FILENAME", "checkpoint_file", "load_checkpoint", "save_checkpoint"]
