"""nas: a neural architecture search platform.

The top-level namespace re-exports the user-facing API. Heavy parts (the
store, the runner) are imported lazily on first attribute access so that
``import nas`` stays cheap.
"""

from __future__ import annotations

from nas.core import (
    Architecture,
    ArchitectureError,
    ConfigError,
    NASError,
    StorageError,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ConfigError",
    "NASError",
    "StorageError",
    "UnknownNameError",
    "__version__",
]
