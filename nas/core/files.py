"""Writing a file atomically: a temporary file in the same directory, then ``os.replace``.

A process killed while writing (a Ray worker pre-empted mid-checkpoint, a
user's Ctrl-C while a model is saved) must leave the previous file intact,
never a truncated one that fails to load later. The writer is a callback on
a binary stream, so this stays torch-free: ``atomic_write(path, lambda f:
torch.save(state, f))`` serves checkpoints and state dicts alike.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Create ``path`` (and its parent directories) with the bytes ``write`` puts in the stream.

    The temporary file is removed if ``write`` raises; the target then keeps its old content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


#: Environment variable naming the platform's cache directory (default ``~/.cache/nas``).
CACHE_ENV = "NAS_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """``$NAS_CACHE_DIR/<parts>``, else ``~/.cache/nas/<parts>``: files the platform can always rebuild."""
    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "nas")
    return Path(root).joinpath(*parts)


__all__ = ["CACHE_ENV", "atomic_write", "cache_dir"]
