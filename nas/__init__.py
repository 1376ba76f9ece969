"""nas: a neural architecture search platform.

The top-level namespace re-exports the user-facing API. Heavy parts (the
store, the runner) are imported lazily on first attribute access so that
``import nas`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.core import (
    Architecture,
    ArchitectureError,
    ConfigError,
    NASError,
    StorageError,
    TrialState,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ConfigError",
    "NASError",
    "StorageError",
    "TrialState",
    "UnknownNameError",
    "__version__",
    # lazily imported (see __getattr__):
    "Study",
    "StudyStatus",
    "create_study",
    "export_model",
    "list_studies",
    "load_exported",
    "load_study",
    "resolve_storage_url",
]

#: Public names whose modules import SQLAlchemy (and torch, for export): loaded on first access only.
_LAZY = {
    "Study": "nas.store.study",
    "create_study": "nas.store.study",
    "load_study": "nas.store.study",
    "list_studies": "nas.store.study",
    "StudyStatus": "nas.store",
    "resolve_storage_url": "nas.store",
    "export_model": "nas.export",
    "load_exported": "nas.export",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
